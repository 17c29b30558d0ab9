-- Seed 001 "Async & Concurrency" (the chef who orders pizza), example E001.1:
-- fetch_user twice, sequentially (total = the sum, ~2 s) and concurrently
-- (total = the max, ~1 s).  "The same code, two shapes, very different
-- latency."
local casync = require "casync"

local function fetch_user(id)
  casync.sleep(1) -- simulate network
  return {id = id, name = ("User%d"):format(id)}
end

local function main()
  -- Sequential: total ~2s
  local t0 = casync.now()
  local a = fetch_user(1)
  local b = fetch_user(2)
  print(("Sequential: %.2fs (%s, %s)"):format(casync.now() - t0, a.name, b.name))

  -- Concurrent: total ~1s
  t0 = casync.now()
  a, b = casync.gather(function() return fetch_user(1) end,
                       function() return fetch_user(2) end)
  print(("Concurrent: %.2fs (%s, %s)"):format(casync.now() - t0, a.name, b.name))
end

casync.run(main) -- asyncio.run(main())
