-- lua/casync/websocket.lua, src/ws.c, req:websocket() and
-- casync.http.websocket: WebSocket (RFC 6455) between casync's server and
-- client, and against Node's `ws` (spec/peers/ws_node.js, npm) and
-- Python's websockets (spec/peers/ws_python.py, Debian's
-- python3-websockets) both ways; malformed frames sent to all three
-- servers must close with the same code.
local casync = require "casync"
local http = casync.http

local PY = "/usr/bin/python3"

local function exists(cmd)
  local f = io.popen("env -u LD_PRELOAD " .. cmd .. " >/dev/null 2>&1 && echo yes")
  local out = f:read("a")
  f:close()
  return out:find("yes") ~= nil
end

local HAVE_NODE_WS = exists("node -e \"require('./spec/peers/node_modules/ws')\"")
local HAVE_PY_WS = exists(PY .. " -c 'import websockets'")

-- Like async; afterwards no stream is left open.
local function wsasync(fn, timeout)
  return async(function()
    fn()
    http.close_idle()
    casync.sleep(0.01)
    local st = casync.stream._stats()
    assert(st.open == 0, "streams left open: " .. st.open)
    assert(http._stats().blocks == 0, "http blocks left")
  end, timeout or 30)
end

-- The ws:// URL of an HTTP server.
local function wsurl(srv) return (srv:url("/"):gsub("^http", "ws")) end

-- An echo server in casync: text and binary back as they came.
local function echo_server(opts)
  return assert(http.serve("127.0.0.1", 0, function(req)
    local ws = assert(req:websocket(opts))
    while true do
      local m, kind = ws:recv()
      if not m then break end
      if m == "frag" then
        ws.fragment_size = 3
        ws:send("fragment")
        ws.fragment_size = nil
      elseif m:match("^close:") then
        ws:close(tonumber(m:sub(7)), "asked")
        break
      else
        ws:send(m, kind)
      end
    end
  end))
end

-- Starts a peer program; returns its process and the first line it
-- printed.
local function peer(argv)
  local p = assert(casync.process.spawn(argv, {stdout = "pipe", stdin = "pipe",
                                               stderr = "pipe",
                                               env = {LD_PRELOAD = false}}))
  return p, p.stdout:read_line(nil, 20)
end

-- All the lines a peer prints until it exits.
local function lines_of(p)
  local t = {}
  while true do
    local l = p.stdout:read_line(nil, 20)
    if not l then break end
    t[#t + 1] = l
  end
  local errs = p.stderr and p.stderr:read(1 << 20, 1) or ""
  p:wait()
  for _, s in ipairs{p.stdin or false, p.stdout, p.stderr or false} do
    if s then s:close() end
  end
  return t, errs
end

-- The script every peer client runs against casync's echo server.
local CLIENT_SCRIPT = {"text hello", "text h\u{e9}llo \u{2603}", "binary 70000 true",
                       "text fragment", "pong p", "close 1000 done"}

local BINARY = (function()
  local t = {}
  for i = 0, 69999 do t[#t + 1] = string.char(i % 251) end
  return table.concat(t)
end)()

-- casync's client against a server at url (casync's, Node's or Python's).
local function client_script(url)
  local ws <close> = assert(http.websocket(url))
  assert(ws:send("hello"))
  assert.same({"hello", "text"}, {ws:recv()})
  assert(ws:send("h\u{e9}llo \u{2603}"))
  assert.same({"h\u{e9}llo \u{2603}", "text"}, {ws:recv()})
  assert(ws:send(BINARY, "binary"))
  local m, kind = ws:recv()
  assert.equal("binary", kind)
  assert.is_true(m == BINARY)
  assert(ws:send("frag")) -- the server answers in three fragments
  assert.same({"fragment", "text"}, {ws:recv()})
  ws.fragment_size = 3 -- and we send one in fragments
  assert(ws:send("fragmented by casync"))
  ws.fragment_size = nil
  assert.same({"fragmented by casync", "text"}, {ws:recv()})
  assert(ws:ping("p"))
  assert(ws:send("after the ping"))
  assert.same({"after the ping", "text"}, {ws:recv()})
  assert.is_true(ws:close(1000, "done"))
  assert.equal(1000, ws.close_code)
  assert.is_true(ws:closed())
  local m2, err = ws:recv()
  assert.is_nil(m2)
  assert.equal("closed", err.kind)
end

-- Opens a raw WebSocket connection to port (the handshake by hand), sends
-- bytes, and returns the code of the close frame the server sends back
-- (nil if it closes without one).
local function raw_close_code(port, bytes)
  local s <close> = assert(casync.tcp.connect("127.0.0.1", port))
  s:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
  local head = assert(s:read_until("\r\n\r\n", 65536, 5))
  assert.matches("^HTTP/1.1 101", head)
  assert.matches("s3pPLMBiTxaQ9kYGzzhZRbK%+xOo=", head)
  s:write(bytes)
  while true do
    local h = s:read_exactly(2, 5)
    if not h then return nil end
    local b0, b1 = h:byte(1, 2)
    local len = b1 & 0x7f
    if len == 126 then len = string.unpack(">I2", s:read_exactly(2, 5)) end
    local payload = len > 0 and s:read_exactly(len, 5) or ""
    if b0 & 0x0f == 8 then
      return #payload >= 2 and string.unpack(">I2", payload) or 1005
    end
  end
end

-- A masked client frame (key 0x00000000 keeps the payload readable).
local function masked(b0, payload)
  assert(#payload < 126)
  return string.char(b0, 0x80 | #payload) .. "\0\0\0\0" .. payload
end

local MALFORMED = {
  {"an unmasked client frame", string.char(0x81, 2) .. "hi", 1002},
  {"bad UTF-8 in a text frame", masked(0x81, "\xff\xfe"), 1007},
  {"a control frame longer than 125 bytes",
   string.char(0x89, 0x80 | 126) .. string.pack(">I2", 126) .. "\0\0\0\0" .. ("p"):rep(126),
   1002},
  {"a fragmented control frame", masked(0x09, "p"), 1002},
  {"reserved bits", masked(0xC1, "hi"), 1002},
  {"an unknown opcode", masked(0x83, "hi"), 1002},
  {"a continuation with no message", masked(0x80, "hi"), 1002},
}

describe("casync.http.websocket and req:websocket()", function()
  it("echoes text and binary messages, fragments both ways, closes with a code",
     wsasync(function()
    local srv <close> = echo_server()
    client_script(wsurl(srv))
  end))

  it("refuses what is not an upgrade, and checks the accept key", wsasync(function()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function(req)
      local ws, err = req:websocket()
      if not ws then return {status = 426, body = err.message or tostring(err)} end
      ws:close()
    end))
    local r = assert(http.get(srv:url("/")))
    assert.equal(426, r.status)
    local ws, err = http.websocket(wsurl(srv) .. "x")
    assert(ws, err)
    ws:close()
    -- a plain HTTP server is no WebSocket
    local plain <close> = assert(http.serve("127.0.0.1", 0, function() return "no" end))
    ws, err = http.websocket(wsurl(plain))
    assert.is_nil(ws)
    assert.equal("http", err.kind)
    assert.equal(200, err.status)
    ws, err = http.websocket("ftp://127.0.0.1:1/")
    assert.equal("unsupported", err.kind)
  end))

  it("closes with 1009 a message over max_message_size, and the peer sees the code",
     wsasync(function()
    local srv <close> = echo_server({max_message_size = 1000})
    local ws = assert(http.websocket(wsurl(srv)))
    assert(ws:send(("a"):rep(1000)))
    assert.equal(1000, #ws:recv())
    assert(ws:send(("a"):rep(1001)))
    local m, err = ws:recv()
    assert.is_nil(m)
    assert.equal("websocket", err.kind)
    assert.equal(1009, err.close_code)
    ws:close()
  end))

  it("keeps recv whole across a timeout and a cancellation (no frame is lost)",
     wsasync(function()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function(req)
      local ws = assert(req:websocket())
      casync.sleep(0.1)
      -- the frame's head and half its payload, then the rest later
      local f = require("casync.core").http._ws_frame(0x81, ("b"):rep(200000), false)
      ws.s:write(f:sub(1, 100000))
      casync.sleep(0.2)
      ws.s:write(f:sub(100001))
      ws:send("second")
      ws:recv()
    end))
    local ws = assert(http.websocket(wsurl(srv)))
    local m0, err0 = ws:recv(0.05) -- nothing yet: a timeout
    assert.is_nil(m0)
    assert.equal("timeout", err0.kind)
    local t = casync.spawn(ws.recv, ws)
    casync.sleep(0.2) -- cancelled while the big message is coming in
    assert.is_false(t:done())
    t:cancel()
    pcall(t.wait, t)
    local m = ws:recv()
    assert.equal(200000, #m)
    assert.equal("second", ws:recv())
    ws:close()
  end))

  it("applies backpressure: send suspends while the peer does not read", wsasync(function()
    local release = casync.event()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function(req)
      local ws = assert(req:websocket())
      release:wait()
      while ws:recv() do end
    end))
    local ws = assert(http.websocket(wsurl(srv)))
    local chunk = ("c"):rep(1 << 20)
    local sent = 0
    local sender = casync.spawn(function()
      for _ = 1, 64 do
        assert(ws:send(chunk, "binary"))
        sent = sent + 1
      end
    end)
    casync.sleep(0.3)
    assert.is_true(sent < 64, "sent all 64 MiB without the peer reading")
    release:set()
    sender:wait()
    assert.equal(64, sent)
    ws:close()
  end, 60))

  it("sends keep-alive pings (ping_interval) and drops a peer that stops answering",
     wsasync(function()
    local srv = assert(http.serve("127.0.0.1", 0, function(req)
      local ws = assert(req:websocket())
      casync.sleep(1) -- reads nothing: no pong comes back
      ws:close()
    end))
    local ws = assert(http.websocket(wsurl(srv),
                                     {ping_interval = 0.1, ping_timeout = 0.1}))
    local m, err = ws:recv()
    assert.is_nil(m)
    assert.equal(1011, err.close_code)
    srv:close{cancel = true}
  end))

  it("closes malformed frames with the code Node's ws and Python's websockets use",
     wsasync(function()
    local srv <close> = echo_server()
    for _, c in ipairs(MALFORMED) do
      assert.equal(c[3], raw_close_code(srv:port(), c[2]), c[1])
    end
    for _, p in ipairs{
      HAVE_NODE_WS and {"node", "spec/peers/ws_node.js", "server"} or false,
      HAVE_PY_WS and {PY, "spec/peers/ws_python.py", "server"} or false,
    } do
      if p then
        local proc, port = peer(p)
        for _, c in ipairs(MALFORMED) do
          assert.equal(c[3], raw_close_code(tonumber(port), c[2]), p[1] .. ": " .. c[1])
        end
        proc.stdin:close()
        lines_of(proc)
      end
    end
  end, 60))

  it("serves Node's ws client", wsasync(function()
    if not HAVE_NODE_WS then
      print("\n(Node's ws is not installed: npm install --prefix spec/peers)")
      return
    end
    local srv <close> = echo_server()
    local p = assert(casync.process.spawn(
      {"node", "spec/peers/ws_node.js", "client", wsurl(srv)},
      {stdout = "pipe", stderr = "pipe", env = {LD_PRELOAD = false}}))
    local lines, errs = lines_of(p)
    assert.same(CLIENT_SCRIPT, lines, errs)
  end))

  it("serves Python's websockets client", wsasync(function()
    if not HAVE_PY_WS then print("\n(python3-websockets is not installed)") return end
    local srv <close> = echo_server()
    local p = assert(casync.process.spawn(
      {PY, "spec/peers/ws_python.py", "client", wsurl(srv)},
      {stdout = "pipe", stderr = "pipe", env = {LD_PRELOAD = false}}))
    local lines, errs = lines_of(p)
    assert.same(CLIENT_SCRIPT, lines, errs)
  end))

  it("talks to Node's ws server", wsasync(function()
    if not HAVE_NODE_WS then return end
    local p, port = peer({"node", "spec/peers/ws_node.js", "server"})
    client_script(("ws://127.0.0.1:%s/"):format(port))
    local ws = assert(http.websocket(("ws://127.0.0.1:%s/"):format(port)))
    ws:send("close:4001")
    local m, err = ws:recv()
    assert.is_nil(m)
    assert.equal(4001, err.close_code)
    assert.equal("asked", err.close_reason)
    -- the server saw both closing handshakes
    assert.equal("server-close 1000", p.stdout:read_line(nil, 10))
    assert.equal("server-close 4001", p.stdout:read_line(nil, 10))
    p.stdin:close()
    lines_of(p)
  end))

  it("talks to Python's websockets server", wsasync(function()
    if not HAVE_PY_WS then return end
    local p, port = peer({PY, "spec/peers/ws_python.py", "server"})
    client_script(("ws://127.0.0.1:%s/"):format(port))
    local ws = assert(http.websocket(("ws://127.0.0.1:%s/"):format(port)))
    ws:send("close:4001")
    local m, err = ws:recv()
    assert.is_nil(m)
    assert.equal(4001, err.close_code)
    -- the server saw both closing handshakes
    assert.equal("server-close 1000", p.stdout:read_line(nil, 10))
    assert.equal("server-close 4001", p.stdout:read_line(nil, 10))
    p.stdin:close()
    lines_of(p)
  end))
end)
