-- W5, Lua + cqueues: 100 x cqueues.sleep(0.01) one after another, then 100
-- coroutines sleeping 10 ms at once, gathered with a countdown and a condition.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

local N = tonumber(os.getenv("BENCH_N") or "") or 100
local cq = cqueues.new()
local out
cq:wrap(function()
  local t0 = cqueues.monotime()
  for _ = 1, N do cqueues.sleep(0.010) end
  local seq = cqueues.monotime() - t0
  t0 = cqueues.monotime()
  local pending, done = N, condition.new()
  for _ = 1, N do
    cq:wrap(function()
      cqueues.sleep(0.010)
      pending = pending - 1
      if pending == 0 then done:signal() end
    end)
  end
  if pending > 0 then done:wait() end
  local gat = cqueues.monotime() - t0
  out = string.format('{"workload":"W5","runtime":"cqueues","tasks":%d,"seq_s":%.6f,"gather_s":%.6f,"speedup":%.2f}',
    N, seq, gat, seq / gat)
end)
assert(cq:loop())
print(out)
