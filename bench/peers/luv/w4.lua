-- W4 timers, Lua + luv + sched.lua: N tasks each sleeping an LCG duration in
-- [0,1) s (one luv timer each, rounded to ms), gathered with sched.gather.
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local sched = require "sched"

local lcg_state = 42 -- Park-Miller "minimal standard" LCG, identical in every peer
local function lcg_next()
  lcg_state = (lcg_state * 48271) % 2147483647
  return lcg_state / 2147483647
end

local N = tonumber(os.getenv("BENCH_N") or "") or 200000

sched.run(function()
  local t0 = sched.now()
  local maxd, list = 0, {}
  for i = 1, N do
    local d = lcg_next()
    if d > maxd then maxd = d end
    list[i] = function() sched.sleep(d) end
  end
  sched.gather(list)
  local wall = sched.now() - t0
  print(string.format('{"workload":"W4","runtime":"luv","tasks":%d,"wall_s":%.6f,"max_sleep_s":%.6f,"overhead_s":%.6f}',
    N, wall, maxd, wall - maxd))
end)
