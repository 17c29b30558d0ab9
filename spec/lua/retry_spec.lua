-- lua/casync/retry.lua: casync.retry(fn, opts, ...) with exponential backoff
local casync = require "casync"

local errmsg = helper.errmsg

-- fn that fails `fails` times with err, then returns ...
local function flaky(fails, err, ...)
  local results = table.pack(...)
  local calls = {n = 0}
  return function(...)
    calls.n = calls.n + 1
    calls[calls.n] = casync.now()
    calls.args = table.pack(...)
    if calls.n <= fails then error(err, 0) end
    return table.unpack(results, 1, results.n)
  end, calls
end

describe("casync.retry", function()
  it("returns at once when fn succeeds, with all its results and args",
     async(function()
    local fn, calls = flaky(0, "x", 1, nil, 3)
    local r = table.pack(casync.retry(fn, nil, "a", "b"))
    assert.same({1, nil, 3, n = 3}, r)
    assert.equal(1, calls.n)
    assert.same({"a", "b", n = 2}, calls.args)
  end))

  it("retries with waits of base, base*factor, base*factor^2", async(function()
    local fn, calls = flaky(3, "down", "ok")
    local delays = {}
    local t0 = casync.now()
    local r = casync.retry(fn, {attempts = 4, base = 0.01, factor = 2,
      on_retry = function(err, attempt, d) delays[attempt] = {err, d} end})
    assert.equal("ok", r)
    assert.equal(4, calls.n)
    assert.same({{"down", 0.01}, {"down", 0.02}, {"down", 0.04}}, delays)
    local gaps = {}
    for i = 2, 4 do gaps[i - 1] = calls[i] - calls[i - 1] end
    for i, want in ipairs({0.01, 0.02, 0.04}) do
      assert.is_true(gaps[i] >= want - 1e-3, ("gap %d: %g"):format(i, gaps[i]))
      assert.is_true(gaps[i] < want + 0.1, ("gap %d: %g"):format(i, gaps[i]))
    end
    assert.is_true(casync.now() - t0 >= 0.07 - 1e-3)
  end))

  it("raises the last error unchanged after the last attempt", async(function()
    local e = {code = 503}
    local fn, calls = flaky(10, e)
    local ok, err = pcall(casync.retry, fn, {attempts = 3, base = 0.001})
    assert.is_false(ok)
    assert.equal(e, err)
    assert.equal(3, calls.n)
    local fn2 = flaky(10, "string error")
    ok, err = pcall(casync.retry, fn2, {attempts = 2, base = 0})
    assert.equal("string error", err)
  end))

  it("defaults to 3 attempts, waits of 1 s and 2 s", async(function()
    local fn, calls = flaky(1, "once", "ok")
    local seen
    assert.equal("ok", casync.retry(fn, {base = 0.001, on_retry = function(_, _, d)
      seen = d end}))
    assert.equal(0.001, seen)
    -- the default delays themselves (without waiting for them)
    local ds = {}
    local fn3 = flaky(10, "x")
    pcall(casync.retry, fn3, {on_retry = function(_, k, d)
      ds[k] = d
      error("stop", 0) -- do not really wait 1 s
    end})
    assert.same({1}, ds)
  end))

  it("caps the wait at max, and jitter only shortens it", async(function()
    local ds = {}
    local fn = flaky(5, "x", "ok")
    casync.retry(fn, {attempts = 6, base = 0.001, factor = 10, max = 0.005,
                      on_retry = function(_, k, d) ds[k] = d end})
    assert.same({0.001, 0.005, 0.005, 0.005, 0.005}, ds)
    ds = {}
    fn = flaky(5, "x", "ok")
    casync.retry(fn, {attempts = 6, base = 0.002, factor = 1, jitter = 0.5,
                      on_retry = function(_, k, d) ds[k] = d end})
    for _, d in ipairs(ds) do assert.is_true(d >= 0.001 and d <= 0.002) end
  end))

  it("retry_if decides which errors are retried", async(function()
    local fn, calls = flaky(5, {kind = "fatal"})
    local ok, err = pcall(casync.retry, fn, {attempts = 5, base = 0,
      retry_if = function(e) return e.kind ~= "fatal" end})
    assert.is_false(ok)
    assert.equal("fatal", err.kind)
    assert.equal(1, calls.n)
    local attempts = {}
    fn, calls = flaky(2, {kind = "io"}, "ok")
    assert.equal("ok", casync.retry(fn, {attempts = 5, base = 0,
      retry_if = function(e, k) attempts[#attempts + 1] = k; return e.kind == "io" end}))
    assert.same({1, 2}, attempts)
  end))

  it("timeout bounds each attempt; a timeout counts as a failure",
     async(function()
    local n = 0
    local r = casync.retry(function(x)
      n = n + 1
      if n < 3 then casync.sleep(1) end
      return x
    end, {attempts = 3, base = 0, timeout = 0.02}, "done")
    assert.equal("done", r)
    assert.equal(3, n)
    local ok, err = pcall(casync.retry, function() casync.sleep(1) end,
                          {attempts = 2, base = 0, timeout = 0.01})
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
  end))

  it("never retries a cancellation", async(function()
    local calls = 0
    local t = casync.spawn(casync.retry, function()
      calls = calls + 1
      casync.sleep(1)
    end, {attempts = 5, base = 0})
    casync.sleep(0.01)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal(1, calls)
    -- nor while it waits between attempts
    calls = 0
    t = casync.spawn(casync.retry, function() calls = calls + 1; error("x") end,
                     {attempts = 5, base = 10})
    casync.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.equal(1, calls)
  end))

  it("rejects bad arguments", async(function()
    local f = function() end
    local cases = {
      {{nil}, 1, "function expected, got no value"},
      {{42}, 1, "function expected, got number"},
      {{f, 42}, 2, "table expected, got number"},
      {{f, {attempts = 0}}, 2, "opts.attempts must be at least 1"},
      {{f, {attempts = 1.5}}, 2, "opts.attempts must be a whole number"},
      {{f, {attempts = "3"}}, 2, "opts.attempts must be a number"},
      {{f, {base = -1}}, 2, "opts.base must be at least 0"},
      {{f, {base = 0/0}}, 2, "opts.base must be a number"},
      {{f, {max = -1}}, 2, "opts.max must be at least 0"},
      {{f, {jitter = 2}}, 2, "opts.jitter must be at most 1"},
      {{f, {timeout = "x"}}, 2, "opts.timeout must be a number"},
      {{f, {retry_if = 1}}, 2, "opts.retry_if must be a function"},
      {{f, {on_retry = {}}}, 2, "opts.on_retry must be a function"},
    }
    for _, c in ipairs(cases) do
      local err = errmsg(casync.retry, table.unpack(c[1], 1, 2))
      assert.matches(("bad argument #%d to 'retry' %%(%s%%)")
        :format(c[2], c[3]:gsub("%p", "%%%0")), err)
    end
  end))

  it("raises outside a task", function()
    assert.matches("retry: must be called inside a task",
                   errmsg(casync.retry, function() end))
  end)
end)

describe("casync.retry's argument checks", function()
  it("refuses wrong types, NaN, huge and negative numbers as Lua does", function()
    helper.assert_sweep("retry", casync.retry, function()
      return table.pack(function() return 1 end, {attempts = 2, base = 0.001})
    end, {fields = {[2] = {"attempts", "base", "factor", "max", "jitter",
                           "timeout", "retry_if", "on_retry"}}})
  end)

  it("names what is wrong outside a task and in a plain coroutine", function()
    local f = function() return 1 end
    assert.matches("^retry: must be called inside a task", helper.errmsg(casync.retry, f))
    async(function()
      local ok, err = coroutine.wrap(function() return pcall(casync.retry, f) end)()
      assert.is_false(ok)
      assert.matches("retry: cannot suspend a coroutine that casync does not manage", err)
    end)()
  end)
end)
