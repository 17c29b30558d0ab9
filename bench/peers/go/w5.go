// W5, Go: 100 x 10 ms time.Sleep one after another, then 100 goroutines
// sleeping 10 ms at once, gathered with a sync.WaitGroup.
package main

import (
	"fmt"
	"os"
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
	n := envN("BENCH_N", 100)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	seq := time.Since(t0).Seconds()
	var wg sync.WaitGroup
	t0 = time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(10 * time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	gat := time.Since(t0).Seconds()
	fmt.Printf("{\"workload\":\"W5\",\"runtime\":\"go\",\"tasks\":%d,\"seq_s\":%.6f,\"gather_s\":%.6f,\"speedup\":%.2f}\n",
		n, seq, gat, seq/gat)
}
