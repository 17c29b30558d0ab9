-- Seed 004 "Async/Await: Understanding Concurrency vs Parallelism",
-- section "The Event Loop", example E004.3: synchronous code, then promise
-- microtasks, then timer macrotasks, giving the order 1, 4, 3, 2.
--
--   setTimeout(cb, 0)                 ->  casync.call_later(0, cb)
--   Promise.resolve().then(cb)        ->  casync.spawn(cb)
--
-- Why the same order in casync:
--  * 1 and 4 are plain synchronous code in the running task; nothing else
--    can run until it suspends (here at timer:wait()).
--  * casync.spawn puts the new task on the ready queue.  The ready queue is
--    drained as soon as the running task suspends, before the loop goes back
--    to libuv; that makes a spawned task the analogue of a microtask, so 3
--    comes next.
--  * casync.call_later(0, cb) puts cb in the timer heap.  Timers are checked
--    only when the loop turns (after the ready queue has run dry), like a
--    macrotask, so 2 comes last even though its delay is 0.
local casync = require "casync"

local order = {}
local function log(msg)
  print(msg)
  order[#order + 1] = msg:match("^(%d+)")
end

local function main()
  log("1: Start")
  local timer = casync.call_later(0, function()
    log("2: Timer callback")
  end)
  casync.spawn(function()
    log("3: Promise microtask")
  end)
  log("4: End")

  timer:wait() -- let the loop run until the timer callback has run
  print(("Output: %s"):format(table.concat(order, ", ")))
end

casync.run(main)
