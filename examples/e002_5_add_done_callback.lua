-- Seed 002 "Async Programming: Complete Guide", section "Task Management",
-- example E002.5: task_with_callbacks, task.add_done_callback.
-- The callback gets the task once it has ended and asks it for its result:
-- task:result() returns the results of a task that succeeded and re-raises
-- the error of one that failed, so the callback's pcall is the article's
-- try/except.  Shown for a fetch that succeeds and for one that fails.
local casync = require "casync"

local function fetch_data(url, delay, fail)
  casync.sleep(delay or 1.0) -- simulate network call
  if fail then error(("connection refused: %s"):format(url), 0) end
  return {url = url, data = "Data from " .. url}
end

-- Add callbacks to tasks.
local function task_with_callbacks(url, fail)
  local function callback(task)
    local ok, result = pcall(task.result, task)
    if ok then
      print(("Task completed: %s"):format(result.url))
    else
      print(("Task failed: %s"):format(tostring(result)))
    end
  end

  local task = casync.spawn(fetch_data, url, 0.1, fail)
  task:add_done_callback(callback)

  -- await task (the failure is re-raised here too; we report it and go on)
  local ok, err = pcall(task.wait, task)
  print(("awaited %s: %s"):format(url, ok and "ok" or ("error: " .. tostring(err))))
end

local function main()
  task_with_callbacks("http://api.com")
  task_with_callbacks("http://down.example.com", true)
  casync.sleep(0.01) -- give the callbacks their turn ("soon after it ends")
  print("done")
end

casync.run(main)
