-- W7 HTTPS "Hello, World!", casync: W6's server (bench/casync/w6.lua) with
-- TLS: casync.http.serve(..., {tls = {cert =, key =, min_version = "tls1.3",
-- ciphersuites = "TLS_AES_128_GCM_SHA256"}}), the certificate and key from
-- $BENCH_TLS_CERT / $BENCH_TLS_KEY, on 127.0.0.1:$BENCH_PORT (8443), until
-- killed.  Run with the casync runner, or with lua5.4 (then it wraps itself
-- in casync.run).
local casync = require "casync"

local port = tonumber(os.getenv("BENCH_PORT") or "8443")

local function main()
  local srv = assert(casync.http.serve("127.0.0.1", port, function(req)
    return "Hello, World!"
  end, {max_connections = 0,
        tls = {cert = assert(os.getenv("BENCH_TLS_CERT"), "BENCH_TLS_CERT"),
               key = assert(os.getenv("BENCH_TLS_KEY"), "BENCH_TLS_KEY"),
               min_version = "tls1.3",
               ciphersuites = "TLS_AES_128_GCM_SHA256"}}))
  casync.sleep(1e9) -- until killed
  srv:close()
end

if casync.current() then main() else casync.run(main) end
