-- trace.c: casync.trace, the recorder (lua/casync/timeline.lua draws what
-- it records: spec/lua/timeline_spec.lua).
local casync = require "casync"
local async = helper.async
local cjson = require "cjson"

-- the events of a recording for task id, of one kind (or all)
local function events(rec, id, kind)
  local out = {}
  for _, e in ipairs(rec.events) do
    if (id == nil or e.task == id) and (kind == nil or e.kind == kind) then
      out[#out + 1] = e
    end
  end
  return out
end

describe("casync.trace", function()
  after_each(function() casync.trace(false) end)

  it("records spawns, runs, waits (and on what), wakes and ends", async(function()
    assert.is_true(casync.trace{})
    local ch = casync.channel()
    local sender = casync.spawn({name = "sender"}, function()
      casync.sleep(0.05)
      ch:send("x")
    end)
    assert.equals("x", ch:recv())
    sender:wait()
    local rec = casync.trace(false)
    assert.is_number(rec.t0)
    assert.is_true(rec.t1 >= rec.t0 + 0.05)
    local id = sender:id()
    assert.equals("sender", rec.tasks[id].name)
    assert.equals(casync.current():id(), rec.tasks[id].parent)
    assert.matches("trace_spec.lua:%d+", rec.tasks[id].spawned_at)
    local kinds = {}
    for _, e in ipairs(events(rec, id)) do kinds[#kinds + 1] = e.kind end
    assert.same({"spawn", "run", "wait", "timer", "run", "end"}, kinds)
    local wait = events(rec, id, "wait")[1]
    assert.equals("sleep", wait.what)
    assert.is_false(wait.on_tasks)
    assert.is_true(wait.dur >= 0.04, "slept " .. wait.dur)
    assert.equals("ok", events(rec, id, "end")[1].outcome)
    -- the main task waited on the channel: a wait on another task
    local mine = events(rec, casync.current():id(), "wait")
    assert.equals("channel recv", mine[1].what)
    assert.is_true(mine[1].on_tasks)
    -- in time order
    for i = 2, #rec.events do
      assert.is_true(rec.events[i].t >= rec.events[i - 1].t)
    end
  end))

  it("notes the tasks alive when it starts, with their names and sites", async(function()
    local early = casync.spawn({name = "early"}, casync.sleep, 0.05)
    casync.sleep(0)
    casync.trace{}
    early:wait()
    local rec = casync.trace(false)
    local info = rec.tasks[early:id()]
    assert.equals("early", info.name)
    assert.equals(casync.current():id(), info.parent)
    assert.matches("trace_spec.lua:%d+", info.spawned_at)
  end))

  it("says how tasks end: failed, cancelled", async(function()
    casync.trace{}
    local bad = casync.spawn(error, "boom")
    local slow = casync.spawn(casync.sleep, 10)
    casync.sleep(0)
    slow:cancel()
    pcall(bad.wait, bad)
    pcall(slow.wait, slow)
    local rec = casync.trace(false)
    assert.equals("failed", events(rec, bad:id(), "end")[1].outcome)
    assert.equals("cancelled", events(rec, slow:id(), "end")[1].outcome)
  end))

  it("casync.trace() returns the recording so far and goes on", async(function()
    casync.trace{}
    casync.sleep(0.01)
    local mid = casync.trace()
    casync.sleep(0.01)
    local rec = casync.trace(false)
    assert.is_true(#rec.events > #mid.events)
    assert.is_nil(casync.trace()) -- stopped
    assert.is_nil(casync.trace(false))
  end))

  it("records timers as they fire: a sleep's end, a wait's deadline, a " ..
     "scope's deadline", async(function()
    casync.trace{}
    local me = casync.current():id()
    casync.sleep(0.01)
    local t0 = casync.now()
    local ch = casync.channel()
    assert.is_false(casync.move_on_after(0.01, function() ch:recv() end))
    local ok = pcall(casync.wait_for, function() casync.sleep(5) end, 0.01)
    assert.is_false(ok)
    local rec = casync.trace(false)
    local timers = events(rec, nil, "timer")
    assert.is_true(#timers >= 3, "timers " .. #timers)
    assert.equal(me, timers[1].task)
    for _, e in ipairs(timers) do assert.is_number(e.t) end
    assert.is_true(timers[2].t >= t0 - rec.t0)
  end))

  it("marks the end of each cycle of the collector", async(function()
    casync.trace{}
    for _ = 1, 3 do
      local junk = {}
      for i = 1, 10000 do junk[i] = {i} end
      collectgarbage()
      casync.sleep(0)
    end
    local rec = casync.trace(false)
    local gcs = events(rec, nil, "gc")
    assert.is_true(#gcs >= 3, "cycles " .. #gcs)
    for _, e in ipairs(gcs) do assert.equal(0, e.dur) end
    -- drawn on a row of their own
    assert.matches("gc", require("casync.timeline").chart(rec, {width = 60}))
    collectgarbage() -- the sentinel sees the recording stopped
  end))

  it("keeps the last `limit` events", async(function()
    casync.trace{limit = 10}
    for _ = 1, 100 do casync.sleep(0) end
    local rec = casync.trace(false)
    assert.equals(10, #rec.events)
  end))

  it("records spans Lua code measured (_trace_span)", async(function()
    casync.trace{}
    local t0 = casync.now()
    casync._trace_span("http", "GET /x", t0, 0.25, "pool")
    local rec = casync.trace(false)
    local spans = events(rec, nil, "http")
    assert.equals(1, #spans)
    assert.equals("GET /x", spans[1].name)
    assert.equals("pool", spans[1].track)
    assert.near(0.25, spans[1].dur, 1e-6)
  end))

  it("writes Chrome trace-event JSON to opts.file when stopped", async(function()
    local path = os.tmpname()
    casync.trace{file = path}
    casync.spawn({name = "worker"}, casync.sleep, 0.01):wait()
    casync.trace(false)
    local f = assert(io.open(path))
    local doc = cjson.decode(f:read("a"))
    f:close()
    os.remove(path)
    local list = doc.traceEvents or doc
    local named = false
    for _, e in ipairs(list) do
      if e.ph == "M" and e.args and tostring(e.args.name):find("worker") then
        named = true
      end
    end
    assert.is_true(named, "the worker's track is named")
  end))

  it("works outside any task, and restarting drops the old recording", function()
    assert.is_true(casync.trace{})
    casync.run(function() casync.sleep(0) end)
    assert.is_true(casync.trace{limit = 5})
    local rec = casync.trace(false)
    assert.equals(0, #rec.events)
  end)

  it("checks its arguments", function()
    local bad = {
      {{limit = 0}, "opts.limit"}, {{limit = -1}, "opts.limit"},
      {{limit = 0 / 0}, "opts.limit"}, {{limit = 1.5}, "opts.limit"},
      {{limit = 1e12}, "opts.limit"}, {{limit = math.huge}, "opts.limit"},
      {{limit = "many"}, "opts.limit"}, {{file = 42 < 0}, "opts.file"},
      {{file = {}}, "opts.file"}, {"yes", "table expected"},
      {42, "table expected"},
    }
    for _, case in ipairs(bad) do
      local ok, err = pcall(casync.trace, case[1])
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'casync.trace'", err, 1, true)
      assert.matches(case[2], err, 1, true)
    end
    assert.is_nil(casync.trace()) -- nothing started by the bad calls
    assert.has_error(function() casync._trace_span() end)
    assert.has_error(function() casync._trace_span("http", "x", "now", 1) end)
    assert.has_error(function() casync._trace_span({}, "x", 0, 1) end)
  end)
end)
