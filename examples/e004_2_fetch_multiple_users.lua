-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "Concurrency: Interleaved Execution", example E004.2:
-- fetchMultipleUsers, three requests started immediately, then one
-- Promise.all to wait for them together.
--
-- fetch() is faked with a sleep (0.20 s, 0.10 s, 0.15 s).  casync.spawn
-- starts a request and returns at once (the promise); casync.gather is
-- Promise.all.  All three are in flight before any of them ends, and the
-- whole wait takes the longest one, ~0.20 s.
local casync = require "casync"

local t0 = casync.now()
local function stamp() return ("%.2fs"):format(casync.now() - t0) end

local delays = {["/api/users/1"] = 0.20, ["/api/users/2"] = 0.10, ["/api/users/3"] = 0.15}

local function fetch(url)
  print(("%s start %s"):format(stamp(), url))
  casync.sleep(delays[url]) -- the network
  print(("%s done  %s"):format(stamp(), url))
  return {url = url, id = tonumber(url:match("%d+$"))}
end

local function fetchMultipleUsers()
  -- All three requests start immediately (concurrent)
  local user1Promise = casync.spawn(fetch, "/api/users/1")
  local user2Promise = casync.spawn(fetch, "/api/users/2")
  local user3Promise = casync.spawn(fetch, "/api/users/3")

  -- Wait for all to complete
  local user1, user2, user3 = casync.gather(user1Promise, user2Promise, user3Promise)

  return {user1, user2, user3}
end

local function main()
  local users = fetchMultipleUsers()
  print(("users: %d, %d, %d"):format(users[1].id, users[2].id, users[3].id))
  print(("Total: %s (the longest request is 0.20 s, the sum 0.45 s)"):format(stamp()))
end

casync.run(main)
