-- Spec helper: busted 2 has no async support, so each test body runs as the
-- main task of casync.run with a timeout, and after it the scheduler must be
-- clean: no live task, nothing ready, no timer armed.
local build = os.getenv("CASYNC_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath

local casync = require "casync"

local helper = {}

-- async(fn [, timeout]) -> a function for `it` that runs fn in the loop.
function helper.async(fn, timeout)
  return function()
    local results = table.pack(casync.run(function()
      return casync.wait_for(fn, timeout or 10)
    end))
    local s = casync._stats()
    assert(s.live == 0, "tasks still alive after the test: " .. s.live)
    assert(s.ready == 0, "tasks still ready after the test: " .. s.ready)
    assert(s.timers == 0, "timers still armed after the test: " .. s.timers)
    return table.unpack(results, 1, results.n)
  end
end

-- counter() -> a callable that counts its calls; c.n, c.args[i]
function helper.counter()
  local c = {n = 0, args = {}}
  return setmetatable(c, {__call = function(self, ...)
    self.n = self.n + 1
    self.args[self.n] = table.pack(...)
  end})
end

-- elapsed(fn) -> seconds fn took, and its results
function helper.elapsed(fn, ...)
  local t0 = casync.now()
  local r = table.pack(fn(...))
  return casync.now() - t0, table.unpack(r, 1, r.n)
end

-- errmsg(fn, ...) -> the error fn raised (fails if it did not raise)
function helper.errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

_G.async = helper.async
_G.helper = helper
return helper
