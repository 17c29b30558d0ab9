// W2 spawn-gather, Go: N goroutines each sleeping 10 ms and storing a result,
// gathered with a sync.WaitGroup. GOMAXPROCS is left at its default (all cores)
// unless the GOMAXPROCS environment variable says otherwise.
package main

import (
	"bytes"
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

func statusBytes(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(key+":")) {
			f := bytes.Fields(line[len(key)+1:])
			v, _ := strconv.ParseInt(string(f[0]), 10, 64)
			return v * 1024
		}
	}
	return -1
}

func resetHWM() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func main() {
	n := envN("BENCH_N", 100000)
	resetHWM()
	rss0 := statusBytes("VmRSS")
	t0 := time.Now()
	results := make([]int, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			time.Sleep(10 * time.Millisecond)
			results[i] = i
			wg.Done()
		}(i)
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	hwm := statusBytes("VmHWM")
	if results[n-1] != n-1 {
		panic("bad result")
	}
	fmt.Printf("{\"workload\":\"W2\",\"runtime\":\"go\",\"tasks\":%d,\"wall_s\":%.6f,\"us_per_task\":%.4f,\"rss_bytes_per_task\":%.1f}\n",
		n, wall, (wall-0.010)*1e6/float64(n), float64(hwm-rss0)/float64(n))
}
