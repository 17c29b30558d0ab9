-- Seed 001 "Async & Concurrency", "No Dumb Questions: What is a race
-- condition?", example E001.4: two workers increment one counter; "they
-- read 5, both add 1, both write 6, and the count is off by one".
--
-- casync runs one task at a time, so `counter = counter + 1` alone can
-- never be interrupted: a task only gives way where it suspends.  The race
-- appears as soon as there is a suspension between the read and the write
-- (here a sleep(0) standing for `await db.save(...)`): the other worker
-- reads the same old value, and one of the two updates is lost.  A
-- casync.lock held across read-suspend-write fixes it.
local casync = require "casync"

local N = 1000 -- increments per worker

local counter = 0

local function save() -- the await between read and write
  casync.sleep(0)
end

-- No suspension inside: safe even without a lock (one task at a time).
local function increment_plain()
  counter = counter + 1
end

-- Read, suspend, write: the lost update.
local function increment_racy()
  local value = counter -- read 5
  save()                -- the other worker runs here and also reads 5
  counter = value + 1   -- both write 6
end

-- The same with the read-suspend-write held under a lock.
local lock = casync.lock()
local function increment_locked()
  local held <close> = lock:acquire()
  local value = counter
  save()
  counter = value + 1
end

local function run_workers(name, increment)
  counter = 0
  local function worker()
    for _ = 1, N do
      increment()
      casync.sleep(0) -- let the other worker run between increments too
    end
  end
  casync.gather(worker, worker)
  local lost = 2 * N - counter
  print(("%-28s expected %d, got %d (%d updates lost)"):format(
    name .. ":", 2 * N, counter, lost))
end

local function main()
  run_workers("no suspension, no lock", increment_plain)
  run_workers("suspension between, no lock", increment_racy)
  run_workers("suspension between, lock", increment_locked)
end

casync.run(main)
