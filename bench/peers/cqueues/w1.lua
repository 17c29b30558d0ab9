-- W1 switch, Lua + cqueues: two coroutines in one controller taking turns
-- through cqueues.sleep(0); the main coroutine waits for both on a condition.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

local N = tonumber(os.getenv("BENCH_N") or "") or 1000000
local per = N // 2

local cq = cqueues.new()
local wall, count = nil, 0
cq:wrap(function()
  local done, left = condition.new(), 2
  local t0 = cqueues.monotime()
  for _ = 1, 2 do
    cq:wrap(function()
      for _ = 1, per do
        cqueues.sleep(0)
        count = count + 1
      end
      left = left - 1
      if left == 0 then done:signal() end
    end)
  end
  if left > 0 then done:wait() end
  wall = cqueues.monotime() - t0
end)
assert(cq:loop())
print(string.format('{"workload":"W1","runtime":"cqueues","switches":%d,"wall_s":%.6f,"ns_per_op":%.2f}',
  count, wall, wall * 1e9 / count))
