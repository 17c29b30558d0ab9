-- Seed 002 "Async Programming: Complete Guide", section "Getting Started",
-- example E002.1: three fetch_data calls (1 s each) awaited one after the
-- other (~3 s), then the same three with gather (~1 s).  Results are in
-- argument order both ways.
local casync = require "casync"

-- Simulate fetching data from URL.
local function fetch_data(url, delay)
  casync.sleep(delay or 1.0) -- simulate network call
  return {url = url, data = "Data from " .. url}
end

local function urls_of(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = ("'%s'"):format(r.url) end
  return "[" .. table.concat(out, ", ") .. "]"
end

local function main()
  -- Sequential execution (slow)
  print("Sequential:")
  local t0 = casync.now()
  local result1 = fetch_data("http://api1.com")
  local result2 = fetch_data("http://api2.com")
  local result3 = fetch_data("http://api3.com")
  print(("Results: %s"):format(urls_of({result1, result2, result3})))
  print(("Sequential time: %.2fs"):format(casync.now() - t0))

  -- Concurrent execution with gather (fast)
  print("\nConcurrent:")
  t0 = casync.now()
  local results = casync.gather({
    function() return fetch_data("http://api1.com") end,
    function() return fetch_data("http://api2.com") end,
    function() return fetch_data("http://api3.com") end,
  })
  print(("Results: %s"):format(urls_of(results)))
  print(("Concurrent time: %.2fs"):format(casync.now() - t0))
end

casync.run(main) -- asyncio.run(main())
