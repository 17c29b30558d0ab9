-- Seed 004 "Async/Await: Concurrency vs Parallelism", section "CPU-Bound
-- Operations", example E004.5: slowCalculation blocks the main thread
-- ("the 'async' keyword doesn't magically make CPU work non-blocking"); the
-- fix is a worker thread.
--
-- A heartbeat task beats every 50 ms and records the gaps between beats.
--  1. slowCalculation runs in a task on the loop: it never suspends, so the
--     heartbeat stalls for as long as it computes (one long gap).
--  2. the same call moved to a worker thread (casync.thread, a separate Lua
--     state on another core): the loop stays free and the heartbeat keeps
--     its 50 ms beat while the calculation runs.
-- The article's 10^9 square roots are scaled to about 0.4 s of work.
local casync = require "casync"

-- No upvalues: casync.thread copies it into the worker's Lua state.
local function slowCalculation(n)
  local result = 0
  for i = 0, n - 1 do
    result = result + math.sqrt(i) -- CPU-intensive work
  end
  return result
end

local function main()
  -- n for about 0.4 s
  local n = 100000
  local t0 = casync.now()
  slowCalculation(n)
  n = math.floor(n * 0.4 / math.max(casync.now() - t0, 1e-4))

  -- Beats every 50 ms until stopped; returns the gaps between beats.
  local function heartbeat(state)
    local gaps, last = {}, casync.now()
    while not state.stop do
      casync.sleep(0.05)
      local now = casync.now()
      gaps[#gaps + 1] = now - last
      last = now
    end
    return gaps
  end

  local function show(label, result, took, gaps)
    local parts, longest = {}, 0
    for i, g in ipairs(gaps) do
      parts[i] = ("%.2f"):format(g)
      longest = math.max(longest, g)
    end
    print(("%s: result %.6e in %.2fs"):format(label, result, took))
    print(("  heartbeat gaps (s): %s"):format(table.concat(parts, " ")))
    print(("  longest gap: %.2fs"):format(longest))
  end

  local function measure(label, calculate)
    local state = {}
    local beat = casync.spawn(heartbeat, state)
    casync.sleep(0.12) -- a few beats first
    local start = casync.now()
    local result = calculate()
    local took = casync.now() - start
    casync.sleep(0.12) -- and a few after
    state.stop = true
    show(label, result, took, beat:wait())
  end

  measure("on the loop (blocks it)", function()
    return slowCalculation(n)
  end)

  measure("on a worker thread", function()
    return casync.thread(slowCalculation, n):wait()
  end)
end

casync.run(main)
