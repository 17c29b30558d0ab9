-- Seed 002 "Async Programming: Complete Guide", section "Best Practices",
-- example E002.12 with a scope and deadlines: the twelve downloads of
-- e002_12_semaphore_limit.lua, at most 3 at a time (casync.semaphore(3)),
-- each under a deadline of its own (casync.move_on_after: no timeout
-- argument to any call inside), all of them tasks of one casync.scope,
-- whose block ends once every one has.
--
-- Why move_on_after and not fail_after: in a scope, a task that fails
-- fails the scope, which cancels every other task.  The second run shows
-- it: with fail_after, the slow server's timeout ends the whole batch.
local casync = require "casync"

local LIMIT, TIMEOUT = 3, 0.3

local in_flight, max_in_flight = 0, 0

local function fetch(url)
  in_flight = in_flight + 1
  max_in_flight = math.max(max_in_flight, in_flight)
  local leave <close> = setmetatable({}, {__close = function()
    in_flight = in_flight - 1
  end})
  casync.sleep(url:find("slow") and 5 or 0.1) -- one server hangs
  return #url
end

local urls = {}
for i = 1, 12 do
  urls[i] = i == 5 and "https://slow.example.com/" or
            ("https://api.example.com/items/%d"):format(i)
end

local function main()
  local semaphore = casync.semaphore(LIMIT)
  local results, ok, moved_on = {}, 0, 0
  local t0 = casync.now()
  casync.scope(function(s)
    for i, url in ipairs(urls) do
      s:spawn(function()
        local permit <close> = semaphore:acquire() -- async with semaphore:
        local done, n = casync.move_on_after(TIMEOUT, fetch, url)
        results[i] = done and n or "moved on"
        if done then ok = ok + 1 else moved_on = moved_on + 1 end
      end)
    end
  end) -- every task has ended here
  print(("scope + semaphore(%d): %d urls, %d ok, %d moved on after %.1fs, in %.2fs"):format(
    LIMIT, #urls, ok, moved_on, TIMEOUT, casync.now() - t0))
  print(("max in flight: %d (limit %d); permits free again: %d; result 5: %s"):format(
    max_in_flight, LIMIT, semaphore:value(), results[5]))

  -- The same with fail_after, its timeout not caught: a failure of the scope.
  in_flight, max_in_flight = 0, 0
  local tasks, finished = {}, 0
  t0 = casync.now()
  local passed, err = pcall(casync.scope, function(s)
    for i, url in ipairs(urls) do
      tasks[i] = s:spawn(function()
        local permit <close> = semaphore:acquire()
        casync.fail_after(TIMEOUT, fetch, url)
        finished = finished + 1
      end)
    end
  end)
  local cancelled = 0
  for _, t in ipairs(tasks) do
    if t:cancelled() then cancelled = cancelled + 1 end
  end
  print(("fail_after instead: ok=%s, the scope raised %q after %.2fs"):format(
    passed, tostring(err), casync.now() - t0))
  print(("  finished: %d, failed: 1, cancelled: %d; permits free again: %d"):format(
    finished, cancelled, semaphore:value()))
end

casync.run(main)
