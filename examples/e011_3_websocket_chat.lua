-- Issue 11 "The network a real program needs", example E011.3: a WebSocket
-- chat.  A server (casync.http.serve, req:websocket()) and two clients
-- (casync.http.websocket), alice and bob, in one script.
--
-- Each connection's handler only reads: it hands what its client says to
-- a casync.channel.  One broadcaster task reads that channel and sends each
-- line to every client in the room; it alone owns the room (who is in it),
-- so joins, lines and leaves reach everyone in the order they happened.
-- Each client has a reader task that receives whatever comes, at any time;
-- here it passes the lines to its "screen" (a channel) and the script shows
-- the screens in a fixed order, so the output is the same on every run.
-- At the end each client closes with the closing handshake (1000 "bye").
local casync = require "casync"
local http = casync.http

local function main()
  local events = casync.channel(16) -- {join = m} | {leave = m, err = e} | {from = m, text = s}
  local everyone_left = casync.event()

  -- the broadcaster: the room, and each event sent to every member in it
  local broadcaster = casync.spawn(function()
    local room = {}
    for ev in events:iter() do
      local line
      if ev.join then
        room[#room + 1] = ev.join
        line = ("* %s joined"):format(ev.join.name)
        print(("server: %s joined (%d online)"):format(ev.join.name, #room))
      elseif ev.leave then
        for i, m in ipairs(room) do
          if m == ev.leave then table.remove(room, i) break end
        end
        line = ("* %s left"):format(ev.leave.name)
        print(("server: %s left, %s %d %s (%d online)"):format(ev.leave.name,
          ev.err.kind, ev.err.close_code, ev.err.close_reason, #room))
      else
        line = ("%s: %s"):format(ev.from.name, ev.text)
      end
      for _, m in ipairs(room) do m.ws:send(line) end -- a closing one just fails
      if #room == 0 then everyone_left:set() end
    end
  end)

  local server = assert(http.serve("127.0.0.1", 0, function(req)
    if req.path ~= "/chat" or not req.query.name then return {status = 404} end
    local me = {name = req.query.name, ws = assert(req:websocket())}
    events:send({join = me})
    while true do
      local text, err = me.ws:recv()
      if not text then events:send({leave = me, err = err}) return end
      events:send({from = me, text = text})
    end
  end))

  -- A client: its connection, and a reader task that puts every line it
  -- receives on its screen.
  local function join(name)
    local url = ("ws://127.0.0.1:%d/chat?name=%s"):format(server:port(), name)
    local c = {name = name, ws = assert(http.websocket(url)), screen = casync.channel(16)}
    c.reader = casync.spawn(function()
      for line in function() return c.ws:recv() end do c.screen:send(line) end
    end)
    return c
  end

  -- Shows the next line on each of these screens (waiting for it).
  local function show(...)
    for _, c in ipairs({...}) do print(("%-5s sees  %s"):format(c.name, c.screen:recv())) end
  end

  local function say(c, text)
    print(("%-5s says  %s"):format(c.name, text))
    assert(c.ws:send(text))
  end

  local function leave(c)
    print(("%-5s leaves"):format(c.name))
    c.reader:cancel() -- it waits in recv: nothing is lost, close reads next
    pcall(c.reader.wait, c.reader)
    c.ws:close(1000, "bye") -- returns once the server has answered the close
  end

  local alice = join("alice")
  show(alice)
  local bob = join("bob")
  show(alice, bob)
  say(alice, "hi bob")
  show(alice, bob)
  say(bob, "hi alice! how is the async chapter going?")
  show(alice, bob)
  say(alice, "every wait is a suspension point; got to go")
  show(alice, bob)
  leave(bob)
  show(alice)
  leave(alice)
  everyone_left:wait()
  local connections = server:stats().accepted
  server:close()
  events:close()
  broadcaster:wait()
  print(("chat over: %d connections; closed on the client side: alice %s, bob %s"):format(
    connections, alice.ws:closed(), bob.ws:closed()))
end

casync.run(main)
