-- W2 spawn-gather, Lua + luv + sched.lua: sched.gather over N functions that
-- each sleep 10 ms (one luv timer each) and return a value.
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local sched = require "sched"

local function status_bytes(key)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a"); f:close()
  return tonumber(s:match(key .. ":%s*(%d+)")) * 1024
end
local function reset_hwm()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then f:write("5"); f:close() end
end

local N = tonumber(os.getenv("BENCH_N") or "") or 100000

sched.run(function()
  reset_hwm()
  local rss0 = status_bytes("VmRSS")
  local t0 = sched.now()
  local list = {}
  for i = 1, N do
    list[i] = function() sched.sleep(0.010); return i end
  end
  local results = sched.gather(list)
  local wall = sched.now() - t0
  local hwm = status_bytes("VmHWM")
  assert(results[N] == N)
  print(string.format('{"workload":"W2","runtime":"luv","tasks":%d,"wall_s":%.6f,"us_per_task":%.4f,"rss_bytes_per_task":%.1f}',
    N, wall, (wall - 0.010) * 1e6 / N, (hwm - rss0) / N))
end)
