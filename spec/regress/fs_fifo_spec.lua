-- Regression (issue 8): a file operation that may wait forever (a FIFO with
-- no writer or no reader) must not hold one of libuv's four pool threads.
-- Before, five cancelled reads of FIFOs without a writer kept the threads
-- blocked: every later fs call and DNS lookup hung, and the process could
-- not exit (libuv joins its threads at exit).  casync now opens without
-- blocking and waits for such files to be ready on the loop (src/fs_io.c).
local casync = require "casync"
local fs = casync.fs

local quote = helper.quote

-- a fresh directory for each test, removed afterwards
local dir = helper.fresh_dir()
before_each(dir.make)
after_each(dir.remove)

local function mkfifo(name)
  local p = dir() .. "/" .. name
  assert(os.execute("mkfifo " .. quote(p)))
  return p
end

local function fd_count()
  local n = 0
  for _ in fs.dir("/proc/self/fd") do n = n + 1 end
  return n
end

-- Runs code in a child lua5.4 (finding this build) killed after `limit`
-- seconds, so a regression cannot hang the suite; -> exit code, stdout,
-- stderr, seconds it took.
local function child(code, limit)
  local setup = ("package.path = %q .. package.path; package.cpath = %q .. package.cpath; ")
    :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
            helper.build .. "/lib/?.so;")
  local t0 = casync.now()
  local rc, out, err = helper.sh(("timeout -s KILL %d lua5.4 -e %s")
    :format(limit, quote(setup .. code)))
  return rc, out, err, casync.now() - t0
end

describe("FIFOs", function()
  it("cancelled waits on them starve nothing: fs, DNS and exit go on", function()
    -- 8 of each kind of wait (twice the pool), all cancelled, then the
    -- rest must still work within 5 s, and the process must exit
    local rc, out, err, took = child(([[
      local casync = require "casync"
      local fs, root = casync.fs, %q
      local function fifo(name)
        assert(os.execute("mkfifo '" .. root .. "/" .. name .. "'"))
        return root .. "/" .. name
      end
      casync.run(function()
        local waits = {}
        for i = 1, 8 do
          waits[#waits + 1] = casync.spawn(fs.read_file, fifo("r" .. i))
          waits[#waits + 1] = casync.spawn(fs.write_file, fifo("w" .. i), "x")
          waits[#waits + 1] = casync.spawn(fs.open, fifo("o" .. i), "w")
          local p = fifo("f" .. i)
          waits[#waits + 1] = casync.spawn(function()
            local f <close> = assert(fs.open(p))
            return f:read()
          end)
        end
        casync.sleep(0.2)
        for _, t in ipairs(waits) do assert(not t:done(), "a wait ended") end
        for _, t in ipairs(waits) do t:cancel() end
        for _, t in ipairs(waits) do assert(not pcall(t.wait, t)) end
        casync.wait_for(function()
          assert(fs.write_file(root .. "/plain", "still here"))
          assert(fs.read_file(root .. "/plain") == "still here")
          assert(fs.stat(root))
          assert(casync.dns.resolve("localhost"))
        end, 5)
        io.write("all done\n")
      end)
    ]]):format(dir()), 30)
    assert.equal(0, rc, err)
    assert.equal("all done\n", out)
    assert.is_true(took < 10, "took " .. took .. " s")
  end)

  it("read_file waits for a writer and reads until it closes", async(function()
    local p = mkfifo("p")
    local r = casync.spawn(fs.read_file, p)
    casync.sleep(0.05)
    assert.is_false(r:done())
    assert.is_true(fs.write_file(p, "hello"))
    assert.equal("hello", r:wait())
  end))

  it("write_file waits for a reader, then writes everything", async(function()
    local p = mkfifo("p")
    local big = ("0123456789"):rep(30000) -- more than the pipe holds
    local w = casync.spawn(fs.write_file, p, big)
    casync.sleep(0.05)
    assert.is_false(w:done())
    assert.equal(big, fs.read_file(p))
    assert.is_true(w:wait())
  end))

  it("fs.open returns at once; file:read waits; close ends a waiting read", async(function()
    local p = mkfifo("p")
    local f = assert(fs.open(p))         -- no writer yet: does not wait
    local g = assert(fs.open(p, "w"))    -- it has a reader: does not wait
    assert.is_true(g:write("abc"))
    assert.equal("abc", f:read())
    local r = casync.spawn(function() return f:read() end)
    casync.sleep(0.05)
    assert.is_false(r:done())            -- g is open and wrote nothing
    f:close()
    local data, err = r:wait()
    assert.is_nil(data)
    assert.equal("ECANCELED", err.code)
    assert.is_true(g:write("x") == nil)  -- its reader is gone: EPIPE
    g:close()
  end))

  it("a FIFO end cannot be used the other way (EBADF, not a wait)", async(function()
    local p = mkfifo("p")
    local f <close> = assert(fs.open(p))
    local g <close> = assert(fs.open(p, "w"))
    local r, err = f:write("x")
    assert.is_nil(r)
    assert.equal("EBADF", err.code)
    r, err = g:read()
    assert.is_nil(r)
    assert.equal("EBADF", err.code)
  end))

  it("many cancelled waits leave no descriptor, block or handle", async(function()
    local before = fd_count()
    for round = 1, 3 do
      local waits = {}
      for i = 1, 20 do
        waits[#waits + 1] = casync.spawn(fs.read_file, mkfifo(round .. "r" .. i))
        waits[#waits + 1] = casync.spawn(fs.write_file, mkfifo(round .. "w" .. i), "x")
      end
      casync.sleep(0.02)
      for _, t in ipairs(waits) do t:cancel() end
      for _, t in ipairs(waits) do assert.is_false(pcall(t.wait, t)) end
    end
    local t0 = casync.now()
    while fs._stats().blocks > 0 and casync.now() - t0 < 5 do casync.sleep(0.01) end
    assert.equal(0, fs._stats().blocks)
    assert.equal(before, fd_count())
  end))

  it("a task whose coroutine is closed from outside while it waits ends", async(function()
    local p = mkfifo("p")
    local co
    local t = casync.spawn(function()
      co = coroutine.running()
      return fs.read_file(p) -- no writer: only the close can end this
    end)
    casync.sleep(0.02)
    assert.is_true(coroutine.close(co))
    co = nil
    local t0 = casync.now()
    while not t:done() and casync.now() - t0 < 5 do
      collectgarbage() -- the request on its stack goes, and says so
      casync.sleep(0.01)
    end
    assert.is_true(t:cancelled())
    while fs._stats().blocks > 0 and casync.now() - t0 < 5 do casync.sleep(0.01) end
    assert.equal(0, fs._stats().blocks)
  end))

  it("copyfile refuses them (and character devices) instead of waiting", async(function()
    local p = mkfifo("p")
    assert(fs.write_file(dir() .. "/f", "data"))
    local r, err = fs.copyfile(p, dir() .. "/copy")
    assert.is_nil(r)
    assert.equal("EINVAL", err.code)
    r, err = fs.copyfile(dir() .. "/f", p)
    assert.equal("EINVAL", err.code)
    r, err = fs.copyfile("/dev/zero", dir() .. "/copy")
    assert.equal("EINVAL", err.code)
    assert.is_true(fs.copyfile(dir() .. "/f", dir() .. "/copy"))
    assert.equal("data", fs.read_file(dir() .. "/copy"))
  end))

  it("devices the loop cannot watch still work (/dev/null, /dev/zero)", async(function()
    assert.equal("", fs.read_file("/dev/null"))
    assert.is_true(fs.write_file("/dev/null", "gone"))
    local z <close> = assert(fs.open("/dev/zero"))
    assert.equal(("\0"):rep(16), z:read(16))
  end))
end)
