-- Seed 002 "Async Programming: Complete Guide", section "Performance
-- Comparison", example E002.14: measure_performance, 100 fetches of 10 ms
-- each, awaited one by one (~1 s, the sum) and gathered (~10 ms, the
-- longest).  The article's speed-up is ~100x.
local casync = require "casync"

local function fetch_data(url, delay)
  casync.sleep(delay or 1.0) -- simulate network call
  return {url = url, data = "Data from " .. url}
end

local function measure_performance()
  local urls = {}
  for i = 0, 99 do urls[#urls + 1] = ("http://api.example.com/item/%d"):format(i) end

  -- Sequential
  local start = casync.now()
  for _, url in ipairs(urls) do
    fetch_data(url, 0.01)
  end
  local sequential_time = casync.now() - start

  -- Concurrent
  start = casync.now()
  local fns = {}
  for i, url in ipairs(urls) do
    fns[i] = function() return fetch_data(url, 0.01) end
  end
  local results = casync.gather(fns)
  local concurrent_time = casync.now() - start

  print(("Fetched: %d sequentially, %d concurrently"):format(#urls, results.n))
  print(("Sequential: %.2fs"):format(sequential_time))
  print(("Concurrent: %.2fs"):format(concurrent_time))
  print(("Speedup: %.1fx"):format(sequential_time / concurrent_time))
end

local function main()
  measure_performance()
end

casync.run(main) -- asyncio.run(main())
