-- W1 baseline, bare Lua: two coroutines taking turns through a plain Lua FIFO,
-- no event loop at all. "sleep(0)" is coroutine.yield(); the scheduler pops
-- the head of the FIFO, resumes it, and pushes it back unless it finished.
-- This is the cost of a Lua coroutine switch plus a queue push/pop: the
-- reference for the W1 target (casync at most 1.25x this).
local N = tonumber(os.getenv("BENCH_N") or "") or 1000000
local per = N // 2

-- A wall clock: luv's hrtime if luv is installed (it is only used as a clock),
-- else os.clock (CPU time, which equals wall time for this CPU-bound loop).
local ok, uv = pcall(require, "luv")
local now = ok and function() return uv.hrtime() / 1e9 end or os.clock

local resume, yield, status = coroutine.resume, coroutine.yield, coroutine.status
local count = 0
local function task()
  for _ = 1, per do
    yield()           -- sleep(0): back of the queue
    count = count + 1
  end
end

local t0 = now()
local q, head, tail = {}, 1, 0
for _ = 1, 2 do tail = tail + 1; q[tail] = coroutine.create(task) end
while head <= tail do
  local co = q[head]
  q[head] = nil
  head = head + 1
  assert(resume(co))
  if status(co) ~= "dead" then
    tail = tail + 1
    q[tail] = co
  end
end
local wall = now() - t0
print(string.format('{"workload":"W1","runtime":"lua","switches":%d,"wall_s":%.6f,"ns_per_op":%.2f}',
  count, wall, wall * 1e9 / count))
