-- W3 ping-pong, Lua + cqueues: two coroutines in one controller exchange N
-- round trips over two capacity-1 channels built on cqueues condition
-- variables (cqueues has no channel). A sends i on ch1 and receives it back on
-- ch2; B receives on ch1 and sends the value back on ch2. A message is one
-- send + recv, so a round trip is two messages. The channel has the shape of
-- asyncio.Queue(maxsize=1): one slot, a condition "not empty" that receivers
-- wait on and a condition "not full" that senders wait on; a send or recv that
-- changes the slot signals the other side's condition, whose waiter re-checks
-- the slot when it runs.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

local N = tonumber(os.getenv("BENCH_N") or "") or 500000

local Chan = {}
Chan.__index = Chan

local function channel()
  return setmetatable({ full = false, value = nil,
                        notempty = condition.new(), notfull = condition.new() }, Chan)
end

function Chan:send(v)
  while self.full do self.notfull:wait() end
  self.value, self.full = v, true
  self.notempty:signal(1)
end

function Chan:recv()
  while not self.full do self.notempty:wait() end
  local v = self.value
  self.value, self.full = nil, false
  self.notfull:signal(1)
  return v
end

local cq = cqueues.new()
local wall, sum = nil, 0
cq:wrap(function()
  local ch1, ch2 = channel(), channel()
  local done, left = condition.new(), 2
  local t0 = cqueues.monotime()
  cq:wrap(function() -- A
    for i = 1, N do
      ch1:send(i)
      local v = ch2:recv()
      assert(v == i)
      sum = sum + v
    end
    left = left - 1
    if left == 0 then done:signal() end
  end)
  cq:wrap(function() -- B
    for _ = 1, N do
      ch2:send(ch1:recv())
    end
    left = left - 1
    if left == 0 then done:signal() end
  end)
  if left > 0 then done:wait() end
  wall = cqueues.monotime() - t0
end)
assert(cq:loop())
assert(sum == N * (N + 1) // 2, "lost or duplicated messages")
print(string.format('{"workload":"W3","runtime":"cqueues","round_trips":%d,"messages":%d,"wall_s":%.6f,"ns_per_msg":%.2f}',
  N, 2 * N, wall, wall * 1e9 / (2 * N)))
