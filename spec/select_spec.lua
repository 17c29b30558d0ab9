-- select.c: casync.select over every kind of wait (the channel cases are
-- also in channel_spec.lua).
local casync = require "casync"
local async, errmsg = helper.async, helper.errmsg

describe("casync.select over every kind of wait", function()
  it("{task, 'wait'}: the index and the task's results", async(function()
    local a = casync.spawn(function() casync.sleep(0.05); return "a" end)
    local b = casync.spawn(function() casync.sleep(0.01); return "b", 2 end)
    assert.same({2, "b", 2}, {casync.select({{a, "wait"}, {b, "wait"}})})
    assert.same({1, "a"}, {casync.select({{a, "wait"}})}) -- waits for a
    -- an ended task is ready at once; a failed one raises its error
    local f = casync.spawn(error, "bad")
    casync.sleep(0)
    assert.matches("bad", errmsg(casync.select, {{f, "wait"}}))
  end))

  it("{event, 'wait'}", async(function()
    local ev = casync.event()
    casync.call_later(0.01, function() ev:set() end)
    assert.same({1, true}, {casync.select({{ev, "wait"}})})
    assert.same({1, true}, {casync.select({{ev, "wait"}}, 0)}) -- set: at once
  end))

  it("{sem_or_lock, 'acquire'}: the permit", async(function()
    local sem, lock = casync.semaphore(1), casync.lock()
    local i, p = casync.select({{sem, "acquire"}})
    assert.equal(1, i)
    assert.equal(0, sem:value())
    local other = casync.spawn(function()
      local j, q = casync.select({{sem, "acquire"}, {lock, "acquire"}})
      return j, q
    end)
    local held = lock:acquire()
    casync.sleep(0)
    p:release()       -- goes to the waiting select, not back to the count
    local j, q = other:wait()
    assert.equal(1, j)
    assert.equal(0, sem:value())
    q:release()
    held:release()
    assert.equal(1, sem:value())
    assert.is_false(lock:locked())
  end))

  it("{queue, 'get'} and {queue, 'put', v [, priority]}", async(function()
    local q = casync.queue(1)
    assert.same({1}, {casync.select({{q, "put", "x"}})})
    local pq = casync.queue(0, "priority")
    casync.select({{pq, "put", "low", 9}})
    casync.select({{pq, "put", "high", 1}})
    assert.equal("high", (pq:get()))
    -- a put waits for room, a get for an item
    local t = casync.spawn(function() return casync.select({{q, "put", "y"}}) end)
    casync.sleep(0.01)
    assert.is_false(t:done())
    assert.equal("x", (q:get()))
    assert.equal(1, t:wait())
    assert.same({1, "y", true}, {casync.select({{q, "get"}})})
  end))

  it("mixes kinds; the first served wins, the losers take nothing", async(function()
    local ch, sem, ev, q = casync.channel(), casync.semaphore(1), casync.event(), casync.queue()
    local held = sem:acquire()
    local t = casync.spawn(function()
      return casync.select({{ch, "recv"}, {sem, "acquire"}, {ev, "wait"}, {q, "get"}})
    end)
    casync.sleep(0)
    q:put("item")
    assert.same({4, "item", true}, {t:wait()})
    -- none of the others was left waiting
    assert.is_false(ch:try_send(1))
    held:release()
    assert.equal(1, sem:value())
    ev:set()
  end))

  it("the deadline of the enclosing scope applies", async(function()
    local ch = casync.channel()
    local ok, err = pcall(casync.fail_after, 0.01, casync.select, {{ch, "recv"}})
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_false(ch:try_send(1)) -- nothing left waiting
  end))

  it("checks the cases of every kind", async(function()
    local t = casync.spawn(casync.sleep, 0)
    for _, c in ipairs({
      {{t, "recv"}, '"wait" expected'},
      {{casync.event(), "set"}, '"wait" expected'},
      {{casync.semaphore(1), "wait"}, '"acquire" expected'},
      {{casync.queue(), "recv"}, '"put" or "get" expected'},
      {{casync.queue(), "put"}, "nil cannot be put"},
      {{casync.queue(), "put", 1, 2}, "a priority %(a number%) is only for priority queues"},
      {{casync.queue(0, "priority"), "put", 1, "high"}, "a priority"},
      {{casync.channel(), "send", 1, 1}, "a priority"},
    }) do
      assert.matches("case 1: " .. c[2], errmsg(casync.select, {c[1]}))
    end
    assert.matches("case 1: a task cannot wait for itself",
                   errmsg(casync.select, {{casync.current(), "wait"}}))
    local lock = casync.lock()
    local p <close> = lock:acquire()
    assert.matches("case 1: the lock is already held by this task",
                   errmsg(casync.select, {{lock, "acquire"}}))
    t:wait()
  end))
end)

describe("casync.select under random cancellation storms", function()
  -- Many tasks select over a channel, a queue and a semaphore while a
  -- producer sends, puts and releases, and a storm of cancellations hits
  -- the selecting tasks at random.  Every value, item and permit must end
  -- up accounted for: received once, or still in its container.
  for _, seed in ipairs({1, 2, 3}) do
    it("accounts for every value and permit (seed " .. seed .. ")", async(function()
      math.randomseed(seed)
      local N, sent, received, permits = 600, {}, {}, 0
      local ch, q, sem = casync.channel(), casync.queue(4), casync.semaphore(N // 50)
      local held = {}
      for i = 1, N // 50 do held[i] = sem:acquire() end
      local stop = false
      local function selector()
        while not stop do
          local ok, k, v = pcall(casync.select,
            {{ch, "recv"}, {q, "get"}, {sem, "acquire"}}, 0.05)
          if not ok then
            assert.equal("cancelled", k.kind) -- and nothing was taken
            pcall(casync.sleep, 0)
          elseif k == 1 or k == 2 then
            assert(v ~= nil)
            assert(not received[v], "received twice: " .. tostring(v))
            received[v] = true
          elseif k == 3 then
            local p <close> = v -- given back even if cancelled while held
            permits = permits + 1
            pcall(casync.sleep, 0)
          end
        end
      end
      local selectors = {}
      for i = 1, 12 do selectors[i] = casync.spawn(selector) end
      local producer = casync.spawn(function()
        for n = 1, N do
          local v = "v" .. n
          sent[#sent + 1] = v
          if n % 3 == 0 then q:put(v) else ch:send(v) end
          if n % 50 == 0 then held[n // 50]:release() end
          if n % 7 == 0 then casync.sleep(0) end
        end
      end)
      local cancels = 0
      local storm = casync.spawn(function()
        while not producer:done() do
          local victim = selectors[math.random(#selectors)]
          if victim:cancel() then cancels = cancels + 1 end
          casync.sleep(0)
          for i, s in ipairs(selectors) do -- replace the ones that ended
            if s:done() then selectors[i] = casync.spawn(selector) end
          end
        end
      end)
      producer:wait()
      storm:wait()
      while q:len() > 0 do -- what is still in the queue is not lost either
        local v = q:try_get()
        assert(not received[v])
        received[v] = true
      end
      stop = true
      for _, s in ipairs(selectors) do pcall(s.wait, s) end
      local missing = 0
      for _, v in ipairs(sent) do if not received[v] then missing = missing + 1 end end
      assert.equal(0, missing)
      -- every permit released was taken and given back, or is still free
      assert.equal(N // 50, sem:value())
      assert.is_true(permits > 0)
      assert.is_true(cancels > 50, "only " .. cancels .. " cancellations")
    end, 60))
  end
end)
