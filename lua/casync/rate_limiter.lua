-- casync.rate_limiter(n [, per]): at most n acquisitions in any window of
-- `per` seconds (default 1), a sliding window rather than a token bucket,
-- so the measured rate never goes over the limit, not even in a burst at
-- the start.  Waiters are served first-come first-served (a casync.lock
-- orders them); a cancelled waiter uses no slot.
--
--   local limiter = casync.rate_limiter(10, 1)   -- 10 per second
--   limiter:acquire()                           -- waits for a slot
--   if limiter:try_acquire() then ... end       -- or does not wait
--   local get = limiter:wrap(fetch)    -- get(...): acquire, then fetch(...)
local core = require "casync.core"
local argcheck = require "casync.argcheck"

local now, sleep, new_lock = core.now, core.sleep, core.lock

-- raise(msg): error(msg) positioned at the first caller outside this file
-- (as Lua's own "bad argument" errors point at the caller)
local raise = argcheck.raiser(debug.getinfo(1, "S").source)

local Limiter = {}
Limiter.__index = Limiter
Limiter.__name = "casync.RateLimiter"

local function check_self(self, fname)
  if getmetatable(self) ~= Limiter then
    raise(("bad argument #1 to '%s' (casync.RateLimiter expected, got %s)")
          :format(fname, type(self)))
  end
end

-- The time the next slot frees: the oldest of the last n acquisitions plus
-- per, or nil while fewer than n were made.
local function next_free(self)
  local oldest = self._times[self._i]
  return oldest and oldest + self._per
end

local function take(self, t)
  self._times[self._i] = t
  self._i = self._i % self._n + 1
end

-- limiter:acquire(): suspends until one more acquisition stays within the
-- limit, and counts it.  Raises outside a task, like every waiting function.
function Limiter:acquire()
  check_self(self, "acquire")
  local p <close> = self._lock:acquire()
  local at = next_free(self)
  if at then
    local wait = at - now()
    if wait > 0 then sleep(wait) end
  end
  take(self, now())
end

-- limiter:try_acquire() -> boolean: counts an acquisition if one is allowed
-- now and nobody waits; works anywhere.
function Limiter:try_acquire()
  check_self(self, "try_acquire")
  if self._lock:locked() then return false end
  local at, t = next_free(self), now()
  if at and at > t then return false end
  take(self, t)
  return true
end

-- limiter:wrap(fn) -> function(...) that acquires, then calls fn(...).
function Limiter:wrap(fn)
  check_self(self, "wrap")
  if not argcheck.is_callable(fn) then
    raise(("bad argument #1 to 'wrap' (function expected, got %s)")
          :format(type(fn)))
  end
  return function(...)
    self:acquire()
    return fn(...)
  end
end

function Limiter:__tostring()
  return ("casync.RateLimiter (%d per %g s)"):format(self._n, self._per)
end

return function(n, per)
  if math.type(n) ~= "integer" then
    local whole = type(n) == "number" and n == math.floor(n)
    if whole and math.tointeger(n) then
      n = math.tointeger(n)
    else
      raise(("bad argument #1 to 'rate_limiter' (%s)"):format(
        whole and (n > 0 and "n is too large" or "n must be positive")
        or type(n) == "number" and "n must be a whole number"
        or "integer expected, got " .. (n == nil and "no value" or type(n))))
    end
  end
  if n < 1 then
    raise("bad argument #1 to 'rate_limiter' (n must be positive)")
  end
  if per == nil then per = 1 end
  if type(per) ~= "number" then
    raise(("bad argument #2 to 'rate_limiter' (number expected, got %s)")
          :format(type(per)))
  end
  if not (per > 0 and per < math.huge) then
    raise("bad argument #2 to 'rate_limiter' (per must be a positive number " ..
          "of seconds)")
  end
  return setmetatable({_n = n, _per = per, _times = {}, _i = 1,
                       _lock = new_lock()}, Limiter)
end
