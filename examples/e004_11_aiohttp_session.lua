-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "Async in Different Languages", example E004.11: Python's
-- aiohttp ClientSession fetching /api/users, /api/posts and /api/comments
-- concurrently, each JSON body decoded; here against a local HTTP server
-- this script starts (the endpoints take 150, 100 and 200 ms).
--
--   async with aiohttp.ClientSession() as session:   -- local session <close>
--       await asyncio.gather(fetch_data(session, ...), ...)
--
-- casync.http.session is the ClientSession: its own keep-alive pool, a
-- base URL and default headers; <close> closes its connections as
-- `async with` does.  response:json() decodes with lua-cjson.
local casync = require "casync"
local http = casync.http

local DATA = {
  ["/api/users"] = {delay = 0.15, json = {{id = 1, name = "Ada"}, {id = 2, name = "Grace"}}},
  ["/api/posts"] = {delay = 0.10, json = {{id = 10, title = "Hello"}, {id = 11, title = "Async"},
                                          {id = 12, title = "Lua"}}},
  ["/api/comments"] = {delay = 0.20, json = {{id = 100, text = "Nice"}}},
}

local server = assert(http.serve("127.0.0.1", 0, function(req)
  local d = DATA[req.path]
  if not d then return {status = 404, json = {error = "not found"}} end
  casync.sleep(d.delay) -- the database behind the API
  return {json = d.json, headers = {["X-Served-By"] = req.headers["user-agent"]}}
end))

-- async def fetch_data(session, url):
--     async with session.get(url) as response:
--         return await response.json()
local function fetch_data(session, url)
  local response = assert(session:get(url))
  assert(response.ok, response.status)
  return assert(response:json())
end

local function fetch_multiple_endpoints()
  local session <close> = http.session{base_url = server:url(),
                                       headers = {["User-Agent"] = "casync-example"}}
  local results = casync.gather({
    function() return fetch_data(session, "/api/users") end,
    function() return fetch_data(session, "/api/posts") end,
    function() return fetch_data(session, "/api/comments") end,
  })
  -- the session is still open here: a second round reuses its connections
  local again = fetch_data(session, "/api/users")
  return results, again
end

local function main()
  local t0 = casync.now()
  local results, again = fetch_multiple_endpoints()
  local took = casync.now() - t0
  print(("users: %d (%s, %s)"):format(#results[1], results[1][1].name, results[1][2].name))
  print(("posts: %d (%s)"):format(#results[2], results[2][3].title))
  print(("comments: %d (%s)"):format(#results[3], results[3][1].text))
  print(("users again: %s, %s"):format(again[1].name, again[2].name))
  print(("all three concurrently, then one more: %.0fms (sequential would be 450 + 150 ms)")
    :format(took * 1000))
  local st = server:stats()
  print(("server: %d requests on %d connections"):format(st.requests, st.accepted))
  server:close()
end

casync.run(main)
