-- lua/casync/timeline.lua: recordings drawn as a terminal chart, Chrome
-- trace-event JSON and SVG; checked by their output on recordings made by
-- hand (every shape the recorder can produce, and the malformed ones) and
-- on real ones from casync.trace.
local casync = require "casync"
local timeline = require "casync.timeline"
local cjson = require "cjson"

local errmsg = helper.errmsg

---------------------------------------------------------------------------
-- recordings made by hand

-- rec{...}: events sorted by time; t0 = 100, t1 = 100 + wall
local function rec(wall, tasks, events)
  table.sort(events, function(a, b) return a.t < b.t end)
  return {t0 = 100, t1 = 100 + wall, tasks = tasks, events = events}
end

-- A task that runs briefly, waits `dur` on `what`, runs briefly, ends.
local function span(ev, id, t, dur, what, outcome)
  ev[#ev + 1] = {kind = "run", task = id, t = t, dur = 1e-5}
  ev[#ev + 1] = {kind = "wait", task = id, t = t + 1e-5, dur = dur, what = what}
  ev[#ev + 1] = {kind = "run", task = id, t = t + 1e-5 + dur + 1e-6, dur = 2e-5}
  if outcome ~= false then
    ev[#ev + 1] = {kind = "end", task = id, t = t + dur + 4e-5, outcome = outcome or "ok"}
  end
end

-- E000.1's shape: main gathers fetches of 2, 1 and 3 s.
local function gathered()
  local ev = {}
  span(ev, 1, 0, 3.0002, "gather")
  span(ev, 2, 1e-4, 2, "sleep")
  span(ev, 3, 1.2e-4, 1, "sleep")
  span(ev, 4, 1.4e-4, 3, "sleep")
  return rec(3.0005, {
    [1] = {id = 1, name = "main"},
    [2] = {id = 2, parent = 1, spawned_at = "@examples/e000_1_gather_fetch_data.lua:22"},
    [3] = {id = 3, parent = 1, spawned_at = "e000_1_gather_fetch_data.lua:23"},
    [4] = {id = 4, parent = 1, name = "user3"},
  }, ev)
end

-- The same three fetches one after the other, in the main task.
local function sequential()
  local ev = {}
  local t = 0
  for _, d in ipairs({2, 1, 3}) do
    ev[#ev + 1] = {kind = "run", task = 1, t = t, dur = 1e-5}
    ev[#ev + 1] = {kind = "wait", task = 1, t = t + 1e-5, dur = d, what = "sleep"}
    t = t + d + 2e-5
  end
  ev[#ev + 1] = {kind = "run", task = 1, t = t, dur = 1e-5}
  ev[#ev + 1] = {kind = "end", task = 1, t = t + 2e-5, outcome = "ok"}
  return rec(t + 3e-5, {[1] = {id = 1, name = "main"}}, ev)
end

-- the rows of a chart: lines that start (after indentation) with "#id "
local function rows(chart)
  local out = {}
  for line in chart:gmatch("[^\n]+") do
    if line:match("^%s*#%d+ ") then out[#out + 1] = line end
  end
  return out
end

local function utf8_chars(s)
  local t = {}
  for _, c in utf8.codes(s) do t[#t + 1] = utf8.char(c) end
  return t
end

-- how many times glyph g appears in a row (utf-8 aware)
local function count(row, g)
  local n = 0
  for _, c in ipairs(utf8_chars(row)) do if c == g then n = n + 1 end end
  return n
end

-- a row with its glyphs as letters, for patterns: R running, B blocking,
-- W waiting, J waiting on tasks, Y ready
local LETTERS = {["█"] = "R", ["!"] = "B", ["─"] = "W", ["·"] = "J", ["░"] = "Y"}
local function shape(row)
  local t = {}
  for _, c in ipairs(utf8_chars(row)) do t[#t + 1] = LETTERS[c] or c end
  return table.concat(t)
end

local function last_line(s) return s:match("([^\n]*)\n?$") end

---------------------------------------------------------------------------

describe("timeline.chart", function()
  it("draws one row a task, children under their parent, time across", function()
    local c = timeline.chart(gathered(), {width = 80})
    local r = rows(c)
    assert.equal(4, #r, c)
    assert.matches("^#1 'main' ", r[1])
    assert.matches("^  #2 e000_1_gather_fet…:22 ", r[2]) -- the line number stays
    assert.matches("^  #3 e000_1_gather_fet…:23 ", r[3])
    assert.matches("^  #4 'user3' ", r[4])
    for line in c:gmatch("[^\n]+") do
      assert(utf8.len(line) <= 80, "line wider than 80: " .. line)
    end
    -- the time axis: 0s at the first column, seconds after
    local head = c:match("^[^\n]*")
    assert.matches("^task%s+0s%s+0.5s%s+1s%s+1.5s%s+2s%s+2.5s%s+3s$", head)
    -- the main task joins (·), the fetches wait (─) for 2, 1 and 3 s: row
    -- lengths in proportion, each starts and ends with a run (█)
    local cols = 80 - (c:find("0s", 1, true) - 1)
    local w2, w3, w4 = count(r[2], "─"), count(r[3], "─"), count(r[4], "─")
    assert.is_true(count(r[1], "·") >= cols - 3)
    assert.near(cols * 2 / 3, w2 + 2, 2)
    assert.near(cols / 3, w3 + 2, 2)
    assert.near(cols, w4 + 2, 2)
    for i = 2, 4 do
      assert.matches(" RW+R *$", shape(r[i]))
    end
    assert.matches(" RJ+R$", shape(r[1]))
    assert.matches("█ running", c)
    assert.matches("─ waiting %(time, I/O, a job%)", c)
    assert.matches("· waiting on other tasks", c)
    assert.equal("wall 3.00 s, sum of waits 6.00 s: 2.0× concurrency", last_line(c))
  end)

  it("gives 1.0× for the same waits one after the other", function()
    local c = timeline.chart(sequential())
    assert.equal(1, #rows(c))
    assert.equal("wall 6.00 s, sum of waits 6.00 s: 1.0× concurrency", last_line(c))
    local sm = timeline.summary(sequential())
    assert.near(6, sm.wall, 1e-3)
    assert.near(6, sm.waits, 1e-3)
    assert.near(1, sm.concurrency, 1e-3)
    assert.equal(1, sm.tasks)
  end)

  it("counts waits on time and I/O, not waits on other tasks", function()
    local ev = {}
    span(ev, 1, 0, 1, "task:wait()")
    span(ev, 2, 0, 1, "channel recv")
    span(ev, 3, 0, 1, "lock acquire")
    span(ev, 4, 0, 1, "scope close (waiting for its tasks)")
    span(ev, 5, 0, 1, "read")
    span(ev, 6, 0, 1, "casync.thread")
    span(ev, 7, 0, 1, "udp recv")
    span(ev, 8, 0, 1, "process wait")
    local sm = timeline.summary(rec(1, {}, ev))
    assert.near(4, sm.waits, 1e-3)
    assert.near(4, sm.concurrency, 1e-2)
    local r = rows(timeline.chart(rec(1, {}, ev), {width = 40}))
    for i = 1, 4 do assert.is_true(count(r[i], "·") > 20, r[i]) end
    for i = 5, 8 do assert.is_true(count(r[i], "─") > 20, r[i]) end
  end)

  it("shows a run that blocks the loop, and the tasks it keeps waiting", function()
    local ev = {
      {kind = "run", task = 1, t = 0, dur = 0.5},            -- blocks 0.5 s
      {kind = "run", task = 1, t = 0.5, dur = 1e-5},
      {kind = "wait", task = 2, t = 0, dur = 0.1, what = "sleep"},
      {kind = "run", task = 2, t = 0.5, dur = 1e-5},         -- woken at 0.1, ran at 0.5
      {kind = "wait", task = 2, t = 0.50001, dur = 0.49, what = "sleep"},
      {kind = "end", task = 1, t = 0.6, outcome = "failed"},
      {kind = "end", task = 2, t = 1, outcome = "cancelled"},
    }
    local c = timeline.chart(rec(1, {}, ev), {width = 50})
    local r = rows(c)
    assert.equal(2, #r)
    local cols = 50 - (utf8.len(r[1]) - utf8.len(r[1]:match("^#1 +")) - #(" failed"))
    assert.is_true(count(r[1], "!") >= 19, r[1])    -- half of the columns
    assert.matches(" failed$", r[1])
    assert.matches(" cancelled$", r[2])
    assert.is_true(count(r[2], "░") >= 14, r[2])    -- ready 0.1 .. 0.5 s
    assert.matches("! blocking the loop %(a run over 50 ms%)", c)
    assert.matches("░ ready, not running", c)
    assert.equal("wall 1.00 s, sum of waits 0.59 s: 0.6× concurrency", last_line(c))
    -- a higher threshold: the same run is only running
    c = timeline.chart(rec(1, {}, ev), {width = 50, block = 1})
    assert.equal(0, count(rows(c)[1], "!"))
    assert.equal(1, timeline.summary(rec(1, {}, ev)).blocked)
    assert.truthy(cols)
  end)

  it("draws worker jobs and collector pauses on rows of their own", function()
    local ev = {}
    span(ev, 1, 0, 1, "casync.thread")
    ev[#ev + 1] = {kind = "job", track = "pool#1 worker 1", t = 0.001, dur = 0.9, task = 1}
    ev[#ev + 1] = {kind = "job", track = "pool#1 worker 2", t = 0.5, dur = 0.4}
    ev[#ev + 1] = {kind = "gc", t = 0.2, dur = 0.01}
    ev[#ev + 1] = {kind = "http", task = 1, t = 0, dur = 0.3, name = "GET http://x/"}
    ev[#ev + 1] = {kind = "timer", task = 1, t = 0.3}
    ev[#ev + 1] = {kind = "someday", t = 0.3} -- a kind from a newer recorder
    local c = timeline.chart(rec(1, {}, ev), {width = 60})
    local lines = {}
    for l in c:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.matches("^#1 ", lines[2])
    assert.matches("^pool#1 worker 1 +R+ *$", shape(lines[3]))
    assert.matches("^pool#1 worker 2 +R+ *$", shape(lines[4]))
    assert.matches("^gc +R+ *$", shape(lines[5]))
    assert.is_true(count(lines[3], "█") > count(lines[4], "█"))
  end)

  it("takes opts.duration, so that two charts share one time scale", function()
    local a = timeline.chart(sequential(), {width = 60, duration = 6, labels = 20})
    local b = timeline.chart(gathered(), {width = 60, duration = 6, labels = 20})
    local wa = count(rows(a)[1], "─") + 1
    local wb = count(rows(b)[4], "─") + 2
    assert.near(wa / 2, wb, 2)
    assert.matches("^#1 'main' +RW+$", shape(rows(a)[1]))
    assert.matches("^  #4 'user3' +RW+R +$", shape(rows(b)[4]))
    assert.matches("^task%s+0s", a)
  end)

  it("draws in ASCII when asked", function()
    local c = timeline.chart(gathered(), {ascii = true, width = 40})
    assert.is_nil(c:find("[\128-\255]"), c)
    -- the figure, past the width, on two lines
    assert.matches("\nwall 3.00 s, sum of waits 6.00 s:\n2.0x concurrency\n$", c)
    assert.matches("  #4 'user3'%s+#%-+#", c)
  end)

  it("says so when no task ran", function()
    local c = timeline.chart({t0 = 1, t1 = 2, events = {}})
    assert.matches("no task ran while recording", c)
    assert.equal("wall 1.00 s, sum of waits 0.00 s: 0.0× concurrency", last_line(c))
  end)

  it("handles a task that waits across the end of the recording", function()
    local ev = {{kind = "run", task = 7, t = -0.5, dur = 0.6}, -- began before t0
                {kind = "wait", task = 7, t = 0.1, dur = 5, what = "sleep"}}
    local r = rows(timeline.chart(rec(1, {[7] = {id = 7, parent = 1}}, ev), {width = 40}))
    assert.equal(1, #r)
    assert.matches("^#7 +B+W+$", shape(r[1]))
  end)

  it("checks its arguments", function()
    assert.matches("bad argument #1 to 'chart' %(recording expected, got no value%)",
                   errmsg(timeline.chart))
    assert.matches("bad argument #1 to 'chart' %(recording expected, got number%)",
                   errmsg(timeline.chart, 3))
    assert.matches("bad argument #1 to 'chart' %(rec.events: table expected, got nil%)",
                   errmsg(timeline.chart, {}))
    assert.matches("bad argument #1 to 'chart' %(rec.events%[2%].t: number expected, got nil%)",
                   errmsg(timeline.chart, {events = {{kind = "gc", t = 0, dur = 0}, {kind = "run"}}}))
    assert.matches("rec.events%[1%].dur: non%-negative number expected, got %-1",
                   errmsg(timeline.chart, {events = {{kind = "run", task = 1, t = 0, dur = -1}}}))
    assert.matches("rec.events%[1%].task: integer expected, got string",
                   errmsg(timeline.chart, {events = {{kind = "run", task = "1", t = 0, dur = 1}}}))
    assert.matches("rec.events%[1%].t: number expected, got nan",
                   errmsg(timeline.chart, {events = {{kind = "end", task = 1, t = 0 / 0}}}))
    assert.matches("rec.t1: number expected, got inf",
                   errmsg(timeline.chart, {events = {}, t1 = math.huge}))
    assert.matches("bad argument #2 to 'chart' %(table expected, got string%)",
                   errmsg(timeline.chart, gathered(), "wide"))
    assert.matches("bad argument #2 to 'chart' %(opts.width must be an integer >= 30%)",
                   errmsg(timeline.chart, gathered(), {width = 10}))
    assert.matches("bad argument #2 to 'chart' %(opts.labels must be an integer from 4 to width %- 10%)",
                   errmsg(timeline.chart, gathered(), {labels = 75}))
    assert.matches("bad argument #2 to 'chart' %(opts.duration must be a number >= 0%)",
                   errmsg(timeline.chart, gathered(), {duration = -1}))
    assert.matches("bad argument #2 to 'svg' %(opts.width must be an integer >= 300%)",
                   errmsg(timeline.svg, gathered(), {width = 2.5}))
    assert.matches("bad argument #2 to 'svg' %(opts.title must be a string%)",
                   errmsg(timeline.svg, gathered(), {title = 1}))
    assert.matches("bad argument #1 to 'chrome' %(recording expected, got string%)",
                   errmsg(timeline.chrome, "x"))
    assert.matches("bad argument #1 to 'summary' %(recording expected, got boolean%)",
                   errmsg(timeline.summary, true))
    -- the error is the caller's
    local _, err = pcall(function() timeline.chart() end)
    assert.matches("timeline_spec.lua:%d+: bad argument", err)
  end)
end)

---------------------------------------------------------------------------

-- the trace events of a Chrome JSON document, checked for the format's rules
local function parse_chrome(json)
  local doc = cjson.decode(json)
  assert.is_table(doc.traceEvents)
  local names, spans, last_ts, meta_done = {}, {}, -math.huge, false
  for i, e in ipairs(doc.traceEvents) do
    assert.equal(1, e.pid)
    assert.is_number(e.tid)
    if e.ph == "M" then
      assert.is_false(meta_done, "metadata after the events")
      if e.name == "thread_name" then names[e.tid] = e.args.name end
    else
      meta_done = true
      assert(e.ts >= last_ts, ("event %d out of order: %s < %s"):format(i, e.ts, last_ts))
      last_ts = e.ts
      assert(e.ph == "X" or e.ph == "i", e.ph)
      if e.ph == "X" then
        assert(e.dur >= 0)
        spans[e.tid] = spans[e.tid] or {}
        table.insert(spans[e.tid], e)
      end
    end
  end
  -- on each track, spans never overlap
  for tid, list in pairs(spans) do
    for i = 2, #list do
      local a, b = list[i - 1], list[i]
      assert(b.ts >= a.ts + a.dur - 1e-6,
             ("track %s (%s): %s at %s overlaps %s at %s+%s"):format(tid, tostring(names[tid]),
               b.name, b.ts, a.name, a.ts, a.dur))
    end
  end
  return doc, names, spans
end

describe("timeline.chrome", function()
  it("writes trace-event JSON: a named track per task, X spans in order", function()
    local doc, names, spans = parse_chrome(timeline.chrome(gathered()))
    assert.equal("task #1 'main'", names[1])
    assert.equal("task #2", names[2])
    assert.equal("task #4 'user3'", names[4])
    assert.equal(3, #spans[4])
    assert.same({"run", "wait", "run"}, {spans[4][1].cat, spans[4][2].cat, spans[4][3].cat})
    assert.equal("sleep", spans[4][2].name)
    assert.equal("sleep", spans[4][2].args.what)
    assert.near(3e6, spans[4][2].dur, 1)       -- microseconds
    assert.near(140 + 10, spans[4][2].ts, 1e-3)
    local ends = 0
    for _, e in ipairs(doc.traceEvents) do
      if e.ph == "i" and e.cat == "end" then
        ends = ends + 1
        assert.equal("ok", e.name)
      end
    end
    assert.equal(4, ends)
    assert.equal(100, doc.otherData.t0)
  end)

  it("puts jobs, HTTP requests and collector pauses on tracks of their own", function()
    local ev = {}
    span(ev, 1, 0, 1, "casync.thread")
    ev[#ev + 1] = {kind = "job", track = "pool#1 worker 2", t = 0.001, dur = 0.9, task = 1}
    ev[#ev + 1] = {kind = "job", track = "pool#1 worker 2", t = 0.95, dur = 0.01}
    ev[#ev + 1] = {kind = "http", task = 1, t = 0, dur = 0.3, name = "GET http://x/"}
    ev[#ev + 1] = {kind = "gc", t = 0.2, dur = 0.01}
    ev[#ev + 1] = {kind = "timer", task = 1, t = 0.3}
    local doc, names, spans = parse_chrome(timeline.chrome(rec(1, {}, ev)))
    local by_name = {}
    for tid, n in pairs(names) do by_name[n] = tid end
    assert.truthy(by_name["pool#1 worker 2"])
    assert.truthy(by_name["task #1 http"])
    assert.truthy(by_name["garbage collector"])
    local jobs = spans[by_name["pool#1 worker 2"]]
    assert.equal(2, #jobs)
    assert.equal("job", jobs[1].cat)
    assert.equal("job of task #1", jobs[1].name)
    assert.equal("GET http://x/", spans[by_name["task #1 http"]][1].name)
    assert.equal("gc", spans[by_name["garbage collector"]][1].cat)
    local timers = 0
    for _, e in ipairs(doc.traceEvents) do
      if e.cat == "timer" then timers = timers + 1 end
    end
    assert.equal(1, timers)
  end)

  it("starts a task's wait where its run ended, lanes overlapping requests", function()
    local ev = {
      {kind = "run", task = 1, t = 0, dur = 0.001},
      {kind = "wait", task = 1, t = 0.0009, dur = 0.5, what = "sleep"}, -- parked in the run
      {kind = "http", task = 1, t = 0.1, dur = 0.3, name = "a"},
      {kind = "http", task = 1, t = 0.2, dur = 0.3, name = "b"},          -- overlaps a
    }
    local _, names, spans = parse_chrome(timeline.chrome(rec(1, {}, ev)))
    assert.equal(2, #spans[1])
    assert.near(1000, spans[1][2].ts, 1e-6)
    local lanes = 0
    for _, n in pairs(names) do if n:match("^task #1 http") then lanes = lanes + 1 end end
    assert.equal(2, lanes)
  end)

  it("escapes names into valid JSON, whatever their bytes", function()
    local ev = {}
    span(ev, 1, 0, 0.1, 'say "hi"\n\t\\ \1')
    local tasks = {[1] = {id = 1, name = "bad \255\254 utf-8 é"}}
    local doc, names, spans = parse_chrome(timeline.chrome(rec(1, tasks, ev)))
    assert.equal("task #1 'bad \u{fffd}\u{fffd} utf-8 é'", names[1])
    assert.equal('say "hi"\n\t\\ \1', spans[1][2].name)
    assert.truthy(doc)
  end)

  it("sorts spans that a lane moved out of order", function()
    local ev = {
      {kind = "job", track = "w", t = 0, dur = 1},
      {kind = "job", track = "w", t = 0.5, dur = 0.1},
      {kind = "run", task = 1, t = 0.2, dur = 0.1},
    }
    parse_chrome(timeline.chrome(rec(1, {}, ev)))
  end)
end)

---------------------------------------------------------------------------

-- the distinct colours of a PNG's pixels (python3's zlib reads it), or nil
local function png_colours(path)
  local py = [[
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
i, idat, w, h, ct = 8, b'', 0, 0, 0
while i < len(d):
    n, t = struct.unpack('>I4s', d[i:i+8]); body = d[i+8:i+8+n]; i += 12 + n
    if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', body[:10])
    if t == b'IDAT': idat += body
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}[ct]
stride = w * bpp
prev = bytearray(stride); out = set(); p = 0
for y in range(h):
    f = raw[p]; line = bytearray(raw[p+1:p+1+stride]); p += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[x] = (line[x] + pr) & 255
    for x in range(0, stride, bpp): out.add(bytes(line[x:x+3]))
    prev = line
print(len(out), w, h)
]]
  local code, out, err = helper.sh("env -u LD_PRELOAD python3 -c " .. helper.quote(py) .. " " ..
                                   helper.quote(path))
  assert(code == 0, err)
  local n, w, h = out:match("(%d+) (%d+) (%d+)")
  return tonumber(n), tonumber(w), tonumber(h)
end

local function chromium()
  for _, name in ipairs({"chromium", "chromium-browser"}) do
    local code = helper.sh("command -v " .. name)
    if code == 0 then return name end
  end
end

describe("timeline.svg", function()
  it("writes a self-contained SVG document: a row a task, a tooltip a bar", function()
    local svg = timeline.svg(gathered(), {title = "E000.1 <gather>"})
    assert.matches("^<svg xmlns=\"http://www.w3.org/2000/svg\"", svg)
    assert.matches("</svg>\n$", svg)
    assert.is_nil(svg:find("<script", 1, true))
    assert.is_nil(svg:find("href", 1, true))       -- no external fonts or images
    assert.is_nil(svg:find("@import", 1, true))
    assert.truthy(svg:find("E000.1 &lt;gather&gt;", 1, true))
    assert.truthy(svg:find("wall 3.00 s, sum of waits 6.00 s: 2.0× concurrency", 1, true))
    assert.truthy(svg:find("#4 &#39;user3&#39;: waiting (sleep)", 1, true))
    local labels = 0
    for _ in svg:gmatch('<text x="10" y="%d+" font%-family="DejaVu Sans Mono') do labels = labels + 1 end
    assert.equal(4, labels)
    -- well-formed XML (python3's parser, when there is one)
    if helper.sh("command -v python3") ~= 0 then return end
    local name = os.tmpname()
    local f = assert(io.open(name, "w"))
    f:write(svg)
    f:close()
    local code, _, err = helper.sh("env -u LD_PRELOAD python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' " ..
                                   helper.quote(name))
    os.remove(name)
    assert.equal(0, code, err)
  end)

  it("renders in a headless browser (Debian's chromium, when installed)", function()
    local browser = chromium()
    if browser and helper.sh("command -v python3") ~= 0 then
      pending("python3 is not installed: the screenshot cannot be read")
      return
    end
    if not browser then
      pending("chromium is not installed (apt-get install chromium): the SVG was not rendered")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. helper.quote(dir .. "/profile")))
    local function shot(svg, name)
      local file = dir .. "/" .. name .. ".svg"
      local f = assert(io.open(file, "w"))
      f:write(svg)
      f:close()
      local png = dir .. "/" .. name .. ".png"
      local code, _, err = helper.sh(("env -u LD_PRELOAD timeout 60 %s --headless --no-sandbox --disable-gpu " ..
        "--disable-quic --no-first-run --disable-background-networking --disable-component-update " ..
        "--disable-sync --user-data-dir=%s --screenshot=%s --window-size=1000,600 %s")
        :format(browser, helper.quote(dir .. "/profile"), helper.quote(png), helper.quote(file)))
      assert(code == 0, err)
      return png_colours(png)
    end
    local blank = shot('<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="600">' ..
                       '<rect width="1000" height="600" fill="#ffffff"/></svg>', "blank")
    local n, w, h = shot(timeline.svg(gathered()), "chart")
    os.execute("rm -rf " .. helper.quote(dir))
    assert.equal(1, blank)
    assert.equal(1000, w)
    assert.equal(600, h)
    -- text, bars of several colours, their antialiased edges
    assert(n >= 20, ("only %d colours in the screenshot"):format(n))
  end)
end)

---------------------------------------------------------------------------
-- real recordings

local has_trace = type(casync.trace) == "function"

describe("timeline on a real recording", function()
  local function needs_trace()
    if not has_trace then
      pending("casync.trace is not in this build yet (the recorder)")
      return false
    end
    return true
  end

  it("draws three gathered sleeps as three rows under main, ~2.0×", function()
    if not needs_trace() then return end
    async(function()
      casync.trace{}
      casync.gather(function() casync.sleep(0.2) end,
                    function() casync.sleep(0.1) end,
                    function() casync.sleep(0.3) end)
      local r = casync.trace(false)
      local c = timeline.chart(r)
      local lines = rows(c)
      assert.equal(4, #lines, c)
      -- a sleep never ends early, and may end late on a loaded machine
      local sm = timeline.summary(r)
      assert(sm.wall >= 0.3 and sm.wall < 0.6, sm.wall)
      assert(sm.waits >= 0.6 and sm.waits < 0.8, sm.waits)
      assert.near(sm.waits / sm.wall, sm.concurrency, 1e-9)
      assert.matches(("sum of waits %.2f s: %.1f× concurrency\n$"):format(sm.waits, sm.concurrency), c)
      parse_chrome(timeline.chrome(r))
    end)()
  end)

  it("has one task's runs never overlapping, the events in time order", function()
    if not needs_trace() then return end
    async(function()
      casync.trace{}
      local ch = casync.channel()
      casync.gather(function() for i = 1, 50 do ch:send(i) casync.sleep(0) end ch:close() end,
                    function() for _ in ch:iter() do end end)
      local r = casync.trace(false)
      local last, busy = -math.huge, {}
      for i, e in ipairs(r.events) do
        assert(e.t >= last, ("event %d before the one before it"):format(i))
        last = e.t
        if e.kind == "run" then
          assert(e.t >= (busy[e.task] or -math.huge) - 1e-9, "runs of one task overlap")
          busy[e.task] = e.t + e.dur
        end
      end
      parse_chrome(timeline.chrome(r))
    end)()
  end)
end)
