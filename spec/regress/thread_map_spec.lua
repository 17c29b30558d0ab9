-- Regressions of thread pools (issue 8, item 5).
--
-- pool:map(fn, list, {chunksize = math.maxinteger}) returned {n = 0}: the
-- number of jobs, (#list + chunksize - 1) // chunksize, overflowed, so no
-- job ran and every item was lost (UBSan aborts on the overflow).  With
-- it, a sweep of the pool's functions and casync.thread with bad input:
-- each gets a Lua error naming the argument, never a crash, a lost item
-- or a job started for nothing.  The pool's __gc called by hand while
-- tasks waited on it freed what they still used.
local casync = require "casync"
local errmsg = helper.errmsg

local maxint, minint = math.maxinteger, math.mininteger

-- err contains the text `expected` (not a pattern); `case` names the
-- input in a failure
local function says(expected, err, case)
  assert.matches(expected, err, 1, true, case and "with " .. case or nil)
end

-- values of every wrong kind, with a name for the assertion messages
local function wrong(extra)
  local v = {
    {"nil", nil}, {"NaN", 0 / 0}, {"0", 0}, {"-1", -1}, {"minint", minint},
    {"1.5", 1.5}, {"-0.5", -0.5}, {"inf", math.huge}, {"-inf", -math.huge},
    {"2^63", 2.0 ^ 63}, {"1e300", 1e300}, {"string", "3"}, {"true", true},
    {"table", {}}, {"function", print}, {"coroutine", coroutine.create(print)},
  }
  for _, e in ipairs(extra or {}) do v[#v + 1] = e end
  return v
end

local function range(n)
  local list = {}
  for i = 1, n do list[i] = i end
  return list
end

describe("regress: thread pools", function()
  describe("map's chunksize", function()
    it("every chunksize up to math.maxinteger maps every item", async(function()
      local pool <close> = casync.thread_pool{size = 2}
      local list = range(25)
      local function f(x) if x % 5 == 0 then return nil end return x * x end
      for _, chunk in ipairs{1, 2, 24, 25, 26, 1000, 2^31 - 1 | 0, 2^31 | 0,
                             2^32 + 1 | 0, 2^53 | 0, 2^62 | 0, maxint // 2,
                             maxint // 2 + 1, maxint - 25, maxint - 24,
                             maxint - 1, maxint} do
        local r = pool:map(f, list, {chunksize = chunk})
        assert.equals(25, r.n, "chunksize " .. chunk)
        for i = 1, 25 do assert.equals(f(i), r[i], "chunksize " .. chunk) end
        assert.same({n = 0}, pool:map(f, {}, {chunksize = chunk}))
        assert.same({4, n = 1}, pool:map(f, {2}, {chunksize = chunk}))
      end
    end))

    it("floats with an integer value count as that integer, as in Lua's libraries",
       async(function()
      local pool <close> = casync.thread_pool{size = 1.0 + 1}
      assert.equals(2, pool:size())
      for _, chunk in ipairs{1.0, 7.0, 2.0 ^ 53, 2.0 ^ 62} do
        local r = pool:map(function(x) return -x end, range(10), {chunksize = chunk})
        assert.equals(10, r.n)
        assert.equals(-10, r[10])
      end
    end))

    it("a chunk larger than Lua's stacks hold is split, nothing lost", async(function()
      local pool <close> = casync.thread_pool{size = 2}
      -- each job's items cross the caller's and a worker's Lua stack
      -- (1,000,000 slots): such a chunk used to fail with a stack overflow
      local n = 1100000
      local r = pool:map(function(x) return x + 1 end, range(n), {chunksize = maxint})
      assert.equals(n, r.n)
      for _, i in ipairs{1, 2, 262144, 262145, 524288, 524289, n - 1, n} do assert.equals(i + 1, r[i]) end
    end, 60))

    it("0, negative, NaN, non-integers, huge floats and other types are bad arguments",
       async(function()
      local pool <close> = casync.thread_pool{size = 1}
      for _, w in ipairs(wrong()) do
        if w[1] ~= "nil" then
          says("bad argument #3 to 'map' (opts.chunksize must be a positive integer)",
               errmsg(function() return pool:map(function() end, {1}, {chunksize = w[2]}) end), w[1])
        end
      end
      assert.equals(0, pool:stats().queued)
    end))

    it("a list that would need more than a million jobs is a bad argument", async(function()
      local pool <close> = casync.thread_pool{size = 1}
      local list = range(1000001)
      local err = errmsg(function() return pool:map(function(x) return x end, list) end)
      says("bad argument #2 to 'map' (too many jobs", err)
      assert.matches("opts.chunksize", err)
      assert.equals(0, pool:stats().queued)
      assert.equals(1000001, pool:map(function(x) return x end, list, {chunksize = 1000}).n)
    end, 60))
  end)

  describe("bad input", function()
    it("map: fn, list, opts, self", async(function()
      local pool <close> = casync.thread_pool{size = 1}
      local f = function(x) return x end
      for _, w in ipairs(wrong()) do
        if type(w[2]) ~= "function" then
          says("bad argument #1 to 'map' (function expected, got " .. type(w[2]),
               errmsg(function() return pool:map(w[2], {}) end), w[1])
        end
        if type(w[2]) ~= "table" then
          says("bad argument #2 to 'map' (table expected, got " .. type(w[2]),
               errmsg(function() return pool:map(f, w[2]) end), w[1])
        end
        if type(w[2]) ~= "table" and w[2] ~= nil then
          says("bad argument #3 to 'map' (table expected, got " .. type(w[2]),
               errmsg(function() return pool:map(f, {}, w[2]) end), w[1])
        end
        says("bad argument #1 to 'map' (casync.ThreadPool expected, got " .. type(w[2]) .. ")",
             errmsg(function() return pool.map(w[2], f, {}) end), w[1])
      end
      says("bad argument #1 to 'map' (cannot copy fn: C function)",
           errmsg(function() return pool:map(print, {1}) end))
      local other = {map = pool.map}
      says("calling 'map' on bad self (casync.ThreadPool expected, got table)",
           errmsg(function() return other:map(f, {}) end))
      assert.equals(0, pool:stats().queued)
    end))

    it("run and casync.thread: fn and self; numbers of every kind copy exactly",
       async(function()
      local pool <close> = casync.thread_pool{size = 1}
      local f = function(...) return ... end
      for _, w in ipairs(wrong()) do
        if type(w[2]) ~= "function" then
          says("bad argument #1 to 'run' (function expected, got " .. type(w[2]),
               errmsg(function() return pool:run(w[2]) end), w[1])
          says("bad argument #1 to 'thread' (function expected, got " .. type(w[2]),
               errmsg(function() return casync.thread(w[2]) end), w[1])
        end
        says("bad argument #1 to 'run' (casync.ThreadPool expected, got " .. type(w[2]) .. ")",
             errmsg(function() return pool.run(w[2], f) end), w[1])
      end
      local nums = {0 / 0, -0.0, math.huge, -math.huge, maxint, minint, 2.0 ^ 63, 1e300, -1, 0}
      local r = table.pack(pool:run(f, table.unpack(nums)):wait())
      local t = table.pack(casync.thread(f, table.unpack(nums)):wait())
      for _, got in ipairs{r, t} do
        assert.equals(#nums, got.n)
        assert.is_true(got[1] ~= got[1])
        assert.equals(1 / -0.0, 1 / got[2])
        for i = 3, #nums do
          assert.equals(nums[i], got[i])
          assert.equals(math.type(nums[i]), math.type(got[i]))
        end
      end
      says("bad argument #2 to 'run' (cannot copy args[1]: coroutine)",
           errmsg(function() return pool:run(f, coroutine.create(f)) end))
      says("bad argument #3 to 'thread' (cannot copy args[2]: C function)",
           errmsg(function() return casync.thread(f, 1, print) end))
      assert.equals(0, pool:stats().queued)
    end))

    it("close, size and stats: self", function()
      local pool = casync.thread_pool{size = 1}
      for _, w in ipairs(wrong()) do
        local expected = " (casync.ThreadPool expected, got " .. type(w[2]) .. ")"
        says("bad argument #1 to 'close'" .. expected,
             errmsg(function() return pool.close(w[2]) end), w[1])
        says("bad argument #1 to 'size'" .. expected,
             errmsg(function() return pool.size(w[2]) end), w[1])
        says("bad argument #1 to 'stats'" .. expected,
             errmsg(function() return pool.stats(w[2]) end), w[1])
      end
      assert.equals(1, pool:size())
      pool:close()
    end)

    it("thread_pool: opts.size", function()
      for _, w in ipairs(wrong{{"1025", 1025}, {"maxint", maxint}}) do
        if w[2] ~= nil then
          says("bad argument #1 to 'thread_pool' (opts.size must be an integer from 1 to 1024)",
               errmsg(function() return casync.thread_pool{size = w[2]} end), w[1])
        end
      end
      says("bad argument #1 to 'thread_pool' (table expected, got number)",
           errmsg(function() return casync.thread_pool(4) end))
    end)
  end)

  describe("a closed or finalized pool", function()
    it("refuses run and map; close, size, stats and tostring still answer", async(function()
      local pool = casync.thread_pool{size = 2}
      pool:close()
      assert.matches("attempt to use a closed thread pool", errmsg(function() return pool:run(print) end))
      assert.matches("attempt to use a closed thread pool",
                     errmsg(function() return pool:map(function() end, {1}, {chunksize = maxint}) end))
      pool:close()
      assert.equals(2, pool:size())
      assert.is_true(pool:stats().closed)
      assert.matches("closed", tostring(pool))
    end))

    it("its __gc called by hand while tasks wait on it: they get their results",
       async(function()
      local pool = casync.thread_pool{size = 1}
      local slow = pool:run(function()
        local t0 = casync_worker.now()
        while casync_worker.now() - t0 < 0.1 do end
        return "slow"
      end)
      local queued = pool:run(function() return "queued" end)
      casync.sleep(0.02)
      getmetatable(pool).__gc(pool)
      assert.equals("slow", slow:wait())
      assert.equals("queued", queued:wait())
      assert.equals("again", pool:run(function() return "again" end):wait())
      -- with nothing in flight it frees the pool: closed from then on
      getmetatable(pool).__gc(pool)
      assert.matches("attempt to use a closed thread pool", errmsg(function() return pool:run(print) end))
      assert.equals(0, pool:size())
      pool:close()
    end))

    it("__gc by hand, then the state closes while tasks wait: the workers are joined",
       function()
      -- child processes inherit LD_PRELOAD: /bin/sh crashes under TSan's
      if (os.getenv("LD_PRELOAD") or ""):find("tsan") then
        return pending("no child processes under ThreadSanitizer")
      end
      local code, out, err = helper.lua([[
        local casync = require "casync"
        local pool = casync.thread_pool{size = 1}
        pool:run(function() while not casync_worker.cancelled() do end end)
        pool:run(function() return 2 end)
        getmetatable(pool).__gc(pool)
        print(pool:size())
      ]])
      assert.equals(0, code, err)
      assert.equals("1\n", out)
      assert.equals("", err)
    end)
  end)

  describe("outside a task", function()
    it("map raises; run and casync.thread start their job at once", function()
      local pool = casync.thread_pool{size = 1}
      says("map: must be called inside a task",
           errmsg(function() return pool:map(function(x) return x end, {1}) end))
      assert.equals(0, pool:stats().queued)
      local a = pool:run(function(x) return x end, maxint)
      local b = casync.thread(function(x) return x end, 0 / 0)
      casync.run(function()
        assert.equals(maxint, a:wait())
        local nan = b:wait()
        assert.is_true(nan ~= nan)
      end)
      pool:close()
    end)
  end)
end)
