-- Seed 004 "Async/Await: Concurrency vs Parallelism", section
-- "Parallelism: True Simultaneous Execution", example E004.1:
--
--     with Pool(processes=4) as pool:
--         results = pool.map(cpu_intensive_task, [100, 200, 300, 400])
--
-- "This actually runs on multiple CPU cores."  casync.process_pool{size =
-- 4} is the Pool: four worker processes, each a Lua interpreter of its
-- own.  The same four calls one after the other (in one worker process,
-- Pool(processes=1), so both runs pay the same costs) take the sum of
-- their times; on four processes they take about that divided by the
-- number of cores (two here: a speed-up near 2x; the best of two rounds).
-- The loop range is scaled from n * 1,000,000 to n * 100,000 so the whole
-- runs in a few seconds; the sum is a float (Lua integers would wrap past
-- 2^63).
local casync = require "casync"

local function cpu_intensive_task(n)
  -- simulate heavy computation
  local result = 0.0
  for i = 0, n * 100000 - 1 do result = result + i * i end
  return result
end

local function main()
  local tasks = {100, 200, 300, 400}

  -- the pools, with their workers started before the clock starts
  local one <close> = casync.process_pool{size = 1}
  local four <close> = casync.process_pool{size = 4} -- Pool(processes=4)
  one:map(function() end, {1})
  four:map(function() end, {1, 2, 3, 4})

  local function timed_map(pool)
    local t0 = casync.now()
    local results = pool:map(cpu_intensive_task, tasks)
    return results, casync.now() - t0
  end

  -- the loop stays free while the workers compute: a heartbeat keeps going
  local beats = 0
  local heart = casync.spawn(function()
    while true do casync.sleep(0.05) beats = beats + 1 end
  end)

  -- the best of two rounds (another program may take a core for a while)
  local seq, par, seq_time, par_time
  for _ = 1, 2 do
    local s, st = timed_map(one)
    local p, pt = timed_map(four)
    if not seq or pt / st < par_time / seq_time then
      seq, par, seq_time, par_time = s, p, st, pt
    end
  end
  heart:cancel()

  print(("sequential (1 process):  %.6e %.6e %.6e %.6e in %.2fs")
    :format(seq[1], seq[2], seq[3], seq[4], seq_time))
  print(("parallel (4 processes):  %.6e %.6e %.6e %.6e in %.2fs")
    :format(par[1], par[2], par[3], par[4], par_time))
  local same = true
  for i = 1, 4 do same = same and seq[i] == par[i] end
  print("same results: " .. tostring(same))
  print(("speed-up: %.2fx on %d cores"):format(seq_time / par_time,
    casync.process.cpu_count()))
  print(("the loop kept beating meanwhile: %s"):format(tostring(beats >= 5)))
end

casync.run(main)
