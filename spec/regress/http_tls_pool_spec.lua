-- regress: the HTTP client's keep-alive pool reused an HTTPS connection
-- whatever the next request's TLS settings (a connection opened with
-- verify = false served a later request that asked for the defaults, never
-- verified); http.session{tls = ...} was silently ignored.
local casync = require "casync"
local http = casync.http

local D = os.tmpname()
os.remove(D)
assert(helper.sh("spec/certs.sh " .. D) == 0, "spec/certs.sh failed")
D = D .. "/"
local CA = D .. "ca.pem"
local SERVER = {cert = D .. "server.pem", key = D .. "server.key"}

describe("regress: HTTPS connections in the keep-alive pool", function()
  it("serve only requests with the same TLS settings", async(function()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function() return "hi" end,
                                          {tls = SERVER}))
    local r, err = http.get(srv:url("/"))
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert(http.get(srv:url("/"), {tls = {verify = false}}))
    r, err = http.get(srv:url("/")) -- the defaults again: checked again
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    -- the same settings do reuse it
    assert(http.get(srv:url("/"), {tls = {verify = false}}))
    assert(http.get(srv:url("/"), {tls = {ca = CA}}))
    assert(http.get(srv:url("/"), {tls = {ca = CA}}))
    -- two refused handshakes, then one connection for each setting, reused
    assert.equal(4, srv:stats().accepted)
    http.close_idle()
  end))

  it("http.session{tls = ...} applies to its requests", async(function()
    local srv <close> = assert(http.serve("127.0.0.1", 0, function() return "hi" end,
                                          {tls = SERVER}))
    local s <close> = http.session{tls = {ca = CA}}
    assert.equal("hi", assert(s:get(srv:url("/"))).body)
    local r, err = s:get(srv:url("/"), {tls = {ca = "/nonexistent.pem"}})
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert.has_error(function() http.session{tls = "yes"} end)
    local e = helper.errmsg(http.session, {tsl = {}})
    assert.matches("unknown option 'tsl'", e, 1, true)
  end))
end)
