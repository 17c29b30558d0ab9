-- casync.websocket: WebSocket (RFC 6455) on casync streams, for the
-- server's req:websocket() and the client's casync.http.websocket(url).
--
-- A WebSocket object reads and writes its stream directly (no task of its
-- own): ws:recv() reads frames until a whole message is in, answering
-- pings and the peer's close as they come, so control frames are handled
-- while a task waits in recv.  The frame being read and the message being
-- put together live in the object, so a recv cut short by a timeout or a
-- cancellation loses nothing.  Sends take a lock, so pongs, pings and
-- messages from several tasks never interleave, and suspend while the
-- kernel's buffer is full (backpressure).  Frame bytes and masking are C
-- (src/ws.c); wss is the same over a TLS stream.  Not here: extensions
-- (permessage-deflate).
local core = require "casync.core"

local C = core.http
local now, new_error = core.now, core.new_error
local frame, unmask, accept_key = C._ws_frame, C._ws_unmask, C._ws_accept

local websocket = {}

local DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
local CLOSE_TIMEOUT = 5

local OP_CONT, OP_TEXT, OP_BINARY = 0, 1, 2
local OP_CLOSE, OP_PING, OP_PONG = 8, 9, 10

local WS = {}
WS.__index = WS
WS.__name = "casync.WebSocket"

-- Raises "bad argument #i to 'fname' (msg)" as luaL_argerror does, for
-- a method (self not counted when it was called with a colon), the error
-- pointing at the caller's line; or, with `plain` (the level error() is
-- to point at), for a function.
local function argerr(i, fname, msg, plain)
  local ar = not plain and debug.getinfo(2, "n")
  local level = plain or 3
  if ar and ar.namewhat == "method" then
    i = i - 1
    if i == 0 then
      error(("calling '%s' on bad self (%s)"):format(fname, msg), level)
    end
  end
  error(("bad argument #%d to '%s' (%s)"):format(i, fname, msg), level)
end

local function check_ws(self, fname)
  if getmetatable(self) ~= WS then
    local ar = debug.getinfo(2, "n")
    local msg = ("casync.WebSocket expected, got %s"):format(
      self == nil and "no value" or type(self))
    if ar and ar.namewhat == "method" then
      error(("calling '%s' on bad self (%s)"):format(fname, msg), 3)
    end
    error(("bad argument #1 to '%s' (%s)"):format(fname, msg), 3)
  end
end

-- The options every WebSocket takes (argument i of fname).
local function options(opts, i, fname, level)
  local o = {max_message_size = DEFAULT_MAX_MESSAGE, close_timeout =
             CLOSE_TIMEOUT}
  local function num(field, int, lo)
    local v = opts[field]
    if v == nil then return end
    if type(v) ~= "number" or v ~= v or v < lo or
       (int and math.type(v) ~= "integer") then
      argerr(i, fname, ("opts.%s must be a%s number >= %d"):format(
        field, int and "n integer" or "", lo), level + 2)
    end
    o[field] = v
  end
  num("max_message_size", true, 1)
  num("ping_interval", false, 0)
  num("ping_timeout", false, 0)
  num("close_timeout", false, 0)
  num("fragment_size", true, 1)
  if opts.protocols ~= nil then
    if type(opts.protocols) ~= "table" then
      argerr(i, fname, "opts.protocols must be a list of strings", level + 1)
    end
    for _, p in ipairs(opts.protocols) do
      if type(p) ~= "string" or not p:match("^[%w!#%$%%&'%*%+%-%.%^_`|~]+$")
      then argerr(i, fname, "opts.protocols must be a list of tokens", level + 1) end
    end
    o.protocols = opts.protocols
  end
  return o
end

local function new(s, client, o, protocol)
  local ws = setmetatable({
    s = s, client = client, max = o.max_message_size,
    fragment_size = o.fragment_size, close_timeout = o.close_timeout,
    protocol = protocol, state = "open",
    wlock = core.lock(),
    parts = nil, parts_len = 0, msg_op = nil, -- the message being read
    hdr = nil,                                -- the frame being read
    last_seen = now(),
  }, WS)
  if o.ping_interval and o.ping_interval > 0 then
    ws.pinger = core.spawn(function()
      local interval = o.ping_interval
      local timeout = o.ping_timeout or interval
      while ws.state == "open" do
        core.sleep(interval)
        if ws.state ~= "open" then break end
        if now() - ws.last_seen > interval + timeout then
          ws:_fail(1011, "keepalive ping timeout")
          break
        end
        if not ws:_send_frame(0x80 | OP_PING, "casync") then break end
      end
    end)
  end
  return ws
end

-- Writes one frame (first byte b0), holding the write lock.
function WS:_send_frame(b0, payload)
  local p <close> = self.wlock:acquire()
  if self.s:closed() then
    return nil, new_error("closed", "websocket: the connection is closed")
  end
  return self.s:write(frame(b0, payload, self.client))
end

-- Ends the connection: the close frame with code (if none was sent), then
-- the stream.  Returns the error recv hands out from now on.
function WS:_fail(code, reason)
  if self.state ~= "closed" then
    if not self.close_sent and not self.s:closed() then
      self.close_sent = true
      pcall(self._send_frame, self, 0x80 | OP_CLOSE,
            string.pack(">I2", code) .. reason)
    end
    self.state = "closed"
    self.close_code, self.close_reason = self.close_code or code,
                                         self.close_reason or reason
    self.s:close()
    if self.pinger and self.pinger ~= core.current() then
      self.pinger:cancel()
    end
  end
  return self:_closed_error()
end

function WS:_closed_error()
  local code = self.close_code or 1006
  local clean = code == 1000 or code == 1001
  local e = new_error(clean and "closed" or "websocket",
                      ("websocket closed: %d%s"):format(code,
                        self.close_reason and self.close_reason ~= "" and
                        (" " .. self.close_reason) or ""), tostring(code))
  e.close_code, e.close_reason = code, self.close_reason
  return e
end

local VALID_CLOSE = {[1000] = true, [1001] = true, [1002] = true,
                     [1003] = true, [1007] = true, [1008] = true,
                     [1009] = true, [1010] = true, [1011] = true,
                     [1012] = true, [1013] = true, [1014] = true}

-- The peer's close frame came: answer it (RFC 6455 5.5.1), end.
function WS:_on_close(payload)
  local code, reason = 1005, ""
  if #payload == 1 then return self:_fail(1002, "bad close frame") end
  if #payload >= 2 then
    code = string.unpack(">I2", payload)
    reason = payload:sub(3)
    if not (VALID_CLOSE[code] or (code >= 3000 and code <= 4999)) then
      return self:_fail(1002, "bad close code")
    end
    if not utf8.len(reason) then
      return self:_fail(1007, "close reason is not UTF-8")
    end
  end
  self.close_code, self.close_reason = code, reason
  if not self.close_sent then -- the code (and reason) echoed
    self.close_sent = true
    pcall(self._send_frame, self, 0x80 | OP_CLOSE,
          code == 1005 and "" or string.pack(">I2", code) .. reason)
  end
  self.state = "closed"
  self.s:close()
  if self.pinger and self.pinger ~= core.current() then self.pinger:cancel() end
  return self:_closed_error()
end

-- Reads the next frame (its state kept in self.hdr across cancellations
-- and timeouts) before `deadline` (nil: none): returns fin, opcode,
-- payload, or nil, err.
function WS:_read_frame(deadline)
  local s = self.s
  local h = self.hdr
  local function left()
    return deadline and math.max(0, deadline - now()) or nil
  end
  if not h then
    local b, err = s:read_exactly(2, left())
    if not b then return nil, err end
    local b0, b1 = b:byte(1, 2)
    h = {fin = b0 & 0x80 ~= 0, rsv = b0 & 0x70, op = b0 & 0x0f,
         masked = b1 & 0x80 ~= 0, len = b1 & 0x7f}
    self.hdr = h
  end
  if h.ext == nil then
    local need = h.len == 126 and 2 or h.len == 127 and 8 or 0
    if need > 0 then
      local b, err = s:read_exactly(need, left())
      if not b then return nil, err end
      if need == 2 then h.len = string.unpack(">I2", b)
      else
        h.len = string.unpack(">i8", b)
        if h.len < 0 then return nil, self:_fail(1002, "bad frame length") end
      end
    end
    h.ext = true
    -- checks before the payload is read
    if h.rsv ~= 0 then return nil, self:_fail(1002, "reserved bits set") end
    if h.masked == self.client then
      return nil, self:_fail(1002, self.client and "masked frame from a server"
                                   or "unmasked frame from a client")
    end
    if h.op >= 8 then
      if h.op > OP_PONG then return nil, self:_fail(1002, "unknown opcode") end
      if not h.fin then return nil, self:_fail(1002, "fragmented control frame") end
      if h.len > 125 then
        return nil, self:_fail(1002, "control frame longer than 125 bytes")
      end
    elseif h.op > OP_BINARY then
      return nil, self:_fail(1002, "unknown opcode")
    elseif self.parts_len + h.len > self.max then
      return nil, self:_fail(1009, "message too big")
    end
  end
  if h.masked and not h.key then
    local k, err = s:read_exactly(4, left())
    if not k then return nil, err end
    h.key = k
  end
  local payload = ""
  if h.len > 0 then
    local p, err = s:read_exactly(h.len, left())
    if not p then return nil, err end
    payload = p
  end
  self.hdr = nil
  if h.key then payload = unmask(h.key, payload) end
  return h.fin, h.op, payload
end

-- ws:recv([timeout]) -> message, "text" | "binary", or nil, err once the
-- connection closed (err.kind "closed" for a normal close, "websocket" for
-- a protocol error, with err.close_code and err.close_reason) or the
-- timeout passed (kind "timeout": the connection stays usable); pings and
-- the peer's close are answered while a task waits here
function WS:recv(timeout)
  check_ws(self, "recv")
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    argerr(2, "recv", "timeout must be a number")
  end
  local deadline = timeout and now() + math.max(0, timeout)
  while true do
    if self.state == "closed" then return nil, self:_closed_error() end
    local fin, op, payload = self:_read_frame(deadline)
    if fin == nil then
      if self.state == "closed" then return nil, self:_closed_error() end
      if op and (op.kind == "cancelled" or op.kind == "timeout") then
        return nil, op
      end
      -- the stream ended or failed without a close frame
      self.close_code = self.close_code or 1006
      self.state = "closed"
      self.s:close()
      if self.pinger then self.pinger:cancel() end
      return nil, self:_closed_error()
    end
    self.last_seen = now()
    if op == OP_PING then
      self:_send_frame(0x80 | OP_PONG, payload)
    elseif op == OP_PONG then -- nothing more: last_seen is the keep-alive
    elseif op == OP_CLOSE then
      return nil, self:_on_close(payload)
    else
      if op == OP_CONT then
        if not self.msg_op then
          return nil, self:_fail(1002, "continuation without a message")
        end
      elseif self.msg_op then
        return nil, self:_fail(1002, "new message inside a fragmented one")
      else
        self.msg_op, self.parts, self.parts_len = op, {}, 0
      end
      self.parts[#self.parts + 1] = payload
      self.parts_len = self.parts_len + #payload
      if fin then
        local msg = table.concat(self.parts)
        local mop = self.msg_op
        self.parts, self.parts_len, self.msg_op = nil, 0, nil
        if mop == OP_TEXT then
          if not utf8.len(msg) then
            return nil, self:_fail(1007, "text message is not UTF-8")
          end
          return msg, "text"
        end
        return msg, "binary"
      end
    end
  end
end

-- ws:send(msg [, "text" | "binary"]) -> true | nil, err: one message (text
-- by default, which must be UTF-8), in frames of opts.fragment_size bytes
-- when that is set; suspends while the peer reads slower than we write
function WS:send(msg, kind)
  check_ws(self, "send")
  if type(msg) ~= "string" then
    argerr(2, "send", ("string expected, got %s"):format(
      msg == nil and "no value" or type(msg)))
  end
  if kind ~= nil and kind ~= "text" and kind ~= "binary" then
    argerr(3, "send", "invalid option '" .. tostring(kind) .. "'")
  end
  local op = kind == "binary" and OP_BINARY or OP_TEXT
  if op == OP_TEXT and not utf8.len(msg) then
    argerr(2, "send", "text message is not UTF-8 (send it as \"binary\")")
  end
  if self.state ~= "open" then return nil, self:_closed_error() end
  local size = self.fragment_size
  if not size or #msg <= size then
    local ok, err = self:_send_frame(0x80 | op, msg)
    if not ok then return nil, err end
    return true
  end
  local p <close> = self.wlock:acquire() -- the fragments go out together
  for i = 1, #msg, size do
    local last = i + size > #msg
    local b0 = (last and 0x80 or 0) | (i == 1 and op or OP_CONT)
    local ok, err = self.s:write(frame(b0, msg:sub(i, i + size - 1),
                                       self.client))
    if not ok then return nil, err end
  end
  return true
end

-- ws:ping([data]) -> true | nil, err: a ping (the pong is seen by recv)
function WS:ping(data)
  check_ws(self, "ping")
  if data ~= nil and (type(data) ~= "string" or #data > 125) then
    argerr(2, "ping", "data must be a string of at most 125 bytes")
  end
  if self.state ~= "open" then return nil, self:_closed_error() end
  return self:_send_frame(0x80 | OP_PING, data or "")
end

-- ws:close([code [, reason]]) -> true: the closing handshake (our close
-- frame, then the peer's, read for at most close_timeout seconds while
-- data frames are dropped), then the connection closes; again: nothing
function WS:close(code, reason)
  check_ws(self, "close")
  if code ~= nil and (math.type(code) ~= "integer" or
                      not (VALID_CLOSE[code] or (code >= 3000 and code <= 4999))) then
    argerr(2, "close", "code must be 1000-1003, 1007-1014 or 3000-4999")
  end
  if reason ~= nil and (type(reason) ~= "string" or #reason > 123 or
                        not utf8.len(reason)) then
    argerr(3, "close", "reason must be UTF-8 of at most 123 bytes")
  end
  if self.state == "closed" then return true end
  self.state = "closing"
  if self.pinger then self.pinger:cancel() end
  if not self.close_sent then
    self.close_sent = true
    self:_send_frame(0x80 | OP_CLOSE, string.pack(">I2", code or 1000) ..
                     (reason or ""))
  end
  self.close_code, self.close_reason = code or 1000, reason or ""
  local deadline = now() + self.close_timeout
  while self.state ~= "closed" and now() < deadline do
    local fin, op, payload = self:_read_frame(deadline)
    if fin == nil then break end
    if op == OP_CLOSE then
      self.state = "closed"
      if #payload >= 2 then
        self.close_code = string.unpack(">I2", payload)
        self.close_reason = payload:sub(3)
      end
    end
  end
  self.state = "closed"
  self.s:close()
  return true
end

-- ws:closed() -> boolean
function WS:closed()
  check_ws(self, "closed")
  return self.state == "closed"
end

WS.__close = function(self) if self.state ~= "closed" then self:close() end end
WS.__tostring = function(self)
  return ("casync.WebSocket (%s, %s)"):format(
    self.client and "client" or "server", self.state)
end

---------------------------------------------------------------- handshakes

local function has_token(value, token)
  for t in (value or ""):gmatch("[^,%s]+") do
    if t:lower() == token then return true end
  end
  return false
end

-- The server side: answers req's upgrade with 101 on the connection that
-- upgrade() (the C server's) hands over.  -> ws | nil, err
function websocket.accept(req, opts, upgrade)
  local o = options(opts or {}, 2, "websocket", 4)
  local h = req.headers or {}
  local key = h["sec-websocket-key"]
  if req.method ~= "GET" or not has_token(h.upgrade, "websocket") or
     not has_token(h.connection, "upgrade") or
     h["sec-websocket-version"] ~= "13" or not key or
     not key:match("^[%w+/]+=*$") or #key ~= 24 then
    return nil, new_error("http", "websocket: not a WebSocket upgrade request")
  end
  local protocol
  if o.protocols and h["sec-websocket-protocol"] then
    for offered in h["sec-websocket-protocol"]:gmatch("[^,%s]+") do
      for _, p in ipairs(o.protocols) do
        if p == offered then protocol = p break end
      end
      if protocol then break end
    end
  end
  local s, err = upgrade()
  if not s then return nil, err end
  local head = {"HTTP/1.1 101 Switching Protocols\r\n",
                "Upgrade: websocket\r\nConnection: Upgrade\r\n",
                "Sec-WebSocket-Accept: ", accept_key(key), "\r\n"}
  if protocol then
    head[#head + 1] = "Sec-WebSocket-Protocol: " .. protocol .. "\r\n"
  end
  head[#head + 1] = "Date: " .. C.date() .. "\r\n\r\n"
  local ok, werr = s:write(table.concat(head))
  if not ok then return nil, werr end
  return new(s, false, o, protocol)
end

-- The client side: connects to URL parts u and upgrades.  env: what
-- http.lua lends (its parser, target encoding, connect(host, port,
-- secure, timeout) for TCP or TLS).
function websocket.connect(u, opts, env)
  local o = options(opts, 2, "websocket", 4)
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or
                         timeout < 0) then
    argerr(2, "websocket", "opts.timeout must be a non-negative number", 4)
  end
  timeout = timeout or 30
  if opts.headers ~= nil and type(opts.headers) ~= "table" then
    argerr(2, "websocket", "opts.headers must be a table", 4)
  end
  local secure = u.scheme == "wss" or u.scheme == "https"
  if not secure and u.scheme ~= "ws" and u.scheme ~= "http" then
    return nil, new_error("unsupported", ("%s URLs are not WebSocket URLs")
                                         :format(u.scheme))
  end
  local deadline = now() + timeout
  local function left() return math.max(0, deadline - now()) end
  local s, err = env.connect(u.host, u.port or (secure and 443 or 80), secure,
                             left())
  if not s then return nil, err end
  local guard <close> = setmetatable({s = s}, {__close = function(g)
    if g.s then g.s:close() end
  end})
  local key = C._ws_key()
  local host = u.host:find(":", 1, true) and ("[" .. u.host .. "]") or u.host
  local t = {"GET ", env.target_of(u), " HTTP/1.1\r\n",
             "Host: ", host, u.port and (":" .. u.port) or "", "\r\n",
             "Upgrade: websocket\r\nConnection: Upgrade\r\n",
             "Sec-WebSocket-Key: ", key, "\r\nSec-WebSocket-Version: 13\r\n",
             "User-Agent: ", env.user_agent, "\r\n"}
  if o.protocols and #o.protocols > 0 then
    t[#t + 1] = "Sec-WebSocket-Protocol: " .. table.concat(o.protocols, ", ")
                .. "\r\n"
  end
  for k, v in pairs(opts.headers or {}) do
    if type(k) ~= "string" or not k:match("^[%w!#%$%%&'%*%+%-%.%^_`|~]+$") or
       tostring(v):find("[\r\n%z]") then
      argerr(2, "websocket", ("invalid header %q"):format(tostring(k)), 4)
    end
    t[#t + 1] = k .. ": " .. tostring(v) .. "\r\n"
  end
  t[#t + 1] = "\r\n"
  local ok, werr = s:write(table.concat(t), left())
  if not ok then return nil, werr end
  local p = env.parser("response")
  local msg
  while not msg do
    local data, rerr = s:read(nil, left())
    if not data then
      return nil, rerr or new_error("io", "websocket: connection closed " ..
                                          "before the handshake's answer")
    end
    local st, used = p:feed(data)
    if not st then return nil, used end
    if st == "done" then
      msg = p:message()
      if used < #data then s:unread(data:sub(used + 1)) end
    end
  end
  local h = msg.headers
  if msg.status ~= 101 then
    local e = new_error("http", ("websocket: the server answered %d %s")
                                :format(msg.status, msg.reason))
    e.status = msg.status
    return nil, e
  end
  if not has_token(h.upgrade, "websocket") or
     not has_token(h.connection, "upgrade") or
     h["sec-websocket-accept"] ~= accept_key(key) then
    return nil, new_error("http", "websocket: the server's handshake is " ..
                                  "not valid (Upgrade, Connection or " ..
                                  "Sec-WebSocket-Accept)")
  end
  local protocol = h["sec-websocket-protocol"]
  if protocol and not (o.protocols and has_token(table.concat(o.protocols,
                                                              ","), protocol:lower()))
  then
    return nil, new_error("http", "websocket: the server chose a " ..
                                  "subprotocol that was not offered")
  end
  guard.s = nil
  return new(s, true, o, protocol)
end

websocket.WebSocket = WS
return websocket
