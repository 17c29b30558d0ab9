-- task.c: casync.spawn, casync.current, casync.call_later and the methods
-- of a task.
local casync = require "casync"

local errmsg = helper.errmsg

-- pattern(s) -> s with Lua pattern magic escaped
local function pattern(s) return (s:gsub("%p", "%%%0")) end

local function closer(log, name, pause)
  return setmetatable({}, {__close = function(_, err)
    if pause then casync.sleep(pause) end
    log[#log+1] = name .. " closed" .. (err ~= nil and (" by " .. tostring(err)) or "")
  end})
end

describe("casync.spawn", function()
  it("returns a task at once and runs it soon, with its arguments", async(function()
    local got
    local t = casync.spawn(function(...) got = table.pack(...) end, 1, nil, "three")
    assert.is_nil(got)            -- not run yet
    assert.matches("^task #%d+ %(ready%)$", tostring(t))
    t:wait()
    assert.same({1, nil, "three", n = 3}, got)
  end))

  it("runs tasks in the order they were spawned", async(function()
    local log = {}
    for i = 1, 5 do casync.spawn(function() log[#log+1] = i end) end
    casync.sleep(0)
    assert.same({1, 2, 3, 4, 5}, log)
  end))

  it("accepts a callable table", async(function()
    local obj = setmetatable({}, {__call = function(self, x) return x * 2 end})
    assert.equal(42, casync.spawn(obj, 21):wait())
  end))

  it("takes an optional name for messages and tracebacks", async(function()
    local t = casync.spawn({name = "worker"}, function(x) return x end, 5)
    assert.equal("worker", t:name())
    assert.matches("task #%d+ 'worker'", tostring(t))
    assert.equal(5, t:wait())
    assert.is_nil(casync.spawn(function() end):name())
    local f = casync.spawn({name = "fails"}, function() error("oops") end)
    pcall(f.wait, f)
    assert.matches("task #%d+ 'fails' was spawned at", f:traceback())
  end))

  it("rejects what it cannot run", async(function()
    local live = casync._stats().live
    for _, c in ipairs({
      {function() casync.spawn() end, "bad argument #1 to 'spawn' (function expected, got no value)"},
      {function() casync.spawn(nil) end, "bad argument #1 to 'spawn' (function expected, got nil)"},
      {function() casync.spawn(42) end, "bad argument #1 to 'spawn' (function expected, got number)"},
      {function() casync.spawn("f") end, "bad argument #1 to 'spawn' (function expected, got string)"},
      {function() casync.spawn({}) end, "bad argument #2 to 'spawn' (function expected, got no value)"},
      {function() casync.spawn({name = "x"}, 1) end, "bad argument #2 to 'spawn' (function expected, got number)"},
      {function() casync.spawn({name = 3}, print) end, "bad argument #1 to 'spawn' (opts.name must be a string)"},
    }) do
      assert.matches(pattern(c[2]), errmsg(c[1]))
    end
    assert.equal(live, casync._stats().live)  -- nothing was spawned
  end))

  it("works outside a task; the next run runs it", function()
    local ran = false
    local t = casync.spawn(function() ran = true; return "x" end)
    assert.is_false(ran)
    assert.equal("x", casync.run(function() return t:wait() end))
    assert.is_true(ran)
  end)

  it("keeps a task nobody references running to its end", async(function()
    local finished = {}
    for i = 1, 10 do
      casync.spawn(function()
        casync.sleep(0.02)
        collectgarbage()
        finished[#finished+1] = i
      end)
    end
    casync.sleep(0.005)
    collectgarbage(); collectgarbage()
    casync.sleep(0.05)
    collectgarbage()
    assert.equal(10, #finished)
  end))

  it("handles 10,000 tasks spawned at once", async(function()
    local sum = 0
    for i = 1, 10000 do casync.spawn(function() casync.sleep(0); sum = sum + i end) end
    while casync._stats().live > 2 do casync.sleep(0.001) end
    assert.equal(10000 * 10001 // 2, sum)
  end))
end)

describe("casync.current", function()
  it("returns the running task", async(function()
    local t
    t = casync.spawn(function() return casync.current() end)
    assert.equal(t, t:wait())
    assert.is_not_nil(casync.current())
    assert.is_false(casync.current():done())
  end))

  it("returns nil outside tasks and in a plain coroutine", async(function()
    local co = coroutine.wrap(function() return casync.current() end)
    assert.is_nil(co())
  end))

  it("returns nil outside run", function()
    assert.is_nil(casync.current())
  end)
end)

describe("task:wait", function()
  it("returns every result, including nils", async(function()
    local t = casync.spawn(function() casync.sleep(0.001); return 1, nil, 3, nil end)
    local r = table.pack(t:wait())
    assert.same({1, nil, 3, nil, n = 4}, r)
    assert.equal(0, select("#", casync.spawn(function() end):wait()))
  end))

  it("returns 1,000 results", async(function()
    local t = casync.spawn(function()
      local r = {}
      for i = 1, 1000 do r[i] = i end
      return table.unpack(r)
    end)
    local r = table.pack(t:wait())
    assert.equal(1000, r.n)
    assert.equal(1000, r[1000])
  end))

  it("returns at once for a task that already ended, as often as asked",
     async(function()
    local t = casync.spawn(function() return "v" end)
    casync.sleep(0)
    assert.is_true(t:done())
    assert.equal("v", t:wait())
    assert.equal("v", t:wait())
  end))

  it("wakes every task waiting on the same task", async(function()
    local t = casync.spawn(casync.sleep, 0.01)
    local waiters = {}
    for i = 1, 5 do waiters[i] = casync.spawn(function() t:wait(); return i end) end
    for i = 1, 5 do assert.equal(i, waiters[i]:wait()) end
  end))

  it("re-raises the task's error value unchanged", async(function()
    local tbl = {code = 7}
    local values = {"plain string", tbl, 42, false}
    for _, v in ipairs(values) do
      local t = casync.spawn(function() casync.sleep(0); error(v, 0) end)
      local ok, err = pcall(t.wait, t)
      assert.is_false(ok)
      assert.equal(v, err)   -- the same string, the same table
    end
    local t = casync.spawn(function() error("with position") end)
    local _, err = pcall(t.wait, t)
    assert.matches("task_spec.lua:%d+: with position$", err)
  end))

  it("re-raises a nil error as nil", async(function()
    local t = casync.spawn(function() error(nil) end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_nil(err)
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
  end))

  it("raises a cancelled task's cancellation", async(function()
    local t = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    t:cancel("enough")
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal("cancelled: enough", tostring(err))
  end))

  it("can be cancelled itself, leaving the awaited task alone", async(function()
    local slow = casync.spawn(function() casync.sleep(0.02); return "slow" end)
    local waiter = casync.spawn(function() return slow:wait() end)
    casync.sleep(0.001)
    waiter:cancel()
    local ok, err = pcall(waiter.wait, waiter)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal("slow", slow:wait())
  end))

  it("refuses to wait for the running task itself", async(function()
    local me = casync.current()
    assert.matches("wait: a task cannot wait for itself", errmsg(me.wait, me))
  end))

  it("raises outside a task, even on a task that ended", function()
    local t = casync.spawn(function() return 1 end)
    casync.run(function() t:wait() end)
    assert.matches("wait: must be called inside a task", errmsg(t.wait, t))
  end)

  it("raises in a plain coroutine nested in a task instead of hanging",
     async(function()
    local t = casync.spawn(casync.sleep, 0.01)
    local ok, err = coroutine.resume(coroutine.create(function() return t:wait() end))
    assert.is_false(ok)
    assert.matches("wait: cannot suspend a coroutine that casync does not manage", err)
    t:wait()
  end))

  it("rejects a self that is not a task", async(function()
    local t = casync.spawn(function() end)
    assert.matches("bad argument #1 to 'wait' %(casync.Task expected, got nil%)",
                   errmsg(function() t.wait(nil) end))
    assert.matches("bad argument #1 to 'wait' %(casync.Task expected, got table%)",
                   errmsg(function() t.wait({}) end))
    t:wait()
  end))
end)

describe("task:cancel", function()
  it("raises an error of kind 'cancelled' where the task waits", async(function()
    local log = {}
    local t = casync.spawn(function()
      log[#log+1] = "before"
      local ok, err = pcall(casync.sleep, 10)
      log[#log+1] = err.kind
      error(err, 0) -- re-raise: the task ends cancelled
    end)
    casync.sleep(0)
    assert.is_true(t:cancel())
    pcall(t.wait, t)
    assert.same({"before", "cancelled"}, log)
    assert.is_true(t:cancelled())
  end))

  it("carries the message given", async(function()
    local t = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    t:cancel("shutting down")
    local _, err = pcall(t.wait, t)
    assert.equal("cancelled", err.kind)
    assert.equal("shutting down", err.message)
    assert.equal("cancelled: shutting down", tostring(err))
    local d = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    d:cancel()
    local _, derr = pcall(d.wait, d)
    assert.equal("cancelled: task cancelled", tostring(derr))
  end))

  it("returns false on a task that already ended, and changes nothing",
     async(function()
    local t = casync.spawn(function() return "done" end)
    t:wait()
    assert.is_false(t:cancel())
    assert.is_false(t:cancelled())
    assert.equal("done", t:result())
  end))

  it("ends a task that has not started without running its body", async(function()
    local ran = false
    local t = casync.spawn(function() ran = true end)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.is_false(ran)
    assert.is_true(t:cancelled())
  end))

  it("twice is harmless; the first message counts", async(function()
    local t = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    assert.is_true(t:cancel("first"))
    assert.is_true(t:cancel("second"))
    local _, err = pcall(t.wait, t)
    assert.equal("cancelled: first", tostring(err))
    assert.is_false(t:cancel())
  end))

  it("may be caught: the task goes on and ends normally", async(function()
    local t = casync.spawn(function()
      local ok = pcall(casync.sleep, 10)
      casync.sleep(0.001) -- a caught cancellation is not raised again
      return ok and "slept" or "caught"
    end)
    casync.sleep(0)
    t:cancel()
    assert.equal("caught", t:wait())
    assert.is_false(t:cancelled())
  end))

  it("accepts a number as the message and rejects other types", async(function()
    local t = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    assert.matches("bad argument #1 to 'cancel' %(string expected, got table%)",
                   errmsg(function() t:cancel({}) end))
    assert.matches("bad argument #1 to 'cancel' %(string expected, got boolean%)",
                   errmsg(function() t:cancel(true) end))
    assert.is_false(t:done())
    t:cancel(404)
    local _, err = pcall(t.wait, t)
    assert.equal("cancelled: 404", tostring(err))
    assert.matches("casync.Task expected, got string", errmsg(t.cancel, "x"))
  end))

  it("works outside a task", function()
    local t = casync.spawn(function() error("never") end)
    assert.is_true(t:cancel())
    casync.run(function() pcall(t.wait, t) end)
    assert.is_true(t:cancelled())
  end)

  it("closes <close> variables, also with a __close that suspends",
     async(function()
    local log = {}
    local t = casync.spawn(function()
      local a <close> = closer(log, "a", 0.01)
      local b <close> = closer(log, "b", 0.01)
      casync.sleep(10)
    end)
    casync.sleep(0)
    t:cancel("stop")
    pcall(t.wait, t)
    assert.same({"b closed by cancelled: stop", "a closed by cancelled: stop"}, log)
    assert.is_true(t:cancelled())
  end))
end)

describe("a failing task", function()
  it("closes its <close> variables, with a __close that suspends", async(function()
    local log = {}
    local t = casync.spawn(function()
      local a <close> = closer(log, "a", 0.005)
      do
        local b <close> = closer(log, "b", 0.005)
      end
      local c <close> = closer(log, "c", 0.005)
      error("boom", 0)
    end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.same({"b closed", "c closed by boom", "a closed by boom"}, log)
  end))

  it("does not stop the tasks after it (its coroutine is not reused broken)",
     async(function()
    for i = 1, 50 do
      local bad = casync.spawn(function() error("e" .. i) end)
      pcall(bad.wait, bad)
      assert.equal(i, casync.spawn(function() casync.sleep(0); return i end):wait())
    end
  end))

  it("survives a stack overflow", async(function()
    local function deep(n) return deep(n + 1) + 1 end
    local t = casync.spawn(deep, 1)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.matches("stack overflow", err)
  end))
end)

describe("task:done and task:cancelled", function()
  it("tell how a task ended", async(function()
    local ok = casync.spawn(function() casync.sleep(0) end)
    local failed = casync.spawn(function() error("x") end)
    local cancelled = casync.spawn(casync.sleep, 10)
    assert.is_false(ok:done())
    assert.is_false(ok:cancelled())
    casync.sleep(0)
    cancelled:cancel()
    casync.wait({ok, failed, cancelled})
    assert.is_true(ok:done());        assert.is_false(ok:cancelled())
    assert.is_true(failed:done());    assert.is_false(failed:cancelled())
    assert.is_true(cancelled:done()); assert.is_true(cancelled:cancelled())
    failed:error() -- observed
  end))

  it("reject a self that is not a task", function()
    local t = casync.spawn(function() end)
    t:cancel()
    assert.matches("bad argument #1 to 'done' %(casync.Task expected, got nil%)",
                   errmsg(function() t.done(nil) end))
    assert.matches("bad argument #1 to 'cancelled' %(casync.Task expected, got number%)",
                   errmsg(function() t.cancelled(1) end))
    for m, f in pairs({
      result = function() t.result("x") end, error = function() t.error("x") end,
      traceback = function() t.traceback("x") end, name = function() t.name("x") end,
      id = function() t.id("x") end,
    }) do
      assert.matches("bad argument #1 to '" .. m .. "' %(casync.Task expected, got string%)",
                     errmsg(f))
    end
    casync.run(function() end)
  end)
end)

describe("task:result", function()
  it("returns the results of a finished task", async(function()
    local t = casync.spawn(function() return 1, nil, 3 end)
    t:wait()
    assert.same({1, nil, 3, n = 3}, table.pack(t:result()))
  end))

  it("raises on a task that has not finished", async(function()
    local t = casync.spawn(casync.sleep, 0.01)
    assert.matches("result: the task has not finished", errmsg(t.result, t))
    casync.sleep(0)
    assert.matches("result: the task has not finished", errmsg(t.result, t))
    t:wait()
    assert.equal(0, select("#", t:result()))
  end))

  it("re-raises a failed task's error, and a cancelled task's cancellation",
     async(function()
    local e = {}
    local f = casync.spawn(function() error(e) end)
    local c = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    c:cancel()
    casync.wait({f, c})
    local ok, err = pcall(f.result, f)
    assert.is_false(ok)
    assert.equal(e, err)
    ok, err = pcall(c.result, c)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
  end))

  it("works outside a task", function()
    local t = casync.spawn(function() return "r" end)
    casync.run(function() end)
    assert.equal("r", t:result())
  end)
end)

describe("task:error", function()
  it("returns nil for a task that succeeded", async(function()
    local t = casync.spawn(function() return 1 end)
    t:wait()
    assert.is_nil(t:error())
    assert.equal(0, select("#", t:error()))
  end))

  it("returns the error of a failed task without raising", async(function()
    local e = setmetatable({}, {__tostring = function() return "custom" end})
    local t = casync.spawn(function() error(e) end)
    casync.sleep(0)
    assert.equal(e, t:error())
    local c = casync.spawn(casync.sleep, 1)
    c:cancel("why")
    casync.sleep(0)
    assert.equal("cancelled: why", tostring(c:error()))
  end))

  it("raises on a task that has not finished", async(function()
    local t = casync.spawn(casync.sleep, 0.01)
    assert.matches("error: the task has not finished", errmsg(t.error, t))
    t:wait()
  end))

  it("counts as observing the failure (nothing is reported)", function()
    local code, _, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local t = casync.spawn(function() error("seen") end)
        casync.sleep(0.01)
        assert(t:error():match("seen"))
      end)
      collectgarbage()
    ]])
    assert.equal(0, code)
    assert.equal("", err)
  end)
end)

describe("task:add_done_callback", function()
  it("calls cb(task) once the task has ended, callbacks in order", async(function()
    local log = {}
    local t = casync.spawn(function() casync.sleep(0.005); return "v" end)
    t:add_done_callback(function(x) log[#log+1] = {"first", x == t, x:result()} end)
    t:add_done_callback(function(x) log[#log+1] = {"second", x:done()} end)
    assert.same({}, log)
    t:wait()
    casync.sleep(0)
    assert.same({{"first", true, "v"}, {"second", true}}, log)
  end))

  it("is called for failed and cancelled tasks too", async(function()
    local log = {}
    local f = casync.spawn(function() error("x") end)
    local c = casync.spawn(casync.sleep, 10)
    f:add_done_callback(function(x) log[#log+1] = "failed:" .. tostring(x:error() ~= nil) end)
    c:add_done_callback(function(x) log[#log+1] = "cancelled:" .. tostring(x:cancelled()) end)
    casync.sleep(0)
    c:cancel()
    casync.sleep(0.001)
    table.sort(log)
    assert.same({"cancelled:true", "failed:true"}, log)
  end))

  it("on a finished task schedules the callback soon, not at once", async(function()
    local t = casync.spawn(function() return 1 end)
    t:wait()
    local called = 0
    t:add_done_callback(function() called = called + 1 end)
    assert.equal(0, called)
    casync.sleep(0)
    assert.equal(1, called)
    casync.sleep(0.001)
    assert.equal(1, called)
  end))

  it("on a finished, unreferenced task still runs the callback", async(function()
    local called = false
    do
      local t = casync.spawn(function() end)
      t:wait()
      t:add_done_callback(function() called = true end)
    end
    collectgarbage(); collectgarbage()
    casync.sleep(0.001)
    assert.is_true(called)
  end))

  it("may add another callback from a callback", async(function()
    local log = {}
    local t = casync.spawn(function() end)
    t:add_done_callback(function(x)
      log[#log+1] = "outer"
      x:add_done_callback(function() log[#log+1] = "inner" end)
    end)
    t:wait()
    casync.sleep(0.001)
    casync.sleep(0.001)
    assert.same({"outer", "inner"}, log)
  end))

  it("may spawn tasks but not wait (it does not run in a task)", async(function()
    local spawned, err
    local t = casync.spawn(function() end)
    t:add_done_callback(function()
      spawned = casync.spawn(function() return "from cb" end)
      err = select(2, pcall(casync.sleep, 0))
    end)
    t:wait()
    casync.sleep(0)
    assert.equal("from cb", spawned:wait())
    assert.matches("sleep: must be called inside a task", err)
  end))

  it("reports an error in a callback on stderr and goes on", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local t = casync.spawn(function() return 1 end)
        t:add_done_callback(function() error("callback broke") end)
        t:add_done_callback(function() print("second ran") end)
        t:wait()
        casync.sleep(0.01)
        print("main ran")
      end)
    ]])
    assert.equal(0, code)
    assert.equal("second ran\nmain ran\n", out)
    assert.matches("done callback of task #%d+ failed: .-callback broke", err)
    assert.matches("stack traceback", err)
  end)

  it("rejects a callback that is not callable", async(function()
    local t = casync.spawn(function() end)
    for _, v in ipairs({"s", 1, {}}) do
      assert.matches("bad argument #1 to 'add_done_callback' %(function expected, got "
                     .. type(v) .. "%)", errmsg(function() t:add_done_callback(v) end))
    end
    assert.matches("function expected, got no value",
                   errmsg(function() t:add_done_callback() end))
    assert.matches("casync.Task expected", errmsg(t.add_done_callback, 1, print))
    t:wait()
  end))
end)

describe("task:traceback", function()
  it("is nil for a task that succeeded", async(function()
    local t = casync.spawn(function() return 1 end)
    t:wait()
    assert.is_nil(t:traceback())
  end))

  it("shows where the task failed and where it was spawned", async(function()
    local here = debug.getinfo(1, "l").currentline
    local function inner() error("deep failure") end
    local function outer() casync.sleep(0); inner() end
    local t = casync.spawn(outer)
    pcall(t.wait, t)
    local tb = t:traceback()
    assert.matches("^stack traceback:", tb)
    assert.matches("task_spec%.lua:" .. (here + 1) .. ": in upvalue 'inner'", tb)
    assert.matches("task_spec%.lua:" .. (here + 2) .. ": in function", tb)
    assert.matches("task #" .. t:id() .. " was spawned at .-task_spec%.lua:" .. (here + 3), tb)
    -- it ends at the task's function: no '[C]: in ?' of casync's entry frames
    assert.is_nil(tb:find("[C]: in ?", 1, true))
  end))

  it("of a task that re-raised another's error shows both", async(function()
    local child = casync.spawn(function() casync.sleep(0); error("child failed") end)
    local parent = casync.spawn(function() return child:wait() end)
    pcall(parent.wait, parent)
    local tb = parent:traceback()
    assert.matches("raised again from task #" .. child:id() .. ", which failed here:", tb)
    assert.matches("task #" .. child:id() .. " was spawned at", tb)
    assert.matches("task #" .. parent:id() .. " was spawned at", tb)
  end))
end)

describe("task:id and tostring", function()
  it("numbers tasks uniquely, in spawn order", async(function()
    local a, b = casync.spawn(function() end), casync.spawn(function() end)
    assert.equal("number", math.type(a:id()) and "number")
    assert.is_true(b:id() > a:id())
    a:wait(); b:wait()
  end))

  it("tostring tells the state", async(function()
    local t = casync.spawn(function()
      assert.matches("%(running%)$", tostring(casync.current()))
      casync.sleep(0.01)
    end)
    assert.matches("%(ready%)$", tostring(t))
    casync.sleep(0)
    assert.matches("%(waiting in sleep%)$", tostring(t))
    t:wait()
    assert.matches("%(done%)$", tostring(t))
    local f = casync.spawn(function() error("x") end)
    local c = casync.spawn(function() end)
    c:cancel()
    casync.wait({f, c})
    f:error()
    assert.matches("%(failed%)$", tostring(f))
    assert.matches("%(cancelled%)$", tostring(c))
  end))
end)

describe("coroutines inside a task", function()
  it("a plain coroutine.yield() requeues the task behind the others",
     async(function()
    local log = {}
    local a = casync.spawn(function()
      for i = 1, 3 do log[#log+1] = "a" .. i; coroutine.yield("ignored") end
    end)
    local b = casync.spawn(function()
      for i = 1, 3 do log[#log+1] = "b" .. i; casync.sleep(0) end
    end)
    a:wait(); b:wait()
    assert.same({"a1", "b1", "a2", "b2", "a3", "b3"}, log)
  end))

  it("plain coroutines used inside a task work as usual", async(function()
    local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
    local sum = 0
    for _ = 1, 3 do casync.sleep(0); sum = sum + gen() end
    assert.equal(6, sum)
  end))

  it("suspending from a nested plain coroutine is a clear error", async(function()
    local t = casync.spawn(function() end)
    for name, f in pairs({
      sleep = function() casync.sleep(0) end,
      wait = function() t:wait() end,
      gather = function() casync.gather(t) end,
      wait_for = function() casync.wait_for(t, 1) end,
    }) do
      local ok, err = coroutine.resume(coroutine.create(f))
      assert.is_false(ok)
      assert.matches(name .. ": cannot suspend a coroutine that casync does not manage", err)
    end
    t:wait()
  end))
end)

describe("casync.call_later", function()
  it("runs fn(...) as a task once the time has passed", async(function()
    local t0 = casync.now()
    local at
    local t = casync.call_later(0.02, function(a, b) at = casync.now(); return a + b end, 1, 2)
    assert.matches("waiting in call_later", tostring(t))
    assert.equal(3, t:wait())
    assert.is_true(at - t0 >= 0.02 - 1e-6)
  end))

  it("is called off by cancelling its task", async(function()
    local ran = false
    local t = casync.call_later(0.01, function() ran = true end)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    casync.sleep(0.02)
    assert.is_false(ran)
  end))

  it("accepts a negative time (soon) and a huge one (never, unless cancelled)",
     async(function()
    assert.equal("soon", casync.call_later(-1, function() return "soon" end):wait())
    local t = casync.call_later(math.huge, print)
    casync.sleep(0.001)
    assert.is_false(t:done())
    t:cancel()
    assert.is_true(select(2, pcall(t.wait, t)).kind == "cancelled")
  end))

  it("checks its arguments", async(function()
    assert.matches("bad argument #1 to 'call_later' %(number expected, got string%)",
                   errmsg(function() casync.call_later("x", print) end))
    assert.matches("bad argument #1 to 'call_later' %(number expected, got NaN%)",
                   errmsg(function() casync.call_later(0/0, print) end))
    assert.matches("bad argument #2 to 'call_later' %(function expected, got no value%)",
                   errmsg(function() casync.call_later(1) end))
  end))
end)
