-- Issue 11, the client's defects: each plays the server the issue played
-- (casync's own server, or a raw TCP one where it has to misbehave).
local casync = require "casync"
local http = casync.http

local function serve(handler, opts)
  return assert(http.serve("127.0.0.1", 0, handler, opts))
end

-- A raw TCP server: handler(stream, head) for each connection after its
-- request head was read.
local function raw_server(handler)
  return assert(casync.tcp.listen("127.0.0.1", 0, function(s)
    local head = s:read_until("\r\n\r\n", 1 << 20)
    if head then handler(s, head) end
  end))
end

local function clean()
  http.close_idle()
  casync.sleep(0.005)
end

describe("issue 11: the HTTP client", function()
  it("takes a new connection when the pooled one was closed by the server while idle, " ..
     "for a POST too", async(function()
    local srv <close> = serve(function(req) return req.method .. " " .. req.body end,
                              {keep_alive_timeout = 0.1})
    local r = assert(http.post(srv:url("/"), "one"))
    assert.equal("POST one", r.body)
    casync.sleep(0.4) -- the server closes the idle connection meanwhile
    r = assert(http.post(srv:url("/"), "two"))
    assert.equal("POST two", r.body)
    assert.equal(2, srv:stats().accepted)
    clean()
  end))

  it("drops Authorization and Cookie on a redirect to another origin, keeps them on the same",
     async(function()
    local seen = {}
    local other <close> = serve(function(req)
      seen[#seen + 1] = {auth = req.headers.authorization, cookie = req.headers.cookie,
                         x = req.headers["x-keep"]}
      return "other"
    end)
    local srv <close> = serve(function(req)
      if req.path == "/same" then return {status = 302, headers = {Location = "/end"}} end
      if req.path == "/end" then
        seen[#seen + 1] = {auth = req.headers.authorization, cookie = req.headers.cookie}
        return "end"
      end
      return {status = 302, headers = {Location = other:url("/landing")}}
    end)
    local h = {Authorization = "Bearer secret", Cookie = "sid=1", ["X-Keep"] = "yes"}
    local r = assert(http.get(srv:url("/away"), {headers = h}))
    assert.equal("other", r.body)
    assert.same({x = "yes"}, seen[1]) -- credentials stay behind
    r = assert(http.get(srv:url("/same"), {headers = h}))
    assert.equal("end", r.body)
    assert.same({auth = "Bearer secret", cookie = "sid=1"}, seen[2])
    clean()
  end))

  it("keeps repeated Set-Cookie lines apart", async(function()
    local srv <close> = raw_server(function(s)
      s:write("HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\n" ..
              "Set-Cookie: b=2; Path=/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    end)
    local r = assert(http.get(("http://127.0.0.1:%d/"):format(srv:port())))
    assert.same({"a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "b=2; Path=/"},
                r.headers["set-cookie"])
    srv:close()
    clean()
  end))

  it("resolves relative Location values as RFC 3986 5.2 does", async(function()
    local srv <close> = serve(function(req)
      if req.path == "/redirect/302" and not req.target:find("?", 1, true) then
        return {status = 302, headers = {Location = "?page=2"}}
      end
      if req.path == "/redirect/x" then
        return {status = 302, headers = {Location = "../r/t2"}}
      end
      return req.target
    end)
    assert.equal("/r/t2", assert(http.get(srv:url("/redirect/x"))).body)
    assert.equal("/redirect/302?page=2", assert(http.get(srv:url("/redirect/302"))).body)
    -- the RFC's own examples, base "http://a/b/c/d;p?q"
    local base = "http://a/b/c/d;p?q"
    for ref, want in pairs{
      ["g"] = "http://a/b/c/g", ["./g"] = "http://a/b/c/g", ["g/"] = "http://a/b/c/g/",
      ["/g"] = "http://a/g", ["//g"] = "http://g", ["?y"] = "http://a/b/c/d;p?y",
      ["g?y"] = "http://a/b/c/g?y", ["#s"] = "http://a/b/c/d;p?q#s", [""] = base,
      ["."] = "http://a/b/c/", ["./"] = "http://a/b/c/", [".."] = "http://a/b/",
      ["../"] = "http://a/b/", ["../g"] = "http://a/b/g", ["../.."] = "http://a/",
      ["../../g"] = "http://a/g", ["../../../g"] = "http://a/g", ["/./g"] = "http://a/g",
      ["/../g"] = "http://a/g", ["g."] = "http://a/b/c/g.", ["..g"] = "http://a/b/c/..g",
      ["./../g"] = "http://a/b/g", ["g/./h"] = "http://a/b/c/g/h",
      ["g/../h"] = "http://a/b/c/h", ["g;x=1/../y"] = "http://a/b/c/y",
      ["g:h"] = "g:h",
    } do
      assert.equal(want, http.resolve(base, ref), ref)
    end
    clean()
  end))

  it("returns a server's early 413 during a large upload, not a broken pipe", async(function()
    local srv <close> = raw_server(function(s)
      s:write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n" ..
              "Connection: close\r\n\r\ntoo large")
      s:close() -- at once, with the upload unread: the client's writes fail
    end)
    local r, err = http.post(("http://127.0.0.1:%d/upload"):format(srv:port()),
                             ("u"):rep(8 * 1024 * 1024))
    assert(r, err)
    assert.equal(413, r.status)
    assert.equal("too large", r.body)
    srv:close()
    clean()
  end))

  it("drops the body's headers when a 303 turns a POST into a GET", async(function()
    local srv <close> = serve(function(req)
      if req.path == "/form" then return {status = 303, headers = {Location = "/done"}} end
      return ("%s ct=%s lang=%s len=%s x=%s"):format(req.method,
        tostring(req.headers["content-type"]), tostring(req.headers["content-language"]),
        tostring(req.headers["content-length"]), tostring(req.headers["x-other"]))
    end)
    local r = assert(http.post(srv:url("/form"), {json = {a = 1},
      headers = {["Content-Language"] = "en", ["X-Other"] = "kept"}}))
    assert.equal("GET ct=nil lang=nil len=nil x=kept", r.body)
    clean()
  end))

  it("percent-encodes non-ASCII bytes and spaces on the request line", async(function()
    local srv <close> = serve(function(req) return req.target end)
    local r = assert(http.get(srv:url("/caf\xc3\xa9/a b?q=\xc3\xa9 x&k=%41")))
    assert.equal("/caf%C3%A9/a%20b?q=%C3%A9%20x&k=%41", r.body)
    clean()
  end))

  it("reads a response with both Content-Length and Transfer-Encoding as chunked, " ..
     "and does not reuse its connection", async(function()
    local conns = 0
    local srv <close> = raw_server(function(s)
      conns = conns + 1
      s:write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" ..
              "5\r\nhello\r\n0\r\n\r\n")
      casync.sleep(0.2)
    end)
    local url = ("http://127.0.0.1:%d/"):format(srv:port())
    assert.equal("hello", assert(http.get(url)).body)
    assert.equal("hello", assert(http.get(url)).body)
    assert.equal(2, conns)
    srv:close{cancel = true}
    clean()
  end))
end)
