-- dns.c: casync.dns.resolve through libuv's getaddrinfo (thread pool).
-- Only names every system resolves locally: localhost and numeric ones.
local casync = require "casync"

local errmsg = helper.errmsg

local function has(list, address, family)
  for _, a in ipairs(list) do
    if a.address == address and a.family == family then return true end
  end
  return false
end

describe("dns.resolve", function()
  it("resolves localhost", async(function()
    local list = assert(casync.dns.resolve("localhost"))
    assert.is_true(#list >= 1)
    assert.is_true(has(list, "127.0.0.1", "inet") or has(list, "::1", "inet6"))
    for _, a in ipairs(list) do
      assert.is_string(a.address)
      assert.is_truthy(a.family == "inet" or a.family == "inet6")
    end
  end))

  it("returns numeric addresses as they are, each once", async(function()
    local v4 = assert(casync.dns.resolve("127.0.0.1"))
    assert.same({{address = "127.0.0.1", family = "inet"}}, v4)
    local v6 = assert(casync.dns.resolve("::1"))
    assert.same({{address = "::1", family = "inet6"}}, v6)
  end))

  it("filters by opts.family", async(function()
    local list = assert(casync.dns.resolve("127.0.0.1", {family = "inet"}))
    assert.equal(1, #list)
    local none, err = casync.dns.resolve("127.0.0.1", {family = "inet6"})
    assert.is_nil(none)
    assert.equal("io", err.kind)
    assert.matches("^EAI_", err.code)
    assert.matches("^resolve: ", err.message)
    assert(casync.dns.resolve("::1", {family = "any", timeout = 5}))
  end))

  it("returns nil, err for a name that does not exist", async(function()
    local list, err = casync.dns.resolve("nonexistent.invalid", {timeout = 5})
    assert.is_nil(list)
    assert.is_truthy(err.kind == "timeout" or err.code:match("^EAI_"), err.code)
    local _, err2 = casync.dns.resolve("")
    assert.is_truthy(err2.kind == "io")
  end))

  it("resolves many names at once without blocking the loop", async(function()
    local ticks, stop = 0, false
    local ticker = casync.spawn(function()
      while not stop do ticks = ticks + 1; casync.sleep(0) end
    end)
    local fns = {}
    for i = 1, 50 do
      fns[i] = function() return #assert(casync.dns.resolve("localhost")) end
    end
    local r = casync.gather(fns)
    stop = true
    ticker:wait()
    assert.equal(50, r.n)
    assert.is_true(ticks > 0)
  end))

  it("a task cancelled while resolving stops waiting", async(function()
    local t = casync.spawn(casync.dns.resolve, "localhost")
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    -- and a lookup whose task went away still finishes cleanly
    local t2 = casync.spawn(function() return casync.dns.resolve("localhost") end)
    casync.sleep(0)
    t2:cancel()
    pcall(t2.wait, t2)
    collectgarbage()
    assert(casync.dns.resolve("localhost"))
  end))

  it("checks its arguments and needs a task", async(function()
    assert.matches("bad argument #1 to 'resolve' %(string expected, got no value%)",
                   errmsg(function() return casync.dns.resolve() end))
    assert.matches("bad argument #2 to 'resolve' %(table expected, got string%)",
                   errmsg(function() return casync.dns.resolve("x", "inet") end))
    assert.matches("bad argument #2 to 'resolve' %(opts.family must be",
                   errmsg(function() return casync.dns.resolve("x", {family = "ipx"}) end))
    assert.matches("bad argument #2 to 'resolve' %(opts.timeout must be a number%)",
                   errmsg(function() return casync.dns.resolve("x", {timeout = {}}) end))
    assert.matches("resolve: cannot suspend a coroutine that casync does not manage",
                   errmsg(coroutine.wrap(function() return casync.dns.resolve("localhost") end)))
  end))

  it("refuses to run outside a task", function()
    assert.matches("resolve: must be called inside a task",
                   errmsg(function() return casync.dns.resolve("localhost") end))
  end)
end)
