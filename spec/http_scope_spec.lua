-- http_scope.c and the client's side of it (lua/casync/http.lua): each
-- request of http.serve runs in a cancel scope that the client's leaving
-- and opts.request_timeout cancel; request ids in the context,
-- forwarded by the client; what an HTTP client task says it does.
local casync = require "casync"
local http = casync.http

local errmsg = helper.errmsg

-- Like async; afterwards nothing of HTTP is left open.
local function hasync(fn, timeout)
  return async(function()
    fn()
    http.close_idle()
    casync.sleep(0.005)
    local st = casync.stream._stats()
    assert(st.open == 0, "streams left open: " .. st.open)
    assert(st.pins == 0, "anchors left pinned: " .. st.pins)
    local hs = http._stats()
    assert(hs.blocks == 0, "http blocks not freed: " .. hs.blocks)
  end, timeout or 20)
end

local function serve(handler, opts)
  return assert(http.serve("127.0.0.1", 0, handler, opts))
end

-- waits (at most 3 s) until pred() holds
local function eventually(pred, what)
  local t0 = casync.now()
  while not pred() do
    assert(casync.now() - t0 < 3, "never happened: " .. what)
    casync.sleep(0.01)
  end
end

-- everything the server sends on a raw connection after `request` until it
-- closes; `shut`: end our side of the stream after the request
local function raw(port, request, shut)
  local s <close> = assert(casync.tcp.connect("127.0.0.1", port))
  assert(s:write(request))
  if shut then assert(s:shutdown()) end
  local got = {}
  while true do
    local data = s:read(65536, 3)
    if not data then break end
    got[#got + 1] = data
  end
  return table.concat(got)
end

describe("a request's scope", function()
  it("is cancelled when the client leaves: the handler, the scope it opened " ..
     "and that scope's tasks unwind, and no failure is reported", hasync(function()
    local log = {}
    local srv = serve(function()
      local _ <close> = setmetatable({}, {__close = function(_, err)
        log.handler = err and err.kind or "no error"
      end})
      casync.scope(function(s)
        s:spawn(function()
          local _ <close> = setmetatable({}, {__close = function(_, err)
            log.child = err and err.kind or "no error"
          end})
          casync.sleep(10)
        end)
        casync.sleep(10)
      end)
      return "never"
    end)
    local s = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(s:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    casync.sleep(0.05)
    s:close()
    eventually(function() return log.handler and log.child end, "unwinding")
    assert.equal("cancelled", log.handler)
    assert.equal("cancelled", log.child)
    eventually(function() return srv:connections() == 0 end, "the close")
    srv:close()
  end))

  it("stays cancelled: a handler that swallows the cancellation is " ..
     "cancelled again at its next wait", hasync(function()
    local kinds = {}
    local srv = serve(function()
      for _ = 1, 3 do
        local _, err = pcall(casync.sleep, 10)
        kinds[#kinds + 1] = err.kind
      end
      return "late"
    end)
    local s = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(s:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    casync.sleep(0.05)
    s:close()
    eventually(function() return #kinds == 3 end, "three cancellations")
    assert.same({"cancelled", "cancelled", "cancelled"}, kinds)
    srv:close()
  end))

  it("answers pipelined requests sent before the client's end of stream", hasync(function()
    local srv = serve(function(req)
      casync.sleep(0.05)
      return "answer " .. req.path
    end)
    local out = raw(srv:port(), "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" ..
                                "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n", true)
    assert.matches("answer /1.*answer /2", out)
    srv:close()
  end))

  it("is cancelled when one request is followed by the end of the " ..
     "client's stream, as Go's server does", hasync(function()
    local cancelled = false
    local srv = serve(function()
      local ok = pcall(casync.sleep, 10)
      cancelled = not ok
      return "never"
    end)
    local out = raw(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)
    assert.equal("", out)
    assert.is_true(cancelled)
    srv:close()
  end))

  it("a client that stays while another leaves is answered", hasync(function()
    local srv = serve(function(req)
      casync.sleep(0.1)
      return "done " .. req.path
    end)
    local leaver = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(leaver:write("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
    local t = casync.spawn(http.get, srv:url("/b"))
    casync.sleep(0.02)
    leaver:close()
    local r = assert(t:wait())
    assert.equal("done /b", r.body)
    srv:close()
  end))
end)

describe("opts.request_timeout", function()
  it("answers 503 when the deadline passes before the answer, and cancels " ..
     "the handler", hasync(function()
    local unwound
    local srv = serve(function(req)
      if req.path == "/fast" then return "fast" end
      local _ <close> = setmetatable({}, {__close = function(_, err)
        unwound = err and err.kind
      end})
      casync.sleep(5)
      return "slow"
    end, {request_timeout = 0.2})
    local t0 = casync.now()
    local r = assert(http.get(srv:url("/slow")))
    local took = casync.now() - t0
    assert.equal(503, r.status)
    assert.is_string(r.headers.date)
    assert.equal("close", r.headers.connection)
    assert.is_true(took >= 0.19 and took < 2, "took " .. took)
    assert.equal("cancelled", unwound)
    assert.equal("fast", assert(http.get(srv:url("/fast"))).body)
    srv:close()
  end))

  it("a handler that catches the deadline and answers still gets 503", hasync(function()
    local srv = serve(function()
      pcall(casync.sleep, 5)
      return "I am late"
    end, {request_timeout = 0.1})
    local r = assert(http.get(srv:url("/")))
    assert.equal(503, r.status)
    srv:close()
  end))

  it("covers the answer too: a body still streaming at the deadline is " ..
     "cut and the connection closed", hasync(function()
    local srv = serve(function()
      local n = 0
      return {body = function()
        n = n + 1
        if n > 1 then casync.sleep(0.1) end
        if n > 50 then return nil end
        return "chunk\n"
      end}
    end, {request_timeout = 0.3})
    local out = raw(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.matches("^HTTP/1.1 200", out)
    assert.matches("chunk", out)
    assert.is_nil(out:find("\r\n0\r\n\r\n", 1, true)) -- no last chunk
    srv:close()
  end))

  it("nests with the handler's own deadlines: the nearer one wins", hasync(function()
    local srv = serve(function()
      local ok = casync.move_on_after(0.05, casync.sleep, 5)
      return ok and "slept" or "moved on"
    end, {request_timeout = 2})
    assert.equal("moved on", assert(http.get(srv:url("/"))).body)
    srv:close()
  end))

  it("is checked", function()
    local h = function() end
    for _, v in ipairs({"soon", 0 / 0, {}, true}) do
      local err = errmsg(http.serve, "127.0.0.1", 0, h, {request_timeout = v})
      assert.matches("bad argument #4 to", err, 1, true)
      assert.matches("opts.request_timeout must be a number", err, 1, true)
    end
  end)
end)

describe("request ids", function()
  it("each request has one in its task's context, which the tasks it " ..
     "spawns inherit and task:info shows", hasync(function()
    local seen = {}
    local srv = serve(function()
      local child = casync.spawn(function() return casync.context.get("request_id") end)
      local info = casync.current():info().context.request_id
      seen[#seen + 1] = {child:wait(), casync.context.get("request_id"), info}
      return "ok"
    end)
    for _ = 1, 3 do assert(http.get(srv:url("/"))) end
    local prefix
    for i, s in ipairs(seen) do
      local p, n = s[1]:match("^(%x%x%x%x%x%x%x%x)%-(%d+)$")
      assert.is_string(p, "id " .. s[1])
      prefix = prefix or p
      assert.equal(prefix, p)
      assert.equal(i, tonumber(n))
      assert.equal(s[1], s[2])
      assert.equal(s[1], s[3])
    end
    srv:close()
  end))

  it("takes the client's X-Request-Id when it is a plain token", hasync(function()
    local srv = serve(function() return casync.context.get("request_id") end)
    local function id(v)
      return assert(http.get(srv:url("/"), {headers = {["X-Request-Id"] = v}})).body
    end
    assert.equal("abc-123_x.y:z", id("abc-123_x.y:z"))
    assert.not_equal("two words", id("two words"))
    assert.not_equal(("x"):rep(200), id(("x"):rep(200)))
    assert.matches("^%x+%-%d+$", id("<script>"))
    srv:close()
  end))

  it("is forwarded by the HTTP client inside a handler, unless told not to", hasync(function()
    local back = serve(function(req) return req.headers["x-request-id"] or "none" end)
    local front = serve(function()
      local fwd = assert(http.get(back:url("/"))).body
      local kept = assert(http.get(back:url("/"), {forward_request_id = false})).body
      local own = assert(http.get(back:url("/"), {headers = {["X-Request-Id"] = "mine"}})).body
      return table.concat({casync.context.get("request_id"), fwd, kept, own}, " ")
    end)
    local id, fwd, kept, own = assert(http.get(front:url("/"))).body:match("(%S+) (%S+) (%S+) (%S+)")
    assert.equal(id, fwd)
    assert.equal("none", kept)
    assert.equal("mine", own)
    -- outside a handler there is none; a context value that is no token is
    -- not sent
    assert.equal("none", assert(http.get(back:url("/"))).body)
    casync.context.with({request_id = "evil\r\nX-Injected: 1"}, function()
      assert.equal("none", assert(http.get(back:url("/"))).body)
    end)
    front:close()
    back:close()
  end))
end)

describe("an HTTP client task", function()
  it("says which request it makes in task:info and casync.dump", hasync(function()
    local release = casync.event()
    local srv = serve(function() release:wait() return "ok" end)
    local url = srv:url("/users")
    local t = casync.spawn(http.get, url)
    eventually(function() return t:info().waiting_on end, "the wait")
    assert.matches("http GET " .. url, t:info().waiting_on, 1, true)
    local path = os.tmpname()
    assert.matches("http GET " .. url, casync.dump(path), 1, true)
    os.remove(path)
    release:set()
    assert(t:wait())
    -- once done, it says nothing of it
    assert.is_nil(casync.current():info().waiting_on)
    srv:close()
  end))

  it("records a span for each request while tracing", hasync(function()
    local srv = serve(function() casync.sleep(0.02) return "ok" end)
    casync.trace{}
    assert(http.get(srv:url("/a")))
    local rec = casync.trace(false)
    local spans = {}
    for _, e in ipairs(rec.events) do
      if e.kind == "http" then spans[#spans + 1] = e end
    end
    assert.equal(1, #spans)
    assert.equal("GET " .. srv:url("/a"), spans[1].name)
    assert.is_true(spans[1].dur >= 0.015, "dur " .. spans[1].dur)
    assert.equal(casync.current():id(), spans[1].task)
    srv:close()
  end))

  it("is cancelled, not failed, by an enclosing deadline, wherever it is", hasync(function()
    local srv = serve(function(req)
      if req.path == "/slow-head" then casync.sleep(2) return "x" end
      local n = 0
      return {body = function()
        n = n + 1
        if n > 1 then casync.sleep(0.2) end
        return n < 20 and "drip\n" or nil
      end}
    end)
    for _, path in ipairs({"/slow-head", "/slow-body"}) do
      local t0 = casync.now()
      local ok, err = pcall(function()
        local _ <close> = casync.timeout(0.3)
        return http.get(srv:url(path))
      end)
      assert.is_false(ok, path)
      assert.equal("timeout", err.kind, path)
      assert.is_true(casync.now() - t0 < 1.5, path)
    end
    -- the server finds the client gone at its next chunk
    eventually(function() return srv:connections() == 0 end, "the close")
    srv:close()
  end))
end)
