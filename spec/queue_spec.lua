-- casync.queue (channel.c): asyncio-style queues, FIFO, LIFO and priority,
-- bounded or not, with task_done/join.
local casync = require "casync"

local errmsg = helper.errmsg

local function badarg(n, fname, msg)
  return ("bad argument #%d to '[%%w%%._]*%s' %%(%s%%)"):format(
    n, fname, msg:gsub("%p", "%%%0"))
end

local function start(fn, ...)
  local t = casync.spawn(fn, ...)
  casync.sleep(0)
  return t
end

local function drain(q)
  local out = {}
  while not q:empty() do out[#out + 1] = q:get() end
  return out
end

describe("casync.queue", function()
  it("is an unbounded FIFO queue by default", async(function()
    local q = casync.queue()
    assert.equal(0, q:maxsize())
    assert.is_true(q:empty())
    assert.is_false(q:full())
    for i = 1, 10000 do q:put(i) end -- never waits
    assert.equal(10000, q:qsize())
    assert.equal(10000, q:len())
    assert.equal(10000, #q)
    assert.is_false(q:full())
    for i = 1, 10000 do assert.equal(i, q:get()) end
    assert.is_true(q:empty())
    assert.matches("casync.Queue %(fifo, 0%)", tostring(q))
    assert.equal(0, casync.queue(0):maxsize())
    assert.equal(0, casync.queue(nil, "lifo"):maxsize())
  end))

  it("keeps FIFO order while its ring wraps, bounded or not", async(function()
    for _, q in ipairs({casync.queue(3), casync.queue()}) do
      local n = 0
      for round = 1, 50 do
        for k = 1, round % 3 + 1 do q:put(round * 10 + k) end
        while not q:empty() do
          local v = q:get()
          n = n + 1
          assert.is_true(v > 0)
        end
      end
      q:put("a"); q:put("b")
      assert.same({"a", "b"}, drain(q))
    end
  end))

  it("bounded: put waits while full, and waiting putters keep their order",
     async(function()
    local q = casync.queue(2)
    assert.equal(2, q:maxsize())
    q:put(1)
    q:put(2)
    assert.is_true(q:full())
    assert.matches("casync.Queue %(fifo, 2/2%)", tostring(q))
    local ts = {}
    for i = 3, 5 do ts[#ts + 1] = casync.spawn(function() q:put(i) end) end
    casync.sleep(0)
    for _, t in ipairs(ts) do assert.is_false(t:done()) end
    assert.equal(1, q:get())
    assert.equal(2, q:qsize()) -- the first waiting putter moved in
    assert.same({2, 3, 4, 5}, {q:get(), q:get(), q:get(), (q:get())})
    for _, t in ipairs(ts) do t:wait() end
  end))

  it("get waits while empty; a put hands the item to the first getter",
     async(function()
    local q = casync.queue(1)
    local got = {}
    local ts = {}
    for i = 1, 3 do ts[i] = casync.spawn(function() got[i] = q:get() end) end
    casync.sleep(0)
    q:put("a")
    q:put("b")
    q:put("c")
    for i = 1, 3 do ts[i]:wait() end
    assert.same({"a", "b", "c"}, got)
    assert.equal(3, q:unfinished())
  end))

  it("returns item, true from get, nil, false once closed and drained",
     async(function()
    local q = casync.queue()
    q:put(false)
    q:close()
    assert.same({false, true}, {q:get()})
    assert.same({nil, false}, {q:get()})
  end))

  describe("lifo", function()
    it("gives the newest item first", async(function()
      local q = casync.queue(nil, "lifo")
      for i = 1, 5 do q:put(i) end
      assert.same({5, 4, 3, 2, 1}, drain(q))
      q:put("x")
      q:put("y")
      assert.equal("y", q:get())
      q:put("z")
      assert.same({"z", "x"}, drain(q))
      assert.matches("casync.Queue %(lifo, 0%)", tostring(q))
    end))

    it("bounded: a waiting putter's item goes on top when room is made",
       async(function()
      local q = casync.queue(2, "lifo")
      q:put(1)
      q:put(2)
      local t = start(function() q:put(3) end)
      assert.equal(2, q:get())
      t:wait()
      assert.same({3, 1}, drain(q))
    end))
  end)

  describe("priority", function()
    it("gives the lowest priority first, equal priorities in FIFO order",
       async(function()
      local q = casync.queue(nil, "priority")
      q:put("c", 3)
      q:put("a1", 1)
      q:put("z") -- priority 0
      q:put("b", 2)
      q:put("a2", 1)
      q:put("neg", -1.5)
      q:put("a3", 1)
      assert.same({"neg", "z", "a1", "a2", "a3", "b", "c"}, drain(q))
      assert.matches("casync.Queue %(priority, 0%)", tostring(q))
    end))

    it("sorts many random priorities, stable among ties", async(function()
      math.randomseed(42)
      local q = casync.queue(nil, "priority")
      local items = {}
      for i = 1, 2000 do
        local p = math.random(50)
        items[i] = {p = p, i = i}
        q:put(items[i], p)
        if i % 7 == 0 then -- take some out as we go
          local v = q:get()
          v.out = true
        end
      end
      local rest = {}
      for _, it in ipairs(items) do if not it.out then rest[#rest + 1] = it end end
      table.sort(rest, function(a, b) return a.p < b.p or a.p == b.p and a.i < b.i end)
      local got = drain(q)
      assert.equal(#rest, #got)
      for k = 1, #rest do assert.equal(rest[k], got[k]) end
    end))

    it("bounded: a waiting putter keeps its priority", async(function()
      local q = casync.queue(2, "priority")
      q:put("low", 10)
      q:put("mid", 5)
      local t = start(function() q:put("urgent", -1) end)
      assert.equal("mid", q:get())
      t:wait()
      assert.same({"urgent", "low"}, drain(q))
    end))

    it("try_put takes a priority too", function()
      local q = casync.queue(2, "priority")
      assert.is_true(q:try_put("b", 2))
      assert.is_true(q:try_put("a", 1))
      assert.is_false(q:try_put("c", 0))
      assert.equal("a", q:try_get())
      assert.equal("b", q:try_get())
    end)
  end)

  describe("task_done and join", function()
    it("join returns at once when nothing is unfinished", async(function()
      local q = casync.queue()
      assert.is_true(q:join())
      q:put(1)
      assert.equal(1, q:unfinished())
      q:get()
      assert.equal(1, q:unfinished()) -- taken, not yet done
      assert.is_false(q:join(0))
      q:task_done()
      assert.equal(0, q:unfinished())
      assert.is_true(q:join())
    end))

    it("join waits until every item put is marked done (worker pool)",
       async(function()
      local q = casync.queue(3)
      local processed = {}
      local function worker(name)
        while true do
          local item = q:get()
          casync.sleep(0.001 * (item % 3))
          processed[#processed + 1] = item
          q:task_done()
        end
      end
      local workers = {}
      for i = 1, 3 do workers[i] = casync.spawn(worker, i) end
      for i = 1, 30 do q:put(i) end
      local dt = helper.elapsed(q.join, q)
      assert.equal(30, #processed)
      assert.equal(0, q:unfinished())
      assert.is_true(dt < 1)
      for _, w in ipairs(workers) do w:cancel() end
      for _, w in ipairs(workers) do assert.is_false(pcall(w.wait, w)) end
    end))

    it("wakes every joiner", async(function()
      local q = casync.queue()
      q:put("x")
      local joiners = {}
      for i = 1, 3 do joiners[i] = casync.spawn(function() return q:join() end) end
      casync.sleep(0.01)
      for i = 1, 3 do assert.is_false(joiners[i]:done()) end
      q:get()
      q:task_done()
      for i = 1, 3 do assert.is_true(joiners[i]:wait()) end
    end))

    it("join with a timeout returns false; a cancelled joiner is forgotten",
       async(function()
      local q = casync.queue()
      q:put(1)
      local dt, r = helper.elapsed(q.join, q, 0.03)
      assert.is_false(r)
      assert.is_true(dt >= 0.03 - 1e-6)
      local j = start(function() return q:join(5) end)
      j:cancel()
      assert.is_false(pcall(j.wait, j))
      q:get()
      q:task_done()
      assert.is_true(q:join(1))
    end))

    it("task_done raises when called more often than items were put",
       function()
      local q = casync.queue()
      assert.matches("task_done: called more times than items were put",
                     errmsg(q.task_done, q))
      q:try_put(1)
      q:try_get()
      q:task_done()
      assert.matches("task_done: called more times", errmsg(q.task_done, q))
    end)
  end)

  describe("close", function()
    it("fails waiting putters with an error of kind closed; getters drain",
       async(function()
      local q = casync.queue(1)
      q:put("kept")
      local p = start(function() q:put("refused") end)
      q:close()
      q:close()
      assert.is_true(q:closed())
      local ok, err = pcall(p.wait, p)
      assert.is_false(ok)
      assert.equal("closed", err.kind)
      assert.matches("put: queue is closed", tostring(err))
      ok, err = pcall(q.put, q, 1)
      assert.equal("closed", err.kind)
      ok, err = pcall(q.try_put, q, 1)
      assert.equal("closed", err.kind)
      local got = {}
      for v in q:iter() do got[#got + 1] = v end
      assert.same({"kept"}, got)
      assert.same({nil, "closed"}, {q:try_get()})
    end))

    it("wakes waiting getters with nil, false", async(function()
      local q = casync.queue()
      local g = start(function() return table.pack(q:get()) end)
      q:close()
      assert.same({nil, false, n = 2}, g:wait())
    end))
  end)

  describe("cancel-safety", function()
    it("a cancelled getter takes nothing, a cancelled putter puts nothing",
       async(function()
      local q = casync.queue(1)
      local g = start(function() return q:get() end)
      g:cancel()
      assert.is_false(pcall(g.wait, g))
      q:put("a")
      assert.equal(1, q:qsize())
      local p = start(function() q:put("b") end)
      p:cancel()
      assert.is_false(pcall(p.wait, p))
      assert.equal(1, q:unfinished())
      assert.same({"a"}, drain(q))
      assert.same({nil, "empty"}, {q:try_get()})
    end))

    it("holds under random cancellations with a worker pool and join",
       async(function()
      math.randomseed(7)
      local q = casync.queue(4, "priority")
      local put, got = 0, {}
      local workers = {}
      local function worker()
        while true do
          local v = q:get()
          got[v] = (got[v] or 0) + 1
          q:task_done()
          if math.random(3) == 1 then casync.sleep(math.random() * 0.001) end
        end
      end
      for i = 1, 4 do workers[i] = casync.spawn(worker) end
      local producers = {}
      for p = 1, 4 do
        producers[p] = casync.spawn(function()
          for i = 1, 200 do
            local id = p * 1000 + i
            local ok = pcall(casync.wait_for, function()
              q:put(id, math.random(5))
              put = put + 1
              got[id] = got[id] or 0
            end, math.random() * 0.003)
          end
        end)
      end
      for _ = 1, 30 do
        casync.sleep(math.random() * 0.002)
        local k = math.random(#workers)
        workers[k]:cancel()
        workers[k] = casync.spawn(worker)
      end
      for _, p in ipairs(producers) do p:wait() end
      assert.is_true(q:join(5))
      local n = 0
      for id, count in pairs(got) do
        assert.equal(1, count, "item " .. id)
        n = n + 1
      end
      assert.equal(put, n)
      assert.is_true(put > 100)
      for _, w in ipairs(workers) do w:cancel() end
      for _, w in ipairs(workers) do pcall(w.wait, w) end
    end))
  end)

  describe("bad input", function()
    it("rejects bad sizes and orders", function()
      local cases = {
        {{-1}, 1, "maxsize must not be negative"},
        {{1.5}, 1, "maxsize must be a whole number"},
        {{2^31}, 1, "maxsize is too large"},
        {{math.huge}, 1, "maxsize is too large"},
        {{"x"}, 1, "integer expected, got string"},
        {{1, "stack"}, 2, "invalid option 'stack'"},
        {{1, 2}, 2, "invalid option '2'"},
      }
      for _, c in ipairs(cases) do
        assert.matches(badarg(c[2], "queue", c[3]),
                       errmsg(casync.queue, table.unpack(c[1])))
      end
    end)

    it("rejects nil items and misplaced or bad priorities", async(function()
      local q, pq = casync.queue(), casync.queue(nil, "priority")
      assert.matches(badarg(1, "put", "value expected (nil cannot be put)"),
                     errmsg(function() q:put(nil) end))
      assert.matches(badarg(1, "try_put", "value expected (nil cannot be put)"),
                     errmsg(function() q:try_put() end))
      assert.matches(badarg(2, "put", "a priority is only for priority queues"),
                     errmsg(function() q:put(1, 5) end))
      assert.matches(badarg(2, "put", "number expected, got NaN"),
                     errmsg(function() pq:put(1, 0/0) end))
      assert.matches(badarg(2, "put", "number expected, got table"),
                     errmsg(function() pq:put(1, {}) end))
      assert.matches(badarg(2, "try_put", "number expected, got string"),
                     errmsg(function() pq:try_put(1, "high") end))
      assert.equal(0, q:qsize() + pq:qsize())
      assert.matches(badarg(1, "join", "number expected, got string"),
                     errmsg(function() q:join("x") end))
    end))

    it("checks self, and is not a channel", async(function()
      for _, m in ipairs({"put", "get", "try_put", "try_get", "task_done",
                          "join", "close", "qsize", "empty", "full"}) do
        local call = assert(load("local q = ... return q." .. m .. "(42, 1)"))
        assert.matches(badarg(1, m, "casync.Queue expected, got number"),
                       errmsg(call, casync.queue()))
      end
      local ch = casync.channel(1)
      assert.matches("casync.Queue expected, got casync.Channel",
                     errmsg(casync.queue().put, ch, 1))
      -- a select case of its own kind (get, put), not a channel's
      assert.matches('case 1: "put" or "get" expected',
                     errmsg(casync.select, {{casync.queue(), "recv"}}))
    end))

    it("put, get and join raise outside a task; the rest works anywhere",
       function()
      local q = casync.queue(1)
      assert.matches("put: must be called inside a task", errmsg(q.put, q, 1))
      assert.is_true(q:try_put(1))
      assert.matches("get: must be called inside a task", errmsg(q.get, q))
      assert.matches("join: must be called inside a task", errmsg(q.join, q))
      assert.equal(1, q:try_get())
      q:task_done()
      assert.matches("join: must be called inside a task", errmsg(q.join, q))
      q:close()
    end)
  end)
end)
