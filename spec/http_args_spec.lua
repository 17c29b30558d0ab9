-- Issue 12 item 8 for HTTP: every public function and method of
-- casync.http (client, server, sessions, responses, requests, WebSocket)
-- called with wrong types, nil, NaN, huge and negative numbers, a wrong
-- self, and from outside a task, raises an error that names the function
-- and the argument as the C core's do, never an error from inside casync
-- ("attempt to index a number value") and never a crash.
local casync = require "casync"
local http = casync.http

local errmsg = helper.errmsg

local NAN = 0 / 0
local BAD = {NAN, math.huge, -math.huge, -1, math.maxinteger, math.mininteger, 0.5,
             "x", "", {}, true, false, print, 42}

local function is_clean(msg)
  -- no error from the inside of casync's Lua code, no runtime error
  return not msg:find("attempt to", 1, true) and not msg:find("casync/[%w_]+%.lua:%d")
end

-- Calls fn(...) protected; when it raises, the message must be a
-- checked-argument error (or one of `also`).  Returns ok, message.
local function try(fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then
    local msg = tostring(err)
    assert(is_clean(msg), "not an argument error: " .. msg)
    return false, msg
  end
  return true
end

local function url_of(srv) return srv:url("/") end

describe("casync.http checks its arguments", function()
  it("names the function and the argument, as the C core does", async(function()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function() return "ok" end))
    local u = url_of(srv)
    assert.matches("bad argument #2 to 'casync.http.post' %(string, function or table " ..
                   "expected, got number%)", errmsg(http.post, u, 42))
    assert.matches("bad argument #1 to 'casync.http.get' %(string expected, got number%)",
                   errmsg(http.get, 42))
    assert.matches("bad argument #2 to 'casync.http.get' %(opts.timeout must be a " ..
                   "non%-negative number%)", errmsg(http.get, u, {timeout = NAN}))
    assert.matches("bad argument #2 to 'casync.http.get' %(opts.timeout", errmsg(http.get, u,
                   {timeout = -1}))
    assert.matches("bad argument #1 to 'casync.http.request' %(invalid method",
                   errmsg(http.request, {url = u, method = 42}))
    assert.matches("opts.max_body_size must be an integer", errmsg(http.get, u,
                   {max_body_size = 2 ^ 40}))
    assert.matches("opts.max_body_size must be an integer", errmsg(http.get, u,
                   {max_body_size = -5}))
    assert.matches("opts.headers must be a table", errmsg(http.get, u, {headers = 5}))
    assert.matches("header \"X\" has a boolean value", errmsg(http.get, u,
                   {headers = {X = true}}))
    assert.matches("opts.max_redirects must be an integer", errmsg(http.get, u,
                   {max_redirects = math.huge}))
    assert.matches("bad argument #1 to 'casync.http.session' %(table expected, got string%)",
                   errmsg(http.session, "abc"))
    assert.matches("bad argument #1 to 'casync.http.unescape' %(string expected, got no value%)",
                   errmsg(http.unescape))
    assert.matches("bad argument #1 to 'casync.http.parse_query' %(string expected, got number%)",
                   errmsg(http.parse_query, 42))
    assert.matches("bad argument #1 to 'casync.http.encode_query' %(table expected",
                   errmsg(http.encode_query, "a=1"))
    assert.matches("bad argument #1 to 'casync.http.json_decode' %(string expected",
                   errmsg(http.json_decode, 42))
    -- sessions: a wrong self, a wrong argument
    local s <close> = http.session{base_url = u}
    assert.matches("casync.HttpSession expected, got string", errmsg(s.get, "x"))
    assert.matches("calling 'get' on bad self %(casync.HttpSession expected, got table%)",
                   select(2, pcall(function() local x = {get = s.get} local y = x:get("y") return y end)))
    assert.matches("bad argument #1 to 'get' %(string expected, got number%)",
                   select(2, pcall(function() local y = s:get(42) return y end)))
    assert.matches("bad argument #2 to 'get' %(opts.timeout", select(2, pcall(function()
      local y = s:get("/", {timeout = NAN})
      return y
    end)))
    assert.matches("bad argument #1 to 'request' %(table expected, got no value%)",
                   select(2, pcall(function() local y = s:request(nil) return y end)))
    -- a response
    local r = assert(http.get(u))
    assert.matches("casync.HttpResponse expected", errmsg(r.json, 42))
    -- the server's own (C)
    assert.matches("bad argument #3 to 'casync.http.serve' %(function expected",
                   errmsg(http.serve, "127.0.0.1", 0, 42))
    assert.matches("opts.write_timeout must be a number", errmsg(http.serve, "127.0.0.1", 0,
                   print, {write_timeout = NAN}))
    assert.matches("bad argument #1 to 'casync.http.reason'", errmsg(http.reason, "x"))
    http.close_idle()
  end))

  it("refuses waiting calls outside a task with the core's message", function()
    for name, call in pairs{
      get = function() return http.get("http://127.0.0.1:1/") end,
      post = function() return http.post("http://127.0.0.1:1/", "x") end,
      request = function() return http.request{url = "http://127.0.0.1:1/"} end,
      websocket = function() return http.websocket("ws://127.0.0.1:1/") end,
      session = function() return http.session():get("http://127.0.0.1:1/") end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches(": must be called inside a task", tostring(err), nil, false)
      assert.is_true(is_clean(tostring(err)), name .. ": " .. tostring(err))
    end
  end)

  it("sweeps every function and option with wrong values: only argument errors",
     async(function()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function(req)
      if req.path == "/ws" then
        local ws = req:websocket()
        if ws then while ws:recv() do end end
        return
      end
      return "ok"
    end))
    local u = url_of(srv)
    local wsu = (u:gsub("^http", "ws")) .. "ws"
    local calls = {
      {"request", http.request, {{url = u}}},
      {"get", http.get, {u, {}}},
      {"post", http.post, {u, "b", {}}},
      {"session", http.session, {{}}},
      {"unescape", http.unescape, {"a%41"}},
      {"escape", http.escape, {"a b"}},
      {"parse_query", http.parse_query, {"a=1"}},
      {"encode_query", http.encode_query, {{a = 1}}},
      {"json_decode", http.json_decode, {"[1]"}},
      {"parse_url", http.parse_url, {u}},
      {"resolve", http.resolve, {u, "x"}},
      {"reason", http.reason, {404}},
      {"websocket", http.websocket, {wsu, {}}},
    }
    local opts_fields = {
      request = {"timeout", "method", "max_body_size", "headers", "max_redirects",
                 "query", "body", "keep_alive", "retry", "url"},
      get = {"timeout", "method", "max_body_size", "headers", "max_redirects", "query",
             "keep_alive", "retry"},
      post = {"timeout", "max_body_size", "headers", "json", "body"},
      session = {"base_url", "headers", "timeout", "max_idle", "idle_timeout"},
      websocket = {"timeout", "headers", "max_message_size", "ping_interval",
                   "ping_timeout", "close_timeout", "fragment_size", "protocols"},
    }
    local n = 0
    for _, c in ipairs(calls) do
      local name, fn, args = c[1], c[2], c[3]
      for i = 1, #args + 1 do
        for _, bad in ipairs(BAD) do
          local a = table.move(args, 1, #args, 1, {})
          a[i] = bad
          local ok, res = pcall(fn, table.unpack(a, 1, math.max(#args, i)))
          if not ok then assert(is_clean(tostring(res)), name .. " #" .. i .. ": " .. tostring(res)) end
          if ok and type(res) == "table" and getmetatable(res) and res.close then
            pcall(res.close, res)
          end
          n = n + 1
        end
        -- nil in the middle
        local a = table.move(args, 1, #args, 1, {})
        a[i] = nil
        local ok, res = pcall(fn, table.unpack(a, 1, #args))
        if not ok then assert(is_clean(tostring(res)), name .. " nil #" .. i .. ": " .. tostring(res)) end
      end
      for _, field in ipairs(opts_fields[name] or {}) do
        local oi = name == "request" and 1 or name == "session" and 1 or #args
        for _, bad in ipairs(BAD) do
          local a = table.move(args, 1, #args, 1, {})
          local o = {}
          for k, v in pairs(a[oi]) do o[k] = v end
          o[field] = bad
          a[oi] = o
          local ok, res = pcall(fn, table.unpack(a, 1, #args))
          if not ok then
            assert(is_clean(tostring(res)), name .. " opts." .. field .. ": " .. tostring(res))
            assert.matches("bad argument #%d+ to", tostring(res), nil, false)
          elseif type(res) == "table" and res.close then
            pcall(res.close, res)
          end
          n = n + 1
        end
      end
    end
    -- methods with a wrong self and wrong arguments
    local s = http.session()
    local r = assert(http.get(u))
    local ws = assert(http.websocket(wsu))
    local methods = {
      {s, {"request", "get", "post", "close"}, {u, {}}},
      {r, {"json"}, {}},
      {ws, {"send", "ping", "closed"}, {"x"}}, -- recv waits: below
      {srv, {"closed", "address", "port", "url", "connections", "stats"}, {"/"}},
    }
    for _, m in ipairs(methods) do
      local obj = m[1]
      for _, name in ipairs(m[2]) do
        local f = obj[name]
        for _, bad in ipairs(BAD) do
          local ok, res = pcall(f, bad, table.unpack(m[3]))
          if not ok then assert(is_clean(tostring(res)), name .. " self: " .. tostring(res)) end
          for i = 1, #m[3] + 1 do
            local a = {table.unpack(m[3])}
            a[i] = bad
            ok, res = pcall(f, obj, table.unpack(a, 1, math.max(#m[3], i)))
            if not ok then
              assert(is_clean(tostring(res)), name .. " #" .. i .. ": " .. tostring(res))
            end
          end
          n = n + 1
        end
      end
    end
    assert.matches("bad argument #1 to 'recv' %(timeout must be a number%)",
                   select(2, pcall(function() local m = ws:recv(NAN) return m end)))
    assert.matches("calling 'recv' on bad self", select(2, pcall(function()
      local x = {recv = ws.recv}
      local m = x:recv()
      return m
    end)))
    assert.equal("timeout", select(2, ws:recv(-1)).kind)
    assert.matches("bad argument", errmsg(ws.close, ws, 999))
    assert.matches("bad argument", errmsg(ws.close, ws, 1000, ("r"):rep(200)))
    assert.matches("not UTF%-8", errmsg(ws.send, ws, "\xff"))
    ws:close()
    s:close()
    http.close_idle()
    srv:close{cancel = true} -- the WebSocket handlers the sweep opened
    casync.sleep(0.05)
    assert.is_true(n > 500)
  end, 60))
end)
