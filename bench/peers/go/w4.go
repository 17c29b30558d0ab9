// W4 timers, Go: N goroutines each sleeping an LCG duration in [0,1) s
// (nanosecond resolution), gathered with a sync.WaitGroup.
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

// Park-Miller "minimal standard" LCG, identical in every peer.
var lcgState int64 = 42

func lcgNext() float64 {
	lcgState = (lcgState * 48271) % 2147483647
	return float64(lcgState) / 2147483647.0
}

func main() {
	n := envN("BENCH_N", 200000)
	var wg sync.WaitGroup
	maxd := 0.0
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		d := lcgNext()
		if d > maxd {
			maxd = d
		}
		go func(d float64) {
			time.Sleep(time.Duration(d * 1e9))
			wg.Done()
		}(d)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	fmt.Printf("{\"workload\":\"W4\",\"runtime\":\"go\",\"tasks\":%d,\"wall_s\":%.6f,\"max_sleep_s\":%.6f,\"overhead_s\":%.6f}\n",
		n, wall, maxd, wall-maxd)
}
