-- W6 HTTP "Hello, World!", Lua + luv: a coroutine per connection, resumed
-- by luv's read callback with each chunk; a minimal parser (a request ends
-- at the first blank line: GET without a body, as wrk sends) and one fixed
-- keep-alive response per request. Listens on 127.0.0.1:$BENCH_PORT (8080)
-- until killed.
local uv = require "luv"

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n\r\nHello, World!"
local port = tonumber(os.getenv("BENCH_PORT") or "8080")

local function serve(client)
  local buf = ""
  while true do
    local data = coroutine.yield()
    if not data then break end
    buf = buf .. data
    local n = 0
    while true do
      local e = buf:find("\r\n\r\n", 1, true)
      if not e then break end
      buf = buf:sub(e + 4)
      n = n + 1
    end
    if n > 0 then
      local out = n == 1 and RESPONSE or RESPONSE:rep(n)
      if client:try_write(out) ~= #out then client:write(out) end
    end
  end
  client:close()
end

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", port))
assert(server:listen(511, function(err)
  if err then return end
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  local co = coroutine.wrap(serve)
  co(client) -- runs to its first yield
  client:read_start(function(rerr, data)
    co(not rerr and data or nil)
  end)
end))
uv.run()
