-- W3 ping-pong, casync: two tasks exchange N round trips over two unbuffered
-- casync channels. A sends i on ch1 and receives it back on ch2; B receives on
-- ch1 and sends the value back on ch2. A message is one send + recv, so a
-- round trip is two messages. Run with the casync runner (the script is
-- already the main task), or with lua5.4, in which case the work is wrapped in
-- casync.run.
local casync = require "casync"

local N = tonumber(os.getenv("BENCH_N") or "") or 500000

local function main()
  local ch1, ch2 = casync.channel(), casync.channel()
  local sum = 0
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
      ch2:send((ch1:recv()))
    end
  end
  local t0 = casync.now()
  local ta, tb = casync.spawn(a), casync.spawn(b)
  ta:wait(); tb:wait()
  local wall = casync.now() - t0
  assert(sum == N * (N + 1) // 2, "lost or duplicated messages")
  print(string.format('{"workload":"W3","runtime":"casync","round_trips":%d,"messages":%d,"wall_s":%.6f,"ns_per_msg":%.2f}',
    N, 2 * N, wall, wall * 1e9 / (2 * N)))
end

if casync.current() then main() else casync.run(main) end
