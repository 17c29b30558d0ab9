-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "I/O-Bound Operations", example E004.4: fetchUsers sequentially
-- (~600 ms) and concurrently (~200 ms), each fetchUser taking 200 ms.
--
-- In the article the sequential version calls fetchUser without await.  In
-- Lua there is no await: calling fetchUser waits for it (only this task
-- waits; the loop stays free), so the sequential version is three plain
-- calls, and the concurrent one spawns the three and gathers them
-- (Promise.all).
local casync = require "casync"

local function fetchUser(id)
  casync.sleep(0.2) -- Takes 200ms
  return {id = id, name = ("User%d"):format(id)}
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
end

casync.run(main)
