-- TRT, casync: the round trip of casync.thread on an empty function: the
-- function and its (no) arguments copied into a worker's Lua state, run
-- there, the (no) results copied back and the waiting task woken, N times
-- one after another (the default pool: one worker per core).
local casync = require "casync"

local N = tonumber(os.getenv("BENCH_N") or "") or 20000

local function main()
  local function empty() end
  for _ = 1, 1000 do casync.thread(empty):wait() end -- pool started, warm
  local t0 = casync.now()
  for _ = 1, N do casync.thread(empty):wait() end
  local wall = casync.now() - t0
  print(string.format('{"workload":"TRT","runtime":"casync","round_trips":%d,"wall_s":%.6f,"us_per_rt":%.3f}',
    N, wall, wall / N * 1e6))
end

if casync.current() then main() else casync.run(main) end
