-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism", section
-- "Controlled Concurrency", example E004.9: processBatch(items, batchSize =
-- 3), concurrency with a limit "to avoid overwhelming an API".
--
-- The article's version: slices of 3 items, each slice awaited with
-- Promise.all (casync.gather) before the next starts.  At most 3 are in
-- flight and the results come back in item order, but each batch waits for
-- its slowest item.  casync.map(fn, items, {limit = 3}) keeps 3 in flight
-- all the time (a new item starts as soon as one ends): same limit, same
-- order, less idle time when durations differ.
local casync = require "casync"

local in_flight, max_in_flight = 0, 0

local function processItem(item)
  in_flight = in_flight + 1
  max_in_flight = math.max(max_in_flight, in_flight)
  casync.sleep(0.05 * (item % 3 + 1)) -- 50, 100 or 150 ms per item
  in_flight = in_flight - 1
  return item * 10
end

-- async function processBatch(items, batchSize = 3)
local function processBatch(items, batchSize)
  batchSize = batchSize or 3
  local results = {}
  for i = 1, #items, batchSize do
    local batch = {}
    for j = i, math.min(i + batchSize - 1, #items) do
      local item = items[j]
      batch[#batch + 1] = function() return processItem(item) end
    end
    local batchResults = casync.gather(batch) -- await Promise.all(...)
    for k = 1, batchResults.n do results[#results + 1] = batchResults[k] end
  end
  return results
end

local function main()
  local items = {}
  for i = 1, 10 do items[i] = i end

  local t0 = casync.now()
  local results = processBatch(items, 3)
  print(("processBatch(batchSize 3): max in flight %d, %.2fs -> %s"):format(
    max_in_flight, casync.now() - t0, table.concat(results, ",")))

  in_flight, max_in_flight = 0, 0
  t0 = casync.now()
  results = casync.map(processItem, items, {limit = 3})
  print(("casync.map(limit 3):       max in flight %d, %.2fs -> %s"):format(
    max_in_flight, casync.now() - t0, table.concat(results, ",", 1, results.n)))
end

casync.run(main)
