-- sched.c: the ready queue, the one place tasks are resumed, how a task
-- ends (results, observers, done callbacks) and how cancellation reaches it.
local casync = require "casync"

local errmsg = helper.errmsg

describe("the ready queue", function()
  it("is first in, first out", async(function()
    local log = {}
    local function step(name, n)
      return function()
        for i = 1, n do log[#log+1] = name .. i; casync.sleep(0) end
      end
    end
    local a = casync.spawn(step("a", 2))
    local b = casync.spawn(step("b", 3))
    local c = casync.spawn(step("c", 1))
    casync.wait({a, b, c})
    assert.same({"a1", "b1", "c1", "a2", "b2", "b3"}, log)
  end))

  it("gives every busy task its turn", async(function()
    local counts = {0, 0, 0, 0}
    local stop = false
    for i = 1, 4 do
      casync.spawn(function()
        while not stop do counts[i] = counts[i] + 1; casync.sleep(0) end
      end)
    end
    for _ = 1, 100 do casync.sleep(0) end
    stop = true
    casync.sleep(0)
    for i = 1, 4 do assert.is_true(counts[i] >= 99 and counts[i] <= 101, counts[i]) end
  end))

  it("switches 200,000 times without trouble", async(function()
    local n = 0
    local function ping() for _ = 1, 100000 do n = n + 1; casync.sleep(0) end end
    local dt = helper.elapsed(casync.gather, ping, ping)
    assert.equal(200000, n)
    assert.is_true(dt < 5, "took " .. dt)
  end, 30))

  it("does not starve timers while tasks keep yielding", async(function()
    local woke_at
    local t0 = casync.now()
    casync.spawn(function() casync.sleep(0.01); woke_at = casync.now() end)
    while not woke_at do casync.sleep(0) end
    assert.is_true(woke_at - t0 < 0.25, "woke after " .. (woke_at - t0))
  end))

  it("is empty between tests (the helper checks it)", async(function()
    assert.equal(0, casync._stats().ready)
  end))
end)

describe("resuming a task", function()
  it("starts it with exactly the arguments given, on a recycled coroutine too",
     async(function()
    for round = 1, 3 do
      for n = 0, 4 do
        local args = {1, nil, 3, nil}
        local t = casync.spawn(function(...) return select("#", ...), ... end,
                               table.unpack(args, 1, n))
        local r = table.pack(t:wait())
        assert.equal(n, r[1], "round " .. round)
        assert.equal(n + 1, r.n)
      end
    end
    assert.is_true(casync._stats().pool > 0)
  end))

  it("keeps at most 1024 coroutines for reuse", async(function()
    local ts = {}
    for i = 1, 3000 do ts[i] = casync.spawn(casync.sleep, 0) end
    casync.gather(ts)
    assert.is_true(casync._stats().pool <= 1024)
  end))

  it("requeues a task that does a plain coroutine.yield, ignoring its values",
     async(function()
    local log = {}
    local t = casync.spawn(function()
      local r = table.pack(coroutine.yield(1, 2, 3))
      log[#log+1] = "resumed with " .. r.n
      return "end"
    end)
    casync.spawn(function() log[#log+1] = "other" end)
    assert.equal("end", t:wait())
    assert.same({"other", "resumed with 0"}, log)
  end))

  it("lets a task yield plainly in a loop until it is done", async(function()
    local n = 0
    local t = casync.spawn(function() for _ = 1, 1000 do n = n + 1; coroutine.yield() end end)
    t:wait()
    assert.equal(1000, n)
  end))
end)

describe("a task's coroutine resumed from outside casync", function()
  it("suspends again at once, its wait intact, and says why", async(function()
    local cos, tasks = {}, {}
    local member = casync.spawn(function() casync.sleep(0.02); return "m" end)
    for name, body in pairs({
      sleep = function() casync.sleep(0.02); return "slept" end,
      wait = function() return member:wait() end,
      gather = function() return casync.gather(member, function() casync.sleep(0.02) end) end,
      wait_for = function() return casync.wait_for(member, 5) end,
    }) do
      tasks[name] = casync.spawn(function()
        cos[name] = coroutine.running()
        return body()
      end)
    end
    casync.sleep(0.001)
    for name, co in pairs(cos) do
      local ok, msg = coroutine.resume(co, "junk", "args")
      assert.is_true(ok, name)
      assert.matches("only casync may resume it", msg)
      assert.equal("suspended", coroutine.status(co))
      assert.is_false(tasks[name]:done())
    end
    collectgarbage(); collectgarbage()  -- nothing the waits use may go
    assert.equal("slept", tasks.sleep:wait())
    assert.equal("m", tasks.wait:wait())
    assert.equal("m", tasks.gather:wait())
    assert.equal("m", tasks.wait_for:wait())
  end))
end)

describe("ending a task", function()
  it("wakes the tasks waiting for it first come, first served", async(function()
    local t = casync.spawn(casync.sleep, 0.01)
    local log = {}
    for i = 1, 5 do casync.spawn(function() t:wait(); log[#log+1] = i end) end
    casync.sleep(0.03)
    assert.same({1, 2, 3, 4, 5}, log)
  end))

  it("lets a waiter that gave up leave without disturbing the others",
     async(function()
    local t = casync.spawn(casync.sleep, 0.01)
    local log = {}
    local waiters = {}
    for i = 1, 5 do
      waiters[i] = casync.spawn(function() t:wait(); log[#log+1] = i end)
    end
    casync.sleep(0)
    waiters[1]:cancel(); waiters[3]:cancel(); waiters[5]:cancel()
    casync.sleep(0.03)
    assert.same({2, 4}, log)
  end))

  it("by a __close that fails during a cancellation ends it failed with that error",
     async(function()
    local t = casync.spawn(function()
      local x <close> = setmetatable({}, {__close = function() error("close failed", 0) end})
      casync.sleep(10)
    end)
    casync.sleep(0)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("close failed", err)
    assert.is_false(t:cancelled())
  end))

  it("by a __close that fails after a normal return ends it failed", async(function()
    local t = casync.spawn(function()
      local x <close> = setmetatable({}, {__close = function()
        casync.sleep(0)
        error("late", 0)
      end})
      return "value"
    end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("late", err)
  end))

  it("keeps tasks that end while many others wait on them consistent",
     async(function()
    local root = casync.spawn(casync.sleep, 0.01)
    local ws = {}
    for i = 1, 1000 do ws[i] = casync.spawn(function() return root:wait() or i end) end
    local r = casync.gather(ws)
    assert.equal(1000, r.n)
    assert.equal(1000, r[1000])
  end))
end)

describe("cancelling", function()
  it("a sleeping task wakes it at once", async(function()
    local t = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    local dt = helper.elapsed(function()
      t:cancel()
      pcall(t.wait, t)
    end)
    assert.is_true(dt < 0.5)
  end))

  it("a task that is ready (woken, not yet run) raises at its suspension point",
     async(function()
    local log = {}
    local t = casync.spawn(function()
      casync.sleep(0)          -- ready again right after this
      log[#log+1] = "after first sleep"
    end)
    casync.sleep(0)            -- t is now in the ready queue, inside sleep(0)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.same({}, log)
  end))

  it("the main task of run makes run raise the cancellation", function()
    local ok, err = pcall(casync.run, function()
      casync.current():cancel("self")
      casync.sleep(0)
    end)
    assert.is_false(ok)
    assert.equal("cancelled: self", tostring(err))
  end)

  it("a task that ends before reaching a suspension point lets it end normally",
     async(function()
    local t = casync.spawn(function()
      casync.current():cancel()
      return "finished"
    end)
    assert.equal("finished", t:wait())
    assert.is_false(t:cancelled())
  end))

  it("works from a luv callback and from a done callback", async(function()
    local uv = require "luv"
    local a = casync.spawn(casync.sleep, 10)
    local b = casync.spawn(casync.sleep, 10)
    local timer = uv.new_timer()
    timer:start(1, 0, function() a:cancel(); timer:close() end)
    local trigger = casync.spawn(function() end)
    trigger:add_done_callback(function() b:cancel() end)
    casync.wait({a, b})
    assert.is_true(a:cancelled())
    assert.is_true(b:cancelled())
  end))

  it("many tasks at once leaves the timer heap consistent", async(function()
    local base = casync._stats().timers
    local ts = {}
    for i = 1, 2000 do ts[i] = casync.spawn(casync.sleep, (i % 7) * 0.01 + 1) end
    casync.sleep(0)
    assert.equal(base + 2000, casync._stats().timers)
    for i = 1, 2000, 2 do ts[i]:cancel() end
    casync.sleep(0)
    assert.equal(base + 1000, casync._stats().timers)
    for i = 2, 2000, 2 do ts[i]:cancel() end
    casync.wait(ts)
    assert.equal(base, casync._stats().timers)
    -- and the heap still orders what comes next
    local log = {}
    for i, d in ipairs({0.02, 0.005, 0.01}) do
      casync.spawn(function() casync.sleep(d); log[#log+1] = i end)
    end
    casync.sleep(0.04)
    assert.same({2, 3, 1}, log)
  end))
end)

describe("the scheduler outside a task", function()
  it("suspending functions name themselves in the error", function()
    assert.matches("^sleep: must be called inside a task", errmsg(casync.sleep, 0))
  end)
end)
