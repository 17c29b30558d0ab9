-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "C# async/await", example E004.12: GetUserDataAsync, which starts
-- three tasks early, awaits them together with Task.WhenAll, then reads
-- each result with `await profileTask` (a finished task answers at once).
--
-- C#'s GetProfileAsync(userId) returns a running Task: casync.spawn.
-- Task.WhenAll: casync.gather over the tasks.  `await task` on a finished
-- task: task:wait() returns its results again without waiting.
-- Each call takes ~150 ms, so the whole thing takes ~150 ms.
local casync = require "casync"

local function GetProfileAsync(userId)
  casync.sleep(0.15)
  return {id = userId, name = "Ada"}
end

local function GetPreferencesAsync(userId)
  casync.sleep(0.15)
  return {theme = "dark"}
end

local function GetActivityAsync(userId)
  casync.sleep(0.15)
  return {posts = 7}
end

local function GetUserDataAsync(userId)
  local profileTask = casync.spawn(GetProfileAsync, userId)
  local preferencesTask = casync.spawn(GetPreferencesAsync, userId)
  local activityTask = casync.spawn(GetActivityAsync, userId)

  local t0 = casync.now()
  casync.gather(profileTask, preferencesTask, activityTask) -- Task.WhenAll
  print(("WhenAll: %.0fms"):format((casync.now() - t0) * 1000))

  t0 = casync.now()
  local UserData = {
    Profile = profileTask:wait(),
    Preferences = preferencesTask:wait(),
    Activity = activityTask:wait(),
  }
  print(("awaiting the finished tasks again: %.0fms"):format((casync.now() - t0) * 1000))
  return UserData
end

local function main()
  local t0 = casync.now()
  local data = GetUserDataAsync(7)
  print(("UserData: Profile=%s, Preferences=%s, Activity=%d posts"):format(
    data.Profile.name, data.Preferences.theme, data.Activity.posts))
  print(("Total: %.0fms (each call 150 ms, the sum 450 ms)"):format((casync.now() - t0) * 1000))
end

casync.run(main)
