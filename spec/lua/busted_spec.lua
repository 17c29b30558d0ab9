-- lua/casync/busted.lua: async specs for users.  Each wrapped body runs as a
-- task in casync.run with a timeout; what it leaves behind (a task still
-- running, a failure nothing observed, a handle left open) fails the test.
-- The `it` bodies here are plain, so that they can call a wrapped body
-- and look at how it fails.
local casync = require "casync"
local cb = require "casync.busted"

local errmsg = helper.errmsg

-- the error a wrapped body raises (fails if it passes)
local function failure(fn, opts)
  local ok, err = pcall(cb.async(fn, opts))
  assert(not ok, "expected the test to fail")
  return tostring(err)
end

describe("casync.busted.async", function()
  it("runs the body as a task and passes its arguments and results", function()
    local ran_in
    local a, b = cb.async(function(x)
      ran_in = casync.current()
      casync.sleep(0.01)
      return x, "done"
    end)("arg")
    assert.is_not_nil(ran_in)
    assert.equal("arg", a)
    assert.equal("done", b)
  end)

  it("re-raises the body's error unchanged", function()
    local e = {kind = "mine"}
    local ok, err = pcall(cb.async(function() casync.sleep(0) error(e) end))
    assert.is_false(ok)
    assert.equal(e, err)
    assert.matches("spec/lua/busted_spec.lua:%d+: plain",
                   failure(function() error("plain") end))
  end)

  it("fails a test that leaves a task running, and cancels it", function()
    local left, unwound
    local err = failure(function()
      left = casync.spawn({name = "forgotten"}, function()
        local _ <close> = setmetatable({}, {__close = function() unwound = true end})
        casync.sleep(60)
      end)
      casync.sleep(0.01)
    end)
    assert.matches("a task was still running when the test ended %(cancelled%)", err)
    if casync.tasks then assert.matches("task #%d+ 'forgotten'", err) end
    assert.is_true(left:cancelled())
    assert.is_true(unwound)
    assert.matches("2 tasks were still running", failure(function()
      casync.spawn(casync.sleep, 60)
      casync.spawn(casync.sleep, 60)
    end))
  end)

  it("lets tasks about to end finish, and allows leaks when told", function()
    cb.async(function()
      local t = casync.spawn(casync.sleep, 60)
      casync.sleep(0)
      t:cancel() -- still unwinding when the body returns
    end)()
    cb.async(function() casync.spawn(casync.sleep, 60) end, {leaks = false})()
  end)

  it("fails a test when a task fails and nothing waits for it", function()
    local err = failure(function()
      casync.spawn({name = "lost"}, function() error("nobody saw this") end)
      casync.sleep(0.01)
    end)
    assert.matches("a task failed and nothing waited for it:\n" ..
                   "task #%d+ 'lost' failed and nothing waited for it: " ..
                   "spec/lua/busted_spec.lua:%d+: nobody saw this\nstack traceback:", err)
    -- one dropped on the floor and collected during the test too
    err = failure(function()
      casync.spawn(function() error("collected") end)
      casync.sleep(0.01)
      collectgarbage()
      collectgarbage()
    end)
    assert.matches("failed and nothing waited for it: .*collected", err)
    -- and a done callback that fails
    err = failure(function()
      local t = casync.spawn(function() end)
      t:add_done_callback(function() error("in the callback") end)
      t:wait()
      casync.sleep(0.01)
    end)
    assert.matches("a done callback of task #%d+ failed: .*in the callback", err)
    -- a failure that was waited for is not one
    cb.async(function()
      local t = casync.spawn(function() error("seen") end)
      assert.is_false(pcall(t.wait, t))
    end)()
  end)

  it("puts the previous on_unobserved handler back", function()
    local mine = function() end
    local before = casync.on_unobserved(mine)
    cb.async(function() end)()
    pcall(cb.async(function() error("x") end))
    assert.equal(mine, casync.on_unobserved(before))
  end)

  it("fails a test that runs past its timeout, and cancels it", function()
    local cancelled
    local t0 = os.time()
    local err = failure(function()
      local ok, e = pcall(casync.sleep, 60)
      cancelled = not ok and e.kind
      error(e, 0)
    end, {timeout = 0.1})
    assert.matches("the test did not finish within 0.1 s %(opts.timeout%)", err)
    assert.equal("cancelled", cancelled)
    assert.is_true(os.time() - t0 < 5)
  end)

  it("runs a ten-minute sleep at once on the virtual clock", function()
    local t0 = os.clock()
    local took = cb.async(function()
      local start = casync.now()
      casync.sleep(600)
      local d <close> = casync.timeout(3600)
      casync.wait_for(function() casync.sleep(120) end, 300)
      return casync.now() - start
    end, {clock = "virtual", timeout = 5})()
    assert.near(720, took, 1)
    assert.is_true(os.clock() - t0 < 1, "took " .. os.clock() - t0 .. " s of CPU")
  end)

  it("measures the timeout in real time on the virtual clock", function()
    -- a signal wait is outside the program: virtual time does not jump, and
    -- only a real-time alarm can end the test
    local start = casync.now()
    local err = failure(function()
      casync.signal.wait("SIGUSR2")
    end, {clock = "virtual", timeout = 0.2})
    assert.matches("the test did not finish within 0.2 s of real time", err)
    assert.near(0.2, casync.now() - start, 0.5)
    casync.signal.reset("SIGUSR2")
  end)

  it("passes the seed on: the same seed, the same order of ready tasks", function()
    local function order(seed)
      return cb.async(function()
        local seen = {}
        local tasks = {}
        for i = 1, 8 do
          tasks[i] = casync.spawn(function() casync.sleep(0) seen[#seen + 1] = i end)
        end
        casync.gather(tasks)
        return table.concat(seen, " ")
      end, {seed = seed})()
    end
    assert.equal(order(7), order(7))
    local distinct = {}
    for s = 1, 6 do distinct[order(s)] = true end
    assert.is_true(next(distinct, next(distinct)) ~= nil, "every seed gave the same order")
  end)

  it("fails a test that leaves a handle open (test builds)", function()
    if not casync._debug then
      pending("casync._debug is compiled in test builds only (-DCASYNC_TESTING=ON)")
      return
    end
    local srv
    local err = failure(function()
      srv = assert(casync.tcp.listen("127.0.0.1", 0, function() end))
    end)
    assert.equal("handles still open after the test: server 1", err)
    srv:close()
    cb.async(function() end)() -- closes on the next turns
  end)

  it("checks its arguments", function()
    assert.matches("bad argument #1 to 'async' %(function expected, got no value%)",
                   errmsg(cb.async))
    assert.matches("bad argument #2 to 'async' %(table expected, got number%)",
                   errmsg(cb.async, print, 5))
    assert.matches("bad argument #2 to 'async' %(opts.timeout must be a positive number of seconds%)",
                   errmsg(cb.async, print, {timeout = 0}))
    assert.matches("bad argument #2 to 'async' %(opts.clock must be \"virtual\" or \"real\"%)",
                   errmsg(cb.async, print, {clock = "fake"}))
    assert.matches("bad argument #2 to 'async' %(opts.seed must be an integer%)",
                   errmsg(cb.async, print, {seed = 1.5}))
    assert.matches("bad argument #2 to 'async' %(unknown option 'tiemout'%)",
                   errmsg(cb.async, print, {tiemout = 1}))
    assert.matches("bad argument #1 to 'it' %(string expected, got function%)",
                   errmsg(cb.it, print))
    assert.matches("bad argument #3 to 'it' %(opts.preempt must be a positive number of seconds%)",
                   errmsg(cb.it, "x", print, {preempt = -1}))
    local _, err = pcall(function() cb.async() end)
    assert.matches("busted_spec.lua:%d+: bad argument", err)
    assert.matches("bad argument #1 to '[%w.]*on_unobserved' %(function expected, got number%)",
                   errmsg(casync.on_unobserved, 3))
  end)
end)

-- casync.busted.it: busted's `it` with an async body
cb.it("registers a test whose body runs as a task", function()
  assert.is_not_nil(casync.current())
  casync.sleep(0.01)
end)

cb.it("takes the options too", function()
  casync.sleep(3600)
end, {clock = "virtual"})
