-- W5, Lua + luv + sched.lua: 100 x sched.sleep(0.01) one after another, then
-- sched.gather over 100 functions sleeping 10 ms.
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local sched = require "sched"

local N = tonumber(os.getenv("BENCH_N") or "") or 100

sched.run(function()
  local t0 = sched.now()
  for _ = 1, N do sched.sleep(0.010) end
  local seq = sched.now() - t0
  t0 = sched.now()
  local list = {}
  for i = 1, N do list[i] = function() sched.sleep(0.010) end end
  sched.gather(list)
  local gat = sched.now() - t0
  print(string.format('{"workload":"W5","runtime":"luv","tasks":%d,"seq_s":%.6f,"gather_s":%.6f,"speedup":%.2f}',
    N, seq, gat, seq / gat))
end)
