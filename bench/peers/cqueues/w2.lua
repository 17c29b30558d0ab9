-- W2 spawn-gather, Lua + cqueues: N coroutines (cq:wrap) each sleeping 10 ms
-- with cqueues.sleep and storing a result; the main coroutine gathers them
-- with a countdown and a cqueues.condition.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

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
local cq = cqueues.new()
local out
cq:wrap(function()
  reset_hwm()
  local rss0 = status_bytes("VmRSS")
  local t0 = cqueues.monotime()
  local results, pending, done = {}, N, condition.new()
  for i = 1, N do
    cq:wrap(function()
      cqueues.sleep(0.010)
      results[i] = i
      pending = pending - 1
      if pending == 0 then done:signal() end
    end)
  end
  if pending > 0 then done:wait() end
  local wall = cqueues.monotime() - t0
  local hwm = status_bytes("VmHWM")
  assert(results[N] == N)
  out = string.format('{"workload":"W2","runtime":"cqueues","tasks":%d,"wall_s":%.6f,"us_per_task":%.4f,"rss_bytes_per_task":%.1f}',
    N, wall, (wall - 0.010) * 1e6 / N, (hwm - rss0) / N)
end)
assert(cq:loop())
print(out)
