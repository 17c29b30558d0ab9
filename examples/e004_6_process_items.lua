-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- sections "Sequential Awaiting" / "Concurrent Execution", example E004.6:
-- processItems with an await in a loop (WRONG: each item waits for the one
-- before, ~5 x 100 ms) and with all items started at once (RIGHT: ~100 ms).
-- Both return the results in item order.
local casync = require "casync"

local function processItem(item)
  casync.sleep(0.1) -- the I/O behind each item
  return item * item
end

-- WRONG: Sequential execution disguised as async
local function processItemsSequential(items)
  local results = {}
  for _, item in ipairs(items) do
    local result = processItem(item) -- Waits for each one!
    results[#results + 1] = result
  end
  return results
end

-- RIGHT: Concurrent execution (items.map(processItem) + Promise.all)
local function processItemsConcurrent(items)
  local promises = {}
  for i, item in ipairs(items) do promises[i] = casync.spawn(processItem, item) end
  return casync.gather(promises)
end

local function main()
  local items = {1, 2, 3, 4, 5}

  local t0 = casync.now()
  local r1 = processItemsSequential(items)
  print(("Sequential: %.0fms -> %s"):format((casync.now() - t0) * 1000, table.concat(r1, ",")))

  t0 = casync.now()
  local r2 = processItemsConcurrent(items)
  print(("Concurrent: %.0fms -> %s"):format((casync.now() - t0) * 1000,
                                            table.concat(r2, ",", 1, r2.n)))
end

casync.run(main)
