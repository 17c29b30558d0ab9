-- http.c, http_server.c, http_parse.c, lua/casync/http.lua: the HTTP/1.1
-- server and client against each other on loopback (port 0): GET, POST,
-- JSON, chunked bodies both ways, keep-alive reuse, redirects, errors and
-- timeouts; each limit's status (400, 408, 413, 414, 431, 503); peers that
-- vanish mid-request and mid-response; malformed and random bytes.
local casync = require "casync"
local http = casync.http

local errmsg = helper.errmsg

-- Like async; afterwards the client's pool is empty and no stream, server
-- or HTTP block is left.
local function hasync(fn, timeout)
  return async(function()
    fn()
    http.close_idle()
    casync.sleep(0.005) -- let libuv run the close callbacks
    local st = casync.stream._stats()
    assert(st.open == 0, "streams left open: " .. st.open)
    assert(st.pins == 0, "anchors left pinned: " .. st.pins)
    assert(st.streams == 0, "stream handles not freed: " .. st.streams)
    local hs = http._stats()
    assert(hs.blocks == 0, "http server/connection blocks not freed: " .. hs.blocks)
  end, timeout or 20)
end

-- serve(handler [, opts]) -> server on 127.0.0.1, port 0
local function serve(handler, opts)
  return assert(http.serve("127.0.0.1", 0, handler, opts))
end

-- raw(port, parts [, timeout]) -> everything the server sent until it closed
-- (or timeout seconds of silence), and the error that ended the read.
-- parts: a string, or a list of strings and numbers (pauses, in seconds).
local function raw(port, parts, timeout)
  local s <close> = assert(casync.tcp.connect("127.0.0.1", port))
  if type(parts) == "string" then parts = {parts} end
  for _, p in ipairs(parts) do
    if type(p) == "number" then casync.sleep(p)
    elseif not s:write(p) then break end
  end
  local out = {}
  local err
  while true do
    local chunk, e = s:read(nil, timeout or 3)
    if not chunk then err = e break end
    out[#out + 1] = chunk
  end
  return table.concat(out), err
end

local function status_of(resp) return tonumber(resp:match("^HTTP/1%.1 (%d%d%d)")) end

local function hello() return "Hello, World!" end

describe("http.serve and http.request", function()
  it("answers a GET; the response has status, ok, headers, body", hasync(function()
    local srv = serve(hello)
    local r = assert(http.get(srv:url("/")))
    assert.equal(200, r.status)
    assert.is_true(r.ok)
    assert.equal("OK", r.reason)
    assert.equal("Hello, World!", r.body)
    assert.equal("13", r.headers["content-length"])
    assert.equal("text/plain; charset=utf-8", r.headers["content-type"])
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", r.headers.date)
    assert.equal(srv:url("/"), r.url)
    assert.equal("casync.HttpServer (listening)", tostring(srv))
    srv:close()
    assert.equal("casync.HttpServer (closed)", tostring(srv))
    assert.is_true(srv:closed())
    srv:close()
  end))

  it("hands the handler method, target, path, query, headers, body, version", hasync(function()
    local seen
    local srv = serve(function(req)
      seen = {method = req.method, target = req.target, path = req.path,
              query = req.query, headers = req.headers, body = req.body,
              version = req.version}
      return "ok"
    end)
    local r = assert(http.request{method = "PUT", url = srv:url("/a/b?x=1&y=two%20words&z=a+b"),
                                  headers = {["X-Thing"] = "v", ["X-Multi"] = {"1", "2"}},
                                  body = "payload"})
    assert.equal(200, r.status)
    assert.equal("PUT", seen.method)
    assert.equal("/a/b?x=1&y=two%20words&z=a+b", seen.target)
    assert.equal("/a/b", seen.path)
    assert.same({x = "1", y = "two words", z = "a b"}, seen.query)
    assert.equal("v", seen.headers["x-thing"])
    assert.equal("1, 2", seen.headers["x-multi"])
    assert.equal("127.0.0.1:" .. srv:port(), seen.headers.host)
    assert.equal("7", seen.headers["content-length"])
    assert.equal("payload", seen.body)
    assert.equal("1.1", seen.version)
    -- no body: "", and an HTTP/1.0 request says so
    assert(http.get(srv:url("/x")))
    assert.equal("", seen.body)
    assert.same({}, seen.query)
    raw(srv:port(), "GET /v HTTP/1.0\r\n\r\n")
    assert.equal("1.0", seen.version)
    assert.equal("/v", seen.path)
    srv:close()
  end))

  it("POSTs JSON both ways (req:json(), {json = v}, response:json())", hasync(function()
    local srv = serve(function(req)
      local data, err = req:json()
      if not data then return {status = 400, body = tostring(err)} end
      return {status = 201, json = {got = data.n * 2, list = {1, 2, 3}}}
    end)
    local r = assert(http.post(srv:url("/"), {json = {n = 21}}))
    assert.equal(201, r.status)
    assert.equal("application/json", r.headers["content-type"])
    assert.same({got = 42, list = {1, 2, 3}}, r:json())
    local bad = assert(http.post(srv:url("/"), "{not json"))
    assert.equal(400, bad.status)
    assert.is_false(bad.ok)
    assert.matches("^json: invalid JSON", bad.body)
    local v, err = bad:json()
    assert.is_nil(v)
    assert.equal("json", err.kind)
    srv:close()
  end))

  it("sends a response table's status, reason and headers; nil is 204", hasync(function()
    local srv = serve(function(req)
      if req.path == "/none" then return nil end
      if req.path == "/teapot" then
        return {status = 409, headers = {["X-A"] = "1", ["Set-Cookie"] = {"a=1", "b=2"},
                                         ["Content-Type"] = "text/html"},
                body = "<p>short and stout</p>"}
      end
      return {status = 299, body = "odd"}
    end)
    local r = assert(http.get(srv:url("/teapot")))
    assert.equal(409, r.status)
    assert.equal("Conflict", r.reason)
    assert.is_false(r.ok)
    assert.equal("1", r.headers["x-a"])
    assert.same({"a=1", "b=2"}, r.headers["set-cookie"]) -- kept apart (RFC 9110 5.3)
    assert.equal("text/html", r.headers["content-type"])
    assert.equal("<p>short and stout</p>", r.body)
    r = assert(http.get(srv:url("/none")))
    assert.equal(204, r.status)
    assert.equal("", r.body)
    assert.is_nil(r.headers["content-length"])
    r = assert(http.get(srv:url("/x")))
    assert.equal(299, r.status)
    assert.equal("Unknown", r.reason)
    srv:close()
  end))

  it("answers HEAD with the headers of a GET and no body", hasync(function()
    local srv = serve(hello)
    local r = assert(http.request{method = "HEAD", url = srv:url("/")})
    assert.equal(200, r.status)
    assert.equal("13", r.headers["content-length"])
    assert.equal("", r.body)
    -- the connection is still in step: a GET on it works
    r = assert(http.get(srv:url("/")))
    assert.equal("Hello, World!", r.body)
    assert.equal(1, srv:stats().accepted)
    srv:close()
  end))

  it("streams a body from an iterator as chunks, suspending between them", hasync(function()
    local srv = serve(function()
      local i = 0
      return {body = function()
        i = i + 1
        if i > 5 then return nil end
        casync.sleep(0.01)
        return ("chunk %d\n"):format(i)
      end}
    end)
    local t0 = casync.now()
    local r = assert(http.get(srv:url("/")))
    assert.is_true(casync.now() - t0 >= 0.05)
    assert.equal("chunked", r.headers["transfer-encoding"])
    assert.equal("chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n", r.body)
    local raw_resp = raw(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.matches("\r\n\r\n8\r\nchunk 1\n\r\n", raw_resp, 1, true)
    assert.matches("0\r\n\r\n$", raw_resp)
    srv:close()
  end))

  it("takes a chunked request body from a client iterator", hasync(function()
    local srv = serve(function(req)
      return req.headers["transfer-encoding"] .. ":" .. req.body
    end)
    local parts = {"a", "bb", "", "ccc"}
    local i = 0
    local r = assert(http.post(srv:url("/"), function()
      i = i + 1
      return parts[i]
    end))
    assert.equal("chunked:abbccc", r.body)
    srv:close()
  end))

  it("reuses keep-alive connections, and retries once on a stale one", hasync(function()
    local srv = serve(hello, {keep_alive_timeout = 0.1})
    for _ = 1, 20 do assert.equal("Hello, World!", assert(http.get(srv:url("/"))).body) end
    assert.equal(1, srv:stats().accepted)
    assert.equal(20, srv:stats().requests)
    -- the server closes the idle connection after 0.1 s; the pool does not
    -- know yet, and the GET goes through on a new one
    casync.sleep(0.25)
    assert.equal(0, srv:connections())
    assert.equal("Hello, World!", assert(http.get(srv:url("/"))).body)
    assert.equal(2, srv:stats().accepted)
    srv:close()
  end))

  it("runs handlers concurrently: 200 requests waiting 0.1 s take ~0.1 s", hasync(function()
    local srv = serve(function(req)
      casync.sleep(0.1)
      return req.query.i
    end)
    local fns = {}
    for i = 1, 200 do
      fns[i] = function() return assert(http.get(srv:url("/?i=" .. i))).body end
    end
    local t0 = casync.now()
    local bodies = casync.gather(fns)
    local took = casync.now() - t0
    for i = 1, 200 do assert.equal(tostring(i), bodies[i]) end
    assert.is_true(took >= 0.1 and took < 0.6, "took " .. took)
    srv:close()
  end))

  it("follows redirects (max_redirects), 303 turning a POST into a GET", hasync(function()
    local srv = serve(function(req)
      if req.path == "/old" then return {status = 301, headers = {Location = "/new"}} end
      if req.path == "/see" then return {status = 303, headers = {Location = "new?from=see"}} end
      if req.path == "/loop" then return {status = 302, headers = {Location = "/loop"}} end
      return req.method .. " " .. req.target .. " " .. #req.body
    end)
    local r = assert(http.get(srv:url("/old")))
    assert.equal(200, r.status)
    assert.equal("GET /new 0", r.body)
    assert.equal(srv:url("/new"), r.url)
    assert.equal(1, r.redirects)
    r = assert(http.post(srv:url("/see"), "data"))
    assert.equal("GET /new?from=see 0", r.body)
    r = assert(http.get(srv:url("/old"), {max_redirects = 0}))
    assert.equal(301, r.status)
    assert.equal("/new", r.headers.location)
    r = assert(http.get(srv:url("/loop"), {max_redirects = 3}))
    assert.equal(302, r.status)
    assert.equal(3, r.redirects)
    srv:close()
  end))

  it("a session has a base URL, default headers, its own pool; <close> closes it", hasync(function()
    local srv = serve(function(req) return {json = {path = req.path, auth = req.headers.authorization}} end)
    do
      local s <close> = http.session{base_url = srv:url("/api/"), headers = {Authorization = "t"}}
      local bodies = casync.gather(function() return assert(s:get("users")):json() end,
                                   function() return assert(s:get("/posts")):json() end)
      assert.same({path = "/api/users", auth = "t"}, bodies)
      assert.same({path = "/api/posts", auth = "t"},
                  assert(s:request{url = "posts", headers = {}}):json())
    end
    assert.equal(0, http.close_idle()) -- the session's pool, not the default one
    srv:close()
  end))

  it("answers pipelined requests in order", hasync(function()
    local srv = serve(function(req)
      if req.path == "/slow" then casync.sleep(0.05) end
      return req.path
    end)
    local out = raw(srv:port(), "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" ..
                                "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n" ..
                                "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local a = out:find("/slow", 1, true)
    local b = out:find("/fast", 1, true)
    local c = out:find("/last", 1, true)
    assert.is_true(a and b and c and a < b and b < c, out)
    assert.equal(3, select(2, out:gsub("HTTP/1%.1 200", "")))
    srv:close()
  end))

  it("joins repeated request headers (cookies with '; '), in short heads and long ones, request after request", hasync(function()
    local srv = serve(function(req)
      local h = req.headers
      return table.concat({h["x-a"], h.cookie, h.host, tostring(h["x-none"]), h["x-b"]}, "|")
    end)
    local short = "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nCookie: a=1\r\nX-A: 2\r\n" ..
                  "Cookie: b=2\r\nX-B: only\r\n\r\n"
    local fill = {}
    for i = 1, 20 do fill[#fill + 1] = ("X-F%d: %d\r\n"):format(i, i) end
    local long = "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n" .. table.concat(fill) ..
                 "Cookie: a=1\r\nX-A: 2\r\nCookie: b=2\r\nX-B: only\r\nConnection: close\r\n\r\n"
    -- three on one connection: the server has seen the names by the second
    local out = raw(srv:port(), short .. short .. long)
    assert.equal(3, select(2, out:gsub("HTTP/1%.1 200", "")), out)
    assert.equal(3, select(2, out:gsub("\r\n\r\n1, 2|a=1; b=2|x|nil|only", "")), out)
    srv:close()
  end))

  it("sends 100 Continue to Expect: 100-continue, and HTTP/1.0 gets its own rules", hasync(function()
    local srv = serve(function(req)
      if req.path == "/stream" then
        local n = 0
        return {body = function() n = n + 1; if n <= 2 then return "x" end end}
      end
      return req.body
    end)
    local out = raw(srv:port(), {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" ..
                                 "Expect: 100-continue\r\nConnection: close\r\n\r\n", 0.05, "hello"})
    assert.matches("^HTTP/1%.1 100 Continue\r\n\r\nHTTP/1%.1 200 OK\r\n", out)
    assert.matches("\r\n\r\nhello$", out)
    -- 1.0 without keep-alive: closed after the answer
    out = raw(srv:port(), "GET / HTTP/1.0\r\n\r\n")
    assert.matches("^HTTP/1%.1 200 OK\r\n", out)
    assert.matches("Connection: close\r\n", out, 1, true)
    -- 1.0 streaming: no chunked encoding, the end of the body is the close
    out = raw(srv:port(), "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert.matches("\r\n\r\nxx$", out)
    assert.is_nil(out:find("chunked", 1, true))
    srv:close()
  end))

  it("returns errors: refused, timeout, unsupported scheme", hasync(function()
    local srv = serve(function() casync.sleep(1); return "late" end)
    local port = srv:port()
    local t0 = casync.now()
    local r, err = http.get(srv:url("/"), {timeout = 0.1})
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.equal("timeout: GET " .. srv:url("/") .. ": timed out after 0.1 s", tostring(err))
    assert.equal(srv:url("/"), err.url)
    assert.is_true(casync.now() - t0 < 0.5)
    srv:close{cancel = true}
    casync.sleep(0.01)
    r, err = http.get(("http://127.0.0.1:%d/"):format(port))
    assert.is_nil(r)
    assert.equal("io", err.kind)
    assert.equal("ECONNREFUSED", err.code)
    -- the request, then the address the connect failed on
    assert.equal(("io: GET http://127.0.0.1:%d/: connect 127.0.0.1:%d: connection refused")
                 :format(port, port), tostring(err))
    r, err = http.get("ftp://example.com/")
    assert.is_nil(r)
    assert.equal("unsupported", err.kind)
  end))

  it("reads a body that runs to the end of the stream; misbehaving servers give errors",
     hasync(function()
    -- raw TCP servers, each answering the first request in its own way
    local function raw_server(answer)
      return assert(casync.tcp.listen("127.0.0.1", 0, function(s)
        s:read_until("\r\n\r\n")
        if answer == "hang" then casync.sleep(5) return end
        if answer ~= "" then s:write(answer) end
      end))
    end
    local function get(answer, opts)
      local srv = raw_server(answer)
      local r, err = http.get(("http://127.0.0.1:%d/"):format(srv:port()), opts)
      srv:close{cancel = true}
      return r, err
    end
    local r = assert(get("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end"))
    assert.equal("until the end", r.body)
    assert.equal("1", r.headers["x-a"])
    local _, err = get("")
    assert.equal("io", err.kind)
    _, err = get("NOT HTTP AT ALL\r\n\r\n")
    assert.equal("http", err.kind)
    _, err = get("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    assert.equal("http", err.kind)
    assert.matches("^http: GET http://127%.0%.0%.1:%d+/: the stream ended in the middle of a message$",
                   tostring(err))
    _, err = get("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" .. ("x"):rep(100),
                 {max_body_size = 50})
    assert.equal("limit", err.kind)
    _, err = get("hang", {timeout = 0.1})
    assert.equal("timeout", err.kind)
    -- 100 Continue before the answer is skipped
    r = assert(get("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n" ..
                   "Content-Length: 2\r\n\r\nok"))
    assert.equal(201, r.status)
    assert.equal("ok", r.body)
  end))

  it("checks its arguments", hasync(function()
    assert.matches("invalid URL", errmsg(http.get, "not a url"))
    assert.matches("opts.url must be a string", errmsg(http.request, {}))
    assert.matches("table expected", errmsg(http.request, "http://x/"))
    assert.matches("invalid value for header", errmsg(http.get, "http://127.0.0.1:1/",
                                                      {headers = {X = "a\r\nInjected: 1"}}))
    assert.matches("invalid header name", errmsg(http.get, "http://127.0.0.1:1/",
                                                 {headers = {["Bad Name"] = "x"}}))
    assert.matches("bad argument #3 to 'casync.http.serve' %(function expected",
                   errmsg(http.serve, "127.0.0.1", 0, 42))
    assert.matches("bad argument #2", errmsg(http.serve, "127.0.0.1", 70000, hello))
    assert.matches("max_body_size", errmsg(http.serve, "127.0.0.1", 0, hello, {max_body_size = 0}))
    local srv = serve(hello)
    local other, err = http.serve("127.0.0.1", srv:port(), hello)
    assert.is_nil(other)
    assert.equal("EADDRINUSE", err.code)
    srv:close()
    assert.matches("closed server", errmsg(srv.port, srv))
  end))
end)

describe("http.serve limits", function()
  it("answers malformed requests with 400 and closes", hasync(function()
    local srv = serve(hello)
    for _, bad in ipairs{
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
      "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
      "\0\1\2\3\r\n\r\n",
    } do
      local out = raw(srv:port(), bad)
      assert.equal(400, status_of(out), ("%q -> %q"):format(bad, out))
      assert.matches("Connection: close\r\n", out, 1, true)
    end
    assert.equal(505, status_of(raw(srv:port(), "GET / HTTP/2.0\r\n\r\n")))
    assert.equal("Hello, World!", assert(http.get(srv:url("/"))).body)
    srv:close()
  end))

  it("answers 431 to a header section over max_header_size or max_headers, 414 to a long URL",
     hasync(function()
    local srv = serve(hello, {max_header_size = 1024, max_headers = 10})
    local out = raw(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " .. ("a"):rep(2000) .. "\r\n\r\n")
    assert.equal(431, status_of(out))
    local many = {"GET / HTTP/1.1\r\nHost: x\r\n"}
    for i = 1, 11 do many[#many + 1] = ("X-%d: %d\r\n"):format(i, i) end
    many[#many + 1] = "\r\n"
    assert.equal(431, status_of(raw(srv:port(), table.concat(many))))
    assert.equal(414, status_of(raw(srv:port(), "GET /" .. ("p"):rep(2000) .. " HTTP/1.1\r\nHost: x\r\n\r\n")))
    -- just under the limits: fine
    local r = assert(http.get(srv:url("/" .. ("p"):rep(500)), {headers = {X = ("b"):rep(300)}}))
    assert.equal(200, r.status)
    srv:close()
  end))

  it("answers 413 to a body over max_body_size (length known, or chunked)", hasync(function()
    local srv = serve(function(req) return #req.body .. "" end, {max_body_size = 1000})
    local r = assert(http.post(srv:url("/"), ("x"):rep(1000)))
    assert.equal("1000", r.body)
    r = assert(http.post(srv:url("/"), ("x"):rep(1001)))
    assert.equal(413, r.status)
    -- a large body is not read: the answer comes before it is sent
    local out = raw(srv:port(), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
    assert.equal(413, status_of(out))
    local n = 0
    r = assert(http.post(srv:url("/"), function()
      n = n + 1
      if n <= 3 then return ("y"):rep(400) end
    end))
    assert.equal(413, r.status)
    srv:close()
  end))

  it("answers 408 to a head or body that comes too slowly (slowloris)", hasync(function()
    local srv = serve(hello, {header_timeout = 0.15, body_timeout = 0.15})
    local t0 = casync.now()
    local out = raw(srv:port(), {"GET / HTTP/1.1\r\nHost: x\r\n", 0.05, "X-A: 1\r\n", 0.05, "X-B: 2\r\n"})
    assert.equal(408, status_of(out))
    local took = casync.now() - t0
    assert.is_true(took >= 0.15 and took < 0.6, "took " .. took)
    out = raw(srv:port(), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert.equal(408, status_of(out))
    -- a connection that sends nothing is closed without an answer
    out = raw(srv:port(), {})
    assert.equal("", out)
    assert.equal(2, srv:stats().bad) -- the two 408s
    srv:close()
  end))

  it("closes idle keep-alive connections after keep_alive_timeout", hasync(function()
    local srv = serve(hello, {keep_alive_timeout = 0.1})
    local t0 = casync.now()
    local out = raw(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    local took = casync.now() - t0
    assert.equal(200, status_of(out))
    assert.is_true(took >= 0.1 and took < 0.5, "took " .. took)
    srv:close()
  end))

  it("answers 503 beyond max_connections, and serves again once below", hasync(function()
    local proceed = casync.event()
    local srv = serve(function() proceed:wait(); return "ok" end, {max_connections = 2})
    local a = casync.spawn(http.get, srv:url("/a"))
    local b = casync.spawn(http.get, srv:url("/b"))
    casync.sleep(0.05)
    assert.equal(2, srv:connections())
    local out = raw(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal(503, status_of(out))
    assert.equal(1, srv:stats().rejected)
    proceed:set()
    assert.equal("ok", a:wait().body)
    assert.equal("ok", b:wait().body)
    http.close_idle()
    casync.sleep(0.02)
    assert.equal("ok", assert(http.get(srv:url("/c"))).body)
    srv:close()
  end))
end)

describe("http.serve failures", function()
  it("closes a server left open once when the Lua state closes (its listener too)", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        _G.left_open = assert(casync.http.serve("127.0.0.1", 0, function() return "x" end))
        print(assert(casync.http.get(left_open:url("/"))).body)
      end)
    ]])
    assert.equal(0, code, err)
    assert.equal("x\n", out)
  end)

  it("answers 500 when the handler fails, and the failure is reported", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local srv = assert(casync.http.serve("127.0.0.1", 0, function(req)
          if req.path == "/bad-header" then return {headers = {["X"] = "a\nb"}} end
          if req.path == "/bad-type" then return 42 end
          error("boom in the handler")
        end))
        for _, p in ipairs{"/", "/bad-header", "/bad-type"} do
          local r = assert(casync.http.get(srv:url(p)))
          print(p, r.status, r.headers.connection)
        end
        srv:close()
        casync.http.close_idle()
      end)
      collectgarbage()
    ]])
    assert.equal(0, code, err)
    assert.matches("/\t500\tclose", out, 1, true)
    assert.matches("/bad-header\t500\tclose", out, 1, true)
    assert.matches("/bad-type\t500\tclose", out, 1, true)
    assert.matches("boom in the handler", err, 1, true)
    assert.matches("invalid header 'X'", err, 1, true)
    assert.matches("the handler returned a number", err, 1, true)
    assert.matches("stack traceback", err, 1, true)
  end)

  it("reports a handler's failure at once, naming the request, and once only", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      local reports = {}
      casync.on_unobserved(function(r) reports[#reports + 1] = r end)
      casync.run(function()
        local srv = assert(casync.http.serve("127.0.0.1", 0, function(req)
          if req.path == "/gone" then casync.sleep(10) end
          error("boom in " .. req.path)
        end))
        local r = assert(casync.http.get(srv:url("/fail?x=1")))
        -- the report was made before the 500 went out
        print(r.status, #reports, reports[1] and reports[1].message)
        print(reports[1].error, getmetatable(reports[1].task).__name,
              reports[1].traceback:match("in function <%(command line%):%d+>$") ~= nil)
        -- a handler cancelled (the server closed with cancel = true) is not a failure
        local t = casync.spawn(casync.http.get, srv:url("/gone"))
        casync.sleep(0.05)
        srv:close{cancel = true}
        pcall(t.wait, t)
        casync.http.close_idle()
      end)
      collectgarbage()
      collectgarbage()
      print(#reports)
    ]])
    assert.equal(0, code, err)
    assert.equal("", err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.matches("^500\t1\tthe HTTP handler of GET /fail%?x=1 %(task #%d+%) failed: " ..
                   "%(command line%):7: boom in /fail$", lines[1])
    assert.matches("boom in /fail\tcasync.Task\ttrue", lines[2])
    assert.equal("1", lines[3])
  end)

  it("survives peers that vanish mid-request", hasync(function()
    local srv = serve(hello)
    for _, part in ipairs{"GET / HTTP/1.1\r\nHost: x\r\nHo", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
                          "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"} do
      local s = assert(casync.tcp.connect("127.0.0.1", srv:port()))
      assert(s:write(part))
      casync.sleep(0.01)
      s:close()
    end
    casync.sleep(0.02)
    assert.equal(0, srv:connections())
    assert.equal("Hello, World!", assert(http.get(srv:url("/"))).body)
    srv:close()
  end))

  it("survives peers that vanish while the handler runs and mid-response", hasync(function()
    local ended = {}
    local srv = serve(function(req)
      if req.path == "/wait" then
        casync.sleep(0.05)
        ended.wait = true
        return ("w"):rep(100000)
      end
      -- a large streamed answer the peer stops reading
      local n = 0
      return {body = function()
        n = n + 1
        if n > 200 then ended.stream = "finished?!" return nil end
        return ("s"):rep(65536)
      end}
    end, {write_timeout = 5})
    local s = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(s:write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"))
    s:close() -- gone before the answer
    local s2 = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(s2:write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert(s2:read(1000)) -- the first bytes, then gone
    s2:close()
    casync.sleep(0.2)
    -- the peer that left while its handler ran cancelled it (as Go's
    -- server cancels the request's context): spec/http_scope_spec.lua
    assert.is_nil(ended.wait)
    assert.is_nil(ended.stream)
    assert.equal(0, srv:connections())
    assert.equal(200, assert(http.get(srv:url("/wait"))).status)
    srv:close()
  end))

  it("a stream that stops being read is dropped after write_timeout", hasync(function()
    local srv = serve(function()
      return {body = function() return ("z"):rep(65536) end}
    end, {write_timeout = 0.1})
    local s <close> = assert(casync.tcp.connect("127.0.0.1", srv:port()))
    assert(s:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    casync.sleep(0.4) -- not reading: the kernel buffers fill, the server waits, gives up
    assert.equal(0, srv:connections())
    srv:close()
  end))

  it("close() lets running handlers answer; close{cancel = true} cancels them", hasync(function()
    local cancelled = false
    local srv = serve(function(req)
      local ok, err = pcall(casync.sleep, 0.1)
      if not ok then cancelled = err.kind; error(err) end
      return "done " .. req.path
    end)
    local t = casync.spawn(http.get, srv:url("/a"))
    casync.sleep(0.02)
    srv:close()
    assert.equal("done /a", t:wait().body)
    srv = serve(function() casync.sleep(10) return "never" end)
    t = casync.spawn(http.get, srv:url("/b"))
    casync.sleep(0.02)
    srv:close{cancel = true}
    local r, err = t:wait()
    assert.is_nil(r)
    assert.equal("io", err.kind)
    srv = serve(function()
      local ok, err = pcall(casync.sleep, 10)
      if not ok then cancelled = err.kind; error(err) end
    end)
    t = casync.spawn(http.get, srv:url("/c"))
    casync.sleep(0.02)
    srv:close{cancel = true}
    t:wait()
    assert.equal("cancelled", cancelled)
  end))

  it("a client task cancelled mid-request leaves no connection behind", hasync(function()
    local srv = serve(function() casync.sleep(0.5) return "late" end)
    local t = casync.spawn(http.get, srv:url("/"))
    casync.sleep(0.02)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    assert.equal(0, http.close_idle())
    srv:close{cancel = true}
  end))

  it("answers random and mutated bytes with a 4xx or a close, never crashing", hasync(function()
    local srv = serve(function(req) return req.method .. " " .. #req.body end,
                      {header_timeout = 0.2, body_timeout = 0.2, keep_alive_timeout = 0.2})
    local seeds = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    }
    math.randomseed(4)
    local counts = {}
    local fns = {}
    for i = 1, 300 do
      local input
      if i % 3 == 0 then -- random bytes
        local t = {}
        for j = 1, math.random(1, 200) do t[j] = string.char(math.random(0, 255)) end
        input = table.concat(t)
      else -- a valid request with a few bytes changed, dropped or repeated
        input = seeds[math.random(#seeds)]
        for _ = 1, math.random(1, 4) do
          local k = math.random(#input)
          local op = math.random(3)
          if op == 1 then
            input = input:sub(1, k - 1) .. string.char(math.random(0, 255)) .. input:sub(k + 1)
          elseif op == 2 then
            input = input:sub(1, k - 1) .. input:sub(k + 1)
          else
            input = input:sub(1, k) .. input:sub(k, k):rep(math.random(1, 50)) .. input:sub(k + 1)
          end
        end
        input = input .. "\r\n\r\n"
      end
      fns[#fns + 1] = function()
        local out = raw(srv:port(), input, 2)
        local st = status_of(out)
        -- a 4xx (or 505 for a version that is not 1.x), a 2xx (the mutation
        -- left a valid request), or closed silently
        assert(out == "" or (st and (st < 300 or (st >= 400 and st < 500) or st == 501 or st == 505)),
               ("%q -> %q"):format(input, out))
        local k = st and tostring(st) or "closed"
        counts[k] = (counts[k] or 0) + 1
      end
    end
    casync.map(function(f) return f() end, fns, {limit = 20})
    assert.is_true((counts["400"] or 0) > 50)
    assert.equal("GET 0", assert(http.get(srv:url("/"))).body)
    srv:close()
  end, 60))
end)
