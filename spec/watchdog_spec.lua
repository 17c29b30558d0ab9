-- watchdog.c: casync.watchdog reports a task that runs too long without
-- suspending, with its traceback taken while it still runs; silent for
-- tasks that suspend; on by default with CASYNC_DEBUG=1.
local casync = require "casync"

local errmsg = helper.errmsg
local RUNNER = helper.build .. "/casync"

after_each(function() casync.watchdog(false) end)

-- busy(seconds): keeps the CPU without suspending
local function busy(seconds)
  local t0 = casync.now()
  while casync.now() - t0 < seconds do end
end

local function crunch_numbers() busy(0.25) end

-- Runs script in a child runner; its exit code, stdout and stderr.
local function child(script, env)
  return casync.run(function()
    local r = assert(casync.process.run({RUNNER, "-e", script}, {env = env}))
    return r.code, r.stdout, r.stderr
  end)
end

describe("watchdog", function()
  it("reports a blocked task live, with its traceback and name", async(function()
    local reports = {}
    casync.watchdog{threshold = 0.05, on_block = function(r) reports[#reports + 1] = r end}
    local ticks = 0
    local ticker = casync.spawn(function()
      while true do casync.sleep(0.005); ticks = ticks + 1 end
    end)
    local t = casync.spawn({name = "cruncher"}, function() crunch_numbers() end)
    t:wait()
    casync.sleep(0.02) -- on_block is called from the loop afterwards
    ticker:cancel()
    assert.equal(1, #reports)
    local r = reports[1]
    assert.equal(t, r.task)
    assert.is_true(r.elapsed >= 0.05 and r.elapsed < 0.25, r.elapsed)
    -- taken while it ran: the busy loop and its callers are on it
    assert.truthy(r.traceback:find("in upvalue 'busy'", 1, true), r.traceback)
    assert.truthy(r.traceback:find("in upvalue 'crunch_numbers'", 1, true), r.traceback)
    assert.truthy(r.message:find("^casync: task #%d+ 'cruncher' has run %d+ ms without suspending"), r.message)
    local on, n = casync.watchdog()
    assert.is_true(on)
    assert.equal(1, n)
  end))

  it("stays silent for tasks that suspend, however many and however long", async(function()
    local reports = 0
    casync.watchdog{threshold = 0.05, on_block = function() reports = reports + 1 end}
    local tasks = {}
    for i = 1, 200 do
      tasks[i] = casync.spawn(function()
        for _ = 1, 20 do
          busy(0.0005) -- short bursts of work between suspensions
          casync.sleep(0)
        end
        casync.sleep(0.01 * (i % 10))
      end)
    end
    casync.gather(tasks)
    casync.sleep(0.2)
    assert.equal(0, reports)
  end, 20))

  it("reports each long run once, and every long run", async(function()
    local reports = {}
    casync.watchdog{threshold = 0.03, on_block = function(r) reports[#reports + 1] = r end}
    local t = casync.spawn(function()
      busy(0.2)
      casync.sleep(0)
      busy(0.1)
    end)
    t:wait()
    casync.sleep(0.02)
    assert.equal(2, #reports)
  end))

  it("reports a task blocked in a C function when it returns to Lua", async(function()
    local reports = {}
    casync.watchdog{threshold = 0.05, on_block = function(r) reports[#reports + 1] = r end}
    casync.spawn(function()
      os.execute("sleep 0.2")
      return 1
    end):wait()
    casync.sleep(0.02)
    assert.equal(1, #reports)
    assert.is_true(reports[1].elapsed >= 0.1, reports[1].elapsed)
  end))

  it("prints to stderr without on_block", function()
    local code, out, err = child([[
      local casync = require "casync"
      casync.watchdog{threshold = 0.05}
      local function stuck() local t0 = casync.now() while casync.now() - t0 < 0.2 do end end
      casync.spawn(stuck):wait()
      print("done")
    ]])
    assert.equal(0, code)
    assert.equal("done\n", out)
    assert.truthy(err:find("casync: task #2 has run %d+ ms without suspending %(it blocks every other task%)\nstack traceback:"), err)
    assert.truthy(err:find("in local 'stuck'", 1, true) or err:find("in function <", 1, true), err)
  end)

  it("is on by default with CASYNC_DEBUG=1 (threshold 0.1 s)", function()
    local prog = [[
      local casync = require "casync"
      print(casync.watchdog())
      local t0 = casync.now() while casync.now() - t0 < 0.3 do end
    ]]
    local code, out, err = child(prog, {CASYNC_DEBUG = "1"})
    assert.equal(0, code)
    assert.equal("true\t0\n", out)
    assert.truthy(err:find("task #1 (main) has run", 1, true), err)
    code, out, err = child(prog, {CASYNC_DEBUG = false})
    assert.equal("false\t0\n", out)
    assert.equal("", err)
  end)

  it("reports a failing on_block and goes on", async(function()
    local calls = 0
    casync.watchdog{threshold = 0.03, on_block = function()
      calls = calls + 1
      error("on_block broke")
    end}
    casync.spawn(busy, 0.1):wait()
    casync.sleep(0.02)
    casync.spawn(busy, 0.1):wait()
    casync.sleep(0.02)
    assert.equal(2, calls)
  end))

  it("turns off, and on again with other settings", async(function()
    local n = 0
    casync.watchdog{threshold = 0.03, on_block = function() n = n + 1 end}
    assert.is_true(casync.watchdog(false))
    assert.is_false((casync.watchdog()))
    casync.spawn(busy, 0.1):wait()
    casync.sleep(0.02)
    assert.equal(0, n)
    casync.watchdog{threshold = 0.5, on_block = function() n = n + 1 end}
    casync.spawn(busy, 0.1):wait()
    casync.sleep(0.02)
    assert.equal(0, n)
  end))

  it("rejects bad settings", function()
    assert.truthy(errmsg(casync.watchdog, 5):find("table expected", 1, true))
    assert.truthy(errmsg(casync.watchdog, {threshold = -1}):find("opts.threshold must be a positive number", 1, true))
    assert.truthy(errmsg(casync.watchdog, {threshold = "x"}):find("opts.threshold", 1, true))
    assert.truthy(errmsg(casync.watchdog, {on_block = 5}):find("function expected", 1, true))
  end)
end)
