-- A pure-Lua capacity-1 channel, for the W3 peers that have no channel of
-- their own: the bare-Lua baseline (bench/peers/lua/w3.lua, on a plain
-- coroutine FIFO) and Lua + luv (bench/peers/luv/w3.lua, on sched.lua).
--
--   local channel = require("chan")(wake)   -- wake(co): make co ready
--   local ch = channel()
--   ch:send(v)   -- waits while the slot is full, then fills it
--   ch:recv()    -- waits while the slot is empty, then empties it
--
-- The shape of asyncio.Queue(maxsize=1): one slot and two FIFO wait lists of
-- coroutines (receivers waiting for a value, senders waiting for room). A
-- send or recv that changes the slot wakes the first waiter of the other
-- side, which re-checks the slot when it runs. A waiting coroutine is not on
-- any ready queue: it yields and is resumed only after wake(co).
--
-- The wait-list pushes and pops are written out inline: as local helper
-- functions they cost ~10 % more per message, and this is the reference the
-- W3 target is measured against, so it should not be needlessly slow.
local running, yield = coroutine.running, coroutine.yield

return function(wake)
  local Chan = {}
  Chan.__index = Chan

  function Chan:send(v)
    if v == nil then error("nil cannot be sent", 2) end
    if self.full then
      local q = self.senders
      repeat -- wait for room
        local t = q.t + 1
        q.t = t
        q[t] = running()
        yield()
      until not self.full
    end
    self.value = v
    self.full = true
    local q = self.receivers
    local h = q.h
    if h <= q.t then -- wake the first waiting receiver
      local co = q[h]
      q[h] = nil
      q.h = h + 1
      wake(co)
    end
  end

  function Chan:recv()
    if not self.full then
      local q = self.receivers
      repeat -- wait for a value
        local t = q.t + 1
        q.t = t
        q[t] = running()
        yield()
      until self.full
    end
    local v = self.value
    self.value = nil
    self.full = false
    local q = self.senders
    local h = q.h
    if h <= q.t then -- wake the first waiting sender
      local co = q[h]
      q[h] = nil
      q.h = h + 1
      wake(co)
    end
    return v
  end

  return function()
    return setmetatable({ full = false, value = nil,
                          senders = { h = 1, t = 0 }, receivers = { h = 1, t = 0 } }, Chan)
  end
end
