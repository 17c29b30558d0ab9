-- Seed 002 "Async Programming: Complete Guide", section "Task Management",
-- example E002.4: multiple_tasks, three create_task calls, then
-- asyncio.wait(return_when=FIRST_COMPLETED), then gather the rest.
--
-- casync.spawn is create_task; casync.wait(list, {return_when =
-- "first_completed"}) returns the done and pending tasks (it cancels
-- nothing); gather over the pending ones waits for the rest.
--
-- One change: the article gives all three fetches the same 1 s delay, so all
-- three finish in the same turn of the loop and the counts would usually be
-- "Completed: 3, Pending: 0", which shows nothing.  Here the delays are
-- staggered (0.1, 0.2, 0.3 s) so FIRST_COMPLETED really returns early.
local casync = require "casync"

local function fetch_data(url, delay)
  casync.sleep(delay or 1.0) -- simulate network call
  return {url = url, data = "Data from " .. url}
end

-- Manage multiple tasks.
local function multiple_tasks()
  local t0 = casync.now()

  -- Create tasks
  local task1 = casync.spawn(fetch_data, "http://api1.com", 0.1)
  local task2 = casync.spawn(fetch_data, "http://api2.com", 0.2)
  local task3 = casync.spawn(fetch_data, "http://api3.com", 0.3)

  -- Wait for the first one
  local done, pending = casync.wait({task1, task2, task3},
                                    {return_when = "first_completed"})
  print(("Completed: %d, Pending: %d (after %.2fs)"):format(
    #done, #pending, casync.now() - t0))
  for _, task in ipairs(done) do
    print(("  done: %s"):format(task:result().url))
  end

  -- Wait for remaining
  local remaining = casync.gather(pending)
  for i = 1, remaining.n do
    print(("  remaining: %s"):format(remaining[i].url))
  end
  print(("All finished after %.2fs"):format(casync.now() - t0))
  return done, remaining
end

local function main()
  multiple_tasks()
end

casync.run(main) -- asyncio.run(main())
