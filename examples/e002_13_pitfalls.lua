-- Seed 002 "Async Programming: Complete Guide", section "Common
-- Pitfalls", example E002.13: blocking the event loop (time.sleep in an
-- async function), forgetting to await, and sequential awaits where
-- concurrent ones are possible.
--
--  1. Blocking the loop: bad_example calls a blocking sleep (os.execute
--     "sleep 0.2", Python's time.sleep) and a heartbeat task stops for
--     that long; good_example uses casync.sleep and the heartbeat goes on.
--     casync.watchdog notices the blocked task while it is still blocked
--     and reports which task and where (its traceback); here its report
--     goes to on_block, printed below (by default, or with CASYNC_DEBUG=1,
--     it goes to stderr).
--  2. Forgetting to await: in casync a plain call already waits (there is
--     no await keyword to forget), so the pitfall is starting a task and
--     never waiting for it: bad_await returns before fetch_data is done,
--     and its result is lost.  good_await waits (task:wait()).
--  3. Sequential when concurrent is possible: three fetches one after the
--     other (~0.3 s) vs gather (~0.1 s).
local casync = require "casync"

-- fetch_data fakes a request with a non-blocking wait
local function fetch_data(url, seconds)
  casync.sleep(seconds or 0.1)
  return "data from " .. url
end

-- a heartbeat every 20 ms; returns the longest gap between beats
local function heartbeat()
  local longest, last = 0, casync.now()
  local t = casync.spawn(function()
    while true do
      casync.sleep(0.02)
      local now = casync.now()
      longest = math.max(longest, now - last)
      last = now
    end
  end)
  return function()
    t:cancel()
    return longest
  end
end

local function main()
  print("1. Blocking the event loop")
  casync.watchdog{threshold = 0.1, on_block = function(report)
    print("  watchdog: " .. report.message:match("^casync: ([^\n]*)"))
    -- where it was, taken while it still ran: its two innermost frames
    local frames = 0
    for line in report.traceback:gmatch("\n%s*([^\n]+)") do
      print("  watchdog:   at " .. line)
      frames = frames + 1
      if frames == 2 then break end
    end
  end}

  -- BAD: a blocking call inside a task blocks every task
  local function bad_example()
    os.execute("sleep 0.2") -- time.sleep(1): blocks the entire loop
    return "Done"
  end

  -- GOOD: a casync wait suspends only this task
  local function good_example()
    casync.sleep(0.2) -- asyncio.sleep(1): non-blocking
    return "Done"
  end

  for _, case in ipairs({{"bad_example", bad_example}, {"good_example", good_example}}) do
    local stop = heartbeat()
    casync.sleep(0.03)
    local t0 = casync.now()
    local r = casync.spawn({name = case[1]}, case[2]):wait()
    local took = casync.now() - t0
    casync.sleep(0.05) -- the watchdog's report comes from the loop
    print(("  %s -> %s in %.2fs; longest heartbeat gap: %.2fs")
      :format(case[1], r, took, stop()))
  end
  casync.watchdog(false)

  print("2. Forgetting to await")

  local fetched = {}
  local function fetch_and_store(url)
    fetched[url] = fetch_data(url)
  end

  -- BAD: starts the work and never waits for it
  local function bad_await()
    casync.spawn(fetch_and_store, "http://example.com/bad")
  end

  -- GOOD: waits for it (a plain call, or spawn + wait as here)
  local function good_await()
    casync.spawn(fetch_and_store, "http://example.com/good"):wait()
  end

  bad_await()
  print("  bad_await returned; result there: " .. tostring(fetched["http://example.com/bad"] ~= nil))
  good_await()
  print("  good_await returned; result there: " .. tostring(fetched["http://example.com/good"] ~= nil))
  print("  (a plain call fetch_data(url) waits by itself: no await to forget)")

  print("3. Sequential when concurrent is possible")

  -- BAD: one after the other
  local function bad_sequential()
    local r1 = fetch_data("url1")
    local r2 = fetch_data("url2")
    local r3 = fetch_data("url3")
    return r1, r2, r3
  end

  -- GOOD: all three at once
  local function good_concurrent()
    return casync.gather(function() return fetch_data("url1") end,
                         function() return fetch_data("url2") end,
                         function() return fetch_data("url3") end)
  end

  for _, case in ipairs({{"bad_sequential", bad_sequential},
                         {"good_concurrent", good_concurrent}}) do
    local t0 = casync.now()
    local r1, r2, r3 = case[2]()
    print(("  %s: %s, %s, %s in %.2fs"):format(case[1], r1, r2, r3, casync.now() - t0))
  end
end

casync.run(main)
