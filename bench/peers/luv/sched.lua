-- A minimal pure-Lua coroutine scheduler on luv, the "Lua + luv" peer.
--
-- * Ready queue: a plain Lua FIFO, drained by one uv_idle handle that is
--   active only while the queue is non-empty. Each idle callback runs the
--   tasks that were ready when it started (a snapshot, like asyncio's
--   _run_once), then returns to the loop, which polls with a zero timeout
--   before the next round. So sleep(0) yields to the back of the queue and
--   every round of ready tasks goes back to the event loop.
-- * sleep(s > 0): one luv timer per sleep (millisecond resolution, rounded);
--   the timer callback resumes the task directly.
-- * Tasks: a table {co, done, result, waiters}; wait() parks the caller on
--   the task's waiter list; gather(list) spawns each function and counts down.
-- * wake(co): puts a parked coroutine back on the ready queue.
local uv = require "luv"

local M = {}

local resume, yield, running = coroutine.resume, coroutine.yield, coroutine.running
local queue, head, tail = {}, 1, 0
local idle = uv.new_idle()
local idle_on = false

local function step(co, ...)
  local ok, err = resume(co, ...)
  if not ok then
    io.stderr:write("task failed: ", tostring(err), "\n", debug.traceback(co), "\n")
    os.exit(1)
  end
end

local function run_ready()
  local last = tail
  while head <= last do
    local co = queue[head]
    queue[head] = nil
    head = head + 1
    step(co)
  end
  if head > tail then
    idle:stop()
    idle_on = false
  end
end

local function schedule(co)
  tail = tail + 1
  queue[tail] = co
  if not idle_on then
    idle_on = true
    idle:start(run_ready)
  end
end

-- Make a coroutine that yielded (parked on some wait list) ready again: what
-- primitives built on the scheduler call, e.g. the W3 channel (../lua/chan.lua).
M.wake = schedule

function M.spawn(fn, ...)
  local task = { done = false }
  local args = table.pack(...)
  task.co = coroutine.create(function()
    task.result = fn(table.unpack(args, 1, args.n))
    task.done = true
    local w = task.waiters
    if w then
      for i = 1, #w do schedule(w[i]) end
    end
  end)
  schedule(task.co)
  return task
end

function M.wait(task)
  if not task.done then
    local w = task.waiters
    if not w then w = {}; task.waiters = w end
    w[#w + 1] = running()
    yield()
  end
  return task.result
end

function M.sleep(s)
  local co = running()
  if s <= 0 then
    schedule(co)
    yield()
    return
  end
  local t = uv.new_timer()
  t:start(math.floor(s * 1000 + 0.5), 0, function()
    t:close()
    step(co)
  end)
  yield()
end

-- Spawn every function of list, wait for all; results as an array.
function M.gather(list)
  local n = #list
  local results, pending, me = { n = n }, n, running()
  for i = 1, n do
    local fn = list[i]
    M.spawn(function()
      results[i] = fn()
      pending = pending - 1
      if pending == 0 then schedule(me) end
    end)
  end
  if pending > 0 then yield() end
  return results
end

M.now = function() return uv.hrtime() / 1e9 end

-- Run fn as the main task until the loop has nothing left.
function M.run(fn, ...)
  local t = M.spawn(fn, ...)
  uv.run()
  assert(t.done, "main task did not finish")
  return t.result
end

return M
