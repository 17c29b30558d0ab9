-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism", section
-- "Controlled Concurrency", example E004.9 with scopes: processBatch of
-- e004_9_process_batch.lua where each batch is a casync.scope (its block
-- ends when its three items have), and a sliding window of 3 where one
-- scope owns every item and a semaphore keeps 3 in flight.  Results in item
-- order both ways; had an item failed, its scope would have cancelled the
-- others and raised the failure.
local casync = require "casync"

local in_flight, max_in_flight = 0, 0

local function processItem(item)
  in_flight = in_flight + 1
  max_in_flight = math.max(max_in_flight, in_flight)
  casync.sleep(0.05 * (item % 3 + 1)) -- 50, 100 or 150 ms per item
  in_flight = in_flight - 1
  return item * 10
end

-- Batches: a scope per slice of batchSize items.
local function processBatch(items, batchSize)
  local results = {}
  for i = 1, #items, batchSize do
    casync.scope(function(s)
      for j = i, math.min(i + batchSize - 1, #items) do
        s:spawn(function() results[j] = processItem(items[j]) end)
      end
    end)
  end
  return results
end

-- A window: one scope for all the items, a semaphore for the limit.  Each
-- task takes its permit itself, so a task cancelled before it ran holds
-- none (a permit taken by the spawner and handed over would then be lost).
local function processWindow(items, limit)
  local results, sem = {}, casync.semaphore(limit)
  casync.scope(function(s)
    for j, item in ipairs(items) do
      s:spawn(function()
        local permit <close> = sem:acquire()
        results[j] = processItem(item)
      end)
    end
  end)
  return results
end

local function main()
  local items = {}
  for i = 1, 10 do items[i] = i end
  local t0 = casync.now()
  local results = processBatch(items, 3)
  print(("scope per batch (3): max in flight %d, %.2fs -> %s"):format(
    max_in_flight, casync.now() - t0, table.concat(results, ",")))
  in_flight, max_in_flight = 0, 0
  t0 = casync.now()
  results = processWindow(items, 3)
  print(("scope + window of 3: max in flight %d, %.2fs -> %s"):format(
    max_in_flight, casync.now() - t0, table.concat(results, ",")))
end

casync.run(main)
