-- Seed 002 "Async Programming: Complete Guide", section "Error Handling",
-- example E002.6: safe_gather, two ways to run risky tasks concurrently
-- without losing a failure.
--   Option 1, gather(..., return_exceptions=True): casync.all_settled(list)
--     gives each task's outcome in argument order, {ok=true, value=...} or
--     {ok=false, error=...}.
--   Option 2, asyncio.wait(tasks) then task.exception(): casync.wait(list)
--     returns the done tasks; task:error() is the failure or nil, and
--     task:result() the value.
-- Each option takes ~0.5 s (the tasks run concurrently), and nothing is
-- reported on stderr: every failure was handed out, so none is "unobserved".
local casync = require "casync"

local function risky_task(name, should_fail)
  casync.sleep(0.5)
  if should_fail then
    error(("Task %s failed!"):format(name), 0) -- raise ValueError(...)
  end
  return ("Task %s succeeded"):format(name)
end

local function safe_gather()
  -- Option 1: return_exceptions=True
  print("Option 1: all_settled")
  local t0 = casync.now()
  local results = casync.all_settled({
    function() return risky_task("task1") end,
    function() return risky_task("task2", true) end,
    function() return risky_task("task3") end,
  })
  for i = 1, results.n do
    local r = results[i]
    if not r.ok then
      print(("Task %d failed: %s"):format(i, tostring(r.error)))
    else
      print(("Task %d succeeded: %s"):format(i, r.value))
    end
  end
  print(("Option 1 time: %.2fs"):format(casync.now() - t0))

  -- Option 2: asyncio.wait
  print("Option 2: wait")
  t0 = casync.now()
  local tasks = {
    casync.spawn(risky_task, "task1"),
    casync.spawn(risky_task, "task2", true),
    casync.spawn(risky_task, "task3"),
  }
  local done, pending = casync.wait(tasks)
  print(("done: %d, pending: %d"):format(#done, #pending))
  for _, task in ipairs(done) do
    if task:error() then
      print(("Exception: %s"):format(tostring(task:error())))
    else
      print(("Result: %s"):format(task:result()))
    end
  end
  print(("Option 2 time: %.2fs"):format(casync.now() - t0))
end

local function main()
  safe_gather()
end

casync.run(main) -- asyncio.run(main())
