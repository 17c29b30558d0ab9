-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "I/O-Bound Operations", example E004.4 over real HTTP:
-- fetchUsers sequentially (~600 ms) and concurrently (~200 ms), where
-- fetchUser(id) is an HTTP GET to a local server this script starts, and
-- the server takes 200 ms per user (its per-user delays: 200 ms each).
-- (e004_4_fetch_users_seq_vs_concurrent.lua is the article's version with
-- the network faked by a sleep.)
local casync = require "casync"
local http = casync.http

local DELAY = {[1] = 0.2, [2] = 0.2, [3] = 0.2} -- per user, seconds

local server = assert(http.serve("127.0.0.1", 0, function(req)
  local id = tonumber(req.path:match("^/users/(%d+)$"))
  if not DELAY[id] then return {status = 404, json = {error = "no such user"}} end
  casync.sleep(DELAY[id]) -- Takes 200ms
  return {json = {id = id, name = ("User%d"):format(id)}}
end))

local function fetchUser(id)
  local response = assert(http.get(server:url("/users/" .. id)))
  return assert(response:json())
end

local function ms(t0) return (casync.now() - t0) * 1000 end

-- Without concurrency: each request waits for the previous one
local function fetchUsersSequentially()
  local start = casync.now()
  local user1 = fetchUser(1) -- Takes 200ms
  local user2 = fetchUser(2) -- Takes 200ms
  local user3 = fetchUser(3) -- Takes 200ms
  print(("Sequential: %.0fms"):format(ms(start))) -- ~600ms
  return {user1, user2, user3}
end

-- With tasks: all requests start immediately
local function fetchUsersConcurrently()
  local start = casync.now()
  local promises = {
    casync.spawn(fetchUser, 1), -- Starts immediately
    casync.spawn(fetchUser, 2), -- Starts immediately
    casync.spawn(fetchUser, 3), -- Starts immediately
  }
  local users = casync.gather(promises)
  print(("Concurrent: %.0fms"):format(ms(start))) -- ~200ms
  return users
end

local function main()
  local a = fetchUsersSequentially()
  local b = fetchUsersConcurrently()
  print(("users: %s %s %s / %s %s %s"):format(a[1].name, a[2].name, a[3].name,
                                             b[1].name, b[2].name, b[3].name))
  local st = server:stats()
  print(("server: %d requests on %d connections (keep-alive)"):format(st.requests, st.accepted))
  http.close_idle()
  server:close()
end

casync.run(main)
