-- Regression (issue 8): a cancelled fs request releases what it holds (its
-- descriptor, its buffers, its block) as soon as it ends, not when the GC
-- collects its userdata.  Before, 2,000 cancelled fs.open calls left 46
-- descriptors open until a collection (with a large heap: EMFILE), and a
-- cancelled read_file kept its buffer; one cancelled in its close step even
-- lost its descriptor for good (the close itself was cancelled).  The
-- collector is stopped in these tests, so only the fix can give the
-- descriptors back.
local casync = require "casync"
local fs = casync.fs

local dir = helper.fresh_dir()
before_each(dir.make)
after_each(function()
  collectgarbage("restart")
  dir.remove()
end)

local function fd_count()
  local n = 0
  for _ in fs.dir("/proc/self/fd") do n = n + 1 end
  return n
end

-- Waits (at most 5 s) until fn() is true; returns it.
local function eventually(fn)
  local t0 = casync.now()
  while not fn() and casync.now() - t0 < 5 do casync.sleep(0.01) end
  return fn()
end

-- Spawns fn(...) as a task, lets it start its request, cancels it, and
-- checks it ended cancelled.
local function cancel_started(pause, fn, ...)
  local t = casync.spawn(fn, ...)
  if pause > 0 then casync.sleep(pause) else casync.sleep(0) end
  t:cancel()
  local ok = pcall(t.wait, t)
  return ok, t
end

describe("a cancelled fs request", function()
  it("fs.open: closes the descriptor when the open ends, without a GC", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, "x"))
    local before = fd_count()
    collectgarbage("stop")
    for _ = 1, 2000 do
      -- sleep(0): the task has handed its open to the pool, which cannot
      -- have answered yet (that takes a turn of the loop)
      local ok, t = cancel_started(0, fs.open, p)
      assert(not ok and t:cancelled())
    end
    eventually(function() return fd_count() <= before end)
    assert.equal(before, fd_count())
    assert.is_true(eventually(function() return fs._stats().blocks == 0 end))
  end, 60))

  it("fs.read_file: frees its buffer and block when it ends, without a GC", async(function()
    local p = dir() .. "/big"
    assert(fs.write_file(p, ("r"):rep(4 << 20)))
    local before = fd_count()
    collectgarbage("stop")
    -- cancelled in the open (pause 0), or in the read or the close,
    -- whichever it is in after a pause (or not at all: it may have ended)
    local cancelled = 0
    for i = 1, 60 do
      local ok = cancel_started((i % 3) * 0.0005, fs.read_file, p)
      if not ok then cancelled = cancelled + 1 end
    end
    assert.is_true(cancelled >= 20)
    assert.is_true(eventually(function() return fs._stats().blocks == 0 end),
                   "blocks held: " .. fs._stats().blocks)
    assert.equal(before, fd_count())
  end, 30))

  it("fs.write_file, mkdir -p, remove: freed when they end", async(function()
    collectgarbage("stop")
    for i = 1, 50 do
      assert.is_false(cancel_started(0, fs.write_file, dir() .. "/w" .. i, ("w"):rep(1 << 20)))
      assert.is_false(cancel_started(0, fs.mkdir, dir() .. "/a" .. i .. "/b/c", {recursive = true}))
      assert.is_false(cancel_started(0, fs.remove, dir() .. "/nothing" .. i))
      assert.is_false(cancel_started(0, fs.stat, dir()))
    end
    assert.is_true(eventually(function() return fs._stats().blocks == 0 end))
  end, 30))

  it("file:read and file:write: freed when they end; the file stays usable", async(function()
    local p = dir() .. "/f"
    assert(fs.write_file(p, ("z"):rep(2 << 20)))
    local f <close> = assert(fs.open(p, "r+"))
    collectgarbage("stop")
    for _ = 1, 50 do
      assert.is_false(cancel_started(0, f.read, f, "a"))
      assert.is_false(cancel_started(0, f.read, f, 100, 0))
      assert.is_false(cancel_started(0, f.write, f, "abc", 0))
    end
    assert.is_true(eventually(function() return fs._stats().blocks == 0 end))
    assert.equal(3, #f:read(3, 0))
    assert.is_true(f:close())
  end, 30))
end)
