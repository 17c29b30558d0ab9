-- Regressions of the scheduler and the primitives on it (issue 8).
local casync = require "casync"
local async, errmsg = helper.async, helper.errmsg

describe("regress: a task's coroutine closed from outside", function()
  it("leaves the channel's wait list: the next receiver gets a real value",
     async(function()
    local c = casync.channel()
    local co
    local t = casync.spawn(function()
      co = coroutine.running()
      c:send("lost?")
    end)
    casync.sleep(0) -- t waits in send
    assert.is_true(coroutine.close(co))
    casync.spawn(function() c:send("real") end)
    local v, ok = c:recv()
    assert.equal("real", v)
    assert.is_true(ok)
    -- and t ends, cancelled, saying why
    local ok2, err = pcall(t.wait, t)
    assert.is_false(ok2)
    assert.equal("cancelled", err.kind)
    assert.matches("closed from outside", err.message)
    assert.is_true(t:cancelled())
  end))

  it("leaves a semaphore's wait list: the permit goes to the next waiter",
     async(function()
    local sem = casync.semaphore(1)
    local mine = sem:acquire()
    local co
    casync.spawn(function()
      co = coroutine.running()
      sem:acquire()
    end)
    local got
    casync.sleep(0)
    assert.is_true(coroutine.close(co))
    local t = casync.spawn(function() got = sem:acquire() end)
    casync.sleep(0)
    mine:release() -- to t: the closed task no longer waits
    t:wait()
    assert.is_not_nil(got)
    got:release()
    assert.equal(1, sem:value())
  end))

  it("leaves every case of a select, and a sleep ends it when it wakes",
     async(function()
    local a, b = casync.channel(), casync.channel()
    local co1, co2
    local t1 = casync.spawn(function()
      co1 = coroutine.running()
      casync.select({{a, "recv"}, {b, "send", "from select"}})
    end)
    local t2 = casync.spawn(function()
      co2 = coroutine.running()
      casync.sleep(0.01)
    end)
    casync.sleep(0)
    coroutine.close(co1)
    coroutine.close(co2)
    casync.spawn(function() a:send("to a") end)
    casync.spawn(function() b:send("to b") end)
    assert.equal("to b", (b:recv())) -- not the closed select's value
    assert.equal("to a", (a:recv()))
    assert.is_false(pcall(t1.wait, t1))
    assert.is_false(pcall(t2.wait, t2))
    assert.is_true(t1:cancelled() and t2:cancelled())
  end))
end)

describe("regress: call_later", function()
  it("does not walk the ready queue: 10,000 calls with 100,000 tasks ready",
     async(function()
    local n = 0
    for _ = 1, 100000 do casync.spawn(function() n = n + 1 end) end
    local t0 = os.clock()
    local later = {}
    for i = 1, 10000 do later[i] = casync.call_later(10, function() end) end
    local dt = os.clock() - t0
    for i = 1, 10000 do later[i]:cancel() end
    casync.sleep(0)
    -- it took 15-22 s when each call searched the queue; linear work is
    -- a few milliseconds (generous: 2 s)
    assert.is_true(dt < 2, ("10,000 call_later took %.2f s"):format(dt))
    while n < 100000 do casync.sleep(0) end
    for i = 1, 10000 do pcall(later[i].wait, later[i]) end
  end, 60))
end)

describe("regress: buffered channels are first come, first served", function()
  it("a blocked sender moves into the slot a receive frees, so try_send " ..
     "cannot overtake it", async(function()
    local c = casync.channel(1)
    assert.is_true(c:try_send(1)) -- the buffer is full
    local t = casync.spawn(function() c:send(2) end)
    casync.sleep(0) -- t waits in send
    assert.equal(1, (c:recv()))
    -- the slot went to t's value at once: a newcomer finds it full
    assert.is_false(c:try_send(3))
    assert.equal(1, c:len())
    assert.equal(2, (c:recv()))
    t:wait()
  end))
end)

describe("regress: names in errors", function()
  it("cond:acquire(bad) names acquire, not '?'", async(function()
    local cond = casync.condition()
    local err = errmsg(function() local _ = cond:acquire("soon") end)
    assert.matches("bad argument #1 to 'acquire'", err, 1, true)
    err = errmsg(function() local _ = cond:acquire(0 / 0) end)
    assert.matches("bad argument #1 to 'acquire' (number expected, got NaN)",
                   err, 1, true)
  end))
end)

describe("regress: a task's metamethods called by hand", function()
  it("__tostring with something else than a task raises, not crash", async(function()
    local mt = getmetatable(casync.spawn(function() end))
    for _, v in ipairs({5, "x", {}, true, io.stdout}) do
      local err = errmsg(mt.__tostring, v)
      assert.matches("casync.Task expected", err, 1, true)
    end
    -- tasks have no finalizer; a failed task's sentinel has one (it reports
    -- the failure if nobody observed it), and it checks its argument too
    assert.is_nil(mt.__gc)
    local fmt = debug.getregistry()["casync.TaskFailure"]
    for _, v in ipairs({5, "x", {}, true, io.stdout}) do
      local err = errmsg(fmt.__gc, v)
      assert.matches("casync.TaskFailure expected", err, 1, true)
    end
    local err = errmsg(fmt.__gc)
    assert.matches("casync.TaskFailure expected, got no value", err, 1, true)
  end))
end)

describe("regress: task:info of a task that has ended", function()
  it("shows its context values (it read them through the task's anchor, " ..
     "gone once the task ended: a crash)", async(function()
    local t = casync.spawn(function() casync.context.set("user", "ana") end)
    t:wait()
    collectgarbage()
    local others = {}
    for i = 1, 20 do others[i] = casync.spawn(casync.sleep, 0) end -- reuse anchors
    assert.same({user = "ana"}, t:info().context)
    for _, o in ipairs(others) do o:wait() end
  end))
end)
