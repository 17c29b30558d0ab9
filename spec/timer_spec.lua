-- timer.c: casync.sleep, casync.now and the timer heap.
local casync = require "casync"

local errmsg = helper.errmsg

describe("casync.sleep", function()
  it("suspends only the calling task", async(function()
    local order = {}
    local a = casync.spawn(function() casync.sleep(0.05); order[#order+1] = "a" end)
    local b = casync.spawn(function() casync.sleep(0.01); order[#order+1] = "b" end)
    a:wait(); b:wait()
    assert.same({"b", "a"}, order)
  end))

  it("sleeps at least the time asked, and not much longer", async(function()
    for _, s in ipairs({0.001, 0.005, 0.02, 0.05}) do
      local dt = helper.elapsed(casync.sleep, s)
      assert.is_true(dt >= s - 1e-6, ("sleep(%g) took only %g s"):format(s, dt))
      assert.is_true(dt < s + 0.5, ("sleep(%g) took %g s"):format(s, dt))
    end
  end))

  it("returns nothing", async(function()
    assert.equal(0, select("#", casync.sleep(0)))
    assert.equal(0, select("#", casync.sleep(0.001)))
  end))

  it("sleep(0) lets every other ready task run first", async(function()
    local log = {}
    for i = 1, 3 do casync.spawn(function() log[#log+1] = i end) end
    casync.sleep(0)
    assert.same({1, 2, 3}, log)
  end))

  it("sleep(0) takes turns with other tasks (round robin)", async(function()
    local log = {}
    local function worker(name)
      for _ = 1, 3 do log[#log+1] = name; casync.sleep(0) end
    end
    local a, b = casync.spawn(worker, "a"), casync.spawn(worker, "b")
    a:wait(); b:wait()
    assert.same({"a", "b", "a", "b", "a", "b"}, log)
  end))

  it("treats a negative time as sleep(0)", async(function()
    for _, s in ipairs({-1, -0.001, -math.huge, -1e300}) do
      local ran = false
      casync.spawn(function() ran = true end)
      local dt = helper.elapsed(casync.sleep, s)
      assert.is_true(ran, "sleep(" .. s .. ") did not let the ready task run")
      assert.is_true(dt < 0.5)
    end
  end))

  it("wakes sleepers in deadline order, equal deadlines first come first served",
     async(function()
    local log, tasks = {}, {}
    local durations = {0.03, 0.01, 0.02, 0.01, 0, 0.02, 0.01}
    for i, d in ipairs(durations) do
      tasks[i] = casync.spawn(function() casync.sleep(d); log[#log+1] = i end)
    end
    casync.gather(tasks)
    assert.same({5, 2, 4, 7, 3, 6, 1}, log)
  end))

  it("keeps 2,000 random deadlines in order", async(function()
    local woke, tasks = {}, {}
    for i = 1, 2000 do
      local d = ((i * 7919) % 1000 + 1) / 20000 -- 50 us to 50 ms, shuffled
      tasks[i] = casync.spawn(function()
        local due = casync.now() + d
        casync.sleep(d)
        woke[#woke+1] = due
      end)
    end
    casync.gather(tasks)
    assert.equal(2000, #woke)
    -- in deadline order to the millisecond (libuv's resolution): timers
    -- due within the same millisecond may wake in the order they were set.
    -- `due` is read just before sleep reads the clock itself; on a busy
    -- machine the task can be preempted in between, so allow 10 ms.
    for i = 2, #woke do assert.is_true(woke[i-1] <= woke[i] + 0.01) end
  end))

  it("accepts a huge time and can be cancelled out of it", async(function()
    local base = casync._stats().timers -- the helper's own timeout
    for _, s in ipairs({1e9, 1e300, math.huge, math.maxinteger}) do
      local t = casync.spawn(casync.sleep, s)
      casync.sleep(0.001)
      assert.is_false(t:done())
      assert.equal(base + 1, casync._stats().timers)
      t:cancel()
      local ok, err = pcall(t.wait, t)
      assert.is_false(ok)
      assert.equal("cancelled", err.kind)
      assert.equal(base, casync._stats().timers)
    end
  end))

  it("accepts a numeric string, as Lua's libraries do", async(function()
    local dt = helper.elapsed(casync.sleep, "0.01")
    assert.is_true(dt >= 0.01 - 1e-6)
  end))

  it("rejects what is not a number", async(function()
    local base = casync._stats().timers
    local cases = {
      {function() casync.sleep("soon") end, "number expected, got string"},
      {function() casync.sleep(nil) end, "number expected, got nil"},
      {function() casync.sleep() end, "number expected, got no value"},
      {function() casync.sleep({}) end, "number expected, got table"},
      {function() casync.sleep(true) end, "number expected, got boolean"},
      {function() casync.sleep(print) end, "number expected, got function"},
      {function() casync.sleep(0/0) end, "number expected, got NaN"},
    }
    for _, c in ipairs(cases) do
      local err = errmsg(c[1])
      assert.matches("bad argument #1 to 'sleep' %(" .. c[2]:gsub("%p", "%%%0") .. "%)",
                     err)
    end
    assert.equal(base, casync._stats().timers)
  end))

  it("raises outside a task, even for sleep(0)", function()
    for _, s in ipairs({0, -1, 0.01}) do
      local err = errmsg(casync.sleep, s)
      assert.matches("sleep: must be called inside a task", err)
    end
    assert.equal(0, casync._stats().timers)
    assert.equal(0, casync._stats().ready)
  end)

  it("raises in a plain coroutine nested in a task instead of hanging",
     async(function()
    local base = casync._stats().timers
    local co = coroutine.create(function() casync.sleep(0.01) end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("sleep: cannot suspend a coroutine that casync does not manage", err)
    assert.equal(base, casync._stats().timers)
  end))

  it("raises across a C call boundary instead of hanging", async(function()
    local err = errmsg(table.sort, {3, 2, 1}, function(a, b)
      casync.sleep(0); return a < b
    end)
    assert.matches("sleep: cannot suspend across a C call boundary", err)
  end))

  it("raises the cancellation at the suspension point, catchable with pcall",
     async(function()
    local before, after, caught = false, false, nil
    local t = casync.spawn(function()
      before = true
      local ok, err = pcall(casync.sleep, 10)
      caught = err
      after = not ok
      casync.sleep(0.001) -- the task goes on normally after catching it
      return "survived"
    end)
    casync.sleep(0.01)
    t:cancel()
    assert.equal("survived", t:wait())
    assert.is_true(before and after)
    assert.equal("cancelled", caught.kind)
    assert.is_false(t:cancelled())
  end))

  it("raises a cancellation requested while running at the next sleep",
     async(function()
    local reached = false
    local t = casync.spawn(function()
      casync.current():cancel()
      reached = true       -- cancel does not raise by itself
      casync.sleep(0)      -- here it does
      error("not reached")
    end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.is_true(reached)
    assert.is_true(t:cancelled())
  end))

  it("does not block the loop: other tasks run while one sleeps", async(function()
    local ticks = 0
    local sleeper = casync.spawn(casync.sleep, 0.05)
    while not sleeper:done() do
      ticks = ticks + 1
      casync.sleep(0.005)
    end
    assert.is_true(ticks >= 3, "only " .. ticks .. " ticks")
  end))
end)

describe("casync.now", function()
  it("returns seconds as a float on a monotonic clock", async(function()
    local t0 = casync.now()
    assert.equal("float", math.type(t0))
    casync.sleep(0.02)
    local t1 = casync.now()
    assert.is_true(t1 - t0 >= 0.02 - 1e-6)
    assert.is_true(t1 - t0 < 1)
  end))

  it("reads the clock afresh, also after CPU work without yielding",
     async(function()
    local t0 = casync.now()
    local t1 = t0
    local deadline = os.clock() + 0.02
    while os.clock() < deadline do end  -- busy, no suspension
    t1 = casync.now()
    assert.is_true(t1 - t0 >= 0.01, "now() did not advance: " .. (t1 - t0))
  end))

  it("has sub-millisecond resolution", async(function()
    local t0 = casync.now()
    local t1 = casync.now()
    while t1 == t0 do t1 = casync.now() end
    assert.is_true(t1 - t0 < 0.001, "step " .. (t1 - t0))
  end))

  it("never goes backwards", function()
    local prev = casync.now()
    for _ = 1, 10000 do
      local t = casync.now()
      assert.is_true(t >= prev)
      prev = t
    end
  end)

  it("works outside a task and ignores arguments", function()
    assert.equal("number", type(casync.now()))
    assert.equal("number", type(casync.now("ignored", {})))
  end)
end)

describe("casync.sleep_until", function()
  it("wakes at an absolute time on casync.now()'s clock, never early",
     async(function()
    local at = casync.now() + 0.05
    casync.sleep_until(at)
    assert.is_true(casync.now() >= at)
  end))

  it("orders tasks by their times, whatever the order they started in",
     async(function()
    local order, base = {}, casync.now()
    local tasks = {}
    for i, dt in ipairs({0.03, 0.01, 0.02}) do
      tasks[i] = casync.spawn(function()
        casync.sleep_until(base + dt)
        order[#order + 1] = dt
      end)
    end
    casync.gather(tasks)
    assert.same({0.01, 0.02, 0.03}, order)
  end))

  it("a time in the past lets the other ready tasks run first", async(function()
    local ran = false
    casync.spawn(function() ran = true end)
    casync.sleep_until(casync.now() - 10)
    assert.is_true(ran)
    assert.equal(0, casync._stats().timers - 1) -- only the helper's timeout
  end))

  it("is cancelled at its suspension point, leaving no timer", async(function()
    local base = casync._stats().timers
    local t = casync.spawn(function() casync.sleep_until(casync.now() + 60) end)
    casync.sleep(0)
    assert.equal(base + 1, casync._stats().timers)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    assert.equal(base, casync._stats().timers)
  end))

  it("checks its argument and refuses to wait outside a task", async(function()
    assert.matches("bad argument #1 to '[%w%._]*sleep_until' %(number " ..
                   "expected, got no value%)", helper.errmsg(casync.sleep_until))
    assert.matches("bad argument #1 to '[%w%._]*sleep_until' %(number " ..
                   "expected, got NaN%)", helper.errmsg(casync.sleep_until, 0 / 0))
    assert.matches("number expected, got string",
                   helper.errmsg(casync.sleep_until, "soon"))
    local code, _, err = helper.lua([[
      local casync = require "casync"
      casync.sleep_until(casync.now() + 1)]])
    assert.equal(1, code)
    assert.matches("sleep_until: must be called inside a task", err)
  end))

  it("far in the future is practically never (until cancelled)", async(function()
    local t = casync.spawn(function() casync.sleep_until(math.huge) end)
    casync.sleep(0.01)
    assert.is_false(t:done())
    t:cancel()
    assert.is_false(pcall(t.wait, t))
  end))
end)
