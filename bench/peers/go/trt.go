// TRT, Go: the round trip to a worker goroutine: send it a function on a
// channel, it calls the function and answers on another channel, N times
// one after another (GOMAXPROCS default: all cores).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func envN(name string, dflt int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return dflt
}

func main() {
	n := envN("BENCH_N", 20000)
	req := make(chan func())
	resp := make(chan struct{})
	go func() {
		for f := range req {
			f()
			resp <- struct{}{}
		}
	}()
	empty := func() {}
	for i := 0; i < 1000; i++ {
		req <- empty
		<-resp
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		req <- empty
		<-resp
	}
	wall := time.Since(t0).Seconds()
	close(req)
	fmt.Printf("{\"workload\":\"TRT\",\"runtime\":\"go\",\"round_trips\":%d,\"wall_s\":%.6f,\"us_per_rt\":%.3f}\n",
		n, wall, wall/float64(n)*1e6)
}
