-- lua/casync/rate_limiter.lua: casync.rate_limiter(n, per)
local casync = require "casync"

local errmsg = helper.errmsg

-- The largest number of timestamps (sorted) in any window [t, t + per).
local function max_in_window(times, per)
  local best, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= per do j = j + 1 end
    best = math.max(best, i - j + 1)
  end
  return best
end

describe("casync.rate_limiter", function()
  it("lets n through at once, then keeps any window of per seconds to n",
     async(function()
    local limiter = casync.rate_limiter(5, 0.1)
    assert.matches("casync.RateLimiter %(5 per 0.1 s%)", tostring(limiter))
    local times = {}
    local t0 = casync.now()
    for _ = 1, 23 do
      limiter:acquire()
      times[#times + 1] = casync.now()
    end
    local dt = casync.now() - t0
    assert.is_true(times[5] - t0 < 0.05, "the first 5 should not wait")
    assert.is_true(max_in_window(times, 0.1) <= 5)
    -- 23 = 5 at once + 18 more, a slot per 0.02 s on average: >= 0.4 s
    assert.is_true(dt >= 0.4 - 1e-3, "took " .. dt)
    assert.is_true(dt < 1.0, "took " .. dt)
  end))

  it("keeps the measured rate under the limit with many concurrent callers",
     async(function()
    local limiter = casync.rate_limiter(10, 0.1) -- 100 per second
    local times = {}
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = casync.spawn(function()
        for _ = 1, 3 do
          limiter:acquire()
          times[#times + 1] = casync.now()
          casync.sleep(math.random() * 0.01)
        end
      end)
    end
    for _, t in ipairs(tasks) do t:wait() end
    table.sort(times)
    assert.equal(60, #times)
    assert.is_true(max_in_window(times, 0.1) <= 10)
    -- n per `per` seconds: N calls need at least (N / n - 1) * per seconds
    -- (the first n go at once), so N / (span + per) stays <= n / per
    local rate = #times / (times[#times] - times[1] + 0.1)
    assert.is_true(rate <= 100, "measured " .. rate .. " per second")
    assert.is_true(rate > 50, "measured only " .. rate .. " per second")
  end))

  it("serves waiters first-come first-served", async(function()
    local limiter = casync.rate_limiter(1, 0.02)
    limiter:acquire()
    local order = {}
    local ts = {}
    for i = 1, 4 do
      ts[i] = casync.spawn(function() limiter:acquire(); order[#order + 1] = i end)
    end
    for i = 1, 4 do ts[i]:wait() end
    assert.same({1, 2, 3, 4}, order)
  end))

  it("try_acquire does not wait, and works outside a task", function()
    local limiter = casync.rate_limiter(2, 10)
    assert.is_true(limiter:try_acquire())
    assert.is_true(limiter:try_acquire())
    assert.is_false(limiter:try_acquire())
    assert.matches("acquire: must be called inside a task",
                   errmsg(limiter.acquire, limiter))
  end)

  it("a cancelled waiter uses no slot", async(function()
    local limiter = casync.rate_limiter(1, 0.05)
    limiter:acquire()
    local w = casync.spawn(function() limiter:acquire() end)
    casync.sleep(0.01)
    w:cancel()
    assert.is_false(pcall(w.wait, w))
    local t0 = casync.now()
    limiter:acquire()  -- the slot after the first one, not after w's
    local dt = casync.now() - t0
    assert.is_true(dt < 0.05, "waited " .. dt)
  end))

  it("wrap acquires before each call", async(function()
    local limiter = casync.rate_limiter(2, 0.05)
    local calls = 0
    local f = limiter:wrap(function(x) calls = calls + 1; return x * 2 end)
    local t0 = casync.now()
    assert.equal(2, f(1))
    assert.equal(4, f(2))
    assert.equal(6, f(3))
    assert.equal(3, calls)
    assert.is_true(casync.now() - t0 >= 0.05 - 1e-3)
    assert.matches("bad argument #1 to 'wrap' %(function expected, got number%)",
                   errmsg(limiter.wrap, limiter, 1))
  end))

  it("rejects bad arguments", function()
    local cases = {
      {{}, 1, "integer expected, got no value"},
      {{"x"}, 1, "integer expected, got string"},
      {{0}, 1, "n must be positive"},
      {{-3}, 1, "n must be positive"},
      {{1.5}, 1, "n must be a whole number"},
      {{1e300}, 1, "n is too large"},
      {{1, "s"}, 2, "number expected, got string"},
      {{1, 0}, 2, "per must be a positive number of seconds"},
      {{1, -1}, 2, "per must be a positive number of seconds"},
      {{1, 0/0}, 2, "per must be a positive number of seconds"},
      {{1, math.huge}, 2, "per must be a positive number of seconds"},
    }
    for _, c in ipairs(cases) do
      local err = errmsg(casync.rate_limiter, table.unpack(c[1], 1, 2))
      assert.matches(("bad argument #%d to 'rate_limiter' %%(%s%%)")
        :format(c[2], c[3]:gsub("%p", "%%%0")), err)
    end
    assert.equal(1, casync.rate_limiter(1.0)._n)
    assert.matches("casync.RateLimiter expected",
                   errmsg(casync.rate_limiter(1).try_acquire, {}))
  end)
end)

describe("casync.rate_limiter's argument checks", function()
  it("refuses wrong types, NaN, huge and negative numbers as Lua does", function()
    helper.assert_sweep("rate_limiter", casync.rate_limiter, function()
      return table.pack(2, 0.01)
    end)
  end)

  it("checks self and the arguments of every method", function()
    local mt = getmetatable(casync.rate_limiter(1))
    for _, m in ipairs({"acquire", "try_acquire", "wrap"}) do
      helper.assert_sweep(m, mt[m], function()
        return table.pack(casync.rate_limiter(100, 0.01), function() end)
      end)
    end
  end)

  it("names what is wrong when acquire is called outside a task", function()
    local limiter = casync.rate_limiter(1)
    assert.matches("acquire: must be called inside a task", helper.errmsg(limiter.acquire, limiter))
  end)
end)
