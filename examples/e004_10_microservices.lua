-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "Real-World Performance Comparison", example E004.10: user data
-- from three microservices that take ~150 ms each:
--   Sequential ~450 ms, Concurrent ~150 ms, Mixed ~300 ms (the profile
--   first, since the other two calls need its region and timezone).
-- console.time/timeEnd is a small helper that prints "label: N ms".
local casync = require "casync"

local timers = {}
local console = {
  time = function(label) timers[label] = casync.now() end,
  timeEnd = function(label)
    print(("%s: %.3fms"):format(label, (casync.now() - timers[label]) * 1000))
    timers[label] = nil
  end,
}

local function fetchProfile(userId)
  casync.sleep(0.15)
  return {id = userId, region = "eu", timezone = "UTC+1"}
end

local function fetchPreferences(userId, region)
  casync.sleep(0.15)
  return {theme = "dark", region = region}
end

local function fetchActivity(userId, timezone)
  casync.sleep(0.15)
  return {lastSeen = "09:00", timezone = timezone}
end

-- Sequential approach (slow)
local function getUserDataSequential(userId)
  console.time("Sequential")

  local profile = fetchProfile(userId)         -- ~150ms
  local preferences = fetchPreferences(userId) -- ~150ms
  local activity = fetchActivity(userId)       -- ~150ms

  console.timeEnd("Sequential") -- ~450ms total

  return {profile = profile, preferences = preferences, activity = activity}
end

-- Concurrent approach (fast)
local function getUserDataConcurrent(userId)
  console.time("Concurrent")

  local profile, preferences, activity = casync.gather(
    function() return fetchProfile(userId) end,     -- All start simultaneously
    function() return fetchPreferences(userId) end, -- All start simultaneously
    function() return fetchActivity(userId) end     -- All start simultaneously
  )

  console.timeEnd("Concurrent") -- ~150ms total

  return {profile = profile, preferences = preferences, activity = activity}
end

-- Mixed approach (when operations depend on each other)
local function getUserDataMixed(userId)
  console.time("Mixed")

  -- Profile is needed for other calls
  local profile = fetchProfile(userId) -- ~150ms

  -- These can run concurrently after we have the profile
  local preferences, activity = casync.gather(
    function() return fetchPreferences(userId, profile.region) end,
    function() return fetchActivity(userId, profile.timezone) end
  ) -- ~150ms

  console.timeEnd("Mixed") -- ~300ms total

  return {profile = profile, preferences = preferences, activity = activity}
end

local function main()
  getUserDataSequential(42)
  getUserDataConcurrent(42)
  local mixed = getUserDataMixed(42)
  print(("mixed: region %s, timezone %s"):format(mixed.preferences.region,
                                                 mixed.activity.timezone))
end

casync.run(main)
