-- W6 HTTP "Hello, World!", Lua + cqueues: a coroutine per connection
-- (cq:wrap) reading lines with cqueues.socket until a blank line ends the
-- request (a minimal parser: GET without a body, as wrk sends), then one
-- fixed keep-alive response. Listens on 127.0.0.1:$BENCH_PORT (8080)
-- until killed.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: 13\r\n\r\nHello, World!"
local port = tonumber(os.getenv("BENCH_PORT") or "8080")

local cq = cqueues.new()
local srv = assert(socket.listen{host = "127.0.0.1", port = port, reuseaddr = true,
                                 backlog = 511})
cq:wrap(function()
  for con in srv:clients() do
    cq:wrap(function()
      con:setmode("b", "bf") -- binary; output flushed by flush()
      con:onerror(function(_, _, why) return why end) -- errors returned, not raised
      while true do
        local line = con:read("*l")
        if not line then break end
        if line == "" or line == "\r" then
          con:write(RESPONSE)
          con:flush()
        end
      end
      con:close()
    end)
  end
end)
assert(cq:loop())
