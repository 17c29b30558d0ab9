-- Issue 11 "The network a real program needs", example E011.1: a UDP echo
-- server and a client, both in this script on 127.0.0.1.
--
-- casync.udp.bind makes a socket; recv waits for the next datagram (and
-- says who sent it), send answers to that address.  The client connects
-- its socket, so send needs no address and only the server's datagrams
-- come back.  A datagram longer than recv's buffer is cut, and recv's
-- fourth result says so; recv with a timeout ends with kind "timeout".
local casync = require "casync"

local function main()
  local server = assert(casync.udp.bind("127.0.0.1", 0))
  local host, port = server:sockname()

  local echo = casync.spawn(function()
    while true do
      local data, from, from_port = server:recv()
      if data == "quit" then return end
      server:send(data:upper(), from, from_port)
    end
  end)

  local client <close> = assert(casync.udp.bind("127.0.0.1", 0))
  assert(client:connect(host, port))
  for _, word in ipairs({"hello", "datagram", "world"}) do
    client:send(word)
    local answer = client:recv(nil, 1)
    print(("sent %-9s got %s"):format(word, answer))
  end

  client:send("a rather long datagram")
  local data, _, _, truncated = client:recv(6, 1)
  print(("recv(6) of a 22-byte datagram: %q, truncated: %s"):format(data, truncated))

  client:send("quit")
  echo:wait()
  local none, err = client:recv(nil, 0.1)
  print(("nobody answers any more: %s, %s"):format(none, err))
  server:close()
end

casync.run(main)
