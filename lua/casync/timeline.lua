-- casync.timeline: a recording of casync.trace drawn for people, in three
-- forms: Chrome trace-event JSON (Perfetto and chrome://tracing open it), a
-- terminal chart (one row a task, time across) and the same chart as a
-- self-contained SVG.  Pure Lua; it reads the recording and changes nothing.
--
-- A recording is a table (casync.trace(false) returns one):
--   rec.t0, rec.t1   start and end, seconds on casync.now()'s clock
--   rec.tasks        {[id] = {id =, name = (or nil), parent =, spawned_at =}}
--   rec.events       in time order; times in seconds from rec.t0:
--     {kind = "run",  task =, t =, dur =}           the task ran
--     {kind = "wait", task =, t =, dur =, what =, on_tasks =}
--                                                   the task waited on `what`
--                                                   (on_tasks: on other tasks)
--     {kind = "spawn", task =, t =, parent =}        the task was spawned
--     {kind = "end",  task =, t =, outcome = "ok" | "failed" | "cancelled"}
--     {kind = "job",  track =, t =, dur =, task =}  a thread or process job
--     {kind = "http", task =, t =, dur =, name =}   an HTTP request
--     {kind = "gc",   t =, dur =}                   the collector: casync.trace
--                                                   marks each cycle's end
--                                                   (dur 0: Lua 5.4 cannot
--                                                   time its steps)
--     {kind = "timer", task =, t =}                 a timer fired
--   Events of other kinds are skipped, so newer recorders stay readable.
--
-- The concurrency figure: the sum of the time every task spent waiting on
-- something outside the program (a sleep, I/O, a thread or process job, a
-- child process, a signal), divided by the wall time: the average number of
-- such waits in progress at once.  Waits on other tasks (task:wait, gather,
-- race, wait_for, a scope's end, channels, queues, locks, semaphores,
-- events, conditions, select) are not counted: what they wait for is
-- counted where it happens.  Three fetches of 1, 2 and 3 s gathered: 6 s of
-- sleeps in 3 s of wall time, 2.0x; the same three one after the other:
-- 6 s in 6 s, 1.0x.
local M = {}

local floor, max, min, huge = math.floor, math.max, math.min, math.huge
local fmt, concat = string.format, table.concat

---------------------------------------------------------------------------
-- argument checks, worded as Lua's own

local function bad(n, fname, msg, level)
  error(fmt("bad argument #%d to '%s' (%s)", n, fname, msg), level + 1)
end

local SPANS = {run = true, wait = true, job = true, http = true, gc = true}
local TASKED = {run = true, wait = true, ["end"] = true, spawn = true}

local function show(v)
  if type(v) ~= "number" then return type(v) end
  if v ~= v then return "nan" end
  return tostring(v)
end

local function finite(x) return type(x) == "number" and x == x and x > -huge and x < huge end

-- Checks a recording; level is the error level of the public function.
local function check_rec(rec, fname, level)
  level = level + 1
  if type(rec) ~= "table" then
    bad(1, fname, "recording expected, got " .. (rec == nil and "no value" or type(rec)), level)
  end
  if type(rec.events) ~= "table" then
    bad(1, fname, "rec.events: table expected, got " .. type(rec.events), level)
  end
  if rec.tasks ~= nil and type(rec.tasks) ~= "table" then
    bad(1, fname, "rec.tasks: table expected, got " .. type(rec.tasks), level)
  end
  for _, k in ipairs({"t0", "t1"}) do
    if rec[k] ~= nil and not finite(rec[k]) then
      bad(1, fname, fmt("rec.%s: number expected, got %s", k,
                        show(rec[k])), level)
    end
  end
  local evs = rec.events
  for i = 1, #evs do
    local e = evs[i]
    if type(e) ~= "table" then
      bad(1, fname, fmt("rec.events[%d]: table expected, got %s", i, type(e)), level)
    end
    local kind = e.kind
    if type(kind) ~= "string" then
      bad(1, fname, fmt("rec.events[%d].kind: string expected, got %s", i, type(kind)), level)
    end
    if not finite(e.t) then
      bad(1, fname, fmt("rec.events[%d].t: number expected, got %s", i,
                        show(e.t)), level)
    end
    if SPANS[kind] and not (finite(e.dur) and e.dur >= 0) then
      bad(1, fname, fmt("rec.events[%d].dur: non-negative number expected, got %s", i,
                        show(e.dur)), level)
    end
    if TASKED[kind] and math.type(e.task) ~= "integer" then
      bad(1, fname, fmt("rec.events[%d].task: integer expected, got %s", i,
                        math.type(e.task) or type(e.task)), level)
    end
    if kind == "job" and type(e.track) ~= "string" then
      bad(1, fname, fmt("rec.events[%d].track: string expected, got %s", i, type(e.track)), level)
    end
  end
end

local function check_opts(opts, fname, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    bad(2, fname, "table expected, got " .. type(opts), level + 1)
  end
  return opts
end

local function opt_number(opts, key, default, lo, fname, level)
  local v = opts[key]
  if v == nil then return default end
  if not finite(v) or v < lo then
    bad(2, fname, fmt("opts.%s must be a number >= %g", key, lo), level + 1)
  end
  return v
end

---------------------------------------------------------------------------
-- what a recording says

-- Waits on other tasks of the program: not counted in the concurrency
-- figure, drawn apart.  The recorder says so (on_tasks); for a recording
-- without it, the start of the wait's `what` decides.
local JOINS = {"task", "gather", "all_settled", "race", "wait_for", "scope",
               "channel", "queue", "lock", "semaphore", "event", "condition",
               "select", "acquire", "recv on channel", "send on channel",
               "get on queue", "put on queue", "checkpoint"}

local join_cache = {}
local function is_join(what)
  if what == nil then return false end
  local j = join_cache[what]
  if j ~= nil then return j end
  j = what == "wait" or what == "join"
  if not j then
    for i = 1, #JOINS do
      local p = JOINS[i]
      if what:sub(1, #p) == p then
        local c = what:sub(#p + 1, #p + 1)
        if c == "" or not c:match("[%w_]") then j = true break end
      end
    end
  end
  join_cache[what] = j
  return j
end

local function on_tasks(e)
  if e.on_tasks ~= nil then return e.on_tasks end
  return is_join(e.what)
end

-- wall time of a recording, seconds
local function wall_of(rec)
  if rec.t0 and rec.t1 then return max(0, rec.t1 - rec.t0) end
  local w = 0
  for _, e in ipairs(rec.events) do w = max(w, e.t + (e.dur or 0)) end
  return w
end

-- summary(rec [, {block = 0.05}]) -> {wall =, waits =, concurrency =,
-- tasks =, running =, blocked =}: the figures under the chart (waits: see
-- the header; running: seconds the tasks ran; blocked: how many runs were
-- longer than opts.block).
function M.summary(rec, opts)
  check_rec(rec, "summary", 2)
  opts = check_opts(opts, "summary", 2)
  local block = opt_number(opts, "block", 0.05, 0, "summary", 2)
  local wall = wall_of(rec)
  local waits, running, blocked, tasks = 0, 0, 0, {}
  local ntasks = 0
  for _, e in ipairs(rec.events) do
    local k = e.kind
    if k == "wait" then
      if not on_tasks(e) then
        local a, b = max(e.t, 0), min(e.t + e.dur, wall)
        if b > a then waits = waits + (b - a) end
      end
    elseif k == "run" then
      running = running + e.dur
      if e.dur > block then blocked = blocked + 1 end
    end
    if e.task and TASKED[k] and not tasks[e.task] then
      tasks[e.task] = true
      ntasks = ntasks + 1
    end
  end
  return {wall = wall, waits = waits, running = running, blocked = blocked,
          tasks = ntasks, concurrency = wall > 0 and waits / wall or 0}
end

local function seconds(s)
  if s >= 0.1 or s == 0 then return fmt("%.2f s", s) end
  return fmt("%.3g ms", s * 1000)
end

-- The line under the chart: "wall 3.00 s, sum of waits 6.00 s: 2.0× concurrency"
local function summary_line(sm, ascii)
  return fmt("wall %s, sum of waits %s: %.1f%s concurrency", seconds(sm.wall),
             seconds(sm.waits), sm.concurrency, ascii and "x" or "\u{d7}")
end

local function basename(site)
  return (tostring(site):gsub("^@", ""):match("([^/]*)$"))
end

-- "#3 'fetch'", or "#3 script.lua:12" for an unnamed task
local function task_label(id, info)
  if info and info.name then return fmt("#%d '%s'", id, tostring(info.name)) end
  if info and info.spawned_at then return fmt("#%d %s", id, basename(info.spawned_at)) end
  -- spawned from C with no parent: casync.run's main task (the runner's)
  if info and not info.parent then return fmt("#%d main", id) end
  return "#" .. id
end

---------------------------------------------------------------------------
-- rows: each task's time, column by column

local RUN, BLOCK, WAIT, JOIN, READY = 1, 2, 3, 4, 5

-- adds the overlap of [a, b] with each column to acc[col]; marks seen[col]
local function spread(acc, seen, a, b, t_hi, w, cols)
  if b < 0 or a > t_hi then return end
  if a < 0 then a = 0 end
  if b > t_hi then b = t_hi end
  local c1 = floor(a / w) + 1
  local c2 = floor(b / w) + 1
  if c1 > cols then c1 = cols end
  if c2 > cols then c2 = cols end
  for c = c1, c2 do
    local lo, hi = (c - 1) * w, c * w
    local o = min(b, hi) - max(a, lo)
    if o > 0 then
      acc[c] = (acc[c] or 0) + o
      seen[c] = true
    elseif a == b then
      seen[c] = true
    end
  end
end

-- layout(rec) -> the rows in display order, without their cells:
--   {id = task id | nil, track = name | nil, kind = "task" | "job" | "gc",
--    label =, depth =}; tasks first, children under their parent (by id),
--   then the job tracks in order of appearance, then the collector.
local function layout(rec)
  local tasks = rec.tasks or {}
  local seen, ids, tracks, out = {}, {}, {}, {}
  local jobs, gc = {}, false
  for _, e in ipairs(rec.events) do
    local k = e.kind
    if k == "run" or k == "wait" or k == "end" or k == "spawn" then
      if not seen[e.task] then seen[e.task] = true ids[#ids + 1] = e.task end
    elseif k == "job" then
      if not tracks[e.track] then tracks[e.track] = true jobs[#jobs + 1] = e.track end
    elseif k == "gc" then
      gc = true
    end
  end
  table.sort(ids)
  local children, roots = {}, {}
  for _, id in ipairs(ids) do
    -- the nearest ancestor that has a row
    local p, hops = tasks[id] and tasks[id].parent, 0
    while p ~= nil and not seen[p] and hops < 100 do
      p = tasks[p] and tasks[p].parent
      hops = hops + 1
    end
    if p ~= nil and seen[p] and p ~= id then
      children[p] = children[p] or {}
      table.insert(children[p], id)
    else
      roots[#roots + 1] = id
    end
  end
  local visited = {}
  local function visit(id, depth)
    if visited[id] then return end
    visited[id] = true
    out[#out + 1] = {id = id, kind = "task", depth = depth, label = task_label(id, tasks[id])}
    for _, c in ipairs(children[id] or {}) do visit(c, depth + 1) end
  end
  for _, id in ipairs(roots) do visit(id, 0) end
  for _, id in ipairs(ids) do visit(id, 0) end -- a cycle of parent links
  for _, name in ipairs(jobs) do
    out[#out + 1] = {track = name, kind = "job", depth = 0, label = name}
  end
  if gc then out[#out + 1] = {track = "gc", kind = "gc", depth = 0, label = "gc"} end
  return out
end

-- rows(rec, rows, cols, dur, block) -> rows (from layout) with
--   cells = {[col] = state}, what = {[col] = the wait's what}, outcome =
local function rows_of(rec, rows, cols, dur, block)
  local w = dur / cols
  local by_task, by_track = {}, {}
  for _, r in ipairs(rows) do
    r.acc, r.seen, r.what, r.wbest, r.ran = {{}, {}, {}, {}, {}}, {}, {}, {}, {}
    if r.id then by_task[r.id] = r else by_track[r.track] = r end
  end
  for _, e in ipairs(rec.events) do
    local k = e.kind
    if k == "run" or k == "wait" then
      local r = by_task[e.task]
      local a, b = e.t, e.t + e.dur
      if r.last and a > r.last then -- ready to run, not running
        spread(r.acc[READY], r.seen, r.last, a, dur, w, cols)
      end
      local state
      if k == "run" then
        state = e.dur > block and BLOCK or RUN
      else
        state = on_tasks(e) and JOIN or WAIT
      end
      if state == WAIT or state == JOIN then
        -- the wait that covers most of a column names it (SVG tooltips)
        local acc = r.acc[state]
        local c1 = max(1, floor(max(a, 0) / w) + 1)
        local c2 = min(cols, floor(min(b, dur) / w) + 1)
        local before = {}
        for c = c1, c2 do before[c] = acc[c] or 0 end
        spread(acc, r.seen, a, b, dur, w, cols)
        for c = c1, c2 do
          local got = (acc[c] or 0) - before[c]
          if got > (r.wbest[c] or -1) then r.wbest[c], r.what[c] = got, e.what end
        end
      else
        spread(r.acc[state], r.seen, a, b, dur, w, cols)
        r.lastrun = nil
        if a >= 0 and a <= dur then
          local c = min(cols, floor(a / w) + 1)
          r.ran[c] = true
          if not r.first then r.first = c end
          r.lastrun = min(cols, floor(min(b, dur) / w) + 1)
        end
      end
      if not r.first and a >= 0 and a <= dur then r.first = -1 end
      if not r.last or b > r.last then r.last = b end
    elseif k == "spawn" then -- ready from here to its first run
      local r = by_task[e.task]
      if r and e.t >= 0 then r.last = e.t end
    elseif k == "end" then
      local r = by_task[e.task]
      r.outcome = e.outcome
      if r.last and e.t > r.last then spread(r.acc[READY], r.seen, r.last, e.t, dur, w, cols) end
      r.last = nil
      r.ended = r.lastrun
    elseif k == "job" then
      local r = by_track[e.track]
      spread(r.acc[RUN], r.seen, e.t, e.t + e.dur, dur, w, cols)
    elseif k == "gc" then
      local r = by_track.gc
      spread(r.acc[e.dur > block and BLOCK or RUN], r.seen, e.t, e.t + e.dur, dur, w, cols)
    end
  end
  -- the state of each column: blocking wins, then the longest
  for _, r in ipairs(rows) do
    local cells = {}
    for c in pairs(r.seen) do
      local s
      if (r.acc[BLOCK][c] or 0) > 0 then
        s = BLOCK
      else
        local best = -1
        for st = RUN, READY do
          if st ~= BLOCK then
            local v = r.acc[st][c] or 0
            if v > best then best, s = v, st end
          end
        end
        if best <= 0 then s = RUN end -- a zero-length span
      end
      cells[c] = s
    end
    -- where a task starts and where it ends, a run shows, however short
    for _, c in ipairs({r.first or -1, r.ended or -1}) do
      if c > 0 and r.ran[c] and cells[c] ~= BLOCK then cells[c], r.what[c] = RUN, nil end
    end
    r.cells = cells
    r.acc, r.seen, r.wbest, r.last, r.ran = nil, nil, nil, nil, nil
  end
  return rows
end

-- nice tick step for a span of `dur` seconds over `cols` columns, at least
-- `gap` columns apart
local function tick_step(dur, cols, gap)
  local want = dur / cols * gap
  local p = 10 ^ floor(math.log(want, 10))
  for _, m in ipairs({1, 2, 5, 10}) do
    if p * m >= want then return p * m end
  end
  return p * 10
end

local function tick_label(t, step)
  if step >= 0.1 then return fmt("%gs", floor(t * 1000 + 0.5) / 1000) end
  if step >= 0.001 then return fmt("%gms", floor(t * 1000 + 0.5)) end
  return fmt("%gus", floor(t * 1e6 + 0.5))
end

-- The checks and options chart and svg share: returns opts, width (default
-- w0, at least wmin), block, duration (seconds across, never 0).
local function drawing(rec, opts, fname, w0, wmin)
  check_rec(rec, fname, 3)
  opts = check_opts(opts, fname, 3)
  local width = opts.width == nil and w0 or opts.width
  if math.type(width) ~= "integer" or width < wmin then
    bad(2, fname, "opts.width must be an integer >= " .. wmin, 3)
  end
  local block = opt_number(opts, "block", 0.05, 0, fname, 3)
  local dur = opt_number(opts, "duration", wall_of(rec), 0, fname, 3)
  return opts, width, block, dur > 0 and dur or 1e-3
end

---------------------------------------------------------------------------
-- the terminal chart

local GLYPHS = {[RUN] = "\u{2588}", [BLOCK] = "!", [WAIT] = "\u{2500}",
                [JOIN] = "\u{b7}", [READY] = "\u{2591}"}
local ASCII = {[RUN] = "#", [BLOCK] = "!", [WAIT] = "-", [JOIN] = ".", [READY] = ":"}

-- utf-8 aware length and left-cut of a label
local function ulen(s) return utf8.len(s) or #s end
local function fit(s, n, ascii)
  local len = ulen(s)
  if len <= n then return s .. (" "):rep(n - len) end
  if not utf8.len(s) then return s:sub(1, n) end
  -- "#2 a_long_file_name.lua:22": the line number stays; so does the
  -- worker of a job's track ("process pool#1 worker 2")
  local tail = s:match(":%d+$") or s:match("#%d+ worker %d+$") or ""
  local keep = n - 1 - #tail
  if keep < 3 then tail, keep = "", n - 1 end
  return s:sub(1, utf8.offset(s, keep + 1) - 1) .. (ascii and "~" or "\u{2026}") .. tail
end

-- chart(rec [, opts]) -> a terminal chart of the recording, one row a task,
-- time across, and the concurrency line under it.  opts: width (characters
-- a line, default 80), labels (characters of the label column, default the
-- longest label, at most a third of the width), duration (seconds across,
-- default the wall time; with labels, puts charts on one scale),
-- block (a run longer than this many seconds blocks the loop, default
-- 0.05), ascii (only ASCII glyphs).
function M.chart(rec, opts)
  local width, block, dur
  opts, width, block, dur = drawing(rec, opts, "chart", 80, 30)
  local g = opts.ascii and ASCII or GLYPHS
  -- label column: as wide as the longest label, within a third of the line
  local rows = layout(rec)
  local lw = opts.labels
  if lw == nil then
    lw = 4
    for _, r in ipairs(rows) do lw = max(lw, ulen(r.label) + 2 * r.depth) end
    lw = min(lw, floor(width / 3))
  elseif math.type(lw) ~= "integer" or lw < 4 or lw > width - 10 then
    bad(2, "chart", "opts.labels must be an integer from 4 to width - 10", 2)
  end
  lw = lw + 1
  local cols = width - lw
  rows_of(rec, rows, cols, dur, block)
  local lines = {}
  -- the time axis: tick labels at nice steps
  local step = tick_step(dur, cols, 8)
  local axis = {}
  for c = 1, cols do axis[c] = " " end
  local t, last = 0, 0
  while t <= dur * (1 + 1e-9) do
    local c = floor(t / (dur / cols) + 1e-9) + 1
    local s = tick_label(t, step)
    if c + #s - 1 > cols then c = cols - #s + 1 end -- the last one, moved in
    if c > last then
      for i = 1, #s do axis[c + i - 1] = s:sub(i, i) end
      last = c + #s
    end
    t = t + step
  end
  lines[1] = fit("task", lw) .. concat(axis)
  local used = {}
  for _, r in ipairs(rows) do
    local line = {fit((" "):rep(2 * r.depth) .. r.label, lw - 1, opts.ascii), " "}
    for c = 1, cols do
      local s = r.cells[c]
      if s then used[s] = true end
      line[#line + 1] = s and g[s] or " "
    end
    if r.outcome and r.outcome ~= "ok" then line[#line + 1] = " " .. r.outcome end
    lines[#lines + 1] = concat(line)
  end
  if #rows == 0 then lines[#lines + 1] = "(no task ran while recording)" end
  -- the legend, the glyphs used, wrapped at the width
  local names = {[RUN] = "running", [BLOCK] = fmt("blocking the loop (a run over %s)", seconds(block)),
                 [WAIT] = "waiting (time, I/O, a job)", [JOIN] = "waiting on other tasks",
                 [READY] = "ready, not running"}
  local legend, cur = {}, ""
  for _, s in ipairs({RUN, BLOCK, WAIT, JOIN, READY}) do
    if used[s] then
      local item = g[s] .. " " .. names[s]
      if cur ~= "" and ulen(cur) + 2 + ulen(item) > width then
        legend[#legend + 1] = cur
        cur = item
      else
        cur = cur == "" and item or cur .. "  " .. item
      end
    end
  end
  if cur ~= "" then legend[#legend + 1] = cur end
  for _, l in ipairs(legend) do lines[#lines + 1] = l end
  local sl = summary_line(M.summary(rec, {block = block}), opts.ascii)
  if ulen(sl) > width then -- "wall …, sum of waits …:" / "2.0× concurrency"
    local a, b = sl:match("^(.-:) (.*)$")
    lines[#lines + 1] = a
    sl = b
  end
  lines[#lines + 1] = sl
  return concat(lines, "\n") .. "\n"
end

---------------------------------------------------------------------------
-- SVG

local function xml(s)
  return (tostring(s):gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                          ['"'] = "&quot;", ["'"] = "&#39;"}))
end

local COLORS = {[RUN] = "#1a73e8", [BLOCK] = "#d93025", [WAIT] = "#aecbfa",
                [JOIN] = "#dadce0", [READY] = "#fbbc04"}
local JOB_COLOR, GC_COLOR = "#188038", "#9334e6"
local STATE_NAMES = {[RUN] = "running", [BLOCK] = "blocking the loop", [WAIT] = "waiting",
                     [JOIN] = "waiting on other tasks", [READY] = "ready, not running"}

-- svg(rec [, opts]) -> the chart as a self-contained SVG document (no
-- scripts, no external fonts or images); each bar has a tooltip.  opts:
-- width (pixels, default 1000), duration, block, title.
function M.svg(rec, opts)
  local width, block, dur
  opts, width, block, dur = drawing(rec, opts, "svg", 1000, 300)
  if opts.title ~= nil and type(opts.title) ~= "string" then
    bad(2, "svg", "opts.title must be a string", 2)
  end
  local lw, right, top, rh, gap = 230, 20, 56, 18, 6
  local cols = width - lw - right
  local rows = rows_of(rec, layout(rec), cols, dur, block)
  local px = cols / dur -- pixels per second (one column a pixel)
  local height = top + #rows * (rh + gap) + 70
  local o = {}
  local function add(s) o[#o + 1] = s end
  add(fmt('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" ' ..
          'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">', width, height, width, height))
  add(fmt('<rect width="%d" height="%d" fill="#ffffff"/>', width, height))
  add(fmt('<text x="10" y="20" font-size="15" font-weight="bold">%s</text>',
          xml(opts.title or "casync timeline")))
  local sm = M.summary(rec, {block = block})
  add(fmt('<text x="10" y="38" fill="#3c4043">%s</text>', xml(summary_line(sm))))
  -- axis and grid
  local step = tick_step(dur, cols, 80)
  local t = 0
  local y1, y2 = top - 4, top + #rows * (rh + gap)
  while t <= dur * (1 + 1e-9) do
    local x = lw + t * px
    add(fmt('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e8eaed"/>', x, y1, x, y2))
    local anchor = x > width - right - 30 and ' text-anchor="end"' or ""
    add(fmt('<text x="%.1f" y="%d" fill="#5f6368" font-size="11"%s>%s</text>', x + 2, y1 - 2,
            anchor, xml(tick_label(t, step))))
    t = t + step
  end
  local used = {}
  for i, r in ipairs(rows) do
    local y = top + (i - 1) * (rh + gap)
    local label = (" "):rep(2 * r.depth) .. r.label
    add(fmt('<text x="%d" y="%d" font-family="DejaVu Sans Mono, monospace" xml:space="preserve">%s</text>',
            10, y + 13, xml((fit(label, 29):gsub("%s+$", "")))))
    -- runs of equal columns become one bar
    local c = 1
    while c <= cols do
      local s = r.cells[c]
      if s then
        local what = r.what[c]
        local e = c
        while e < cols and r.cells[e + 1] == s and r.what[e + 1] == what do e = e + 1 end
        local color = COLORS[s]
        local name = STATE_NAMES[s]
        if r.kind == "job" then color, name = JOB_COLOR, "running a job"
        elseif r.kind == "gc" then color, name = s == BLOCK and COLORS[BLOCK] or GC_COLOR, "collecting garbage"
        else used[s] = true end
        if what then name = name .. " (" .. what .. ")" end
        local h, dy = rh, 0
        if s == WAIT or s == JOIN then h, dy = rh - 8, 4 end
        add(fmt('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %s, %s to %s</title></rect>',
                lw + c - 1, y + dy, e - c + 1, h, color, xml(r.label), xml(name),
                xml(seconds((c - 1) / px)), xml(seconds(e / px))))
        c = e + 1
      else
        c = c + 1
      end
    end
    if r.outcome and r.outcome ~= "ok" then
      add(fmt('<text x="%d" y="%d" fill="#d93025" font-size="11">%s</text>',
              width - right + 2 - 60, y + 13, xml(r.outcome)))
    end
  end
  if #rows == 0 then
    add(fmt('<text x="%d" y="%d" fill="#5f6368">no task ran while recording</text>', lw, top + 14))
  end
  -- legend
  local x, y = 10, height - 24
  for _, s in ipairs({RUN, BLOCK, WAIT, JOIN, READY}) do
    if used[s] then
      local name = s == BLOCK and "blocking the loop (a run over " .. seconds(block) .. ")" or STATE_NAMES[s]
      add(fmt('<rect x="%d" y="%d" width="14" height="10" fill="%s"/>', x, y - 9, COLORS[s]))
      add(fmt('<text x="%d" y="%d">%s</text>', x + 18, y, xml(name)))
      x = x + 26 + #name * 7
    end
  end
  add("</svg>")
  return concat(o, "\n") .. "\n"
end

---------------------------------------------------------------------------
-- Chrome trace-event JSON

local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                 ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}
local function json_string(s)
  s = tostring(s)
  if not utf8.len(s) then -- not UTF-8: keep what is, replace the rest
    local parts, i = {}, 1
    while i <= #s do
      local ok, cp = pcall(utf8.codepoint, s, i)
      if ok then
        local ch = utf8.char(cp)
        parts[#parts + 1] = ch
        i = i + #ch
      else
        parts[#parts + 1] = "\u{fffd}"
        i = i + 1
      end
    end
    s = concat(parts)
  end
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or fmt("\\u%04x", c:byte())
  end) .. '"'
end

local function us(t) return fmt("%.3f", t * 1e6) end

-- chrome(rec) -> the recording as Chrome trace-event JSON (a string):
-- one track per task ("task #3 'name'"), one per worker of each thread or
-- process pool, one for HTTP requests per task, one for the collector; X
-- events of categories run, wait, job, http and gc, instants for ends and
-- timers, in time order.
function M.chrome(rec)
  check_rec(rec, "chrome", 2)
  local tasks = rec.tasks or {}
  local block = 0.05
  -- tracks: key -> {tid =, name =, lanes = {last end, ...}}
  local tracks, order = {}, {}
  local next_tid = 0
  for _, e in ipairs(rec.events) do
    if TASKED[e.kind] or e.kind == "timer" then
      if math.type(e.task) == "integer" and e.task > next_tid then next_tid = e.task end
    end
  end
  for id in pairs(tasks) do
    if math.type(id) == "integer" and id > next_tid then next_tid = id end
  end
  local function track(key, name, tid, sort)
    local tr = tracks[key]
    if not tr then
      if not tid then
        next_tid = next_tid + 1
        tid = next_tid
      end
      tr = {tid = tid, name = name, lanes = {}, sort = sort or tid}
      tracks[key] = tr
      order[#order + 1] = tr
    end
    return tr
  end
  local function task_name(id)
    local info = tasks[id]
    if info and info.name then return fmt("task #%d '%s'", id, tostring(info.name)) end
    return "task #" .. id
  end
  local evs = {}
  local lane_tid = {}
  -- places [a, b] on the first lane of tr free at a (a lane is a tid);
  -- overlaps under a microsecond are trimmed, as a recorder's clock reads.
  -- A task is never in two states at once: on its track a span that
  -- overlaps the one before starts where that one ended (a wait begins
  -- when the task parks, a little before its run ends).
  local function place(tr, a, b)
    local tol = tr.task and huge or 1e-6
    for i, last in ipairs(tr.lanes) do
      if a >= last - tol then
        if a < last then a = last end
        if b < a then b = a end
        tr.lanes[i] = b
        return lane_tid[tr][i], a, b
      end
    end
    local i = #tr.lanes + 1
    tr.lanes[i] = b
    lane_tid[tr] = lane_tid[tr] or {}
    if i == 1 then
      lane_tid[tr][i] = tr.tid
    else
      next_tid = next_tid + 1
      lane_tid[tr][i] = next_tid
      order[#order + 1] = {tid = next_tid, name = fmt("%s (%d)", tr.name, i), sort = tr.sort + i / 1000}
    end
    return lane_tid[tr][i], a, b
  end
  local sorted = true
  local last_ts = -huge
  local function emit(ts, s)
    if ts < last_ts then sorted = false end
    last_ts = ts
    evs[#evs + 1] = {ts, s}
  end
  for _, e in ipairs(rec.events) do
    local k = e.kind
    if k == "run" or k == "wait" then
      local tr = track(e.task, task_name(e.task), e.task)
      tr.task = true
      local tid, a, b = place(tr, e.t, e.t + e.dur)
      local name, args
      if k == "run" then
        name = e.dur > block and "running (blocked the loop)" or "running"
        args = ""
      else
        name = e.what and tostring(e.what) or "wait"
        args = fmt(',"args":{"what":%s}', json_string(name))
      end
      emit(a, fmt('{"name":%s,"cat":"%s","ph":"X","pid":1,"tid":%d,"ts":%s,"dur":%s%s}',
                  json_string(name), k, tid, us(a), us(b - a), args))
    elseif k == "end" then
      local tr = track(e.task, task_name(e.task), e.task)
      emit(e.t, fmt('{"name":%s,"cat":"end","ph":"i","s":"t","pid":1,"tid":%d,"ts":%s}',
                    json_string(e.outcome or "end"), tr.tid, us(e.t)))
    elseif k == "timer" then
      local tid = 0
      if math.type(e.task) == "integer" then tid = track(e.task, task_name(e.task), e.task).tid end
      emit(e.t, fmt('{"name":"timer","cat":"timer","ph":"i","s":"t","pid":1,"tid":%d,"ts":%s}',
                    tid, us(e.t)))
    elseif k == "job" then
      local tr = track("job " .. e.track, e.track, nil, 1e9 + #order)
      local tid, a, b = place(tr, e.t, e.t + e.dur)
      local who = math.type(e.task) == "integer" and e.task or nil
      emit(a, fmt('{"name":%s,"cat":"job","ph":"X","pid":1,"tid":%d,"ts":%s,"dur":%s%s}',
                  json_string(who and ("job of task #" .. who) or "job"), tid, us(a), us(b - a),
                  who and fmt(',"args":{"task":%d}', who) or ""))
    elseif k == "http" then
      local key = "http " .. tostring(e.task)
      local name = math.type(e.task) == "integer" and task_name(e.task) .. " http" or "http"
      local tr = track(key, name, nil, (tonumber(e.task) or 0) + 0.5)
      local tid, a, b = place(tr, e.t, e.t + e.dur)
      emit(a, fmt('{"name":%s,"cat":"http","ph":"X","pid":1,"tid":%d,"ts":%s,"dur":%s}',
                  json_string(e.name or "http"), tid, us(a), us(b - a)))
    elseif k == "gc" then
      local tr = track("gc", "garbage collector", nil, 2e9)
      local tid, a, b = place(tr, e.t, e.t + e.dur)
      emit(a, fmt('{"name":"gc","cat":"gc","ph":"X","pid":1,"tid":%d,"ts":%s,"dur":%s}',
                  tid, us(a), us(b - a)))
    end
  end
  if not sorted then
    for i, ev in ipairs(evs) do ev[3] = i end
    table.sort(evs, function(x, y)
      if x[1] ~= y[1] then return x[1] < y[1] end
      return x[3] < y[3]
    end)
  end
  local out = {'{"displayTimeUnit":"ms","otherData":{"generator":"casync.timeline"',
               fmt(',"t0":%.9g,"t1":%.9g},', rec.t0 or 0, rec.t1 or wall_of(rec)),
               '"traceEvents":[\n',
               '{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"casync"}}'}
  table.sort(order, function(x, y) return x.sort < y.sort end)
  for i, tr in ipairs(order) do
    out[#out + 1] = fmt(',\n{"name":"thread_name","ph":"M","pid":1,"tid":%d,"args":{"name":%s}}',
                        tr.tid, json_string(tr.name))
    out[#out + 1] = fmt(',\n{"name":"thread_sort_index","ph":"M","pid":1,"tid":%d,"args":{"sort_index":%d}}',
                        tr.tid, i)
  end
  for _, ev in ipairs(evs) do out[#out + 1] = ",\n" .. ev[2] end
  out[#out + 1] = "\n]}\n"
  return concat(out)
end

return M
