-- tcontext.c: task-local context (casync.context.set/get/with/all).
local casync = require "casync"
local async, errmsg = helper.async, helper.errmsg
local C = casync.context

describe("casync.context", function()
  it("a task's values are seen by the tasks it spawns", async(function()
    C.set("user", "alice")
    local t = casync.spawn(function()
      local inner = casync.spawn(function() return C.get("user") end)
      return C.get("user"), inner:wait()
    end)
    assert.same({"alice", "alice"}, {t:wait()})
    C.set("user", nil)
  end))

  it("a copy at spawn time: a child's change does not leak back, nor a " ..
     "later change of the parent's into the child", async(function()
    C.set("k", 1)
    local go = casync.event()
    local t = casync.spawn(function()
      go:wait()
      local seen = C.get("k")
      C.set("k", 2)
      return seen, C.get("k")
    end)
    C.set("k", 3) -- after the spawn
    go:set()
    assert.same({1, 2}, {t:wait()})
    assert.equal(3, C.get("k"))
    C.set("k", nil)
  end))

  it("tasks of a scope, combinators and call_later inherit it too", async(function()
    C.set("id", 42)
    local got = {}
    casync.scope(function(s)
      s:spawn(function() got[#got + 1] = C.get("id") end)
    end)
    got[#got + 1] = casync.gather(function() return C.get("id") end)
    got[#got + 1] = casync.call_later(0, function() return C.get("id") end):wait()
    assert.same({42, 42, 42}, got)
    C.set("id", nil)
  end))

  it("with(values, fn, ...) adds values for fn only, even when it fails",
     async(function()
    C.set("a", 1)
    assert.same({1, 2, "x"}, {C.with({b = 2}, function(x)
      return C.get("a"), C.get("b"), x
    end, "x")})
    assert.is_nil(C.get("b"))
    local ok, err = pcall(C.with, {b = 2}, function() error("inside") end)
    assert.is_false(ok)
    assert.matches("inside", err)
    assert.is_nil(C.get("b"))
    assert.equal(1, C.get("a"))
    -- a task spawned inside keeps what it saw
    local t = C.with({req = 7}, casync.spawn, function()
      casync.sleep(0.01)
      return C.get("req")
    end)
    assert.equal(7, t:wait())
    C.set("a", nil)
  end))

  it("all() gives a copy of the values", async(function()
    C.set("x", 1)
    C.set("y", 2)
    local all = C.all()
    assert.same({x = 1, y = 2}, all)
    all.x = 99
    assert.equal(1, C.get("x"))
    C.set("x", nil)
    C.set("y", nil)
    assert.same({}, C.all())
  end))

  it("outside tasks there is a root context that run's tasks start from",
     function()
    C.set("root", "yes")
    assert.equal("yes", C.get("root"))
    local seen = casync.run(function() return C.get("root") end)
    assert.equal("yes", seen)
    C.set("root", nil)
    assert.is_nil(C.get("root"))
  end)

  it("checks its arguments", async(function()
    assert.matches("bad argument #1 to .*%(key expected, got nil%)",
                   errmsg(C.set, nil, 1))
    assert.matches("key expected, got NaN", errmsg(C.set, 0 / 0, 1))
    assert.matches("key expected, got nil", errmsg(C.get))
    assert.matches("table expected, got nil", errmsg(C.with, nil, print))
    assert.matches("function expected", errmsg(C.with, {}, 1))
  end))
end)
