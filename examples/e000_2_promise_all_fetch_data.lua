-- Seed 000 "Async vs. Concurrency: Explained", example E000.2:
-- the TypeScript version of E000.1, with Promise.all.
-- Calling an async function in JS starts it at once and hands back a promise;
-- the casync spelling of that is casync.spawn, which returns a task at once.
-- Promise.all([...]) is casync.gather({...}) over those tasks.  Same
-- behaviour as E000.1: Fetching 1, 2, 3; received 2, 1, 3; results in order;
-- about 3 s in total.
local casync = require "casync"

local function fetchData(name, delaySeconds)
  print(("Fetching data for %s..."):format(name))
  casync.sleep(delaySeconds) -- await new Promise(resolve => setTimeout(resolve, ...))
  print(("Data for %s received!"):format(name))
  return name .. " data"
end

local function main()
  local t0 = casync.now()
  -- Run tasks concurrently: each spawn is a promise already in flight.
  local results = casync.gather({
    casync.spawn(fetchData, "user1", 2),
    casync.spawn(fetchData, "user2", 1),
    casync.spawn(fetchData, "user3", 3),
  })

  -- `${results}` on an array joins it with commas.
  print(("All results: %s"):format(table.concat(results, ",", 1, results.n)))
  print(("Total: %.2fs (the longest delay is 3 s, the sum 6 s)"):format(casync.now() - t0))
  return results
end

-- main().catch(error => console.error('Error:', error)): casync.run raises
-- main's error, which lua5.4 (or the casync runner) prints before exiting 1.
casync.run(main)
