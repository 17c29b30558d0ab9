// W6 HTTP "Hello, World!", Go: net/http, keep-alive (its default). Listens
// on 127.0.0.1:$BENCH_PORT (8080) until killed; bench/run pins it to one
// core, so the runtime sees one CPU (GOMAXPROCS 1).
package main

import (
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("BENCH_PORT")
	if port == "" {
		port = "8080"
	}
	body := []byte("Hello, World!")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if err := http.ListenAndServe("127.0.0.1:"+port, nil); err != nil {
		panic(err)
	}
}
