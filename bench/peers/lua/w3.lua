-- W3 baseline, bare Lua: two coroutines exchange N round trips over two
-- pure-Lua capacity-1 channels (chan.lua), scheduled by a plain Lua FIFO of
-- ready coroutines with no event loop: wake(co) appends co, the loop pops the
-- head and resumes it. A sends i on ch1 and receives it back on ch2; B
-- receives on ch1 and sends the value back on ch2. Each round trip is two
-- messages (one send + recv each) and two coroutine switches. This is the
-- reference of the W3 target (casync at most 1.0x this per message).
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path

local N = tonumber(os.getenv("BENCH_N") or "") or 500000

-- A wall clock: luv's hrtime if luv is installed (it is only used as a clock),
-- else os.clock (CPU time, which equals wall time for this CPU-bound loop).
local ok, uv = pcall(require, "luv")
local now = ok and function() return uv.hrtime() / 1e9 end or os.clock

local q, head, tail = {}, 1, 0
local function wake(co)
  tail = tail + 1
  q[tail] = co
end
local channel = require("chan")(wake)

local ch1, ch2 = channel(), channel()
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
    ch2:send(ch1:recv())
  end
end

local resume = coroutine.resume
local t0 = now()
wake(coroutine.create(a))
wake(coroutine.create(b))
while head <= tail do
  local co = q[head]
  q[head] = nil
  head = head + 1
  local okr, err = resume(co)
  if not okr then error(err) end
end
local wall = now() - t0
assert(sum == N * (N + 1) // 2, "lost or duplicated messages")
print(string.format('{"workload":"W3","runtime":"lua","round_trips":%d,"messages":%d,"wall_s":%.6f,"ns_per_msg":%.2f}',
  N, 2 * N, wall, wall * 1e9 / (2 * N)))
