-- CPU, casync: the seed's CPU-bound task (cpu_intensive_task, the sum of
-- i*i for i < n, n = 10^7) four times: one after another on the loop, then
-- on casync threads (casync.thread_pool{size = 4}: four Lua states on OS
-- threads of casync's own), awaited with gather.  Lua integers are 64-bit
-- and wrap around, as Go's do.  Then on a casync process pool
-- (casync.process_pool{size = 4}: four worker processes, the casync runner
-- or lua5.4 each), reported as "procs_s".
local casync = require "casync"

local N = tonumber(os.getenv("BENCH_N") or "") or 10000000
local TASKS = 4

local function cpu_intensive_task(n)
  local result = 0
  for i = 0, n - 1 do result = result + i * i end
  return result
end

local function main()
  local t0 = casync.now()
  local seq = {}
  for i = 1, TASKS do seq[i] = cpu_intensive_task(N) end
  local seq_s = casync.now() - t0
  local pool <close> = casync.thread_pool{size = TASKS}
  pool:map(function() end, {1, 2, 3, 4}) -- started and warm
  t0 = casync.now()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = pool:run(cpu_intensive_task, N) end
  local par = casync.gather(tasks)
  local par_s = casync.now() - t0
  for i = 1, TASKS do assert(par[i] == seq[i]) end
  -- the same four calls in four worker processes
  local procs <close> = casync.process_pool{size = TASKS}
  procs:map(function() end, {1, 2, 3, 4}) -- started and warm
  t0 = casync.now()
  local ptasks = {}
  for i = 1, TASKS do ptasks[i] = procs:run(cpu_intensive_task, N) end
  local pres = casync.gather(ptasks)
  local procs_s = casync.now() - t0
  for i = 1, TASKS do assert(pres[i] == seq[i]) end
  print(string.format('{"workload":"CPU","runtime":"casync","tasks":%d,"n":%d,"workers":%d,' ..
    '"seq_s":%.6f,"par_s":%.6f,"speedup":%.3f,"threads_s":%.6f,"procs_s":%.6f}',
    TASKS, N, pool:size(), seq_s, par_s, seq_s / par_s, par_s, procs_s))
end

if casync.current() then main() else casync.run(main) end
