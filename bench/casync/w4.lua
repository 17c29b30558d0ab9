-- W4 timers, casync: N tasks each sleeping an LCG duration in [0,1) s,
-- gathered with casync.gather over a list of functions.
local casync = require "casync"

local lcg_state = 42 -- Park-Miller "minimal standard" LCG, identical in every peer
local function lcg_next()
  lcg_state = (lcg_state * 48271) % 2147483647
  return lcg_state / 2147483647
end

local N = tonumber(os.getenv("BENCH_N") or "") or 200000

local function main()
  local t0 = casync.now()
  local sleep = casync.sleep
  local maxd, list = 0, {}
  for i = 1, N do
    local d = lcg_next()
    if d > maxd then maxd = d end
    list[i] = function() sleep(d) end
  end
  casync.gather(list)
  local wall = casync.now() - t0
  print(string.format('{"workload":"W4","runtime":"casync","tasks":%d,"wall_s":%.6f,"max_sleep_s":%.6f,"overhead_s":%.6f}',
    N, wall, maxd, wall - maxd))
end

if casync.current() then main() else casync.run(main) end
