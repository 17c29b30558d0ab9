// W7 HTTPS "Hello, World!", Go: net/http with TLS, keep-alive (its
// default): W6 over TLS. Listens on 127.0.0.1:$BENCH_PORT (8443) with the
// certificate and key in $BENCH_TLS_CERT and $BENCH_TLS_KEY (the same for
// every runtime: an EC P-256 key), TLS 1.3 only; Go chooses
// TLS_AES_128_GCM_SHA256 on a CPU with AES instructions, as the others are
// told to (Go does not let TLS 1.3 suites be configured).
package main

import (
	"crypto/tls"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("BENCH_PORT")
	if port == "" {
		port = "8443"
	}
	body := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	srv := &http.Server{
		Addr:      "127.0.0.1:" + port,
		Handler:   mux,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13},
		// HTTP/1.1 only, as wrk speaks it and the others serve it
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	err := srv.ListenAndServeTLS(os.Getenv("BENCH_TLS_CERT"), os.Getenv("BENCH_TLS_KEY"))
	if err != nil {
		panic(err)
	}
}
