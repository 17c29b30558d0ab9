-- thread_jobs_spec: what a thread job takes from its caller and shows
-- (src/thread.c, src/worker.c; issue 9 items 4 and 6, issue 10 items 1
-- and 3): it is cancelled with the caller's cancel scope, it gets a copy
-- of the caller's casync.context values, a task waiting on it says where
-- it is, a recording has its span on its worker's track, and
-- casync_worker.now() reads casync.now()'s clock, virtual or not.
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

-- A job that spins until casync_worker.cancelled() (at most 5 s) and
-- notes in its worker's globals that it saw it.
local function until_cancelled()
  local c = os.clock()
  while not casync_worker.cancelled() do
    if os.clock() - c > 5 then return "never cancelled" end
  end
  saw_cancelled = true -- luacheck: ignore (the worker's global)
  return "stopped"
end

-- A job that spins for `s` seconds of CPU time.
local function spin(s)
  local c = os.clock()
  while os.clock() - c < s do end
  return s
end

-- The id N of "pool#N" in tostring(pool).
local function pool_id(pool)
  return tonumber(tostring(pool):match("pool#(%d+)"))
end

describe("thread jobs and cancel scopes", function()
  it("a timeout around casync.thread(job):wait() ends on time; the worker sees cancelled()", async(function()
    local t0, t = casync.now(), nil
    local ok, err = pcall(function()
      local d <close> = casync.timeout(0.1)
      t = casync.thread(until_cancelled)
      return t:wait()
    end)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "timeout"), tostring(err))
    assert.is_true(casync.now() - t0 < 0.5, "took " .. (casync.now() - t0))
    assert.is_true(t:cancelled())
    -- on a pool of one, the next job runs on the same worker and finds
    -- what the cancelled one noted
    local pool <close> = casync.thread_pool{size = 1}
    t0 = casync.now()
    ok, err = pcall(casync.fail_after, 0.1, function()
      return pool:run(until_cancelled):wait()
    end)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "timeout"), tostring(err))
    assert.is_true(casync.now() - t0 < 0.5)
    assert.is_true(pool:run(function() return saw_cancelled end):wait())
  end))

  it("a queued job behind a busy worker is never run once its scope is cancelled", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    local path = os.tmpname()
    os.remove(path)
    local busy = pool:run(spin, 0.2) -- outside the scope: runs to its end
    assert.is_true(eventually(function() return pool:stats().busy == 1 end))
    local queued
    local ok = casync.move_on_after(0.05, function()
      queued = pool:run(function(p) io.open(p, "w"):close() return "ran" end, path)
      assert.equals(1, pool:stats().queued)
      return queued:wait()
    end)
    assert.is_false(ok)
    assert.equals(0, pool:stats().queued) -- dropped at once
    assert.is_true(queued:cancelled())
    assert.equals(0.2, busy:wait())
    assert.equals(3, pool:run(function() return 3 end):wait())
    assert.is_nil(io.open(path))
  end))

  it("a scope child's job is cancelled when a sibling fails", async(function()
    local pool <close> = casync.thread_pool{size = 2}
    local job
    local ok, err = pcall(casync.scope, function(s)
      s:spawn(function()
        job = pool:run(until_cancelled)
        return job:wait()
      end)
      s:spawn(function()
        casync.sleep(0.05)
        error("the sibling failed")
      end)
    end)
    assert.is_false(ok)
    assert.matches("the sibling failed", tostring(err))
    assert.is_true(job:cancelled())
    assert.is_true(eventually(function() return pool:stats().busy == 0 end, 1))
  end))

  it("move_on_after around pool:map cancels its jobs, running and queued", async(function()
    local pool <close> = casync.thread_pool{size = 2}
    local t0 = casync.now()
    local ok = casync.move_on_after(0.1, function()
      return pool:map(function(x)
        local c = os.clock()
        while not casync_worker.cancelled() and os.clock() - c < 5 do end
        return x
      end, {1, 2, 3, 4, 5, 6})
    end)
    assert.is_false(ok)
    assert.is_true(casync.now() - t0 < 0.5, "took " .. (casync.now() - t0))
    assert.is_true(eventually(function()
      local s = pool:stats()
      return s.busy == 0 and s.queued == 0
    end, 1))
  end))

  it("a job started outside any scope is not cut short by a scope its waiter is in", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    local t = pool:run(spin, 0.1)
    assert.is_false(casync.move_on_after(0.02, function() return t:wait() end))
    assert.equals(0.1, t:wait())
  end))

  it("a job started in a scope already cancelled ends cancelled and never runs", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    local path = os.tmpname()
    os.remove(path)
    local t
    assert.is_false(casync.move_on_after(0, function()
      t = pool:run(function(p) io.open(p, "w"):close() end, path)
      casync.sleep(1)
    end))
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "cancelled"))
    assert.equals(0, pool:stats().queued)
    pool:run(function() end):wait()
    assert.is_nil(io.open(path))
  end))

  it("a job whose scope closes while it runs belongs to the enclosing scope", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    local t
    local ok = casync.move_on_after(0.2, function()
      casync.move_on_after(5, function() t = pool:run(until_cancelled) end)
      assert.is_false(t:done())
      casync.sleep(10)
    end)
    assert.is_false(ok)
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    assert.is_true(eventually(function() return pool:stats().busy == 0 end, 1))
    assert.is_true(pool:run(function() return saw_cancelled end):wait())
  end))
end)

describe("casync.context in thread jobs", function()
  it("context copied into a thread job and back out unchanged", async(function()
    casync.context.set("request_id", 42)
    casync.context.set("user", {name = "ann", roles = {"admin"}})
    local pool <close> = casync.thread_pool{size = 1}
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
    -- the next job on that worker gets a fresh copy
    assert.same({42, "ann"}, pool:run(function()
      local c = casync_worker.context
      assert(c.added == nil)
      return {c.request_id, c.user.name}
    end):wait())
    -- casync.thread and pool:map copy it too
    assert.equals(42, casync.thread(function() return casync_worker.context.request_id end):wait())
    assert.same({43, 44, n = 2}, pool:map(function(x)
      return casync_worker.context.request_id + x
    end, {1, 2}, {chunksize = 1}))
    -- a task's own values: the job of a task that changed them sees its
    casync.spawn(function()
      casync.context.set("request_id", 7)
      assert.equals(7, pool:run(function() return casync_worker.context.request_id end):wait())
    end):wait()
    assert.equals(42, pool:run(function() return casync_worker.context.request_id end):wait())
  end))

  it("without values a job gets an empty table, even after a job that wrote into its own", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    assert.is_true(pool:run(function()
      local empty = next(casync_worker.context) == nil
      casync_worker.context.left = "behind"
      return empty
    end):wait())
    assert.is_true(pool:run(function() return next(casync_worker.context) == nil end):wait())
    -- a key set to nil again counts as none
    casync.context.set("gone", 1)
    casync.context.set("gone", nil)
    assert.is_true(pool:run(function() return next(casync_worker.context) == nil end):wait())
  end))

  it("a value that cannot be copied is an error naming its key; no job starts", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    casync.context.set("db", io.stdout)
    local msg = helper.errmsg(function() casync.thread(function() end) end)
    assert.matches("^spec/thread_jobs_spec%.lua:%d+: thread: cannot copy context%.db: " ..
                   "userdata %(casync%.context values go with the job%)$", msg)
    assert.matches("^spec/thread_jobs_spec%.lua:%d+: run: cannot copy context%.db: userdata",
                   helper.errmsg(function() pool:run(function() end) end))
    assert.matches("^spec/thread_jobs_spec%.lua:%d+: map: cannot copy context%.db: userdata",
                   helper.errmsg(function() pool:map(function() end, {1, 2}) end))
    casync.context.set("db", nil)
    local up = 1
    casync.context.set("my key", {cb = function() return up end})
    assert.matches("thread: cannot copy context%[\"my key\"%]%.cb: function with upvalues %(up%)",
                   helper.errmsg(casync.thread, function() end))
    casync.context.set("my key", nil)
    assert.same({size = 1, busy = 0, queued = 0, alive = 1, closed = false}, pool:stats())
  end))
end)

describe("what a task waiting on a thread job waits on", function()
  it("the worker running it, or its place in the queue; the pool's id in tostring", async(function()
    local pool <close> = casync.thread_pool{size = 1}
    local id = pool_id(pool)
    assert.is_number(id)
    assert.equals(("casync.ThreadPool (pool#%d, 1 workers)"):format(id), tostring(pool))
    local running = pool:run(until_cancelled)
    assert.is_true(eventually(function() return pool:stats().busy == 1 end))
    local second = pool:run(function() end)
    local third = pool:run(function() end)
    local mapper = casync.spawn(function() return pool:map(function(x) return x end, {1}) end)
    casync.sleep(0)
    assert.equals(("thread job on pool#%d worker 1"):format(id), running:info().waiting_on)
    assert.equals(("thread job on pool#%d, queued (1 ahead)"):format(id), third:info().waiting_on)
    local dump = casync.dump(io.open("/dev/null", "w"))
    assert.truthy(dump:find(("thread job on pool#%d, queued (0 ahead)"):format(id), 1, true), dump)
    assert.truthy(dump:find(("map job on pool#%d, queued (2 ahead)"):format(id), 1, true), dump)
    assert.truthy(dump:find(("gather of 1 task (1 still running)"), 1, true), dump)
    running:cancel()
    assert.same({1, n = 1}, mapper:wait())
    second:wait()
    third:wait()
    assert.equals(("casync.ThreadPool (pool#%d, closed)"):format(id), (function()
      pool:close()
      return tostring(pool)
    end)())
    -- ids come from the same counter as channels' and locks'
    local ch = casync.channel()
    local p2 <close> = casync.thread_pool{size = 1}
    assert.is_true(pool_id(p2) > id)
    assert.is_not_nil(ch)
  end))
end)

describe("thread jobs in a recording", function()
  after_each(function() casync.trace(false) end)

  it("each job is a span on its worker's track, inside its task's wait", async(function()
    local pool <close> = casync.thread_pool{size = 2}
    local id = pool_id(pool)
    casync.trace{}
    local tasks = {}
    for i = 1, 5 do tasks[i] = pool:run(spin, 0.02) end
    casync.gather(tasks)
    pool:map(function(x) return x end, {1, 2, 3})
    local rec = casync.trace(false)
    local jobs, by_track, waits = {}, {}, {}
    for _, e in ipairs(rec.events) do
      if e.kind == "job" then
        jobs[#jobs + 1] = e
        by_track[e.track] = by_track[e.track] or {}
        table.insert(by_track[e.track], e)
      elseif e.kind == "wait" and e.what == "casync.thread" then
        waits[e.task] = e
      end
    end
    assert.equals(8, #jobs)
    local names = {}
    for _, e in ipairs(jobs) do
      assert.matches(("^pool#%d worker [12]$"):format(id), e.track)
      names[e.name] = (names[e.name] or 0) + 1
      assert.is_true(e.dur >= 0)
      -- the waiting task's id, and inside that task's wait
      local w = waits[e.task]
      assert.is_table(w, "no wait of task " .. tostring(e.task))
      assert.is_true(e.t >= w.t and e.t + e.dur <= w.t + w.dur + 1e-9,
                     ("job %.6f+%.6f outside wait %.6f+%.6f"):format(e.t, e.dur, w.t, w.dur))
    end
    assert.same({["thread job"] = 5, ["map job"] = 3}, names)
    for i = 1, 5 do
      local found = false
      for _, e in ipairs(jobs) do if e.task == tasks[i]:id() then found = true end end
      assert.is_true(found, "no job of task " .. tasks[i]:id())
      assert.is_true(waits[tasks[i]:id()].dur > 0)
    end
    -- never two at once on one track
    for _, list in pairs(by_track) do
      table.sort(list, function(a, b) return a.t < b.t end)
      for i = 2, #list do
        assert.is_true(list[i].t >= list[i - 1].t + list[i - 1].dur - 1e-9)
      end
    end
    -- the chart draws a row per worker
    local chart = timeline.chart(rec, {width = 60})
    assert.truthy(chart:find(("pool#%d worker 1"):format(id), 1, true), chart)
    assert.truthy(chart:find(("pool#%d worker 2"):format(id), 1, true), chart)
    assert.truthy(timeline.chrome(rec):find('"cat":"job"', 1, true))
  end))
end)

describe("casync_worker.now()", function()
  it("reads casync.now()'s clock under the virtual clock", function()
    casync.run(function()
      casync.sleep(1000) -- virtual: at once, the clock 1000 s ahead
      local before = casync.now()
      local now = casync.thread(function() return casync_worker.now() end):wait()
      assert.is_true(now >= before and now <= casync.now(),
                     ("worker %.3f, loop %.3f"):format(now, before))
      -- a job queued now still reads the clock of its submission
      local p <close> = casync.thread_pool{size = 1}
      local a, b = casync.gather(p:run(spin, 0.02), p:run(function() return casync_worker.now() end))
      assert.equals(0.02, a)
      assert.is_true(b >= before and b <= casync.now())
    end, {clock = "virtual"})
  end)
end)
