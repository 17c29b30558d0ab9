// CPU, Go: the seed's cpu_intensive_task (the sum of i*i for i < 10^7) four
// times, one after another, then in four goroutines (GOMAXPROCS default: all
// cores), gathered with a sync.WaitGroup. int is 64-bit and wraps around,
// as Lua's integers do.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

const tasks = 4

func envN(name string, dflt int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return dflt
}

func cpuIntensiveTask(n int) int {
	result := 0
	for i := 0; i < n; i++ {
		result += i * i
	}
	return result
}

func main() {
	n := envN("BENCH_N", 10000000)
	seq := make([]int, tasks)
	t0 := time.Now()
	for i := range seq {
		seq[i] = cpuIntensiveTask(n)
	}
	seqS := time.Since(t0).Seconds()
	par := make([]int, tasks)
	var wg sync.WaitGroup
	t0 = time.Now()
	wg.Add(tasks)
	for i := range par {
		go func(i int) {
			par[i] = cpuIntensiveTask(n)
			wg.Done()
		}(i)
	}
	wg.Wait()
	parS := time.Since(t0).Seconds()
	for i := range par {
		if par[i] != seq[i] {
			panic("results differ")
		}
	}
	fmt.Printf("{\"workload\":\"CPU\",\"runtime\":\"go\",\"tasks\":%d,\"n\":%d,\"workers\":%d,\"seq_s\":%.6f,\"par_s\":%.6f,\"speedup\":%.3f}\n",
		tasks, n, tasks, seqS, parS, seqS/parS)
}
