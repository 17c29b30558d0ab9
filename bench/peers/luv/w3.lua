-- W3 ping-pong, Lua + luv + sched.lua: two tasks exchange N round trips over
-- two pure-Lua capacity-1 channels (../lua/chan.lua, the same code as the
-- bare-Lua baseline) whose wake-ups go through sched.lua's ready queue, i.e.
-- through the luv loop (one uv_idle round per ready snapshot). A sends i on
-- ch1 and receives it back on ch2; B receives on ch1 and sends the value back
-- on ch2. A message is one send + recv, so a round trip is two messages.
local dir = arg[0]:match("(.*/)") or "./"
package.path = dir .. "?.lua;" .. dir .. "../lua/?.lua;" .. package.path
local sched = require "sched"
local channel = require("chan")(sched.wake)

local N = tonumber(os.getenv("BENCH_N") or "") or 500000
local sum = 0

sched.run(function()
  local ch1, ch2 = channel(), channel()
  local function a()
    for i = 1, N do
      ch1:send(i)
      local v = ch2:recv()
      assert(v == i)
      sum = sum + v
    end
  end
  local function b()
    for _ = 1, N do
      ch2:send(ch1:recv())
    end
  end
  local t0 = sched.now()
  local ta, tb = sched.spawn(a), sched.spawn(b)
  sched.wait(ta); sched.wait(tb)
  local wall = sched.now() - t0
  assert(sum == N * (N + 1) // 2, "lost or duplicated messages")
  print(string.format('{"workload":"W3","runtime":"luv","round_trips":%d,"messages":%d,"wall_s":%.6f,"ns_per_msg":%.2f}',
    N, 2 * N, wall, wall * 1e9 / (2 * N)))
end)
