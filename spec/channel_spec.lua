-- channel.c: casync.channel (send, recv, try_send, try_recv, close, iter,
-- len, cap, closed, #) and casync.select; FIFO order of waiters, close
-- semantics, select fairness and timeouts, and cancel-safety under random
-- interleavings (every value sent is received exactly once).
local casync = require "casync"

local errmsg = helper.errmsg

-- A Lua pattern for "bad argument #n to 'fname' (msg)"; the function name
-- may come qualified ('casync.core.channel').
local function badarg(n, fname, msg)
  return ("bad argument #%d to '[%%w%%._]*%s' %%(%s%%)"):format(
    n, fname, msg:gsub("%p", "%%%0"))
end

-- Spawns fn and lets it run up to its first suspension.
local function start(fn, ...)
  local t = casync.spawn(fn, ...)
  casync.sleep(0)
  return t
end

local function cancel_and_wait(t)
  t:cancel()
  local ok, err = pcall(t.wait, t)
  return ok, err
end

describe("casync.channel", function()
  it("is unbuffered by default, with the given capacity otherwise", function()
    local ch = casync.channel()
    assert.equal(0, ch:cap())
    assert.equal(0, ch:len())
    assert.equal(0, #ch)
    assert.is_false(ch:closed())
    assert.equal(0, casync.channel(nil):cap())
    assert.equal(0, casync.channel(0):cap())
    assert.equal(5, casync.channel(5):cap())
    assert.equal(3, casync.channel(3.0):cap())
    assert.equal(1000000, casync.channel(1e6):cap())
    assert.equal(0x7fffffff, casync.channel(0x7fffffff):cap())
    assert.matches("^casync.Channel", tostring(ch))
  end)

  it("rejects capacities that are negative, fractional, huge or not numbers",
     function()
    local cases = {
      {-1, "capacity must not be negative"},
      {math.mininteger, "capacity must not be negative"},
      {1.5, "capacity must be a whole number"},
      {-0.5, "capacity must be a whole number"},
      {0/0, "capacity must be a whole number"},
      {2^31, "capacity is too large"},
      {math.maxinteger, "capacity is too large"},
      {2^63, "capacity is too large"},
      {math.huge, "capacity is too large"},
      {"x", "integer expected, got string"},
      {{}, "integer expected, got table"},
      {true, "integer expected, got boolean"},
    }
    for _, c in ipairs(cases) do
      assert.matches(badarg(1, "channel", c[2]), errmsg(casync.channel, c[1]))
    end
  end)

  it("checks self in every method", function()
    local ch = casync.channel()
    for _, m in ipairs({"send", "recv", "try_send", "try_recv", "close", "iter",
                        "len", "cap", "closed"}) do
      local call = assert(load("local ch = ... return ch." .. m .. "(42, 1)"))
      assert.matches(badarg(1, m, "casync.Channel expected, got number"),
                     errmsg(call, ch))
    end
    assert.matches("casync.Channel expected", errmsg(ch.send, casync.lock(), 1))
  end)

  it("refuses to send nil, with a clear error", async(function()
    local ch = casync.channel(1)
    assert.matches(badarg(1, "send", "value expected (nil cannot be sent)"),
                   errmsg(function() ch:send(nil) end))
    assert.matches(badarg(1, "send", "value expected (nil cannot be sent)"),
                   errmsg(function() ch:send() end))
    assert.matches(badarg(1, "try_send", "value expected (nil cannot be sent)"),
                   errmsg(function() ch:try_send(nil) end))
    assert.equal(0, ch:len())
    -- false is a value like any other
    ch:send(false)
    local v, ok = ch:recv()
    assert.is_false(v)
    assert.is_true(ok)
  end))

  describe("unbuffered", function()
    it("is a rendezvous: send waits until a receiver takes the value",
       async(function()
      local ch = casync.channel()
      local log = {}
      local sender = start(function()
        log[#log + 1] = "send"
        ch:send("x")
        log[#log + 1] = "sent"
      end)
      assert.same({"send"}, log)
      assert.equal(0, #ch)
      casync.sleep(0.01)
      assert.same({"send"}, log)
      local v, ok = ch:recv()
      assert.equal("x", v)
      assert.is_true(ok)
      sender:wait()
      assert.same({"send", "sent"}, log)
    end))

    it("recv waits until a sender comes", async(function()
      local ch = casync.channel()
      local got
      local r = start(function() got = table.pack(ch:recv()) end)
      assert.is_nil(got)
      ch:send(42) -- a receiver waits: does not suspend
      assert.is_nil(got)
      r:wait()
      assert.same({42, true, n = 2}, got)
    end))

    it("send to a waiting receiver does not suspend the sender", async(function()
      local ch = casync.channel()
      local order = {}
      local r = start(function() local v = ch:recv(); order[#order + 1] = v end)
      ch:send("a")
      order[#order + 1] = "after send"
      r:wait()
      assert.same({"after send", "a"}, order)
    end))

    it("serves waiting receivers first-come first-served", async(function()
      local ch = casync.channel()
      local got = {}
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = casync.spawn(function() got[i] = ch:recv() end)
      end
      casync.sleep(0)
      for i = 1, 5 do ch:send(i * 10) end
      for i = 1, 5 do tasks[i]:wait() end
      assert.same({10, 20, 30, 40, 50}, got)
    end))

    it("serves waiting senders first-come first-served", async(function()
      local ch = casync.channel()
      local tasks = {}
      for i = 1, 5 do tasks[i] = casync.spawn(function() ch:send(i) end) end
      casync.sleep(0)
      local got = {}
      for i = 1, 5 do got[i] = ch:recv() end
      assert.same({1, 2, 3, 4, 5}, got)
      for i = 1, 5 do tasks[i]:wait() end
    end))
  end)

  describe("buffered", function()
    it("send does not wait while there is room", async(function()
      local ch = casync.channel(3)
      ch:send(1)
      ch:send(2)
      ch:send(3)
      assert.equal(3, ch:len())
      assert.equal(3, #ch)
      assert.equal(3, ch:cap())
      local blocked = start(function() ch:send(4) end)
      assert.is_false(blocked:done())
      assert.equal(3, #ch)
      assert.equal(1, ch:recv()) -- the waiting sender moves into the slot
      assert.equal(3, #ch)
      blocked:wait()
      for i = 2, 4 do assert.equal(i, ch:recv()) end
      assert.equal(0, #ch)
    end))

    it("keeps values in FIFO order across many wraps of its ring",
       async(function()
      local ch = casync.channel(7)
      local producer = casync.spawn(function()
        for i = 1, 1000 do ch:send(i) end
        ch:close()
      end)
      local n = 0
      for v in ch:iter() do
        n = n + 1
        assert.equal(n, v)
        if n % 13 == 0 then casync.sleep(0) end
      end
      assert.equal(1000, n)
      producer:wait()
    end))

    it("keeps the order of waiting senders behind a full buffer",
       async(function()
      local ch = casync.channel(2)
      ch:send(1)
      ch:send(2)
      local tasks = {}
      for i = 3, 6 do tasks[#tasks + 1] = casync.spawn(function() ch:send(i) end) end
      casync.sleep(0)
      local got = {}
      for i = 1, 6 do got[i] = ch:recv() end
      assert.same({1, 2, 3, 4, 5, 6}, got)
      for _, t in ipairs(tasks) do t:wait() end
    end))

    it("hands a value straight to a waiting receiver", async(function()
      local ch = casync.channel(2)
      local got
      local r = start(function() got = ch:recv() end)
      ch:send("v")
      assert.equal(0, #ch)
      r:wait()
      assert.equal("v", got)
    end))

    it("serves waiting receivers first-come first-served", async(function()
      local ch = casync.channel(4)
      local got, tasks = {}, {}
      for i = 1, 4 do tasks[i] = casync.spawn(function() got[i] = ch:recv() end) end
      casync.sleep(0)
      for i = 1, 4 do assert.is_true(ch:try_send(i)) end
      for i = 1, 4 do tasks[i]:wait() end
      assert.same({1, 2, 3, 4}, got)
    end))

    it("lets a huge capacity be used without allocating it up front",
       async(function()
      local ch = casync.channel(0x7fffffff)
      for i = 1, 100 do ch:send(i) end
      assert.equal(100, #ch)
      for i = 1, 100 do assert.equal(i, ch:recv()) end
    end))
  end)

  describe("try_send and try_recv", function()
    it("try_send succeeds only with a waiting receiver or room", async(function()
      local ch = casync.channel()
      assert.is_false(ch:try_send(1))
      local got
      local r = start(function() got = ch:recv() end)
      assert.is_true(ch:try_send(2))
      r:wait()
      assert.equal(2, got)
      local b = casync.channel(1)
      assert.is_true(b:try_send("a"))
      assert.is_false(b:try_send("b"))
      assert.equal("a", b:recv())
    end))

    it("try_recv returns a value, or nil and why not", async(function()
      local ch = casync.channel(2)
      local v, why = ch:try_recv()
      assert.is_nil(v)
      assert.equal("empty", why)
      ch:send(1)
      assert.same({1}, {ch:try_recv()})
      -- a waiting sender on an unbuffered channel
      local u = casync.channel()
      local s = start(function() u:send("x") end)
      assert.same({"x"}, {u:try_recv()})
      s:wait()
      ch:send(5)
      ch:close()
      u:close()
      assert.same({5}, {ch:try_recv()})
      assert.same({nil, "closed"}, {ch:try_recv()})
      assert.same({nil, "closed"}, {u:try_recv()})
    end))

    it("work outside any task", function()
      local ch = casync.channel(1)
      assert.is_true(ch:try_send(1))
      assert.is_false(ch:try_send(2))
      assert.equal(1, (ch:try_recv()))
      assert.same({nil, "empty"}, {ch:try_recv()})
      ch:close()
      assert.same({nil, "closed"}, {ch:try_recv()})
      local ok, err = pcall(ch.try_send, ch, 1)
      assert.is_false(ok)
      assert.equal("closed", err.kind)
    end)
  end)

  describe("close", function()
    it("lets receivers drain the buffer, then gives nil, false", async(function()
      local ch = casync.channel(3)
      ch:send(1)
      ch:send(2)
      ch:close()
      assert.is_true(ch:closed())
      assert.equal(2, #ch)
      assert.same({1, true}, {ch:recv()})
      assert.same({2, true}, {ch:recv()})
      assert.same({nil, false}, {ch:recv()})
      assert.same({nil, false}, {ch:recv()})
    end))

    it("wakes every waiting receiver with nil, false", async(function()
      local ch = casync.channel()
      local got, tasks = {}, {}
      for i = 1, 3 do
        tasks[i] = casync.spawn(function() got[i] = table.pack(ch:recv()) end)
      end
      casync.sleep(0)
      ch:close()
      for i = 1, 3 do
        tasks[i]:wait()
        assert.same({nil, false, n = 2}, got[i])
      end
    end))

    it("fails every waiting sender with an error of kind closed",
       async(function()
      for _, cap in ipairs({0, 1}) do
        local ch = casync.channel(cap)
        if cap > 0 then ch:send("kept") end
        local tasks = {}
        for i = 1, 3 do tasks[i] = casync.spawn(function() ch:send(i) end) end
        casync.sleep(0)
        ch:close()
        for i = 1, 3 do
          local ok, err = pcall(tasks[i].wait, tasks[i])
          assert.is_false(ok)
          assert.equal("closed", err.kind)
          assert.matches("send: channel is closed", tostring(err))
        end
        -- what was buffered before the close is still delivered
        if cap > 0 then assert.equal("kept", ch:recv()) end
        assert.same({nil, false}, {ch:recv()})
      end
    end))

    it("makes send and try_send raise an error of kind closed", async(function()
      local ch = casync.channel(5)
      ch:close()
      local ok, err = pcall(ch.send, ch, 1)
      assert.is_false(ok)
      assert.equal("closed", err.kind)
      ok, err = pcall(ch.try_send, ch, 1)
      assert.is_false(ok)
      assert.equal("closed", err.kind)
      assert.equal(0, #ch)
    end))

    it("is harmless a second time", async(function()
      local ch = casync.channel(1)
      ch:send(1)
      ch:close()
      ch:close()
      assert.is_true(ch:closed())
      assert.equal(1, ch:recv())
      ch:close()
      assert.same({nil, false}, {ch:recv()})
    end))

    it("works outside any task", function()
      local ch = casync.channel()
      ch:close()
      ch:close()
      assert.is_true(ch:closed())
      assert.matches("closed", tostring(ch))
    end)
  end)

  describe("iter", function()
    it("yields every value until the channel is closed and drained",
       async(function()
      local ch = casync.channel()
      casync.spawn(function()
        for i = 1, 5 do
          ch:send(i)
          casync.sleep(0.001)
        end
        ch:close()
      end)
      local got = {}
      for v in ch:iter() do got[#got + 1] = v end
      assert.same({1, 2, 3, 4, 5}, got)
    end))

    it("can be left early and resumed", async(function()
      local ch = casync.channel(10)
      for i = 1, 6 do ch:send(i) end
      ch:close()
      local got = {}
      for v in ch:iter() do
        got[#got + 1] = v
        if v == 3 then break end
      end
      for v in ch:iter() do got[#got + 1] = v end
      assert.same({1, 2, 3, 4, 5, 6}, got)
    end))

    it("ends at once on a closed empty channel", async(function()
      local ch = casync.channel()
      ch:close()
      for _ in ch:iter() do error("no value expected") end
    end))
  end)

  describe("outside a task", function()
    it("send and recv raise even when they would not wait", function()
      local ch = casync.channel(1)
      assert.matches("send: must be called inside a task", errmsg(ch.send, ch, 1))
      assert.equal(0, #ch)
      ch:try_send(1)
      assert.matches("recv: must be called inside a task", errmsg(ch.recv, ch))
      assert.equal(1, #ch)
      ch:close()
      assert.matches("recv: must be called inside a task", errmsg(ch.recv, ch))
      assert.matches("send: must be called inside a task", errmsg(ch.send, ch, 1))
      assert.matches("recv: must be called inside a task",
                     errmsg(function() for _ in ch:iter() do end end))
    end)

    it("send and recv refuse a plain coroutine inside a task", async(function()
      local ch = casync.channel(1)
      local co = coroutine.create(function() ch:send(1) end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("send: cannot suspend a coroutine that casync does not manage",
                     err)
      co = coroutine.create(function() return ch:recv() end)
      ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("recv: cannot suspend a coroutine", err)
      assert.equal(0, #ch)
    end))

    it("send and recv refuse to suspend across a C call boundary",
       async(function()
      local ch = casync.channel()
      local err = errmsg(table.sort, {3, 2, 1}, function(a, b)
        ch:recv()
        return a < b
      end)
      assert.matches("recv: cannot suspend across a C call boundary", err)
      err = errmsg(table.sort, {3, 2, 1}, function(a, b)
        ch:send(1)
        return a < b
      end)
      assert.matches("send: cannot suspend across a C call boundary", err)
      -- nothing was left queued: a receiver now waits instead of a sender
      assert.is_false(ch:try_send(1))
    end))
  end)
end)

describe("casync.select", function()
  it("returns the index, the value and true of a ready recv case",
     async(function()
    local a, b = casync.channel(1), casync.channel(1)
    b:send("bee")
    assert.same({2, "bee", true}, {casync.select({{a, "recv"}, {b, "recv"}})})
  end))

  it("returns the index of a ready send case", async(function()
    local a, b = casync.channel(), casync.channel(1)
    local r = {casync.select({{a, "send", 1}, {b, "send", 2}})}
    assert.same({2}, r)
    assert.equal(2, b:recv())
  end))

  it("gives nil, false for a closed and drained channel", async(function()
    local a, b = casync.channel(), casync.channel()
    b:close()
    local r = table.pack(casync.select({{a, "recv"}, {b, "recv"}}))
    assert.same({2, nil, false, n = 3}, r)
  end))

  it("waits for the first case to become ready and withdraws the others",
     async(function()
    local a, b, c = casync.channel(), casync.channel(), casync.channel(1)
    casync.spawn(function() casync.sleep(0.02); b:send("late") end)
    local r = {casync.select({{a, "recv"}, {b, "recv"}, {c, "send", "s"}}, nil)}
    -- c has room: its send case was ready at once
    assert.same({3}, r)
    assert.equal("s", c:recv())
    r = {casync.select({{a, "recv"}, {b, "recv"}})}
    assert.same({2, "late", true}, r)
    -- no case of that select is still waiting on a
    assert.is_false(a:try_send(1))
    casync.spawn(function() a:send("a2") end)
    r = {casync.select({{a, "recv"}, {b, "recv"}})}
    assert.same({1, "a2", true}, r)
  end))

  it("wakes on a close while it waits", async(function()
    local a, b = casync.channel(), casync.channel()
    casync.spawn(function() casync.sleep(0.01); a:close() end)
    local r = table.pack(casync.select({{a, "recv"}, {b, "recv"}}))
    assert.same({1, nil, false, n = 3}, r)
  end))

  it("a waiting send case takes a receiver that comes later", async(function()
    local a, b = casync.channel(), casync.channel()
    local got
    casync.spawn(function() casync.sleep(0.01); got = b:recv() end)
    assert.same({2}, {casync.select({{a, "send", "x"}, {b, "send", "y"}})})
    casync.sleep(0)
    assert.equal("y", got)
    assert.is_false(a:try_send("z")) -- nobody waits on a
  end))

  it("raises an error of kind closed for a send case on a closed channel",
     async(function()
    local a, b = casync.channel(), casync.channel()
    b:close()
    local ok, err = pcall(casync.select, {{a, "recv"}, {b, "send", 1}})
    assert.is_false(ok)
    assert.equal("closed", err.kind)
    -- and when it closes while the select waits
    local c = casync.channel()
    casync.spawn(function() casync.sleep(0.01); c:close() end)
    ok, err = pcall(casync.select, {{a, "recv"}, {c, "send", 1}})
    assert.is_false(ok)
    assert.equal("closed", err.kind)
    assert.is_false(a:try_send(1)) -- its recv case was withdrawn
  end))

  it("matches a select in another task (both sides waiting)", async(function()
    local a, b = casync.channel(), casync.channel()
    local got
    local r = start(function()
      got = table.pack(casync.select({{a, "recv"}, {b, "recv"}}))
    end)
    local i = casync.select({{b, "send", "one"}, {a, "send", "two"}})
    r:wait()
    -- the value went to the case of the same channel
    if i == 1 then
      assert.same({2, "one", true, n = 3}, got)
    else
      assert.equal(2, i)
      assert.same({1, "two", true, n = 3}, got)
    end
    assert.is_false(a:try_send(1))
    assert.is_false(b:try_send(1))
  end))

  it("can wait to send and to receive on the same channel", async(function()
    local ch = casync.channel()
    local other = start(function() return ch:recv() end)
    local r = {casync.select({{ch, "recv"}, {ch, "send", 7}})}
    assert.same({2}, r)
    assert.equal(7, other:wait())
  end))

  it("handles more than 64 cases", async(function()
    local cases, chans = {}, {}
    for i = 1, 100 do
      chans[i] = casync.channel(1)
      cases[i] = {chans[i], "recv"}
    end
    chans[77]:send("x")
    assert.same({77, "x", true}, {casync.select(cases)})
    casync.spawn(function() casync.sleep(0.005); chans[100]:send("y") end)
    assert.same({100, "y", true}, {casync.select(cases)})
    for i = 1, 100 do assert.is_true(chans[i]:try_send(i)) end
  end))

  describe("timeout", function()
    it("returns nil after the timeout with nothing ready", async(function()
      local a, b = casync.channel(), casync.channel()
      local dt, r = helper.elapsed(function()
        return table.pack(casync.select({{a, "recv"}, {b, "send", 1}}, 0.05))
      end)
      assert.equal(1, r.n)
      assert.is_nil(r[1])
      assert.is_true(dt >= 0.05 - 1e-6, "returned after " .. dt)
      assert.is_true(dt < 0.5)
      -- its cases were withdrawn
      assert.is_false(b:try_send(1))
      assert.same({nil, "empty"}, {a:try_recv()})
    end))

    it("does not fire once a case has fired", async(function()
      local ch = casync.channel()
      casync.spawn(function() casync.sleep(0.01); ch:send(1) end)
      assert.same({1, 1, true}, {casync.select({{ch, "recv"}}, 0.05)})
      casync.sleep(0.08) -- the helper checks no timer is left
    end))

    it("0 polls without suspending", async(function()
      local a, b = casync.channel(), casync.channel(1)
      local ran = false
      casync.spawn(function() ran = true end)
      assert.same({nil, n = 1}, table.pack(casync.select({{a, "recv"}}, 0)))
      assert.is_false(ran, "a poll must not let other tasks run")
      b:send(3)
      assert.same({2, 3, true}, {casync.select({{a, "recv"}, {b, "recv"}}, 0)})
      assert.same({2}, {casync.select({{a, "send", 1}, {b, "send", 1}}, 0)})
      -- a negative timeout is a poll too
      assert.same({nil, n = 1}, table.pack(casync.select({{b, "send", 2}}, -1)))
      casync.sleep(0)
      assert.is_true(ran)
    end))
  end)

  it("is fair: no ready case starves", async(function()
    -- two closed channels are always ready to receive
    local a, b = casync.channel(), casync.channel()
    a:close()
    b:close()
    local counts, N = {0, 0}, 4000
    for _ = 1, N do
      local i = casync.select({{a, "recv"}, {b, "recv"}})
      counts[i] = counts[i] + 1
    end
    for i = 1, 2 do
      assert.is_true(counts[i] > N * 0.4, ("case %d chosen %d of %d times")
        :format(i, counts[i], N))
    end
    -- two buffered channels with room are always ready to send, and three
    -- ready cases are each chosen about a third of the time
    local c = casync.channel(N)
    counts = {0, 0, 0}
    local chans = {casync.channel(N), casync.channel(N), c}
    local cases = {{chans[1], "send", 1}, {chans[2], "send", 2}, {c, "send", 3}}
    for _ = 1, N do
      local i = casync.select(cases)
      counts[i] = counts[i] + 1
    end
    for i = 1, 3 do
      assert.is_true(counts[i] > N * 0.25, ("case %d chosen %d of %d times")
        :format(i, counts[i], N))
      assert.equal(counts[i], #chans[i])
    end
    -- a mix of ready recv and send cases
    local d = casync.channel(1)
    counts = {0, 0}
    for _ = 1, N do
      d:try_send(1)
      local i = casync.select({{d, "recv"}, {c, "send", 0}})
      counts[i] = counts[i] + 1
      if i == 2 then c:try_recv() end
    end
    assert.is_true(counts[1] > N * 0.4 and counts[2] > N * 0.4,
      ("chosen %d and %d times"):format(counts[1], counts[2]))
  end))

  it("is fair among waiting senders in a loop of selects", async(function()
    -- two producers always waiting to send: a consumer selecting over both
    -- receives from each about half of the time
    local a, b = casync.channel(), casync.channel()
    local stop = false
    local function producer(ch, v)
      while not stop do ch:send(v) end
    end
    local pa, pb = casync.spawn(producer, a, "a"), casync.spawn(producer, b, "b")
    casync.sleep(0)
    local counts = {a = 0, b = 0}
    for _ = 1, 2000 do
      local _, v = casync.select({{a, "recv"}, {b, "recv"}})
      counts[v] = counts[v] + 1
    end
    stop = true
    a:close()
    b:close()
    pcall(pa.wait, pa)
    pcall(pb.wait, pb)
    assert.is_true(counts.a > 800 and counts.b > 800,
      ("a %d, b %d"):format(counts.a, counts.b))
  end))

  describe("bad input", function()
    it("rejects malformed cases, naming select", async(function()
      local ch = casync.channel()
      local cases = {
        {{nil}, 1, "table expected, got nil"},
        {{"x"}, 1, "table expected, got string"},
        {{{}}, 1, "no cases"},
        {{{1}}, 1, "case 1 is not a table"},
        {{{{ch, "recv"}, "x"}}, 1, "case 2 is not a table"},
        {{{{}}}, 1, "case 1: channel, queue, task, event, semaphore or lock expected"},
        {{{{"ch", "recv"}}}, 1, "case 1: channel, queue, task, event, semaphore or lock expected"},
        {{{{casync.lock(), "recv"}}}, 1, 'case 1: "acquire" expected'},
        {{{{ch}}}, 1, 'case 1: "send" or "recv" expected'},
        {{{{ch, "get"}}}, 1, 'case 1: "send" or "recv" expected'},
        {{{{ch, "recv"}, {ch, "send"}}}, 1, "case 2: nil cannot be sent"},
        {{{{ch, "recv"}}, "soon"}, 2, "number expected, got string"},
        {{{{ch, "recv"}}, 0/0}, 2, "number expected, got NaN"},
        {{{{ch, "recv"}}, {}}, 2, "number expected, got table"},
      }
      for _, c in ipairs(cases) do
        local args = c[1]
        local err = errmsg(casync.select, args[1], args[2])
        assert.matches(badarg(c[2], "select", c[3]), err)
      end
      -- nothing was left waiting on ch
      assert.is_false(ch:try_send(1))
    end))

    it("raises outside a task, even as a poll", function()
      local ch = casync.channel(1)
      ch:try_send(1)
      assert.matches("select: must be called inside a task",
                     errmsg(casync.select, {{ch, "recv"}}, 0))
      assert.equal(1, #ch)
      assert.matches("select: must be called inside a task",
                     errmsg(casync.select, {{ch, "recv"}}))
    end)

    it("refuses a plain coroutine inside a task", async(function()
      local ch = casync.channel()
      local co = coroutine.create(function() return casync.select({{ch, "recv"}}) end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("select: cannot suspend a coroutine", err)
      assert.is_false(ch:try_send(1))
    end))
  end)
end)

describe("cancel-safety", function()
  it("a receiver cancelled while it waits takes nothing", async(function()
    for _, cap in ipairs({0, 2}) do
      local ch = casync.channel(cap)
      local r1 = start(function() return ch:recv() end)
      local r2 = start(function() return ch:recv() end)
      local ok, err = cancel_and_wait(r1)
      assert.is_false(ok)
      assert.equal("cancelled", err.kind)
      assert.is_true(r1:cancelled())
      ch:send("v")
      assert.equal("v", r2:wait())
      assert.equal(0, #ch)
      assert.same({nil, "empty"}, {ch:try_recv()})
    end
  end))

  it("a sender cancelled while it waits delivers nothing", async(function()
    for _, cap in ipairs({0, 1}) do
      local ch = casync.channel(cap)
      if cap > 0 then ch:send("first") end
      local s1 = start(function() ch:send("lost") end)
      local s2 = start(function() ch:send("second") end)
      cancel_and_wait(s1)
      assert.is_true(s1:cancelled())
      if cap > 0 then assert.equal("first", ch:recv()) end
      assert.equal("second", ch:recv())
      s2:wait()
      assert.same({nil, "empty"}, {ch:try_recv()})
    end
  end))

  it("a select cancelled while it waits leaves every channel as it was",
     async(function()
    local a, b = casync.channel(), casync.channel(1)
    b:send("full")
    local s = start(function()
      return casync.select({{a, "recv"}, {b, "send", "x"}, {a, "send", "y"}}, 5)
    end)
    local base = casync._stats().timers
    cancel_and_wait(s)
    assert.is_true(s:cancelled())
    assert.equal(base - 1, casync._stats().timers) -- its timeout was removed
    assert.is_false(a:try_send(1))
    assert.same({nil, "empty"}, {a:try_recv()})
    assert.equal("full", b:recv())
    assert.same({nil, "empty"}, {b:try_recv()})
  end))

  it("a receiver handed a value keeps it; the cancellation comes at its " ..
     "next suspension", async(function()
    local ch = casync.channel()
    local got, after
    local r = start(function()
      got = ch:recv()
      after = "running"
      casync.sleep(0)
      after = "not reached"
    end)
    ch:send("kept")  -- r is now ready, holding the value
    r:cancel()
    local ok, err = pcall(r.wait, r)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
    assert.equal("kept", got)
    assert.equal("running", after)
  end))

  it("a sender whose value was taken returns normally before the " ..
     "cancellation", async(function()
    local ch = casync.channel()
    local sent = false
    local s = start(function()
      ch:send("v")
      sent = true
      casync.sleep(0)
    end)
    assert.equal("v", ch:recv())
    s:cancel()
    cancel_and_wait(s)
    assert.is_true(sent)
    assert.is_true(s:cancelled())
  end))

  it("a select that fired keeps its case; the cancellation comes later",
     async(function()
    local a, b = casync.channel(), casync.channel()
    local got
    local s = start(function()
      got = table.pack(casync.select({{a, "recv"}, {b, "recv"}}))
      casync.sleep(0)
    end)
    b:send("bv")
    s:cancel()
    cancel_and_wait(s)
    assert.same({2, "bv", true, n = 3}, got)
  end))

  it("wait_for around recv: a timeout takes nothing, a value in time is " ..
     "returned", async(function()
    local ch = casync.channel()
    local ok, err = pcall(casync.wait_for, function() return ch:recv() end, 0.01)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_false(ch:try_send(1))
    casync.spawn(function() ch:send("in time") end)
    assert.equal("in time", casync.wait_for(function() return ch:recv() end, 1))
  end))

  -- Random interleavings: producers send unique ids, consumers receive them,
  -- a chaos task cancels random workers (task:cancel) and workers wrap some
  -- operations in wait_for with tiny timeouts.  A value counts as sent when
  -- send (or a select send case) returned, and as received when recv (or a
  -- select recv case) returned it.  In the end every value sent was received
  -- exactly once and nothing else was.
  local function stress(seed, opts)
    math.randomseed(seed)
    local chans = {}
    for i = 1, opts.nchans do chans[i] = casync.channel(opts.cap) end
    local sent, received, dup = {}, {}, {}
    local nsent, nrecv = 0, 0
    local next_id = 0
    local producing = true
    local workers = {}

    local function record_sent(v)
      assert(not sent[v], "sent twice: " .. v)
      sent[v] = true
      nsent = nsent + 1
    end
    local function record_recv(v)
      if received[v] then dup[#dup + 1] = v end
      received[v] = true
      nrecv = nrecv + 1
    end

    local function send_one(v)
      local mode = math.random(3)
      if mode == 1 or opts.nchans == 1 and mode == 2 then
        local ch = chans[math.random(#chans)]
        if math.random(4) == 1 then
          -- may time out; the inner task records only a completed send
          pcall(casync.wait_for, function()
            ch:send(v)
            record_sent(v)
          end, math.random() * 0.002)
        else
          ch:send(v)
          record_sent(v)
        end
      else
        local cases = {}
        for i, ch in ipairs(chans) do cases[i] = {ch, "send", v} end
        if math.random(2) == 1 then cases[#cases + 1] = {chans[1], "recv"} end
        local timeout = math.random(3) == 1 and math.random() * 0.002 or nil
        local i, got, ok = casync.select(cases, timeout)
        if i and i <= #chans then record_sent(v)
        elseif i and ok then record_recv(got) end
      end
    end

    local function producer()
      while producing do
        next_id = next_id + 1
        send_one(next_id)
        if math.random(5) == 1 then casync.sleep(math.random() * 0.001) end
      end
    end

    local function recv_one()
      local mode = math.random(3)
      if mode == 1 then
        local ch = chans[math.random(#chans)]
        if math.random(4) == 1 then
          local ok, v = pcall(casync.wait_for, function()
            local v = ch:recv()
            if v then record_recv(v) end
            return v
          end, math.random() * 0.002)
          return not ok or v ~= nil
        end
        local v, ok = ch:recv()
        if ok then record_recv(v) end
        return ok
      else
        local cases = {}
        for i, ch in ipairs(chans) do cases[i] = {ch, "recv"} end
        local timeout = math.random(3) == 1 and math.random() * 0.002 or nil
        local i, v, ok = casync.select(cases, timeout)
        if i == nil then return true end
        if ok then record_recv(v) return true end
        return false -- that channel is closed and drained
      end
    end

    local function consumer()
      while recv_one() do
        if math.random(5) == 1 then casync.sleep(math.random() * 0.001) end
      end
    end

    local function add(kind)
      local t = casync.spawn(kind == "p" and producer or consumer)
      workers[#workers + 1] = {task = t, kind = kind}
    end
    for _ = 1, opts.producers do add("p") end
    for _ = 1, opts.consumers do add("c") end

    -- chaos: cancel random workers and replace them
    local cancels = 0
    local deadline = casync.now() + opts.duration
    while casync.now() < deadline do
      casync.sleep(math.random() * 0.003)
      local w = workers[math.random(#workers)]
      if not w.task:done() then
        w.task:cancel()
        cancels = cancels + 1
        add(w.kind)
      end
    end

    -- stop producing; wait for the producers to end, then close everything
    -- so that the consumers drain and end
    producing = false
    for _, w in ipairs(workers) do
      if w.kind == "p" then
        -- a producer blocked in send needs a consumer: consumers still run
        local ok, err = pcall(w.task.wait, w.task)
        assert(ok or err.kind == "cancelled", tostring(err))
      end
    end
    for _, ch in ipairs(chans) do ch:close() end
    for _, w in ipairs(workers) do
      local ok, err = pcall(w.task.wait, w.task)
      assert(ok or err.kind == "cancelled", tostring(err))
    end
    -- whatever the cancelled consumers left in the buffers
    for _, ch in ipairs(chans) do
      for v in ch:iter() do record_recv(v) end
      assert.equal(0, #ch)
    end

    assert.same({}, dup)
    for v in pairs(sent) do
      assert(received[v], ("value %d was sent but never received"):format(v))
    end
    for v in pairs(received) do
      assert(sent[v], ("value %d was received but never sent"):format(v))
    end
    assert.equal(nsent, nrecv)
    assert.is_true(nsent > 50, "only " .. nsent .. " values went through")
    assert.is_true(cancels > 10, "only " .. cancels .. " cancellations")
    if os.getenv('STRESS_VERBOSE') then print(seed, nsent, cancels) end
    return nsent, cancels
  end

  for _, cfg in ipairs({
    {name = "one unbuffered channel", nchans = 1, cap = 0},
    {name = "one buffered channel", nchans = 1, cap = 4},
    {name = "three unbuffered channels and select", nchans = 3, cap = 0},
    {name = "three buffered channels and select", nchans = 3, cap = 2},
  }) do
    it("holds under random cancellations: " .. cfg.name, async(function()
      for seed = 1, 3 do
        stress(seed * 7919 + cfg.nchans * 31 + cfg.cap, {
          nchans = cfg.nchans, cap = cfg.cap, producers = 6, consumers = 6,
          duration = 0.25,
        })
      end
    end, 30))
  end
end)
