-- loop.c: casync.run, nested runs, deadlocks, the end of run (pending tasks
-- cancelled, unobserved failures reported) and sharing the loop with luv.
local casync = require "casync"
local uv = require "luv"

local errmsg = helper.errmsg

local function pattern(s) return (s:gsub("%p", "%%%0")) end

local function clean()
  local s = casync._stats()
  assert.equal(0, s.live)
  assert.equal(0, s.ready)
  assert.equal(0, s.timers)
end

describe("casync.run", function()
  it("runs fn(...) as the main task and returns all its results", function()
    local r = table.pack(casync.run(function(a, b)
      assert.is_not_nil(casync.current())
      casync.sleep(0.001)
      return b, nil, a
    end, 1, 2))
    assert.same({2, nil, 1, n = 3}, r)
    assert.equal(0, select("#", casync.run(function() end)))
    clean()
  end)

  it("can run again after it returned", function()
    for i = 1, 3 do
      assert.equal(i, casync.run(function() casync.sleep(0.001); return i end))
    end
    clean()
  end)

  it("re-raises a string error with the traceback appended", function()
    local ok, err = pcall(casync.run, function()
      casync.sleep(0)
      error("main failed")
    end)
    assert.is_false(ok)
    assert.matches("^spec/loop_spec%.lua:%d+: main failed\nstack traceback:", err)
    assert.matches("was spawned at", err)
    clean()
  end)

  it("re-raises a table error as the same table, untouched", function()
    local e = {code = 1}
    local ok, err = pcall(casync.run, function() error(e) end)
    assert.is_false(ok)
    assert.equal(e, err)
    assert.is_nil(rawget(e, "traceback"))
  end)

  it("gives a casync error value its traceback", function()
    local ok, err = pcall(casync.run, function()
      casync.wait_for(function() casync.sleep(1) end, 0.001)
    end)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.matches("stack traceback:", err.traceback)
    clean()
  end)

  it("re-raises other error values unchanged", function()
    for _, v in ipairs({42, true}) do
      local ok, err = pcall(casync.run, function() error(v) end)
      assert.is_false(ok)
      assert.equal(v, err)
    end
  end)

  it("accepts a callable table", function()
    local obj = setmetatable({}, {__call = function(_, x) return x end})
    assert.equal(7, casync.run(obj, 7))
  end)

  it("rejects what it cannot run", function()
    assert.matches(pattern("bad argument #1 to 'run' (function expected, got no value)"),
                   errmsg(function() casync.run() end))
    assert.matches(pattern("bad argument #1 to 'run' (function expected, got number)"),
                   errmsg(function() casync.run(1) end))
    assert.matches(pattern("bad argument #1 to 'run' (function expected, got table)"),
                   errmsg(function() casync.run({}) end))
    clean()
  end)

  it("inside a task raises (nested run)", async(function()
    assert.matches("run: cannot be called inside a task", errmsg(casync.run, function() end))
    local t = casync.spawn(function() return pcall(casync.run, print) end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.matches("nested run", err)
  end))

  it("inside a done callback raises (the loop is already running)", async(function()
    local err
    local t = casync.spawn(function() end)
    t:add_done_callback(function() err = select(2, pcall(casync.run, print)) end)
    t:wait()
    casync.sleep(0.001)
    assert.matches("run: the loop is already running", err)
  end))

  it("cancels the tasks still pending when main ends, running their cleanup",
     function()
    local log = {}
    local never_started_ran = false
    local result = casync.run(function()
      casync.spawn(function()
        local c <close> = setmetatable({}, {__close = function(_, err)
          casync.sleep(0.01)   -- cleanup may suspend
          log[#log+1] = "closed by " .. tostring(err)
        end})
        casync.sleep(10)
      end)
      casync.spawn(function()
        local ok, err = pcall(casync.sleep, 10)
        log[#log+1] = "caught " .. err.kind
      end)
      casync.sleep(0.001)
      casync.spawn(function() never_started_ran = true end)
      return "main done"
    end)
    assert.equal("main done", result)
    table.sort(log)
    assert.same({"caught cancelled", "closed by cancelled: task cancelled"}, log)
    assert.is_false(never_started_ran)
    clean()
  end)

  it("cancels pending tasks when main fails too", function()
    local cleaned = false
    local ok = pcall(casync.run, function()
      casync.spawn(function()
        local c <close> = setmetatable({}, {__close = function() cleaned = true end})
        casync.sleep(10)
      end)
      casync.sleep(0.001)
      error("main failed")
    end)
    assert.is_false(ok)
    assert.is_true(cleaned)
    clean()
  end)

  it("returns at once when main ends, even with a long sleeper pending", function()
    local t0 = casync.now()
    casync.run(function() casync.spawn(casync.sleep, 60) end)
    assert.is_true(casync.now() - t0 < 1)
    clean()
  end)
end)

describe("a deadlock", function()
  it("raises an error that says what main waits on", function()
    local ok, err = pcall(casync.run, function()
      local main = casync.current()
      local t = casync.spawn(function() main:wait() end)
      t:wait()
    end)
    assert.is_false(ok)
    assert.equal("deadlock", err.kind)
    assert.matches("the main task waits in task:wait%(%) for task #%d+, " ..
                   "which waits in task:wait%(%) for the main task itself", tostring(err))
    assert.matches("nothing left in the loop can wake it", tostring(err))
    clean()
  end)

  it("names the combinator main waits in", function()
    local ok, err = pcall(casync.run, function()
      local main = casync.current()
      casync.gather(function() main:wait() end)
    end)
    assert.is_false(ok)
    assert.equal("deadlock", err.kind)
    assert.matches("the main task waits in gather", tostring(err))
    assert.matches("1 other task is waiting too", tostring(err))
    clean()
  end)

  it("is not declared while a timer can still wake a task", function()
    local r = casync.run(function()
      local t = casync.spawn(function() casync.sleep(0.05); return "woke" end)
      return t:wait()
    end)
    assert.equal("woke", r)
  end)

  it("is not declared while a luv handle is active", function()
    local timer = uv.new_timer()
    local r = casync.run(function()
      local waiter = casync.spawn(function() casync.sleep(10) end)
      timer:start(20, 0, function() waiter:cancel() end)
      local ok, err = pcall(waiter.wait, waiter)
      return err.kind
    end)
    assert.equal("cancelled", r)
    timer:close()
    uv.run("nowait")
    clean()
  end)
end)

describe("an unobserved failure", function()
  it("is reported on stderr with its traceback when run ends", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        casync.spawn({name = "lost"}, function()
          casync.sleep(0.001)
          error("nobody saw this")
        end)
        casync.sleep(0.01)
        print("main ends")
      end)
      print("after run")
    ]])
    assert.equal(0, code)
    assert.equal("main ends\nafter run\n", out)
    assert.matches("casync: task #%d+ 'lost' failed and nothing waited for it: " ..
                   "%(command line%):%d+: nobody saw this\nstack traceback:", err)
    assert.matches("%(command line%):5: in function", err)
    assert.matches("was spawned at %(command line%):3", err)
  end)

  it("is reported when the task is collected, before run ends", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      io.stderr:setvbuf("no")
      casync.run(function()
        casync.spawn(function() error("collected") end)
        casync.sleep(0.01)
        collectgarbage(); collectgarbage()
        io.stderr:write("MARK\n")
      end)
    ]])
    assert.equal(0, code)
    assert.matches("failed and nothing waited for it: .-collected.*MARK", err)
  end)

  it("with an error value whose __tostring fails is reported, and run goes on",
     function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      local bad = setmetatable({}, {__tostring = function() error("no tostring") end})
      print(pcall(casync.run, function()
        casync.spawn(function() error(bad) end)
        local t = casync.spawn(function() end)
        t:add_done_callback(function() error(bad) end)
        casync.sleep(0.01)
        return "first"
      end))
      print(casync.run(function() return "second" end))
    ]])
    assert.equal(0, code, err)
    assert.equal("true\tfirst\nsecond\n", out)
    assert.matches("failed and nothing waited for it: %(error object is a table value%)", err)
    assert.matches("done callback of task #%d+ failed: %(error object is a table value%)", err)
  end)

  it("is reported once", function()
    local _, _, err = helper.lua([[
      local casync = require "casync"
      local keep
      casync.run(function()
        keep = casync.spawn(function() error("once") end)
        casync.sleep(0.01)
      end)
      casync.run(function() end)
      keep = nil
      collectgarbage(); collectgarbage()
    ]])
    local n = select(2, err:gsub("nothing waited for it", ""))
    assert.equal(1, n)
  end)

  it("is not reported once waited for, nor for a cancelled task", function()
    local code, _, err = helper.lua([[
      local casync = require "casync"
      casync.run(function()
        local t = casync.spawn(function() error("seen") end)
        pcall(t.wait, t)
        local c = casync.spawn(casync.sleep, 10)
        casync.sleep(0)
        c:cancel()
        casync.spawn(casync.sleep, 10) -- cancelled by the end of run
        casync.sleep(0.01)
      end)
      collectgarbage(); collectgarbage()
    ]])
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("of a task spawned outside run is reported when the state closes", function()
    local code, _, err = helper.lua([[
      local casync = require "casync"
      local uv = require "luv"
      casync.spawn(function() error("under uv.run") end)
      uv.run()
    ]])
    assert.equal(0, code)
    assert.matches("failed and nothing waited for it: .-under uv.run", err)
  end)
end)

describe("closing the Lua state", function()
  it("with tasks never run, sleeping or waiting does not crash", function()
    local code, out, err = helper.lua([[
      local casync = require "casync"
      local uv = require "luv"
      local a = casync.spawn(casync.sleep, 10)
      local b = casync.spawn(function() a:wait() end)
      local c = casync.spawn(casync.gather, a, function() casync.sleep(5) end)
      casync.call_later(10, print)
      uv.run("nowait")
      casync.spawn(print, "never")
      print("closing")
    ]])
    assert.equal(0, code, err)
    assert.equal("closing\n", out)
  end)
end)

describe("luv interop", function()
  it("a luv timer callback and casync tasks interleave in one run", function()
    local log = {}
    casync.run(function()
      local timer = uv.new_timer()
      local ticks = 0
      timer:start(5, 10, function()
        ticks = ticks + 1
        log[#log+1] = "uv"
        if ticks == 3 then timer:close() end
      end)
      for _ = 1, 3 do
        casync.sleep(0.01)
        log[#log+1] = "task"
      end
      while ticks < 3 do casync.sleep(0.005) end
    end)
    assert.equal(6, #log)
    local first_task = 1
    while log[first_task] ~= "task" do first_task = first_task + 1 end
    assert.is_true(first_task <= 3, table.concat(log, ","))
    local last_uv = 6
    while log[last_uv] ~= "uv" do last_uv = last_uv - 1 end
    assert.is_true(last_uv > first_task, table.concat(log, ","))
    uv.run("nowait")
    clean()
  end)

  it("a luv callback may spawn a task and cancel one", function()
    local r = casync.run(function()
      local sleeper = casync.spawn(casync.sleep, 10)
      local spawned
      local timer = uv.new_timer()
      timer:start(5, 0, function()
        spawned = casync.spawn(function() return "from luv" end)
        sleeper:cancel()
        timer:close()
      end)
      pcall(sleeper.wait, sleeper)
      return spawned:wait()
    end)
    assert.equal("from luv", r)
    uv.run("nowait")
    clean()
  end)

  it("casync tasks advance under uv.run()", function()
    local log = {}
    local a = casync.spawn(function()
      for i = 1, 3 do casync.sleep(0.005); log[#log+1] = "a" .. i end
      return "a done"
    end)
    local b = casync.spawn(function() return casync.gather(function() return "b" end) end)
    local timer = uv.new_timer()
    timer:start(1, 0, function() log[#log+1] = "uv"; timer:close() end)
    uv.run()
    assert.equal("a done", a:result())
    assert.equal("b", b:result())
    assert.equal(4, #log)
    clean()
  end)

  it("uv.run('once') and uv.run('nowait') step casync tasks", function()
    local steps = 0
    local t = casync.spawn(function()
      for _ = 1, 3 do steps = steps + 1; casync.sleep(0) end
    end)
    local n = 0
    while not t:done() and n < 100 do uv.run("nowait"); n = n + 1 end
    assert.is_true(t:done())
    assert.equal(3, steps)
    local s = casync.spawn(casync.sleep, 0.005)
    uv.run("once")
    uv.run("once")
    while not s:done() do uv.run("once") end
    clean()
  end)

  it("run refuses to start inside uv.run() (libuv's loop is not reentrant)",
     function()
    local err
    local timer = uv.new_timer()
    timer:start(1, 0, function()
      err = select(2, pcall(casync.run, function() end))
      timer:close()
    end)
    uv.run()
    assert.matches("run: the loop is already running", err)
    clean()
  end)

  it("uv.walk sees the scheduler's handles as closing, and nothing breaks",
     function()
    casync.run(function() casync.sleep(0.001) end)
    local mine = uv.new_timer()
    local seen, closed = {}, 0
    uv.walk(function(h)
      seen[#seen+1] = tostring(h)
      if not h:is_closing() then h:close(); closed = closed + 1 end
    end)
    assert.equal(1, closed)                 -- only the luv timer
    assert.is_true(#seen >= 2)
    assert.matches("casync", table.concat(seen, " "))
    uv.run("nowait")
    assert.is_true(mine:is_closing())
    assert.equal("works", casync.run(function() casync.sleep(0.005); return "works" end))
    clean()
  end)

  it("a task spinning on sleep(0) does not starve luv callbacks", function()
    local fired = false
    casync.run(function()
      local timer = uv.new_timer()
      timer:start(5, 0, function() fired = true; timer:close() end)
      local t0 = casync.now()
      while not fired and casync.now() - t0 < 2 do casync.sleep(0) end
    end)
    assert.is_true(fired)
    uv.run("nowait")
  end)

  it("a task spinning on sleep(0) does not starve timers", async(function()
    local woke = false
    casync.spawn(function() casync.sleep(0.005); woke = true end)
    local t0 = casync.now()
    while not woke and casync.now() - t0 < 2 do casync.sleep(0) end
    assert.is_true(woke)
    assert.is_true(casync.now() - t0 < 0.5)
  end))
end)
