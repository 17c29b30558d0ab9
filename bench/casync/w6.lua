-- W6 HTTP "Hello, World!", casync: casync.http.serve (HTTP/1.1 parsed by
-- llhttp in C, a task per request running this Lua handler, the
-- answer serialized in C), keep-alive.  Listens on 127.0.0.1:$BENCH_PORT
-- (8080) until killed.  Run with the casync runner, or with lua5.4 (then it
-- wraps itself in casync.run).
local casync = require "casync"

local port = tonumber(os.getenv("BENCH_PORT") or "8080")
-- BENCH_W6_WORKERS = n: n worker processes (http.serve's workers option);
-- give the server more than one core then (BENCH_W6_SERVER_CPU=0,1)
local workers = tonumber(os.getenv("BENCH_W6_WORKERS") or "1")

local function main()
  local srv = assert(casync.http.serve("127.0.0.1", port, function(req)
    return "Hello, World!"
  end, {max_connections = 0, workers = workers}))
  casync.sleep(1e9) -- until killed
  srv:close()
end

if casync.current() then main() else casync.run(main) end
