-- W5, casync (the seed's comparison): 100 x casync.sleep(0.01) one after
-- another, then casync.gather over 100 functions sleeping 10 ms.
local casync = require "casync"

local N = tonumber(os.getenv("BENCH_N") or "") or 100

local function main()
  local t0 = casync.now()
  for _ = 1, N do casync.sleep(0.010) end
  local seq = casync.now() - t0
  t0 = casync.now()
  local list = {}
  for i = 1, N do list[i] = function() casync.sleep(0.010) end end
  casync.gather(list)
  local gat = casync.now() - t0
  print(string.format('{"workload":"W5","runtime":"casync","tasks":%d,"seq_s":%.6f,"gather_s":%.6f,"speedup":%.2f}',
    N, seq, gat, seq / gat))
end

if casync.current() then main() else casync.run(main) end
