-- HTTPS and wss: casync.http.serve(..., {tls = {cert =, key =}}) and the
-- client's https:// and wss:// URLs ({tls = {ca =, ...}}), on the TLS layer
-- inside casync streams (tls.c); certificates made at run time by
-- spec/certs.sh; curl as a peer client when it is installed.
local casync = require "casync"
local http = casync.http

local D = os.tmpname()
os.remove(D)
assert(helper.sh("spec/certs.sh " .. D) == 0, "spec/certs.sh failed")
D = D .. "/"
local CA = D .. "ca.pem"
local SERVER = {cert = D .. "server.pem", key = D .. "server.key"}
local HAVE_CURL = helper.sh("command -v curl") == 0

local function clean()
  http.close_idle()
  casync.sleep(0.01)
  assert.equal(0, casync.stream._stats().open, "streams left open")
end

local function serve(handler, opts)
  opts = opts or {}
  opts.tls = SERVER
  return assert(http.serve("127.0.0.1", 0, handler, opts))
end

describe("https and wss", function()
  it("serves HTTPS to casync's client; the pool keeps the TLS connection", async(function()
    local srv <close> = serve(function(req)
      return {json = {path = req.path, body = req.body}}
    end)
    local url = srv:url("/a")
    assert.matches("^https://127%.0%.0%.1:%d+/a$", url)
    local r = assert(http.get(url, {tls = {ca = CA}}))
    assert.equal(200, r.status)
    assert.equal("/a", r:json().path)
    r = assert(http.post(url, ("p"):rep(200000), {tls = {ca = CA}})) -- large: sent while read
    assert.equal(200000, #r:json().body)
    assert.equal(1, srv:stats().accepted) -- the same connection, kept alive
    clean()
  end))

  it("fails with kind 'tls' when the server's certificate is not trusted", async(function()
    local srv <close> = serve(function() return "no" end)
    local r, err = http.get(srv:url("/"))           -- the system's CAs: unknown
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    r, err = http.get(srv:url("/"), {tls = {ca = CA, server_name = "other.example"}})
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    clean()
  end))

  it("answers a plain-HTTP client on the HTTPS port by closing", async(function()
    local srv <close> = serve(function() return "x" end)
    local r, err = http.get((srv:url("/"):gsub("^https", "http")), {timeout = 2})
    assert.is_nil(r)
    assert.is_not_nil(err)
    clean()
  end))

  it("speaks wss both ways", async(function()
    local srv <close> = serve(function(req)
      local ws = assert(req:websocket())
      while true do
        local m, kind = ws:recv()
        if not m then break end
        ws:send(m, kind)
      end
    end)
    local ws = assert(http.websocket((srv:url("/chat"):gsub("^https", "wss")),
                                     {tls = {ca = CA}}))
    assert(ws:send("over TLS"))
    assert.same({"over TLS", "text"}, {ws:recv()})
    assert(ws:send(("b"):rep(100000), "binary"))
    assert.equal(100000, #ws:recv())
    ws:close()
    clean()
  end))

  it("serves curl over HTTPS", async(function()
    if not HAVE_CURL then print("\n(curl is not installed)") return end
    local srv <close> = serve(function(req) return "hello " .. req.path end)
    local p = assert(casync.process.spawn({"curl", "-s", "--max-time", "10", "--cacert", CA, srv:url("/curl")},
                                          {stdout = "pipe", env = {LD_PRELOAD = false}}))
    local out = p.stdout:read(1024, 10)
    p:wait()
    p.stdout:close()
    assert.equal("hello /curl", out)
    clean()
  end))
end)
