-- Seed 002 "Async Programming: Complete Guide", section "Task Management",
-- example E002.3: task_with_timeout, asyncio.wait_for with a timeout.
-- The timeout is caught and handled (err.kind == "timeout" is Lua's
-- `except asyncio.TimeoutError`), and the slow work is cancelled: it never
-- finishes later behind our back.
--
-- Scaled down: the article waits up to 5.0 s (and its fetch_data takes only
-- 1 s, so it would never time out).  Here the timeout is 0.2 s and the slow
-- API takes 0.5 s, so the timeout really fires; a fast API (0.05 s) shows the
-- normal path.
local casync = require "casync"

local TIMEOUT = 0.2 -- the article's timeout=5.0, scaled down

local finished = {}

local function fetch_data(url, delay)
  casync.sleep(delay or 1.0) -- simulate network call
  finished[#finished + 1] = url
  return {url = url, data = "Data from " .. url}
end

-- Execute task with timeout.
local function task_with_timeout(url, delay)
  local work = casync.spawn(fetch_data, url, delay)
  local t0 = casync.now()
  local ok, result = pcall(casync.wait_for, work, TIMEOUT)
  if ok then
    print(("%s: %s after %.2fs"):format(url, result.data, casync.now() - t0))
    return result
  end
  if type(result) == "table" and result.kind == "timeout" then
    print(("Task timed out! (%s, after %.2fs; slow work cancelled: %s)"):format(
      url, casync.now() - t0, tostring(work:cancelled())))
    return nil
  end
  error(result, 0) -- any other failure is not ours to handle
end

local function main()
  local fast = task_with_timeout("http://fast-api.com", 0.05)
  local slow = task_with_timeout("http://slow-api.com", 0.5)
  print(("fast result: %s, slow result: %s"):format(
    fast and fast.url or "nil", slow and slow.url or "nil"))

  -- Wait past the moment the slow call would have finished: it must not.
  casync.sleep(0.5)
  print(("finished fetches: %s"):format(table.concat(finished, ", ")))
end

casync.run(main)
