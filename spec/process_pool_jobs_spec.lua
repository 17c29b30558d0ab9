-- process_pool_jobs_spec: what a process pool call takes from its caller
-- and shows (lua/casync/process.lua; issue 9 items 4 and 6, issue 10
-- items 1 and 3): it is cancelled with the caller's cancel scope (its
-- worker killed, as for any cancelled call), it gets a copy of the
-- caller's casync.context values, a task waiting on it says where it is,
-- and a recording has its span on its worker's track.
local casync = require "casync"
local timeline = require "casync.timeline"
local async = helper.async

-- Waits (polling) until pred() holds or `limit` seconds have passed.
local function eventually(pred, limit)
  local t0 = casync.now()
  while not pred() do
    if casync.now() - t0 > (limit or 5) then return false end
    casync.sleep(0.005)
  end
  return true
end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function forever() while true do end end
local function pid() return require("casync").process.pid() end

describe("process pool calls and cancel scopes", function()
  it("a timeout around pool:run(job):wait() ends on time and kills the worker", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local wpid = pool:run(pid):wait()
    local t0, t = casync.now(), nil
    local ok, err = pcall(casync.fail_after, 0.2, function()
      t = pool:run(forever)
      return t:wait()
    end)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "timeout"), tostring(err))
    assert.is_true(casync.now() - t0 < 1, "took " .. (casync.now() - t0))
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    assert.is_true(eventually(function() return not alive(wpid) end, 2))
    assert.are_not.equal(wpid, pool:run(pid):wait()) -- a new worker
  end))

  it("a queued call is never run once its scope is cancelled", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local path = os.tmpname()
    os.remove(path)
    local busy = pool:run(function() require("casync").sleep(0.3) return "done" end)
    local queued
    assert.is_false(casync.move_on_after(0.1, function()
      queued = pool:run(function(p) io.open(p, "w"):close() end, path)
      return queued:wait()
    end))
    assert.is_false(pcall(queued.wait, queued))
    assert.is_true(queued:cancelled())
    assert.equals("done", busy:wait())
    pool:run(function() end):wait()
    assert.is_nil(io.open(path))
  end))

  it("a call made in a scope cancelled and closed before the call ran never runs", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local path = os.tmpname()
    os.remove(path)
    local t
    do
      local d <close> = casync.timeout()
      t = pool:run(function(p) io.open(p, "w"):close() end, path)
      d:cancel()
    end -- closed before t ever ran
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "cancelled"), tostring(err))
    assert.matches("its scope was cancelled", tostring(err))
    pool:run(function() end):wait()
    assert.is_nil(io.open(path))
  end))

  it("a scope child's call is cancelled when a sibling fails", async(function()
    local pool <close> = casync.process_pool{size = 2}
    local job, wpid
    local ok, err = pcall(casync.scope, function(s)
      s:spawn(function()
        wpid = pool:run(pid):wait()
        job = pool:run(forever)
        return job:wait()
      end)
      s:spawn(function()
        casync.sleep(0.2)
        error("the sibling failed")
      end)
    end)
    assert.is_false(ok)
    assert.matches("the sibling failed", tostring(err))
    assert.is_true(job:cancelled())
    assert.is_true(eventually(function() return not alive(wpid) end, 2))
  end))

  it("move_on_after around pool:map kills its workers", async(function()
    local pool <close> = casync.process_pool{size = 2}
    local pids = pool:map(function() require("casync").sleep(0.05) return require("casync").process.pid() end, {1, 2})
    local t0 = casync.now()
    assert.is_false(casync.move_on_after(0.2, function()
      return pool:map(function() while true do end end, {1, 2, 3})
    end))
    assert.is_true(casync.now() - t0 < 1)
    for i = 1, 2 do
      assert.is_true(eventually(function() return not alive(pids[i]) end, 2))
    end
    assert.same({4, n = 1}, pool:map(function(x) return x * x end, {2}))
  end))

  it("a call started outside any scope is not cut short by a scope its waiter is in", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local t = pool:run(function() require("casync").sleep(0.2) return "done" end)
    assert.is_false(casync.move_on_after(0.05, function() return t:wait() end))
    assert.equals("done", t:wait())
  end))
end)

describe("casync.context in process pool calls", function()
  it("context copied into a process pool call and back out unchanged", async(function()
    casync.context.set("request_id", 42)
    casync.context.set("user", {name = "ann", roles = {"admin"}})
    local pool <close> = casync.process_pool{size = 1}
    local seen = pool:run(function()
      local c = casync_worker.context
      local r = {id = c.request_id, name = c.user.name, role = c.user.roles[1]}
      c.request_id, c.user.name, c.added = 0, "changed", true -- its own copy
      return r
    end):wait()
    assert.same({id = 42, name = "ann", role = "admin"}, seen)
    assert.equals(42, casync.context.get("request_id"))
    assert.equals("ann", casync.context.get("user").name)
    assert.is_nil(casync.context.get("added"))
    -- the next call on that worker gets a fresh copy
    assert.same({42, "ann"}, pool:run(function()
      local c = casync_worker.context
      assert(c.added == nil)
      return {c.request_id, c.user.name}
    end):wait())
    assert.same({43, 44, n = 2}, pool:map(function(x)
      return casync_worker.context.request_id + x
    end, {1, 2}))
  end))

  it("without values a call gets an empty table", async(function()
    local pool <close> = casync.process_pool{size = 1}
    assert.is_true(pool:run(function()
      casync_worker.context.left = "behind"
      return true
    end):wait())
    assert.is_true(pool:run(function() return next(casync_worker.context) == nil end):wait())
  end))

  it("a value that cannot be copied is an error naming its key", async(function()
    local pool <close> = casync.process_pool{size = 1}
    casync.context.set("db", io.stdout)
    assert.matches("^spec/process_pool_jobs_spec%.lua:%d+: run: cannot copy context%.db: " ..
                   "userdata %(casync%.context values go with the job%)$",
                   helper.errmsg(function() pool:run(function() end) end))
    assert.matches("^spec/process_pool_jobs_spec%.lua:%d+: map: cannot copy context%.db: userdata",
                   helper.errmsg(function() pool:map(function() end, {1}) end))
    casync.context.set("db", nil)
    assert.matches("casync.ProcessPool %(process pool#%d+, 0/1 workers%)", tostring(pool))
  end))
end)

describe("what a task waiting on a process pool call waits on", function()
  it("its pool and worker, or that it waits for a free worker", async(function()
    local pool <close> = casync.process_pool{size = 1}
    local name = tostring(pool):match("(process pool#%d+)")
    assert.is_string(name)
    local running = pool:run(function() require("casync").sleep(0.3) end)
    local queued = pool:run(function() end)
    assert.is_true(eventually(function()
      return (running:info().waiting_on or ""):find(name .. " worker 1 job: ", 1, true) == 1
    end), running:info().waiting_on)
    assert.matches("^" .. name .. " job, waiting for a free worker: acquire semaphore#%d+",
                   queued:info().waiting_on)
    running:wait()
    queued:wait()
  end))
end)

describe("process pool calls in a recording", function()
  after_each(function() casync.trace(false) end)

  it("each call is a span on its worker's track", async(function()
    local pool <close> = casync.process_pool{size = 2}
    local name = tostring(pool):match("(process pool#%d+)")
    pool:map(function(x) return x end, {1, 2}) -- the workers started
    casync.trace{}
    local tasks = {}
    for i = 1, 4 do tasks[i] = pool:run(function() require("casync").sleep(0.02) end) end
    casync.gather(tasks)
    pool:map(function(x) return x end, {1, 2})
    local rec = casync.trace(false)
    local by_track, n, of_task = {}, 0, {}
    for _, e in ipairs(rec.events) do
      if e.kind == "job" then
        n = n + 1
        assert.matches("^" .. name .. " worker [12]$", e.track)
        by_track[e.track] = by_track[e.track] or {}
        table.insert(by_track[e.track], e)
        if e.name == "process job" then of_task[e.task] = e end
      end
    end
    assert.equals(6, n)
    for i = 1, 4 do
      local e = of_task[tasks[i]:id()]
      assert.is_table(e)
      assert.is_true(e.dur >= 0.02)
    end
    for _, list in pairs(by_track) do
      table.sort(list, function(a, b) return a.t < b.t end)
      for i = 2, #list do
        assert.is_true(list[i].t >= list[i - 1].t + list[i - 1].dur - 1e-9)
      end
    end
    local chart = timeline.chart(rec, {width = 60, labels = 30})
    assert.truthy(chart:find(name .. " worker 1", 1, true), chart)
    assert.truthy(chart:find(name .. " worker 2", 1, true), chart)
  end))
end)

describe("the helpers the process pool uses", function()
  it("_join_scope and _doing check their arguments", async(function()
    assert.matches("bad argument #1 to '[%w_.]*_join_scope' %(casync.Task expected",
                   helper.errmsg(casync._join_scope, {}))
    assert.matches("bad argument #1 to '[%w_.]*_join_scope' %(a task not started and in no scope expected%)",
                   helper.errmsg(casync._join_scope, casync.current()))
    assert.matches("bad argument #1 to '[%w_.]*_doing' %(string expected, got boolean%)",
                   helper.errmsg(casync._doing, true))
    -- outside scopes _join_scope leaves the task as it is; _doing(nil) forgets
    local t = casync.spawn(function() return 1 end)
    casync._join_scope(t)
    assert.equals(1, t:wait())
    casync._doing("testing")
    local waiter = casync.current()
    local info = casync.spawn(function() return waiter:info().waiting_on end)
    assert.matches("^testing: task:wait%(%) for task #%d+", info:wait())
    casync._doing(nil)
  end))
end)
