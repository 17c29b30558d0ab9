-- Seed 003 "Concurrent programming", section "All Three Are Concurrent",
-- example E003.1: `await asyncio.gather(fetch_data(1), fetch_data(2))` is
-- concurrent but not parallel: both tasks are in progress at once, yet one
-- thread switches between them.
--
-- Shown two ways:
--  1. Waiting overlaps: two fetch_data calls that wait 0.3 s each finish
--     together in ~0.3 s, and both start before either ends (concurrent).
--  2. Computing does not: two tasks that each keep the CPU busy for 0.2 s
--     (never suspending) take ~0.4 s under gather, the sum, because only one
--     of them runs at any moment (not parallel).  True parallelism needs
--     separate Lua states on threads (E003.2, casync.thread).
local casync = require "casync"

local function fetch_data(id)
  print(("fetch_data(%d) started"):format(id))
  casync.sleep(0.3) -- non-blocking wait: the other task runs meanwhile
  print(("fetch_data(%d) finished"):format(id))
  return ("data %d"):format(id)
end

-- CPU-bound: busy for `seconds` of wall time without ever suspending.
local function work(id, seconds)
  print(("work(%d) started"):format(id))
  local t0, n = casync.now(), 0
  while casync.now() - t0 < seconds do n = n + 1 end
  print(("work(%d) finished"):format(id))
  return n
end

local function main()
  local t0 = casync.now()
  local a, b = casync.gather(function() return fetch_data(1) end,
                             function() return fetch_data(2) end)
  print(("gather(fetch_data(1), fetch_data(2)) -> %s, %s in %.2fs (concurrent: the longest wait, not the sum)")
    :format(a, b, casync.now() - t0))

  t0 = casync.now()
  casync.gather(function() return work(1, 0.2) end,
                function() return work(2, 0.2) end)
  print(("gather(work(1), work(2)) in %.2fs (not parallel: one thread, the sum of the CPU time)")
    :format(casync.now() - t0))
end

casync.run(main)
