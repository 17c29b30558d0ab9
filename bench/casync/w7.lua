-- W7 HTTPS "Hello, World!", casync: TODO once casync.http.serve takes
-- {tls = {cert =, key =}} (issue 11: the HTTP server's TLS hook, see
-- src/tls.c's casync__tls_start and casync__tls_send).  It will be W6's
-- server (bench/casync/w6.lua) with
--   {tls = {cert = os.getenv("BENCH_TLS_CERT"), key = os.getenv("BENCH_TLS_KEY"),
--           min_version = "tls1.3", ciphersuites = "TLS_AES_128_GCM_SHA256"}}
-- on 127.0.0.1:$BENCH_PORT (8443), loaded by wrk with an https URL.
error("W7: casync's HTTP server does not serve TLS yet (issue 11)")
