-- Seed 003 "Concurrent programming", section "All Three Are Concurrent",
-- example E003.3: multiprocessing, concurrent AND parallel:
--
--     with ProcessPoolExecutor() as executor:
--         executor.map(work, [1, 2, 3, 4])
--
-- casync.process_pool{size = 4}:map(work, {1, 2, 3, 4}) runs work in four
-- worker processes (each a Lua interpreter of its own, started once and
-- reused), so the calls run on different cores at the same time; the
-- results come back in the list's order.  work is sent as bytecode: it
-- may use globals and require, not local variables of this script
-- (upvalues).  Each call reports its process id and when it ran; the
-- monotonic clock is the same in every process.
local casync = require "casync"

-- CPU-bound work: about 0.15 s of arithmetic, whatever n is
local function work(n)
  local casync = require "casync"
  local t0 = casync.now()
  local x = 0.0
  for i = 1, 20000000 do x = x + i % 7 end
  return {n = n, square = n * n, pid = casync.process.pid(),
          from = t0, to = casync.now(), x = x}
end

local function main()
  print(("this script: pid %d"):format(casync.process.pid()))
  local executor <close> = casync.process_pool{size = 4}
  -- start the workers first, so the timings below are the calls' own
  executor:map(function() end, {1, 2, 3, 4})

  local t0 = casync.now()
  local results = executor:map(work, {1, 2, 3, 4})
  local took = casync.now() - t0

  local pids = {}
  for i, r in ipairs(results) do
    pids[r.pid] = true
    print(("work(%d) = %d in process %d, from %.3fs to %.3fs")
      :format(r.n, r.square, r.pid, r.from - t0, r.to - t0))
  end
  local n = 0
  for _ in pairs(pids) do n = n + 1 end
  print(("results in order: %d, %d, %d, %d"):format(results[1].square,
    results[2].square, results[3].square, results[4].square))
  print(("%d processes, none of them this one: %s"):format(n,
    tostring(not pids[casync.process.pid()])))
  -- every call started before any ended: they ran at the same time
  local last_start, first_end = -math.huge, math.huge
  for _, r in ipairs(results) do
    last_start = math.max(last_start, r.from)
    first_end = math.min(first_end, r.to)
  end
  print(("all four running at once: %s; map took %.2fs"):format(
    tostring(last_start < first_end), took))
end

casync.run(main)
