-- Seed 002 "Async Programming: Complete Guide", section "Best Practices",
-- example E002.12: "Limit concurrency: use semaphores" and "Set timeouts:
-- prevent hangs".  Twelve downloads, at most 3 at a time: each one takes a
-- permit of casync.semaphore(3) (`local permit <close>` gives it back on
-- success, error or cancellation alike), and each has its own timeout, so
-- the one slow server cannot hang the batch.  The maximum number in flight
-- is measured and printed.  casync.map(fn, list, {limit = 3}) is the
-- library's shortcut for the same shape.
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

local semaphore = casync.semaphore(LIMIT)

local function fetch_limited(url)
  local permit <close> = semaphore:acquire() -- async with semaphore:
  return casync.wait_for(function() return fetch(url) end, TIMEOUT)
end

local urls = {}
for i = 1, 12 do
  urls[i] = i == 5 and "https://slow.example.com/" or
            ("https://api.example.com/items/%d"):format(i)
end

local function main()
  local t0 = casync.now()
  local tasks = {}
  for i, url in ipairs(urls) do tasks[i] = casync.spawn(fetch_limited, url) end
  local results = casync.all_settled(tasks)
  local ok, timed_out = 0, 0
  for i = 1, results.n do
    if results[i].ok then ok = ok + 1
    elseif results[i].error.kind == "timeout" then timed_out = timed_out + 1 end
  end
  print(("semaphore(%d): %d urls, %d ok, %d timed out after %.1fs, in %.2fs"):format(
    LIMIT, #urls, ok, timed_out, TIMEOUT, casync.now() - t0))
  print(("max in flight: %d (limit %d); permits free again: %d"):format(
    max_in_flight, LIMIT, semaphore:value()))

  -- Without the semaphore, everything is in flight at once.
  in_flight, max_in_flight = 0, 0
  t0 = casync.now()
  casync.all_settled((function()
    local all = {}
    for i, url in ipairs(urls) do
      all[i] = casync.spawn(function()
        return casync.wait_for(function() return fetch(url) end, TIMEOUT)
      end)
    end
    return all
  end)())
  print(("no limit: max in flight: %d, in %.2fs"):format(max_in_flight, casync.now() - t0))

  -- The library's bounded map: the same limit, results in order.
  in_flight, max_in_flight = 0, 0
  t0 = casync.now()
  local lengths = casync.map(function(url)
    local ok2, n = pcall(casync.wait_for, function() return fetch(url) end, TIMEOUT)
    return ok2 and n or "timeout"
  end, urls, {limit = LIMIT})
  print(("casync.map limit %d: max in flight: %d, in %.2fs; result 5: %s"):format(
    LIMIT, max_in_flight, casync.now() - t0, lengths[5]))
end

casync.run(main)
