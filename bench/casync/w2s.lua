-- W2S scopes, casync: N tasks that each sleep 10 ms, spawned in a
-- casync.scope and waited for by closing it, beside the same N tasks made
-- by casync.gather over a list of functions (plain spawn + gather).
local casync = require "casync"

local N = tonumber(os.getenv("BENCH_N") or "") or 100000
local sleep = casync.sleep

local function with_scope()
  local t0 = casync.now()
  do
    local s <close> = casync.scope()
    for _ = 1, N do s:spawn(sleep, 0.010) end
  end
  return casync.now() - t0
end

local function with_gather()
  local t0 = casync.now()
  local list = {}
  for i = 1, N do list[i] = function() sleep(0.010); return i end end
  casync.gather(list)
  return casync.now() - t0
end

local function main()
  with_scope() -- warm: the coroutine pool and the tables grow once
  collectgarbage()
  local g = with_gather()
  collectgarbage()
  local s = with_scope()
  print(string.format('{"workload":"W2S","runtime":"casync","tasks":%d,' ..
    '"scope_us_per_task":%.4f,"gather_us_per_task":%.4f}',
    N, (s - 0.010) * 1e6 / N, (g - 0.010) * 1e6 / N))
end

if casync.current() then main() else casync.run(main) end
