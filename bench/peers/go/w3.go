// W3 ping-pong, Go: two goroutines exchange N round trips over two unbuffered
// channels with GOMAXPROCS=1 (set below). A sends i on ch1 and receives it
// back on ch2; B receives on ch1 and sends the value back on ch2. A message is
// one send + receive, so a round trip is two messages.
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
	n := envN("BENCH_N", 500000)
	ch1, ch2 := make(chan int), make(chan int)
	var wg sync.WaitGroup
	var sum int
	t0 := time.Now()
	wg.Add(2)
	go func() { // A
		defer wg.Done()
		for i := 1; i <= n; i++ {
			ch1 <- i
			v := <-ch2
			if v != i {
				panic("wrong value")
			}
			sum += v
		}
	}()
	go func() { // B
		defer wg.Done()
		for i := 0; i < n; i++ {
			ch2 <- <-ch1
		}
	}()
	wg.Wait()
	wall := time.Since(t0).Seconds()
	if sum != n*(n+1)/2 {
		panic("lost or duplicated messages")
	}
	fmt.Printf("{\"workload\":\"W3\",\"runtime\":\"go\",\"round_trips\":%d,\"messages\":%d,\"wall_s\":%.6f,\"ns_per_msg\":%.2f}\n",
		n, 2*n, wall, wall*1e9/float64(2*n))
}
