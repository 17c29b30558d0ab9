-- casync.run's testing options: {clock = "virtual"} (timer.c), {seed = n}
-- and CASYNC_SEED (sched.c), {preempt = s} (sched.c); casync.advance.
local casync = require "casync"

describe("the virtual clock", function()
  it("a 10-minute sleep finishes in well under a second", function()
    local t0 = os.clock()
    local wall0 = os.time()
    local slept = casync.run(function()
      local v0 = casync.now()
      casync.sleep(600)
      return casync.now() - v0
    end, {clock = "virtual"})
    assert.is_true(slept >= 600 and slept < 600.1, "slept " .. slept)
    assert.is_true(os.clock() - t0 < 0.5)
    assert.is_true(os.time() - wall0 <= 1)
  end)

  it("deadlines, wait_for, call_later, the rate limiter and retry's " ..
     "backoff run instantly, and in order", function()
    local log = {}
    local t0 = os.clock()
    casync.run(function()
      local v0 = casync.now()
      local function at() return math.floor(casync.now() - v0 + 0.5) end
      assert.is_false(casync.move_on_after(30, casync.sleep, 3600))
      log[#log + 1] = "deadline at " .. at()
      local ok, err = pcall(casync.wait_for, function() casync.sleep(100) end, 60)
      log[#log + 1] = ("wait_for %s at %d"):format(err.kind, at())
      casync.call_later(10, function() log[#log + 1] = "later at " .. at() end):wait()
      local limiter = casync.rate_limiter(2, 60) -- 2 per minute
      for _ = 1, 5 do limiter:acquire() end
      log[#log + 1] = "5 calls at 2/min done at " .. at()
      local tries = 0
      casync.retry(function()
        tries = tries + 1
        if tries < 4 then error("flaky") end
      end, {attempts = 5, base = 10})
      log[#log + 1] = ("retry: %d tries by %d"):format(tries, at())
    end, {clock = "virtual"})
    assert.is_true(os.clock() - t0 < 0.5, "took " .. (os.clock() - t0))
    assert.equal("deadline at 30", log[1])
    assert.equal("wait_for timeout at 90", log[2])
    assert.equal("later at 100", log[3])
    assert.matches("^5 calls at 2/min done at 2[2-4]%d$", log[4]) -- two windows
    assert.matches("^retry: 4 tries by 2[89]%d$", log[5]) -- 10 + 20 + 40 s later
  end)

  it("does not jump while a task waits on I/O: that runs in real time",
     function()
    local r = casync.run(function()
      local v0 = casync.now()
      local p = casync.process.spawn({"sh", "-c", "sleep 0.2"})
      local sleeper = casync.spawn(casync.sleep, 100) -- would jump at once
      p:wait()
      local during = casync.now() - v0
      sleeper:cancel()
      return during
    end, {clock = "virtual"})
    assert.is_true(r >= 0.19 and r < 5, "virtual time during the I/O: " .. r)
  end)

  it("casync.advance moves it by hand and fires what is due", function()
    local fired = false
    casync.run(function()
      casync.call_later(50, function() fired = true end)
      casync.sleep(0)
      casync.advance(49)
      casync.sleep(0)
      assert.is_false(fired)
      casync.advance(1)
      casync.sleep(0)
      casync.sleep(0)
      assert.is_true(fired)
    end)
  end)

  it("a deadlock is still a deadlock", function()
    local ok, err = pcall(casync.run, function() casync.channel():recv() end,
                          {clock = "virtual"})
    assert.is_false(ok)
    assert.equal("deadlock", err.kind)
  end)

  it("checks its options; a table with other keys is fn's argument", function()
    assert.matches("opts.clock must be", select(2, pcall(casync.run, print, {clock = "x"})))
    assert.matches("opts.seed must be an integer", select(2, pcall(casync.run, print, {seed = 1.5})))
    assert.matches("opts.preempt must be", select(2, pcall(casync.run, print, {preempt = -1})))
    local got = casync.run(function(t) return t.clock end, {clock = "virtual", other = 1})
    assert.equal("virtual", got)
  end)
end)

describe("seeded schedules", function()
  -- task A reads, suspends, writes back (a lost update if B runs in
  -- between); B adds without suspending
  local function racy()
    local counter = 0
    local a = casync.spawn(function()
      local v = counter
      casync.sleep(0)
      counter = v + 1
    end)
    local b = casync.spawn(function() counter = counter + 10 end)
    casync.gather(a, b)
    return counter
  end

  it("a race shows under some seeds, and a seed replays it exactly", function()
    local results = {}
    for seed = 1, 40 do results[seed] = casync.run(racy, {seed = seed}) end
    local lost, fine
    for seed, r in ipairs(results) do
      if r == 1 and not lost then lost = seed end
      if r == 11 and not fine then fine = seed end
    end
    assert.is_not_nil(lost, "no seed showed the lost update")
    assert.is_not_nil(fine, "no seed ran them in the other order")
    for _ = 1, 5 do
      assert.equal(1, casync.run(racy, {seed = lost}))
      assert.equal(11, casync.run(racy, {seed = fine}))
    end
  end)

  it("CASYNC_SEED sets it from outside; a failure names the seed", function()
    local code, out, err = helper.sh(("CASYNC_SEED=7 LUA_PATH=%q LUA_CPATH=%q lua5.4 -e %q"):format(
      helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;",
      helper.build .. "/lib/?.so;;", [[
        local casync = require "casync"
        local order = {}
        casync.run(function()
          local ts = {}
          for i = 1, 6 do ts[i] = casync.spawn(function() order[#order + 1] = i end) end
          casync.gather(ts)
        end)
        print(table.concat(order))
        casync.run(function() error("boom") end)]]))
    assert.equal(1, code)
    local first = out:match("^(%d+)")
    assert.equal(6, #first)
    assert.matches("the run failed under seed 7 %(CASYNC_SEED=7 replays it%)", err)
    local _, out2 = helper.sh(("CASYNC_SEED=7 LUA_PATH=%q LUA_CPATH=%q lua5.4 -e %q"):format(
      helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;",
      helper.build .. "/lib/?.so;;", [[
        local casync = require "casync"
        local order = {}
        casync.run(function()
          local ts = {}
          for i = 1, 6 do ts[i] = casync.spawn(function() order[#order + 1] = i end) end
          casync.gather(ts)
        end)
        print(table.concat(order))]]))
    assert.equal(first, out2:match("^(%d+)"))
  end)
end)

describe("preemption, opt in", function()
  local function busy_and_ticker(opts)
    return casync.run(function()
      local ticks = 0
      local ticker = casync.spawn(function()
        while true do casync.sleep(0.01); ticks = ticks + 1 end
      end)
      casync.sleep(0)
      local t = os.clock()
      local x = 0
      while os.clock() - t < 0.3 do x = x + 1 end -- a runaway pure-Lua loop
      ticker:cancel()
      return ticks
    end, opts)
  end

  it("with {preempt = 0.01} a busy loop and a ticker share the loop", function()
    local ticks = busy_and_ticker({preempt = 0.01})
    assert.is_true(ticks >= 5, "the ticker ticked " .. ticks .. " times")
  end)

  it("off (the default), the ticker freezes while the loop runs", function()
    assert.equal(0, busy_and_ticker())
  end)
end)
