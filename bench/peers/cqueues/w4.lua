-- W4 timers, Lua + cqueues: N coroutines each sleeping an LCG duration in
-- [0,1) s with cqueues.sleep, gathered with a countdown and a condition.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

local lcg_state = 42 -- Park-Miller "minimal standard" LCG, identical in every peer
local function lcg_next()
  lcg_state = (lcg_state * 48271) % 2147483647
  return lcg_state / 2147483647
end

local N = tonumber(os.getenv("BENCH_N") or "") or 200000
local cq = cqueues.new()
local out
cq:wrap(function()
  local t0 = cqueues.monotime()
  local maxd, pending, done = 0, N, condition.new()
  for _ = 1, N do
    local d = lcg_next()
    if d > maxd then maxd = d end
    cq:wrap(function()
      cqueues.sleep(d)
      pending = pending - 1
      if pending == 0 then done:signal() end
    end)
  end
  if pending > 0 then done:wait() end
  local wall = cqueues.monotime() - t0
  out = string.format('{"workload":"W4","runtime":"cqueues","tasks":%d,"wall_s":%.6f,"max_sleep_s":%.6f,"overhead_s":%.6f}',
    N, wall, maxd, wall - maxd)
end)
assert(cq:loop())
print(out)
