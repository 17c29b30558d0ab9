-- Seed 002 "Async Programming: Complete Guide", section "Async with
-- Threading", example E002.11: loop.run_in_executor for a blocking call
-- (blocking_io_operation, time.sleep(1)) and for CPU work (cpu_work, the sum
-- of i*i for i < 10^7).
--
-- casync.thread is run_in_executor: the function runs in a separate Lua
-- state on a worker thread and the calling task waits for it like for any
-- task, while the loop keeps serving the other tasks.  A ticker task counts
-- 20 ms ticks to show it: while the blocking call or the CPU work runs on a
-- thread the ticks go on; the same blocking call made on the loop itself
-- freezes them (no tick at all during it).
-- The blocking call sleeps 0.3 s (os.execute("sleep 0.3")) instead of 1 s.
local casync = require "casync"

local function blocking_io_operation()
  -- Blocking operation that needs to run in a thread: os.execute waits
  -- for the child process, blocking the whole thread (like time.sleep)
  os.execute("sleep 0.3")
  return "Done"
end

-- For CPU-bound work; Lua integers would wrap around past 2^63, so the sum
-- is kept in a float (Python's integers are unbounded)
local function cpu_work()
  local s = 0.0
  for i = 0, 10^7 - 1 do s = s + i * i end
  return s
end

local function main()
  local ticks = 0
  local ticker = casync.spawn(function()
    while true do
      casync.sleep(0.02)
      ticks = ticks + 1
    end
  end)
  casync.sleep(0.05)

  local function timed(label, fn)
    local before, t0 = ticks, casync.now()
    local result = fn()
    print(("%s: %s in %.2fs; the loop ticked %d times meanwhile")
      :format(label, result, casync.now() - t0, ticks - before))
  end

  timed("Result (thread)", function()
    -- result = await loop.run_in_executor(ThreadPoolExecutor(), blocking_io_operation)
    return casync.thread(blocking_io_operation):wait()
  end)

  timed("CPU result (thread)", function()
    -- result = await loop.run_in_executor(ProcessPoolExecutor(), cpu_work)
    return ("%.6e"):format(casync.thread(cpu_work):wait())
  end)

  timed("Result (on the loop, blocking it)", function()
    return blocking_io_operation()
  end)

  -- both at once, each on its own worker: the waits overlap
  timed("Both (two threads)", function()
    local a, b = casync.gather(casync.thread(blocking_io_operation), casync.thread(cpu_work))
    return a .. ", " .. ("%.6e"):format(b)
  end)

  ticker:cancel()
end

casync.run(main)
