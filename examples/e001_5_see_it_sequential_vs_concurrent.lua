-- Seed 001 "Async & Concurrency", section "See it — sequential vs
-- concurrent", example E001.5: the article draws its two-fetch program as
-- two timelines.  Here casync draws them: each shape is recorded
-- (casync.trace) and drawn (casync.timeline) on one time scale, side by
-- side.  Sequential: await one fetch, then the other: the two bars follow
-- each other, total = the sum (~2 s).  Concurrent: start both, then await
-- both: the bars lie one above the other, total = the max (~1 s).  The
-- figure under each chart is the sum of the waits over the wall time:
-- 1.0x when one thing waits at a time, 2.0x when two do.
--
-- Each fetch runs in a task of its own (named, so that it gets a labelled
-- row); awaiting each before starting the next is the sequential shape.
local casync = require "casync"
local timeline = require "casync.timeline"

local function fetch_user(id)
  casync.sleep(1) -- simulate network
  return {id = id, name = ("User%d"):format(id)}
end

local function fetch(id) -- fetch_user(id) as a task of its own
  return casync.spawn({name = ("fetch_user(%d)"):format(id)}, fetch_user, id)
end

-- Sequential: total ~2s
local function sequential()
  local a = fetch(1):wait()
  local b = fetch(2):wait()
  return a, b
end

-- Concurrent: total ~1s
local function concurrent()
  return casync.gather(fetch(1), fetch(2))
end

-- record(fn) -> the recording of fn() and fn's results
local function record(fn)
  casync.trace{}
  local r = table.pack(fn())
  return casync.trace(false), table.unpack(r, 1, r.n)
end

-- beside(left, right, gap) -> the two texts' lines side by side
local function beside(left, right, width, gap)
  local function lines(s)
    local t = {}
    for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
    return t
  end
  local l, r, out = lines(left), lines(right), {}
  for i = 1, math.max(#l, #r) do
    local a = l[i] or ""
    out[i] = a .. (" "):rep(width - utf8.len(a) + gap) .. (r[i] or "")
  end
  return table.concat(out, "\n") .. "\n"
end

local function main()
  local seq, a, b = record(sequential)
  print(("Sequential: %s, %s"):format(a.name, b.name))
  local conc, c, d = record(concurrent)
  print(("Concurrent: %s, %s"):format(c.name, d.name))

  -- one time scale for both: the longer run
  local span = math.max(seq.t1 - seq.t0, conc.t1 - conc.t0)
  local opts = {width = 39, labels = 20, duration = span}
  local s, c2 = timeline.summary(seq), timeline.summary(conc)
  print()
  io.write(beside(("Sequential: %.2f s\n"):format(s.wall), ("Concurrent: %.2f s\n"):format(c2.wall), 39, 2),
           beside(timeline.chart(seq, opts), timeline.chart(conc, opts), 39, 2), "\n")
  print(("Sequential: wall %.2f s, waits %.2f s, %.1fx concurrency"):format(s.wall, s.waits, s.concurrency))
  print(("Concurrent: wall %.2f s, waits %.2f s, %.1fx concurrency"):format(c2.wall, c2.waits, c2.concurrency))
end

casync.run(main) -- asyncio.run(main())
