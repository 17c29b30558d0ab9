-- W1 switch, casync: two tasks taking turns through casync.sleep(0).
-- Run with the casync runner (the script is already the main task), or with
-- lua5.4, in which case the work is wrapped in casync.run.
local casync = require "casync"

local N = tonumber(os.getenv("BENCH_N") or "") or 1000000
local per = N // 2

local function main()
  local count = 0
  local function task()
    local sleep = casync.sleep
    for _ = 1, per do
      sleep(0)
      count = count + 1
    end
  end
  local t0 = casync.now()
  local a, b = casync.spawn(task), casync.spawn(task)
  a:wait(); b:wait()
  local wall = casync.now() - t0
  print(string.format('{"workload":"W1","runtime":"casync","switches":%d,"wall_s":%.6f,"ns_per_op":%.2f}',
    count, wall, wall * 1e9 / count))
end

if casync.current() then main() else casync.run(main) end
