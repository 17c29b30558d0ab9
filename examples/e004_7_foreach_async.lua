-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- sections "forEach with Async" / "Proper Iteration with Async",
-- example E004.7: the forEach bug ("All done!" printed before any update)
-- and the two correct forms (sequential and concurrent).
--
-- In JS, forEach calls an async callback, gets a promise back and drops it.
-- The Lua analogue of a dropped promise is a task spawned and never waited
-- on: fire-and-forget.  A twist worth seeing: without function colouring, a
-- plain forEach over a callback that calls updateUser directly is *correct*
-- (sequential), because updateUser suspends the whole task, forEach included.
local casync = require "casync"

local updated = 0
local function updateUser(user)
  casync.sleep(0.1) -- the database write
  updated = updated + 1
  print(("  updated %s"):format(user))
end

local function forEach(list, fn)
  for i, v in ipairs(list) do fn(v, i) end
end

-- WRONG: forEach doesn't wait for the tasks it starts
local function updateUsers(users)
  forEach(users, function(user)
    casync.spawn(updateUser, user) -- These don't wait for each other!
  end)
  print("All done!") -- This runs immediately, not after updates!
end

-- For sequential processing:
local function updateUsersSequentially(users)
  for _, user in ipairs(users) do
    updateUser(user)
  end
  print("All done!")
end

-- No colouring: forEach with a plain callback waits too (sequential)
local function updateUsersForEach(users)
  forEach(users, updateUser)
  print("All done!")
end

-- For concurrent processing:
local function updateUsersConcurrently(users)
  local promises = {}
  for i, user in ipairs(users) do promises[i] = casync.spawn(updateUser, user) end
  casync.gather(promises)
  print("All done!")
end

local function main()
  local users = {"alice", "bob", "carol"}
  local function section(title, fn)
    print(title)
    updated = 0
    local t0 = casync.now()
    fn(users)
    print(("  -> %d of %d updated when it returned, after %.2fs"):format(
      updated, #users, casync.now() - t0))
  end

  section("forEach + spawn (the bug):", updateUsers)
  casync.sleep(0.2) -- the forgotten updates land later, after "All done!"
  print(("  -> %d of %d updated 0.2 s later"):format(updated, #users))

  section("for loop (sequential):", updateUsersSequentially)
  section("forEach with a plain callback (sequential, no colouring):", updateUsersForEach)
  section("spawn + gather (concurrent):", updateUsersConcurrently)
end

casync.run(main)
