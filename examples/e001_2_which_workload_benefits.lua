-- Seed 001 "Async & Concurrency", section "Try it — when does async
-- help?", example E001.2: which workload benefits from async/await on a
-- single thread?  (a) heavy math on a big array, (b) a server handling
-- 1,000 simultaneous requests that mostly wait, (c) a script that reads a
-- file, transforms it and writes a new one.
--
-- The article's answer, shown:
--  (a) CPU-bound: splitting the math over four tasks gains nothing (they
--      take turns on one thread: the same time as one loop).  The array is
--      scaled from 1 GB to a million numbers; best of three rounds.  Real
--      parallelism needs other cores: the same quarters on casync.thread
--      workers do gain (also E003.2, E003.3, E004.1).
--  (c) read, transform, write: casync.fs reads and writes on libuv's
--      thread pool, suspending only the task that waits, so the loop keeps
--      serving other tasks meanwhile (a ticker keeps ticking); reading and
--      writing at once (a reader task, a channel, a writer task) gives the
--      same file.  For a small script it hardly matters, as the article
--      says: the whole thing takes milliseconds.
local casync = require "casync"
local fs = casync.fs

local function main()
  print("(a) heavy math on a big array (CPU-bound)")

  local N = 1000000
  local array = {}
  for i = 1, N do array[i] = (i % 1000) / 7 end

  -- the math: a sum of squares and of square roots over array[from..to]
  local function heavy_math(from, to)
    local sq, rt = 0.0, 0.0
    for i = from, to do
      local x = array[i]
      sq = sq + x * x
      rt = rt + math.sqrt(x)
    end
    return sq, rt
  end

  -- four tasks, a quarter each: they cannot run at the same time
  local function four_tasks()
    local quarter = N // 4
    local parts = {}
    for k = 1, 4 do
      parts[k] = casync.spawn(heavy_math, (k - 1) * quarter + 1, k * quarter)
    end
    local sums = casync.gather(parts)
    local total = 0.0
    for k = 1, 4 do total = total + sums[k] end
    return total
  end

  -- the best of three rounds of each (other programs may take the CPU)
  local one_loop, with_tasks, sq, total = math.huge, math.huge
  for _ = 1, 3 do
    local t0 = casync.now()
    sq = heavy_math(1, N)
    one_loop = math.min(one_loop, casync.now() - t0)
    t0 = casync.now()
    total = four_tasks()
    with_tasks = math.min(with_tasks, casync.now() - t0)
  end
  print(("  one loop:          sum of squares %.6e in %.3fs"):format(sq, one_loop))
  print(("  four tasks:        sum of squares %.6e in %.3fs"):format(total, with_tasks))
  print(("  tasks / one loop: %.2f (no gain: one thread does all the math)")
    :format(with_tasks / one_loop))

  -- The same four quarters on worker threads (separate Lua states, so each
  -- computes its own numbers: no shared array), which do run at the same
  -- time, one per core.  This is what gains.
  local function quarter_on_a_thread(from, to)
    local sq, rt = 0.0, 0.0
    for i = from, to do
      local x = (i % 1000) / 7
      sq = sq + x * x
      rt = rt + math.sqrt(x)
    end
    return sq, rt
  end

  local function four_threads()
    local quarter = N // 4
    local parts = {}
    for k = 1, 4 do
      parts[k] = casync.thread(quarter_on_a_thread, (k - 1) * quarter + 1,
                               k * quarter)
    end
    local sums = casync.gather(parts)
    local sum = 0.0
    for k = 1, 4 do sum = sum + sums[k] end
    return sum
  end

  local with_threads, threads_total = math.huge, nil
  for _ = 1, 3 do
    local t0 = casync.now()
    threads_total = four_threads()
    with_threads = math.min(with_threads, casync.now() - t0)
  end
  print(("  four threads:      sum of squares %.6e in %.3fs"):format(
    threads_total, with_threads))
  print(("  threads / one loop: %.2f (the cores work at once)"):format(
    with_threads / one_loop))

  print("(c) read a file, transform it, write a new one")

  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir(dir))
  local input, output, output2 = dir .. "/input.txt", dir .. "/output.txt",
                                  dir .. "/output2.txt"
  local lines = {}
  for i = 1, 200000 do lines[i] = ("line %d of the input"):format(i) end
  assert(fs.write_file(input, table.concat(lines, "\n") .. "\n"))

  -- a ticker: counts how often the loop ran another task while this one
  -- waited for the file system (it yields at every turn)
  local ticks = 0
  local ticker = casync.spawn(function()
    while true do
      casync.sleep(0)
      ticks = ticks + 1
    end
  end)

  local function transform(text) return (text:upper()) end

  -- whole file: read, transform, write
  t0 = casync.now()
  local text = assert(fs.read_file(input))
  assert(fs.write_file(output, transform(text)))
  print(("  whole file: %d bytes in %.3fs; the loop ran another task meanwhile: %s")
    :format(#text, casync.now() - t0, tostring(ticks > 0)))

  -- reading and writing at once: a reader task hands chunks to a writer task
  t0 = casync.now()
  local chunks = casync.channel(4)
  local reader = casync.spawn(function()
    local f <close> = assert(fs.open(input))
    while true do
      local chunk, err = f:read(65536)
      if chunk == nil then assert(not err, err) break end -- nil: the end
      chunks:send(transform(chunk))
    end
    chunks:close()
  end)
  local writer = casync.spawn(function()
    local f <close> = assert(fs.open(output2, "w"))
    for chunk in chunks:iter() do assert(f:write(chunk)) end
  end)
  casync.gather(reader, writer)
  ticker:cancel()
  print(("  read and write at once (reader task -> channel -> writer task): %.3fs")
    :format(casync.now() - t0))
  local same = fs.read_file(output) == fs.read_file(output2)
  print("  same output: " .. tostring(same) .. "; first line: " ..
        fs.read_file(output):match("^[^\n]*"))

  for name in fs.dir(dir) do assert(fs.remove(dir .. "/" .. name)) end
  assert(fs.rmdir(dir))
end

casync.run(main)
