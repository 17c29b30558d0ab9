-- Seed 000 "Async vs. Concurrency: Explained", example E000.1 over real
-- HTTP: fetch_data for user1/2/3 run concurrently with gather, where each
-- fetch is an HTTP GET to a local server this script starts, and the
-- server takes each user's delay (user1 2 s, user2 1 s, user3 3 s) before
-- answering.  (e000_1_gather_fetch_data.lua is the article's own version,
-- with the network faked by a sleep.)
--
-- The three requests start in argument order (Fetching 1, 2, 3), finish in
-- delay order (received 2, 1, 3), the results come back in argument order,
-- and the whole thing takes about the longest delay (3 s), not the sum.
local casync = require "casync"
local http = casync.http

local DELAYS = {user1 = 2, user2 = 1, user3 = 3}

-- the "remote" API: GET /data/<name> answers "<name> data" after its delay
local server = assert(http.serve("127.0.0.1", 0, function(req)
  local name = req.path:match("^/data/(%w+)$")
  if not DELAYS[name] then return {status = 404, body = "unknown user"} end
  casync.sleep(DELAYS[name])
  return name .. " data"
end))

local function fetch_data(name)
  print(("Fetching data for %s..."):format(name))
  local response = assert(http.get(server:url("/data/" .. name))) -- a real request
  print(("Data for %s received!"):format(name))
  return response.body
end

local function main()
  local t0 = casync.now()
  local results = casync.gather({
    function() return fetch_data("user1") end,
    function() return fetch_data("user2") end,
    function() return fetch_data("user3") end,
  })
  local quoted = {}
  for i = 1, results.n do quoted[i] = ("'%s'"):format(results[i]) end
  print(("All results: [%s]"):format(table.concat(quoted, ", ")))
  print(("Total: %.2fs (the longest delay is 3 s, the sum 6 s)"):format(casync.now() - t0))
  http.close_idle()
  server:close()
end

casync.run(main) -- asyncio.run(main())
