-- scope.c: casync.scope, a scope that owns the tasks spawned in it.
local casync = require "casync"
local async, errmsg = helper.async, helper.errmsg

local function closer(fn)
  return setmetatable({}, {__close = fn})
end

describe("casync.scope", function()
  it("waits for every task spawned in it at the end of the block", async(function()
    local done, t0 = {}, casync.now()
    do
      local s <close> = casync.scope()
      for i, dt in ipairs({0.03, 0.01, 0.02}) do
        s:spawn(function() casync.sleep(dt); done[#done + 1] = i end)
      end
      assert.equal(3, s:tasks())
    end
    assert.same({2, 3, 1}, done)
    assert.is_true(casync.now() - t0 >= 0.029)
  end))

  it("as a call: fn(s, ...) and its results", async(function()
    assert.same({"x", 3}, {casync.scope(function(s, a)
      local t = s:spawn(function() casync.sleep(0.01); return 3 end)
      return a, t:wait()
    end, "x")})
  end))

  it("the first failure cancels the body and the others; raised unchanged",
     async(function()
    local e = setmetatable({}, {__tostring = function() return "E" end})
    local cleaned, reached = {}, false
    local ok, err = pcall(function()
      local s <close> = casync.scope()
      s:spawn(function() casync.sleep(0.01); error(e) end)
      s:spawn(function()
        local _ <close> = closer(function() cleaned[#cleaned + 1] = "other" end)
        casync.sleep(10)
      end)
      local _ <close> = closer(function() cleaned[#cleaned + 1] = "body" end)
      casync.sleep(10)
      reached = true
    end)
    assert.is_false(ok)
    assert.equal(e, err) -- the child's error value itself
    assert.is_false(reached)
    table.sort(cleaned)
    assert.same({"body", "other"}, cleaned)
  end))

  it("two failures (on their own) make one error of kind group", async(function()
    local ok, err = pcall(casync.scope, function(s)
      s:spawn(function() casync.sleep(0.01); error("first") end)
      s:spawn(function()
        pcall(casync.sleep, 10)    -- cancelled by the first failure...
        error("second, in cleanup") -- ...and fails on its own
      end)
    end)
    assert.is_false(ok)
    assert.equal("group", err.kind)
    assert.equal(2, #err.errors)
    assert.matches("first", err.errors[1].error)
    assert.matches("second, in cleanup", err.errors[2].error)
    assert.matches("scope_spec.lua", err.errors[1].traceback)
    assert.equal("userdata", type(err.errors[1].task))
    local text = tostring(err)
    assert.matches("^group: 2 tasks failed:", text)
    assert.matches("first", text)
    assert.matches("second, in cleanup", text)
  end))

  it("the body's own failure counts, with a child's in a group", async(function()
    local ok, err = pcall(casync.scope, function(s)
      s:spawn(function()
        pcall(casync.sleep, 10)
        error("child")
      end)
      casync.sleep(0)
      error("body")
    end)
    assert.is_false(ok)
    assert.equal("group", err.kind)
    assert.matches("the scope's body: .*body", tostring(err))
  end))

  it("cancellations it caused are not failures", async(function()
    local ok, err = pcall(casync.scope, function(s)
      for _ = 1, 5 do s:spawn(casync.sleep, 10) end
      s:spawn(function() casync.sleep(0.01); error("only this") end)
    end)
    assert.is_false(ok)
    assert.matches("only this", err)
  end))

  it("a child failing while the body is inside a __close that suspends",
     async(function()
    -- unshielded: the cleanup's wait is cancelled (the scope is), and the
    -- scope raises the child's failure
    local steps = {}
    local ok, err = pcall(casync.scope, function(s)
      s:spawn(function() casync.sleep(0.01); error("child failed") end)
      local _ <close> = closer(function()
        steps[#steps + 1] = "cleanup starts"
        casync.sleep(0.2)
        steps[#steps + 1] = "not reached"
      end)
    end)
    assert.is_false(ok)
    assert.matches("child failed", err)
    assert.same({"cleanup starts"}, steps)
    -- shielded: the cleanup runs to its end first
    steps = {}
    ok, err = pcall(casync.scope, function(s)
      s:spawn(function() casync.sleep(0.01); error("child failed") end)
      local _ <close> = closer(function()
        casync.shield(function() casync.sleep(0.05) end)
        steps[#steps + 1] = "cleanup done"
      end)
    end)
    assert.is_false(ok)
    assert.matches("child failed", err)
    assert.same({"cleanup done"}, steps)
  end))

  it("a deadline passing while a child is mid-cleanup: the cleanup ends, " ..
     "then the timeout", async(function()
    local t0, done = casync.now(), false
    local ok, err = pcall(casync.fail_after, 0.03, function()
      casync.scope(function(s)
        s:spawn(function()
          local _ <close> = closer(function()
            casync.shield(function() casync.sleep(0.1) end)
            done = true
          end)
          casync.sleep(10)
        end)
      end)
    end)
    local dt = casync.now() - t0
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_true(done)
    -- no longer than its deadline plus its cleanup
    assert.is_true(dt >= 0.125 and dt < 1, "took " .. dt)
  end))

  it("closing on the owner's cancellation cancels the tasks and waits for them",
     async(function()
    local ended = 0
    local t = casync.spawn(function()
      local s <close> = casync.scope()
      for _ = 1, 3 do
        s:spawn(function()
          local _ <close> = closer(function() ended = ended + 1 end)
          casync.sleep(10)
        end)
      end
      casync.sleep(10)
    end)
    casync.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    assert.equal(3, ended)
  end))

  it("s:cancel() ends the call form quietly, and the <close> form with " ..
     "the cancellation", async(function()
    local after = false
    assert.same({}, {casync.scope(function(s)
      s:spawn(casync.sleep, 10)
      s:cancel()
      casync.sleep(10)
      after = true
    end)})
    assert.is_false(after)
    local ok, err = pcall(function()
      local s <close> = casync.scope()
      s:cancel()
      casync.sleep(10)
    end)
    assert.is_false(ok)
    assert.equal("cancelled", err.kind)
  end))

  it("a task of the scope can spawn into it (nursery.start_soon from inside)",
     async(function()
    local got = {}
    casync.scope(function(s)
      s:spawn(function()
        s:spawn(function() casync.sleep(0.01); got[#got + 1] = "grandchild" end)
        got[#got + 1] = "child"
      end)
    end)
    assert.same({"child", "grandchild"}, got)
  end))

  it("a child's wait, cancel and result work as for any task", async(function()
    casync.scope(function(s)
      local a = s:spawn({name = "a"}, function() casync.sleep(0.01); return 1 end)
      local b = s:spawn(casync.sleep, 10)
      assert.equal("a", a:name())
      assert.equal(1, a:wait())
      assert.is_true(b:cancel())
      assert.is_false(pcall(b.wait, b))
      assert.is_true(b:cancelled())
    end)
  end))

  it("spawning on a closed scope raises", async(function()
    local kept
    casync.scope(function(s) kept = s end)
    assert.is_true(kept:closed())
    assert.matches("spawn: the scope is closed", errmsg(kept.spawn, kept, print))
  end))

  it("a timeout around a scope cancels all of it", async(function()
    local t0 = casync.now()
    local ok, err = pcall(casync.fail_after, 0.02, casync.scope, function(s)
      for _ = 1, 10 do s:spawn(casync.sleep, 10) end
      casync.sleep(10)
    end)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_true(casync.now() - t0 < 1)
  end))

  it("plain casync.spawn inside a scope belongs to no scope", async(function()
    local t
    casync.scope(function(s)
      t = casync.spawn(casync.sleep, 0.05)
      s:cancel()
    end)
    casync.sleep(0)
    assert.is_false(t:done())
    t:wait()
  end))

  it("checks its arguments", async(function()
    assert.matches("bad argument #1 to '[%w%._]*scope' %(function expected, got number%)",
                   errmsg(casync.scope, 1))
    casync.scope(function(s)
      assert.matches("function expected", errmsg(s.spawn, s))
      assert.matches("opts.name must be a string", errmsg(s.spawn, s, {name = 1}, print))
      assert.matches("casync.Scope expected", errmsg(s.spawn, {}, print))
    end)
    assert.matches("scope: must be called inside a task",
                   select(3, helper.lua([[require("casync").scope()]])))
  end))
end)
