-- combinators.c: gather, all_settled, race, wait and wait_for.
local casync = require "casync"

local errmsg = helper.errmsg

local function pattern(s) return (s:gsub("%p", "%%%0")) end

-- after(s, ...) -> a function that sleeps s seconds, then returns ...
local function after(s, ...)
  local r = table.pack(...)
  return function() casync.sleep(s); return table.unpack(r, 1, r.n) end
end

-- fail_after(s, err) -> a function that sleeps s seconds, then raises err
local function fail_after(s, err)
  return function() casync.sleep(s); error(err, 0) end
end

-- unwinder(log, name) -> a function that sleeps long and, when cancelled,
-- takes a while (a __close that suspends) to clean up
local function unwinder(log, name)
  return function()
    local c <close> = setmetatable({}, {__close = function()
      casync.sleep(0.01)
      log[#log+1] = name .. " unwound"
    end})
    casync.sleep(10)
  end
end

local function live() return casync._stats().live end

describe("casync.gather", function()
  it("returns the first results in argument order, not in end order",
     async(function()
    local a, b, c = casync.gather(after(0.02, "a", "ignored"), after(0.01, "b"), after(0, "c"))
    assert.same({"a", "b", "c"}, {a, b, c})
  end))

  it("takes tasks and functions mixed, and tasks that already ended",
     async(function()
    local done = casync.spawn(function() return "done" end)
    casync.sleep(0)
    local running = casync.spawn(after(0.005, "running"))
    local r = table.pack(casync.gather(done, function() return "fn" end, running))
    assert.same({"done", "fn", "running", n = 3}, r)
  end))

  it("gives nil for a task that returns nothing, keeping the count", async(function()
    local r = table.pack(casync.gather(after(0), after(0, 2), after(0)))
    assert.same({nil, 2, nil, n = 3}, r)
  end))

  it("with one array argument returns an array with n, holes counted",
     async(function()
    local r = casync.gather({after(0.01, "x"), after(0), function() return nil end,
                             after(0.005, false), after(0)})
    assert.equal(5, r.n)
    assert.equal("x", r[1])
    assert.is_nil(r[2]); assert.is_nil(r[3]); assert.is_nil(r[5])
    assert.is_false(r[4])
  end))

  it("of nothing returns at once: nothing, or an empty array with n = 0",
     async(function()
    assert.equal(0, select("#", casync.gather()))
    assert.same({n = 0}, casync.gather({}))
  end))

  it("treats a callable table as a function, not as the list form", async(function()
    local callable = setmetatable({}, {__call = function() return "called" end})
    assert.equal("called", casync.gather(callable))
  end))

  it("runs its functions concurrently", async(function()
    local fs = {}
    for i = 1, 20 do fs[i] = after(0.05, i) end
    local dt, r = helper.elapsed(casync.gather, fs)
    assert.equal(20, r.n)
    assert.is_true(dt < 0.5, "took " .. dt)
  end))

  it("on the first error cancels the rest, waits for them to unwind, and raises it",
     async(function()
    local log = {}
    local slow = casync.spawn(unwinder(log, "slow"))
    local err = {"the failure"}
    local ok, got = pcall(casync.gather, slow, fail_after(0.005, err), unwinder(log, "fn"))
    log[#log+1] = "gather raised"
    assert.is_false(ok)
    assert.equal(err, got)              -- the error value unchanged
    table.sort(log, function(x, y) return x < y end)
    assert.same({"fn unwound", "gather raised", "slow unwound"}, log)
    assert.is_true(slow:done())
    assert.is_true(slow:cancelled())
  end))

  it("raises at once (after unwinding the rest) when a member had already failed",
     async(function()
    local failed = casync.spawn(function() error("early", 0) end)
    casync.sleep(0)
    local log = {}
    local started = casync.spawn(unwinder(log, "started"))
    casync.sleep(0)
    local ran = false
    local ok, err = pcall(casync.gather, started, function() ran = true end, failed)
    assert.is_false(ok)
    assert.equal("early", err)
    assert.same({"started unwound"}, log)
    assert.is_false(ran)   -- cancelled before it started
  end))

  it("raises the first error only, in end order", async(function()
    local ok, err = pcall(casync.gather, fail_after(0.02, "second"), fail_after(0.005, "first"))
    assert.is_false(ok)
    assert.equal("first", err)
  end))

  it("when cancelled, cancels its members and waits for them to unwind",
     async(function()
    local log = {}
    local waiter = casync.spawn(function()
      return casync.gather(unwinder(log, "a"), unwinder(log, "b"))
    end)
    casync.sleep(0.005)
    waiter:cancel()
    local ok, err = pcall(waiter.wait, waiter)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    table.sort(log)
    assert.same({"a unwound", "b unwound"}, log)
    assert.is_true(waiter:cancelled())
  end))

  it("does not report the members it cancelled as unobserved failures", function()
    local code, _, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        pcall(casync.gather, function() casync.sleep(1) end,
              function() error("boom", 0) end)
      end)
      collectgarbage()
    ]])
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("handles 100,000 tasks", async(function()
    local fs = {}
    for i = 1, 100000 do fs[i] = function() casync.sleep(0.01); return i end end
    local dt, r = helper.elapsed(casync.gather, fs)
    assert.equal(100000, r.n)
    for i = 1, 100000, 997 do assert.equal(i, r[i]) end
    assert.equal(100000, r[100000])
    assert.is_true(dt < 10, "took " .. dt)
    collectgarbage()
  end, 30))

  it("handles 20,000 tasks in the argument form", async(function()
    local fs = {}
    for i = 1, 20000 do fs[i] = function() casync.sleep(0); return i end end
    local r = table.pack(casync.gather(table.unpack(fs)))
    assert.equal(20000, r.n)
    assert.equal(20000, r[20000])
  end, 30))

  it("rejects entries that are not tasks or functions, before spawning any",
     async(function()
    local n = live()
    local ran = false
    local f = function() ran = true end
    assert.matches(pattern("bad argument #2 to 'gather' (task or function expected, got nil)"),
                   errmsg(function() casync.gather(f, nil, f) end))
    assert.matches(pattern("bad argument #3 to 'gather' (task or function expected, got number)"),
                   errmsg(function() casync.gather(f, f, 3) end))
    assert.matches(pattern("bad argument #1 to 'gather' (entry 2 is not a task or function (string))"),
                   errmsg(function() casync.gather({f, "x"}) end))
    assert.matches(pattern("bad argument #2 to 'gather' (task or function expected, got table)"),
                   errmsg(function() casync.gather(f, {}) end))
    casync.sleep(0)
    assert.is_false(ran)
    assert.equal(n, live())
  end))

  it("refuses to wait for the running task itself", async(function()
    local me = casync.current()
    assert.matches("gather: a task cannot wait for itself", errmsg(casync.gather, me))
    assert.matches("gather: a task cannot wait for itself", errmsg(casync.gather, {me}))
  end))

  it("raises outside a task, even when it would not have to wait", function()
    local t = casync.spawn(function() return 1 end)
    casync.run(function() t:wait() end)
    assert.matches("gather: must be called inside a task", errmsg(casync.gather))
    assert.matches("gather: must be called inside a task", errmsg(casync.gather, {}))
    assert.matches("gather: must be called inside a task", errmsg(casync.gather, t))
    assert.equal(0, live())
  end)
end)

describe("every combinator", function()
  it("raises across a C call boundary, before spawning anything", async(function()
    local ran = 0
    local f = function() ran = ran + 1 end
    for name, call in pairs({
      gather = function() casync.gather(f) end,
      gather_list = function() casync.gather({f}) end,
      all_settled = function() casync.all_settled({f}) end,
      race = function() casync.race({f}) end,
      wait = function() casync.wait({f}) end,
      wait_for = function() casync.wait_for(f, 1) end,
    }) do
      local err = errmsg(table.sort, {1, 2, 3}, function(a, b) call(); return a < b end)
      assert.matches(name:gsub("_list", "") .. ": cannot suspend across a C call boundary", err)
    end
    casync.sleep(0.001)
    assert.equal(0, ran)
  end))

  it("raise a pending cancellation of the caller before doing anything",
     async(function()
    local ran = false
    local f = function() ran = true end
    for _, call in ipairs({
      function() return casync.gather(f) end,
      function() return casync.all_settled({f}) end,
      function() return casync.race({f}) end,
      function() return casync.wait({f}) end,
      function() return casync.wait_for(f, 1) end,
    }) do
      local t = casync.spawn(function()
        casync.current():cancel()
        return call()
      end)
      local ok, err = pcall(t.wait, t)
      assert.is_false(ok)
      assert.equal("cancelled", err.kind)
    end
    casync.sleep(0.001)
    assert.is_false(ran)
  end))
end)

describe("combinators given tasks that ended", function()
  it("gather, race and wait_for re-raise a cancelled member's cancellation",
     async(function()
    local c = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    c:cancel("gone")
    for _, call in ipairs({
      function() return casync.gather(c) end,
      function() return casync.gather({c}) end,
      function() return casync.race({c}) end,
      function() return casync.wait_for(c, 1) end,
    }) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.equal("cancelled: gone", tostring(err))
    end
    local done, pending = casync.wait({c})
    assert.same({c}, done)
  end))

  it("mark the failures they hand out as observed", function()
    local code, _, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local a = casync.spawn(function() error("a", 0) end)
        local b = casync.spawn(function() error("b", 0) end)
        local c = casync.spawn(function() error("c", 0) end)
        local d = casync.spawn(function() error("d", 0) end)
        casync.sleep(0)
        pcall(casync.gather, a)
        pcall(casync.race, {b})
        pcall(casync.wait_for, c, 1)
        pcall(d.result, d)
      end)
      collectgarbage()
    ]])
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("give the tasks they spawn the caller's line as where they were spawned",
     async(function()
    local line = debug.getinfo(1, "l").currentline + 1
    local done = casync.wait({function() error("x") end})
    assert.matches("spawned at .-combinators_spec%.lua:" .. line, done[1]:traceback())
    done[1]:error()
  end))
end)

describe("casync.all_settled", function()
  it("waits for all and describes each outcome, in order", async(function()
    local e = {"e"}
    local cancelled = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    cancelled:cancel("no")
    local r = casync.all_settled({after(0.01, "v", "extra"), fail_after(0.005, e),
                                  cancelled, after(0)})
    assert.equal(4, r.n)
    assert.same({ok = true, value = "v"}, r[1])
    assert.same({ok = false, error = e}, r[2])
    assert.equal(e, r[2].error)
    assert.is_false(r[3].ok)
    assert.equal("cancelled: no", tostring(r[3].error))
    assert.same({ok = true}, r[4])   -- no results: value is nil
  end))

  it("does not cancel the others when one fails", async(function()
    local r = casync.all_settled({fail_after(0, "x"), after(0.02, "late")})
    assert.equal("late", r[2].value)
  end))

  it("counts the failures it hands out as observed", function()
    local code, _, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        casync.all_settled({function() error("seen", 0) end})
      end)
      collectgarbage()
    ]])
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("of an empty list returns an empty array with n = 0", async(function()
    assert.same({n = 0}, casync.all_settled({}))
  end))

  it("when cancelled, cancels its members", async(function()
    local log = {}
    local waiter = casync.spawn(casync.all_settled, {unwinder(log, "m")})
    casync.sleep(0.005)
    waiter:cancel()
    pcall(waiter.wait, waiter)
    assert.same({"m unwound"}, log)
  end))

  it("checks its argument and its caller", async(function()
    assert.matches(pattern("bad argument #1 to 'all_settled' (table expected, got no value)"),
                   errmsg(function() casync.all_settled() end))
    assert.matches(pattern("bad argument #1 to 'all_settled' (table expected, got function)"),
                   errmsg(function() casync.all_settled(print) end))
    assert.matches(pattern("bad argument #1 to 'all_settled' (entry 1 is not a task or function (boolean))"),
                   errmsg(function() casync.all_settled({true}) end))
    local ok, err = coroutine.resume(coroutine.create(casync.all_settled), {})
    assert.is_false(ok)
    assert.matches("all_settled: cannot suspend a coroutine that casync does not manage", err)
  end))

  it("raises outside a task", function()
    assert.matches("all_settled: must be called inside a task", errmsg(casync.all_settled, {}))
  end)
end)

describe("casync.race", function()
  it("returns every result of the first to end and cancels the others",
     async(function()
    local log = {}
    local loser = casync.spawn(unwinder(log, "loser"))
    local r = table.pack(casync.race({loser, after(0.005, "won", 2), unwinder(log, "fn")}))
    log[#log+1] = "race returned"
    assert.same({"won", 2, n = 2}, r)
    table.sort(log)
    assert.same({"fn unwound", "loser unwound", "race returned"}, log)
    assert.is_true(loser:cancelled())
  end))

  it("raises the error of the first to end", async(function()
    local ok, err = pcall(casync.race, {after(0.05, "late"), fail_after(0.005, "fast failure")})
    assert.is_false(ok)
    assert.equal("fast failure", err)
  end))

  it("is won at once by a task that already ended", async(function()
    local done = casync.spawn(function() return "already" end)
    casync.sleep(0)
    local ran = false
    local dt, r = helper.elapsed(casync.race, {function() ran = true; casync.sleep(1) end, done})
    assert.equal("already", r)
    assert.is_true(dt < 0.5)
    assert.is_false(ran)  -- cancelled before it started
  end))

  it("when cancelled, cancels its members and waits for them", async(function()
    local log = {}
    local waiter = casync.spawn(casync.race, {unwinder(log, "a"), unwinder(log, "b")})
    casync.sleep(0.005)
    waiter:cancel()
    local ok, err = pcall(waiter.wait, waiter)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    table.sort(log)
    assert.same({"a unwound", "b unwound"}, log)
  end))

  it("checks its argument", async(function()
    assert.matches(pattern("bad argument #1 to 'race' (list is empty)"),
                   errmsg(function() casync.race({}) end))
    assert.matches(pattern("bad argument #1 to 'race' (table expected, got no value)"),
                   errmsg(function() casync.race() end))
    assert.matches(pattern("bad argument #1 to 'race' (table expected, got number)"),
                   errmsg(function() casync.race(1) end))
    assert.matches(pattern("bad argument #1 to 'race' (entry 1 is not a task or function (nil))"),
                   errmsg(function() casync.race({nil, print}) end))
  end))

  it("raises outside a task", function()
    local t = casync.spawn(function() end)
    casync.run(function() t:wait() end)
    assert.matches("race: must be called inside a task", errmsg(casync.race, {t}))
  end)
end)

describe("casync.wait", function()
  it("by default waits for all and returns done, pending", async(function()
    local a, b = casync.spawn(after(0.01)), casync.spawn(fail_after(0.005, "x"))
    local done, pending = casync.wait({a, b})
    assert.same({a, b}, done)
    assert.same({}, pending)
    b:error()
  end))

  it("returns the tasks it spawned for functions", async(function()
    local done = casync.wait({after(0, "r")})
    assert.equal("r", done[1]:result())
  end))

  it("first_completed returns when one ends and cancels nothing", async(function()
    local fast, slow = casync.spawn(after(0.005, 1)), casync.spawn(after(0.05, 2))
    local done, pending = casync.wait({slow, fast}, {return_when = "first_completed"})
    assert.same({fast}, done)
    assert.same({slow}, pending)
    assert.is_false(slow:done())
    assert.equal(2, slow:wait())   -- still running, not cancelled
  end))

  it("first_error returns at the first failure, or when all ended", async(function()
    local ok1, bad, slow = casync.spawn(after(0)), casync.spawn(fail_after(0.005, "e")),
                           casync.spawn(after(0.05))
    local done, pending = casync.wait({ok1, bad, slow}, {return_when = "first_error"})
    assert.same({ok1, bad}, done)
    assert.same({slow}, pending)
    bad:error()
    slow:wait()
    done, pending = casync.wait({after(0), after(0.005)}, {return_when = "first_error"})
    assert.equal(2, #done)
    assert.equal(0, #pending)
  end))

  it("returns what ended when the timeout passes, and cancels nothing",
     async(function()
    local fast, slow = casync.spawn(after(0)), casync.spawn(after(0.1, "slow"))
    local dt, done, pending = helper.elapsed(casync.wait, {fast, slow}, {timeout = 0.02})
    assert.same({fast}, done)
    assert.same({slow}, pending)
    assert.is_true(dt >= 0.02 - 1e-6 and dt < 0.09, "took " .. dt)
    assert.equal("slow", slow:wait())
  end))

  it("with timeout 0 or less only looks", async(function()
    local slow = casync.spawn(after(0.01))
    for _, t in ipairs({0, -1}) do
      local dt, done, pending = helper.elapsed(casync.wait, {slow}, {timeout = t})
      assert.same({}, done)
      assert.same({slow}, pending)
      assert.is_true(dt < 0.005)
    end
    slow:wait()
  end))

  it("of an empty list returns two empty lists", async(function()
    local done, pending = casync.wait({})
    assert.same({}, done)
    assert.same({}, pending)
    done, pending = casync.wait({}, {timeout = 1, return_when = "first_completed"})
    assert.same({}, done)
  end))

  it("when cancelled, cancels nothing it waits on", async(function()
    local member = casync.spawn(after(0.02, "kept"))
    local waiter = casync.spawn(casync.wait, {member})
    casync.sleep(0.005)
    waiter:cancel()
    local ok, err = pcall(waiter.wait, waiter)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.is_false(member:done())
    assert.equal("kept", member:wait())
  end))

  it("checks its arguments", async(function()
    local t = casync.spawn(function() end)
    local cases = {
      {function() casync.wait() end, "bad argument #1 to 'wait' (table expected, got no value)"},
      {function() casync.wait(t) end, "bad argument #1 to 'wait' (table expected, got casync.Task)"},
      {function() casync.wait({t}, 5) end, "bad argument #2 to 'wait' (table expected, got number)"},
      {function() casync.wait({t}, {return_when = "first"}) end,
       "bad argument #2 to 'wait' (invalid return_when 'first')"},
      {function() casync.wait({t}, {return_when = true}) end,
       "bad argument #2 to 'wait' (opts.return_when must be a string)"},
      {function() casync.wait({t}, {timeout = "soon"}) end,
       "bad argument #2 to 'wait' (opts.timeout must be a number)"},
      {function() casync.wait({t}, {timeout = 0/0}) end,
       "bad argument #2 to 'wait' (opts.timeout is NaN)"},
      {function() casync.wait({1}) end,
       "bad argument #1 to 'wait' (entry 1 is not a task or function (number))"},
    }
    for _, c in ipairs(cases) do assert.matches(pattern(c[2]), errmsg(c[1])) end
    t:wait()
  end))

  it("accepts a huge timeout", async(function()
    local done = casync.wait({after(0.001)}, {timeout = math.huge})
    assert.equal(1, #done)
  end))

  it("raises outside a task", function()
    assert.matches("wait: must be called inside a task", errmsg(casync.wait, {}))
  end)
end)

describe("casync.wait_for", function()
  it("returns every result of a task or function that ends in time", async(function()
    assert.same({1, nil, 3, n = 3}, table.pack(casync.wait_for(after(0.001, 1, nil, 3), 1)))
    local t = casync.spawn(after(0, "task"))
    assert.equal("task", casync.wait_for(t, 1))
    assert.equal("task", casync.wait_for(t, 0))    -- already ended: no timeout
  end))

  it("with no time limit (nil) waits as long as it takes", async(function()
    assert.equal("slow", casync.wait_for(after(0.02, "slow"), nil))
    assert.equal("slow", casync.wait_for(after(0.02, "slow")))
  end))

  it("raises a 'timeout' error after cancelling the task and letting it unwind",
     async(function()
    local log = {}
    local t = casync.spawn(unwinder(log, "t"))
    local dt, ok, err = helper.elapsed(pcall, casync.wait_for, t, 0.02)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_true(casync.is_error(err, "timeout"))
    assert.matches("^timeout: ", tostring(err))
    assert.same({"t unwound"}, log)
    assert.is_true(t:cancelled())
    assert.is_true(dt >= 0.02 - 1e-6 and dt < 0.5, "took " .. dt)
  end))

  it("with a time of 0 or less times out a task that has not ended", async(function()
    for _, s in ipairs({0, -5}) do
      local ran = false
      local ok, err = pcall(casync.wait_for, function() ran = true end, s)
      assert.is_false(ok)
      assert.equal("timeout", err.kind)
      assert.is_false(ran)
    end
  end))

  it("re-raises the task's own error unchanged", async(function()
    local e = {}
    local ok, err = pcall(casync.wait_for, fail_after(0.001, e), 1)
    assert.is_false(ok)
    assert.equal(e, err)
  end))

  it("returns the results of a task that ignores the cancellation", async(function()
    local r = casync.wait_for(function()
      pcall(casync.sleep, 10)
      return "finished anyway"
    end, 0.01)
    assert.equal("finished anyway", r)
  end))

  it("never swallows the cancellation of its caller", async(function()
    local log = {}
    local caught
    local caller = casync.spawn(function()
      local ok, err = pcall(casync.wait_for, unwinder(log, "child"), 5)
      caught = err
      error(err, 0)
    end)
    casync.sleep(0.005)
    caller:cancel("outer")
    local ok, err = pcall(caller.wait, caller)
    assert.is_false(ok)
    assert.equal("cancelled", caught.kind)
    assert.equal("cancelled: outer", tostring(err))
    assert.same({"child unwound"}, log)   -- the child was cancelled too
    assert.is_true(caller:cancelled())
  end))

  it("raises the caller's cancellation, not a timeout, when both happen",
     async(function()
    local caught
    local caller = casync.spawn(function()
      local _, err = pcall(casync.wait_for, function()
        local c <close> = setmetatable({}, {__close = function() casync.sleep(0.03) end})
        casync.sleep(10)
      end, 0.01)
      caught = err
    end)
    casync.sleep(0.02)  -- the timeout fired; the child is still unwinding
    caller:cancel()
    caller:wait()
    assert.equal("cancelled", caught.kind)
  end))

  it("accepts a huge time limit", async(function()
    assert.equal("ok", casync.wait_for(after(0.001, "ok"), math.huge))
    assert.equal("ok", casync.wait_for(after(0.001, "ok"), 1e300))
  end))

  it("checks its arguments", async(function()
    local cases = {
      {function() casync.wait_for() end, "bad argument #1 to 'wait_for' (task or function expected, got no value)"},
      {function() casync.wait_for(5, 1) end, "bad argument #1 to 'wait_for' (task or function expected, got number)"},
      {function() casync.wait_for({}, 1) end, "bad argument #1 to 'wait_for' (task or function expected, got table)"},
      {function() casync.wait_for(print, "x") end, "bad argument #2 to 'wait_for' (number expected, got string)"},
      {function() casync.wait_for(print, {}) end, "bad argument #2 to 'wait_for' (number expected, got table)"},
      {function() casync.wait_for(print, 0/0) end, "bad argument #2 to 'wait_for' (number expected, got NaN)"},
    }
    local n = live()
    for _, c in ipairs(cases) do assert.matches(pattern(c[2]), errmsg(c[1])) end
    assert.equal(n, live())
  end))

  it("refuses to wait for the running task itself", async(function()
    assert.matches("wait_for: a task cannot wait for itself",
                   errmsg(casync.wait_for, casync.current(), 1))
  end))

  it("raises outside a task, even on a task that ended", function()
    local t = casync.spawn(function() return 1 end)
    casync.run(function() t:wait() end)
    assert.matches("wait_for: must be called inside a task", errmsg(casync.wait_for, t, 1))
    assert.matches("wait_for: must be called inside a task", errmsg(casync.wait_for, t))
  end)
end)

describe("a cancelled caller of a combinator", function()
  -- a value already produced by a member is returned, and the cancellation
  -- is raised at the caller's next suspension point: nothing is lost
  it("wait_for keeps a value its task already received", async(function()
    local ch, got = casync.channel(), nil
    local outer = casync.spawn(function()
      got = casync.wait_for(function() return ch:recv() end, 10)
      casync.sleep(0)
      error("not reached")
    end)
    casync.sleep(0)
    ch:send("value")
    outer:cancel()
    local ok, err = pcall(outer.wait, outer)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal("value", got)
  end))

  it("gather and race keep results their members already produced", async(function()
    for _, combinator in ipairs({"gather", "race"}) do
      local ch, got = casync.channel(), nil
      local outer = casync.spawn(function()
        got = casync[combinator]({function() return ch:recv() end})
        casync.sleep(0)
      end)
      casync.sleep(0)
      ch:send(combinator)
      outer:cancel()
      assert.is_false(pcall(outer.wait, outer))
      assert.is_true(outer:cancelled())
      assert.equal(combinator, combinator == "gather" and got[1] or got)
    end
  end))

  it("still raises when the members were cancelled before producing", async(function()
    local outer = casync.spawn(function()
      return casync.wait_for(function() casync.sleep(5) end, 10)
    end)
    casync.sleep(0.01)
    outer:cancel()
    local ok, err = pcall(outer.wait, outer)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
  end))
end)
