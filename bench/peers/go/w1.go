// W1 switch, Go: two goroutines taking turns through runtime.Gosched()
// with GOMAXPROCS=1 (set below), so they really alternate on one thread.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func envN(name string, dflt int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return dflt
}

func main() {
	runtime.GOMAXPROCS(1)
	n := envN("BENCH_N", 1000000)
	per := n / 2
	var wg sync.WaitGroup
	var count [2]int
	t0 := time.Now()
	for k := 0; k < 2; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				runtime.Gosched()
				count[k]++
			}
		}(k)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	sw := count[0] + count[1]
	fmt.Printf("{\"workload\":\"W1\",\"runtime\":\"go\",\"switches\":%d,\"wall_s\":%.6f,\"ns_per_op\":%.2f}\n",
		sw, wall, wall*1e9/float64(sw))
}
