-- cscope.c, deadline.c: cancel scopes and deadlines (casync.timeout,
-- fail_after, move_on_after, deadline, shield, checkpoint).
local casync = require "casync"
local async, errmsg = helper.async, helper.errmsg

local function badarg(n, fname, msg)
  return ("bad argument #%d to '[%%w%%._]*%s' %%(%s%%)"):format(n, fname, msg)
end

describe("casync.fail_after", function()
  it("returns fn's results when it finishes in time", async(function()
    assert.same({1, 2}, {casync.fail_after(1, function(a) casync.sleep(0.01); return a, 2 end, 1)})
  end))

  it("cancels fn at its wait when the deadline passes; raises kind timeout",
     async(function()
    local t0, cleaned = casync.now(), false
    local ok, err = pcall(casync.fail_after, 0.05, function()
      local _ <close> = setmetatable({}, {__close = function() cleaned = true end})
      casync.sleep(10)
    end)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.equal("ETIMEDOUT", err.code)
    assert.equal("fail_after: timed out after 0.05 s", err.message)
    assert.is_true(cleaned)
    local dt = casync.now() - t0
    assert.is_true(dt >= 0.045 and dt < 1, "took " .. dt)
  end))

  it("every kind of wait honours the deadline, with no timeout of its own",
     async(function()
    local ch, sem, ev, q = casync.channel(), casync.semaphore(0), casync.event(),
                           casync.queue(1)
    q:put(1)
    local waits = {
      sleep = function() casync.sleep(10) end,
      recv = function() ch:recv() end,
      send = function() ch:send(1) end,
      acquire = function() sem:acquire() end,
      event = function() ev:wait() end,
      put = function() q:put(2) end,
      task = function() casync.spawn(casync.sleep, 0.2):wait() end,
      gather = function() casync.gather(function() casync.sleep(10) end) end,
      select = function() casync.select({{ch, "recv"}}) end,
      join = function() q:join() end,
    }
    for name, w in pairs(waits) do
      local ok, err = pcall(casync.fail_after, 0.01, w)
      assert.is_false(ok, name)
      assert.equal("timeout", err.kind, name .. ": " .. tostring(err))
    end
    -- nothing was left waiting anywhere
    assert.is_false(ch:try_send(1))
    assert.is_nil(sem:try_acquire())
    while casync._stats().live > 2 do casync.sleep(0.001) end
  end))

  it("a nested deadline never extends an outer one", async(function()
    local t0 = casync.now()
    local ok, err = pcall(casync.fail_after, 0.05, function()
      return casync.fail_after(10, function() casync.sleep(10) end)
    end)
    assert.is_false(ok)
    assert.equal("fail_after: timed out after 0.05 s", err.message)
    assert.is_true(casync.now() - t0 < 1)
  end))

  it("an inner deadline that passes first is the inner one's timeout",
     async(function()
    local ok, err = pcall(casync.fail_after, 10, function()
      return casync.fail_after(0.02, function() casync.sleep(10) end)
    end)
    assert.is_false(ok)
    assert.equal("fail_after: timed out after 0.02 s", err.message)
  end))

  it("keeps the traceback of an error fn raises, and raises it unchanged",
     async(function()
    local e = {}
    local t = casync.spawn(function()
      casync.fail_after(1, function() error(e) end)
    end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal(e, err)
    assert.matches("deadline_spec.lua", t:traceback())
  end))

  it("checks its arguments and must run in a task", async(function()
    assert.matches(badarg(1, "fail_after", "number expected, got string"),
                   errmsg(casync.fail_after, "soon", print))
    assert.matches(badarg(1, "fail_after", "number expected, got NaN"),
                   errmsg(casync.fail_after, 0 / 0, print))
    assert.matches(badarg(2, "fail_after", "function expected, got no value"),
                   errmsg(casync.fail_after, 1))
    assert.matches("fail_after: must be called inside a task",
                   select(3, helper.lua([[require("casync").fail_after(1, print)]])))
  end))
end)

describe("casync.move_on_after", function()
  it("returns true and fn's results, or false when the deadline cut it short",
     async(function()
    assert.same({true, "a", "b"}, {casync.move_on_after(1, function() return "a", "b" end)})
    local t0 = casync.now()
    assert.same({false}, {casync.move_on_after(0.02, function() casync.sleep(10) end)})
    assert.is_true(casync.now() - t0 < 1)
  end))

  it("a negative or zero time cancels at the first wait", async(function()
    local reached = false
    assert.is_false(casync.move_on_after(-1, function()
      reached = true
      casync.sleep(0)
      error("not reached")
    end))
    assert.is_true(reached)
  end))

  it("nil and math.huge mean no deadline", async(function()
    assert.is_true(casync.move_on_after(nil, casync.sleep, 0.01))
    assert.is_true(casync.move_on_after(math.huge, casync.sleep, 0.01))
  end))
end)

describe("casync.timeout", function()
  it("as a <close> value: the block ends with kind timeout", async(function()
    local reached = false
    local ok, err = pcall(function()
      local d <close> = casync.timeout(0.02)
      assert.is_true(d:deadline() > casync.now())
      casync.sleep(10)
      reached = true
    end)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.equal("scope: timed out after 0.02 s", err.message)
    assert.is_false(reached)
  end))

  it("in time, the block goes on as if it were not there", async(function()
    local d <close> = casync.timeout(1)
    casync.sleep(0.001)
    assert.is_false(d:cancelled())
  end))

  it("d:cancel() cancels the block (nil: a scope without deadline)",
     async(function()
    local ok, err = pcall(function()
      local d <close> = casync.timeout(nil)
      assert.is_nil(d:deadline())
      casync.spawn(function() d:cancel() end)
      casync.sleep(10)
    end)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
  end))
end)

describe("cancellation is a state of the scope", function()
  it("a swallowed cancellation is raised again at the next wait inside",
     async(function()
    local swallowed, after = 0, false
    local ok, err = pcall(casync.fail_after, 0.02, function()
      for _ = 1, 3 do
        if not pcall(casync.sleep, 10) then swallowed = swallowed + 1 end
      end
      after = true
      casync.sleep(10)
    end)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.equal(3, swallowed) -- every wait raised at once
    assert.is_true(after)
  end))

  it("checkpoint() raises it too, and lets the others run", async(function()
    local ran = false
    casync.spawn(function() ran = true end)
    casync.checkpoint()
    assert.is_true(ran)
    assert.is_false(casync.move_on_after(0, function()
      casync.checkpoint()
      error("not reached")
    end))
  end))

  it("an outer cancel arriving after an inner timeout fired wins, " ..
     "and stays a cancellation", async(function()
    -- the outer scope's deadline passes while the inner one's
    -- cancellation is already on its way
    local ok, err = pcall(casync.fail_after, 0.05, function()
      return casync.move_on_after(0.01, function()
        pcall(casync.sleep, 10)                            -- inner fired
        casync.shield(function() casync.sleep(0.1) end)  -- outer fires
        casync.sleep(0)
      end)
    end)
    assert.is_false(ok)
    assert.equal("fail_after: timed out after 0.05 s", err.message)
    -- task:cancel from outside: never turned into a timeout
    local t = casync.spawn(function()
      return casync.fail_after(0.01, function()
        local _, inner = pcall(casync.sleep, 10)
        casync.shield(function() casync.sleep(0.05) end)
        error(inner)
      end)
    end)
    casync.sleep(0.03)
    t:cancel("from outside")
    ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.is_true(t:cancelled())
  end))

  it("a cancellation from outside passes through a deadline unchanged",
     async(function()
    local t = casync.spawn(function()
      return casync.move_on_after(10, function() casync.sleep(10) end)
    end)
    casync.sleep(0.01)
    t:cancel("stop")
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal("stop", err.message)
  end))
end)

describe("casync.shield", function()
  it("runs fn to its end inside a cancelled scope; the next wait raises",
     async(function()
    local done, t0 = false, casync.now()
    local ok, err = pcall(casync.fail_after, 0.01, function()
      casync.shield(function() casync.sleep(0.05); done = true end)
      casync.sleep(0)
    end)
    assert.is_true(done)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_true(casync.now() - t0 >= 0.045)
  end))

  it("keeps task:cancel out until it ends", async(function()
    local steps = {}
    local t = casync.spawn(function()
      casync.shield(function()
        casync.sleep(0.03)
        steps[#steps + 1] = "shielded"
      end)
      casync.sleep(10)
      steps[#steps + 1] = "not reached"
    end)
    casync.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.same({"shielded"}, steps)
  end))

  it("has a deadline of its own (opts.timeout)", async(function()
    local ok, err = pcall(casync.shield, {timeout = 0.01}, casync.sleep, 10)
    assert.is_false(ok)
    assert.equal("shield: timed out after 0.01 s", err.message)
    assert.matches(badarg(1, "shield", "opts.timeout must be a number"),
                   errmsg(casync.shield, {timeout = "x"}, print))
  end))
end)

describe("casync.deadline", function()
  it("is the innermost deadline, on casync.now()'s clock, or nil", async(function()
    assert.is_nil(casync.deadline())
    casync.fail_after(1, function()
      local d = casync.deadline()
      assert.is_true(d > casync.now() and d <= casync.now() + 1)
      casync.fail_after(10, function()
        assert.equal(d, casync.deadline()) -- never extended
      end)
      casync.fail_after(0.5, function()
        assert.is_true(casync.deadline() < d)
      end)
      casync.shield(function() assert.is_nil(casync.deadline()) end)
    end)
    assert.is_nil(casync.deadline())
  end))

  it("is nil outside tasks", function()
    assert.is_nil(casync.deadline())
  end)
end)
