-- Seed 002 "Async Programming: Complete Guide", section "Task Management",
-- example E002.4 with a scope: the same three fetches as
-- e002_4_wait_first_completed.lua, the first result taken as soon as it is
-- there and the rest waited for, but the tasks belong to a casync.scope
-- instead of being managed by hand.
--
-- casync.select over {task, "wait"} cases returns the first task to end
-- (asyncio.wait with FIRST_COMPLETED).  The scope waits for the others when
-- its block ends, so none is left running or forgotten; and when one fails,
-- the scope cancels the rest and raises the failure, which by hand takes a
-- try/finally that cancels each pending task.
local casync = require "casync"

local function fetch_data(url, delay, fails)
  casync.sleep(delay or 1.0) -- simulate network call
  if fails then error(("connection reset by %s"):format(url), 0) end
  return {url = url, data = "Data from " .. url}
end

local function multiple_tasks()
  local t0 = casync.now()
  local s <close> = casync.scope() -- the block owns every task spawned in s
  local tasks = {
    s:spawn(fetch_data, "http://api1.com", 0.1),
    s:spawn(fetch_data, "http://api2.com", 0.2),
    s:spawn(fetch_data, "http://api3.com", 0.3),
  }
  local cases = {}
  for i, t in ipairs(tasks) do cases[i] = {t, "wait"} end
  local i, first = casync.select(cases) -- the first task to end, its result
  print(("Completed: 1, Pending: %d (after %.2fs)"):format(s:tasks(), casync.now() - t0))
  print(("  done: %s"):format(first.url))
  for j, t in ipairs(tasks) do
    if j ~= i then print(("  remaining: %s"):format(t:wait().url)) end
  end
  print(("All finished after %.2fs"):format(casync.now() - t0))
end

-- api2 fails at 0.2 s: the scope cancels api3 (due at 0.3 s) and raises.
local function one_fails()
  local t0, api3 = casync.now(), nil
  local ok, err = pcall(function()
    local s <close> = casync.scope()
    s:spawn(fetch_data, "http://api1.com", 0.1)
    s:spawn(fetch_data, "http://api2.com", 0.2, true)
    api3 = s:spawn(fetch_data, "http://api3.com", 0.3)
  end) -- the end of the block waits for the tasks; api2's failure is raised
  print(("One fails: ok=%s, %s (after %.2fs)"):format(ok, err, casync.now() - t0))
  print(("  api3 cancelled: %s (kind %s), before its 0.3 s were up"):format(
    api3:cancelled(), api3:error().kind))
end

local function main()
  multiple_tasks()
  one_fails()
end

casync.run(main) -- asyncio.run(main())
