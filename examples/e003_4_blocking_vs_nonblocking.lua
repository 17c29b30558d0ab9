-- Seed 003 "Concurrent programming", section "Asynchronous programming",
-- example E003.4: "Async only works when your waiting is non-blocking
-- (asyncio.sleep(), network I/O).  Blocking operations (time.sleep(),
-- heavy computation) freeze the single thread."
--
-- Two tasks each wait 0.2 s while a ticker task tries to tick every 10 ms:
--  1. with a blocking sleep (os.execute("sleep 0.2"), Python's time.sleep):
--     the waits take turns (~0.4 s) and the ticker is frozen meanwhile;
--  2. with a busy loop (heavy computation): the same;
--  3. with casync.sleep: the waits overlap (~0.2 s) and the ticker ticks
--     all along.
local casync = require "casync"

local function blocking_wait(seconds)
  os.execute("sleep " .. seconds) -- blocks the whole thread
end

local function busy_wait(seconds)
  local t0 = casync.now()
  while casync.now() - t0 < seconds do end -- never suspends
end

local function casync_wait(seconds)
  casync.sleep(seconds) -- suspends this task only
end

local function main()
  for _, case in ipairs({{"blocking sleep", blocking_wait},
                         {"busy loop", busy_wait},
                         {"casync.sleep", casync_wait}}) do
    local name, wait = case[1], case[2]
    local times = {} -- when the ticker ticked
    local ticker = casync.spawn(function()
      while true do
        casync.sleep(0.01)
        times[#times + 1] = casync.now()
      end
    end)
    casync.sleep(0.03)
    local t0 = casync.now()
    casync.gather(function() wait(0.2) end, function() wait(0.2) end)
    local took = casync.now() - t0
    casync.sleep(0.02) -- one more tick, after the waits
    ticker:cancel()
    -- ticks during the waits, and the longest time without one
    local ticks, longest, last = 0, 0, t0
    for _, t in ipairs(times) do
      if t > t0 then
        if t <= t0 + took then ticks = ticks + 1 end
        longest = math.max(longest, t - last)
        last = t
      end
    end
    print(("%-15s two 0.2 s waits in %.2fs; ticker: %2d ticks, longest gap %.2fs")
      :format(name .. ":", took, ticks, longest))
  end
  print("a blocking wait freezes every task; a casync wait does not")
end

casync.run(main)
