-- Seed 000 "Async vs. Concurrency: Explained", example E000.1:
-- fetch_data for user1/2/3 (2 s, 1 s, 3 s) run concurrently with gather.
-- The three requests start in argument order (Fetching 1, 2, 3), finish in
-- delay order (received 2, 1, 3), the results come back in argument order,
-- and the whole thing takes about the longest delay (3 s), not the sum (6 s).
--
-- The article's Python:  await asyncio.gather(fetch_data("user1", 2), ...)
-- In casync each argument of gather is a function (spawned as a task) or a
-- task; here closures, so the call reads like the article's.
local casync = require "casync"

local function fetch_data(name, delay)
  print(("Fetching data for %s..."):format(name))
  casync.sleep(delay) -- simulates a network request
  print(("Data for %s received!"):format(name))
  return name .. " data"
end

local function main()
  local t0 = casync.now()
  -- Run tasks concurrently
  local results = casync.gather({
    function() return fetch_data("user1", 2) end,
    function() return fetch_data("user2", 1) end,
    function() return fetch_data("user3", 3) end,
  })

  local quoted = {}
  for i = 1, results.n do quoted[i] = ("'%s'"):format(results[i]) end
  print(("All results: [%s]"):format(table.concat(quoted, ", ")))
  print(("Total: %.2fs (the longest delay is 3 s, the sum 6 s)"):format(casync.now() - t0))
  return results
end

-- Run the async program: asyncio.run(main())
casync.run(main)
