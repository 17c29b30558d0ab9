-- lua/casync/map.lua: casync.map(fn, list, {limit = n})
local casync = require "casync"

local errmsg = helper.errmsg

describe("casync.map", function()
  it("returns the results in list order, with n", async(function()
    local r = casync.map(function(x, i)
      casync.sleep(0.001 * (5 - i))
      return x * 10, "ignored"
    end, {1, 2, 3, 4})
    assert.same({10, 20, 30, 40, n = 4}, r)
  end))

  it("keeps at most limit calls in flight, started in list order",
     async(function()
    local inflight, max_inflight, started = 0, 0, {}
    local items = {}
    for i = 1, 20 do items[i] = i end
    local dt, r = helper.elapsed(casync.map, function(x)
      started[#started + 1] = x
      inflight = inflight + 1
      max_inflight = math.max(max_inflight, inflight)
      casync.sleep(0.01)
      inflight = inflight - 1
      return -x
    end, items, {limit = 3})
    assert.equal(3, max_inflight)
    assert.same(items, started)
    for i = 1, 20 do assert.equal(-i, r[i]) end
    assert.equal(20, r.n)
    -- 20 items, 3 at a time, 10 ms each: 7 rounds
    assert.is_true(dt >= 0.07 - 1e-3, "took " .. dt)
    assert.is_true(dt < 0.5, "took " .. dt)
  end))

  it("runs everything at once without a limit", async(function()
    local items = {}
    for i = 1, 50 do items[i] = i end
    local dt = helper.elapsed(casync.map, function() casync.sleep(0.02) end, items)
    assert.is_true(dt < 0.2, "took " .. dt)
  end))

  it("keeps holes: results with nil, and list.n", async(function()
    local r = casync.map(function(x) return x end, {1, nil, 3, n = 3}, {limit = 2})
    assert.equal(3, r.n)
    assert.equal(1, r[1])
    assert.is_nil(r[2])
    assert.equal(3, r[3])
    r = casync.map(function(x) if x ~= 2 then return x end end, {1, 2, 3})
    assert.same({1, nil, 3, n = 3}, r)
  end))

  it("an empty list gives an empty result", async(function()
    assert.same({n = 0}, casync.map(function() error("not called") end, {}))
  end))

  it("raises the first error and cancels the calls still running",
     async(function()
    local finished, cancelled = {}, 0
    local ok, err = pcall(casync.map, function(x)
      local ok2, e = pcall(casync.sleep, x == 3 and 0.005 or 0.05)
      if not ok2 then cancelled = cancelled + 1; error(e, 0) end
      if x == 3 then error({boom = x}) end
      finished[#finished + 1] = x
    end, {1, 2, 3, 4, 5, 6}, {limit = 4})
    assert.is_false(ok)
    assert.same({boom = 3}, err)
    assert.same({}, finished)
    assert.equal(3, cancelled) -- items 1, 2, 4 were in flight
  end))

  it("is cancelled with its caller", async(function()
    local running = 0
    local t = casync.spawn(casync.map, function()
      running = running + 1
      local ok, err = pcall(casync.sleep, 1)
      running = running - 1
      if not ok then error(err, 0) end
    end, {1, 2, 3}, {limit = 2})
    casync.sleep(0.01)
    assert.equal(2, running)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.equal(0, running)
  end))

  it("rejects bad arguments", async(function()
    local f = function() end
    local cases = {
      {{nil}, 1, "function expected, got no value"},
      {{1, {}}, 1, "function expected, got number"},
      {{f}, 2, "table expected, got no value"},
      {{f, "x"}, 2, "table expected, got string"},
      {{f, {n = -1}}, 2, "list.n must be a non-negative integer"},
      {{f, {}, 3}, 3, "table expected, got number"},
      {{f, {}, {limit = 0}}, 3, "opts.limit must be at least 1"},
      {{f, {}, {limit = 1.5}}, 3, "opts.limit must be a whole number"},
      {{f, {}, {limit = "2"}}, 3, "opts.limit must be a whole number"},
    }
    for _, c in ipairs(cases) do
      local err = errmsg(casync.map, table.unpack(c[1], 1, 3))
      assert.matches(("bad argument #%d to 'map' %%(%s%%)")
        :format(c[2], c[3]:gsub("%p", "%%%0")), err)
    end
    assert.same({1, n = 1}, casync.map(function(x) return x end, {1},
                                       {limit = math.huge}))
  end))

  it("raises outside a task, even for an empty list", function()
    assert.matches("map: must be called inside a task",
                   errmsg(casync.map, function() end, {}))
  end)
end)

describe("casync.map's argument checks", function()
  it("refuses wrong types, NaN, huge and negative numbers as Lua does", function()
    helper.assert_sweep("map", casync.map, function()
      return table.pack(function(x) return x end, {1, 2, 3}, {limit = 2})
    end, {fields = {[2] = {"n"}, [3] = {"limit"}}})
  end)

  it("names what is wrong outside a task and in a plain coroutine", function()
    local f = function(x) return x end
    assert.matches("^map: must be called inside a task", errmsg(casync.map, f, {1}))
    async(function()
      local ok, err = coroutine.wrap(function() return pcall(casync.map, f, {1}) end)()
      assert.is_false(ok)
      assert.matches("map: cannot suspend a coroutine that casync does not manage", err)
    end)()
  end)

  it("refuses a list.n no table could hold", async(function()
    assert.matches("bad argument #2 to 'map' %(list.n is too large%)",
      errmsg(casync.map, print, {n = math.maxinteger}))
  end))
end)
