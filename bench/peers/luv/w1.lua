-- W1 switch, Lua + luv + sched.lua: two tasks taking turns through
-- sched.sleep(0) (to the back of the ready queue, one loop round per pass).
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local sched = require "sched"

local N = tonumber(os.getenv("BENCH_N") or "") or 1000000
local per = N // 2
local count = 0

sched.run(function()
  local function task()
    for _ = 1, per do
      sched.sleep(0)
      count = count + 1
    end
  end
  local t0 = sched.now()
  local a, b = sched.spawn(task), sched.spawn(task)
  sched.wait(a); sched.wait(b)
  local wall = sched.now() - t0
  print(string.format('{"workload":"W1","runtime":"luv","switches":%d,"wall_s":%.6f,"ns_per_op":%.2f}',
    count, wall, wall * 1e9 / count))
end)
