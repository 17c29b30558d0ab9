-- error.c: casync's error values (kind, message, code, tostring), and how
-- errors travel between tasks with their tracebacks.
local casync = require "casync"

local errmsg = helper.errmsg

local function pattern(s) return (s:gsub("%p", "%%%0")) end

describe("casync.new_error", function()
  it("makes a value with kind, message, code and a readable tostring", function()
    local e = casync.new_error("io", "connection reset", "ECONNRESET")
    assert.equal("io", e.kind)
    assert.equal("connection reset", e.message)
    assert.equal("ECONNRESET", e.code)
    assert.equal("io: connection reset", tostring(e))
    local plain = casync.new_error("timeout", "too slow")
    assert.is_nil(plain.code)
  end)

  it("can be raised and caught like any error", function()
    local e = casync.new_error("closed", "gone")
    local ok, got = pcall(error, e)
    assert.is_false(ok)
    assert.equal(e, got)
  end)

  it("accepts numbers where strings are expected, as Lua does", function()
    assert.equal("1: 2", tostring(casync.new_error(1, 2)))
  end)

  it("checks its arguments", function()
    for _, c in ipairs({
      {function() casync.new_error() end, "bad argument #1 to 'new_error' (string expected, got no value)"},
      {function() casync.new_error(nil, "m") end, "bad argument #1 to 'new_error' (string expected, got nil)"},
      {function() casync.new_error("k") end, "bad argument #2 to 'new_error' (string expected, got no value)"},
      {function() casync.new_error("k", {}) end, "bad argument #2 to 'new_error' (string expected, got table)"},
      {function() casync.new_error("k", "m", true) end, "bad argument #3 to 'new_error' (string expected, got boolean)"},
    }) do
      assert.matches(pattern(c[2]), errmsg(c[1]))
    end
  end)
end)

describe("casync.is_error", function()
  it("tells casync errors from other values, optionally of a kind", function()
    local e = casync.new_error("timeout", "t")
    assert.is_true(casync.is_error(e))
    assert.is_true(casync.is_error(e, "timeout"))
    assert.is_false(casync.is_error(e, "cancelled"))
    for _, v in ipairs({"timeout", 1, true, {kind = "timeout"},
                        setmetatable({}, {}), print}) do
      assert.is_false(casync.is_error(v))
      assert.is_false(casync.is_error(v, "timeout"))
    end
    assert.is_false(casync.is_error())
    assert.is_false(casync.is_error(nil))
  end)

  it("checks its kind argument", function()
    assert.matches(pattern("bad argument #2 to 'is_error' (string expected, got table)"),
                   errmsg(function() casync.is_error({}, {}) end))
  end)
end)

describe("errors raised by casync", function()
  it("a timeout is of kind 'timeout'", async(function()
    local ok, err = pcall(casync.wait_for, function() casync.sleep(1) end, 0.001)
    assert.is_false(ok)
    assert.equal("timeout", err.kind)
    assert.is_true(casync.is_error(err, "timeout"))
    assert.equal("string", type(err.message))
    assert.matches("^timeout: wait_for: timed out after", tostring(err))
  end))

  it("a cancellation is of kind 'cancelled', with the message of cancel",
     async(function()
    local t = casync.spawn(casync.sleep, 1)
    local u = casync.spawn(casync.sleep, 1)
    casync.sleep(0)
    t:cancel()
    u:cancel("no longer needed")
    local _, e1 = pcall(t.wait, t)
    local _, e2 = pcall(u.wait, u)
    assert.is_true(casync.is_error(e1, "cancelled"))
    assert.equal("cancelled: task cancelled", tostring(e1))
    assert.equal("no longer needed", e2.message)
    assert.equal("cancelled: no longer needed", tostring(e2))
  end))

  it("a deadlock is of kind 'deadlock'", function()
    local ok, err = pcall(casync.run, function() casync.current():wait() end)
    assert.is_false(ok)
    assert.matches("wait: a task cannot wait for itself", err)
    ok, err = pcall(casync.run, function()
      local main = casync.current()
      casync.spawn(function() main:wait() end):wait()
    end)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "deadlock"))
    assert.matches("^deadlock: the main task waits in task:wait%(%)", tostring(err))
  end)

  it("argument errors stay plain strings, as Lua's own are", async(function()
    local err = errmsg(function() casync.sleep("x") end)
    assert.equal("string", type(err))
  end))
end)

describe("an error crossing tasks", function()
  it("keeps its identity through several waits", async(function()
    local e = casync.new_error("io", "disk on fire")
    local inner = casync.spawn(function() casync.sleep(0); error(e) end)
    local middle = casync.spawn(function() return inner:wait() end)
    local outer = casync.spawn(function() return casync.gather(middle) end)
    local ok, got = pcall(outer.wait, outer)
    assert.is_false(ok)
    assert.equal(e, got)
  end))

  it("keeps a string unchanged (no position or traceback is added)", async(function()
    local t = casync.spawn(function() error("exact text", 0) end)
    local u = casync.spawn(function() return t:wait() end)
    local _, err = pcall(u.wait, u)
    assert.equal("exact text", err)
  end))

  it("leaves each task's traceback on the task", async(function()
    local here = debug.getinfo(1, "l").currentline
    local inner = casync.spawn(function() casync.sleep(0); error("E") end)
    local outer = casync.spawn(function() inner:wait() end)
    pcall(outer.wait, outer)
    local itb, otb = inner:traceback(), outer:traceback()
    assert.matches("error_spec%.lua:" .. (here + 1), itb)
    assert.matches("spawned at .-error_spec%.lua:" .. (here + 1), itb)
    assert.matches("error_spec%.lua:" .. (here + 2) .. ": in function", otb)
    assert.matches("raised again from task #" .. inner:id(), otb)
    assert.matches("spawned at .-error_spec%.lua:" .. (here + 2), otb)
  end))

  it("through run carries the traceback of the main task and its cause", function()
    local ok, err = pcall(casync.run, function()
      local t = casync.spawn(function() error("deep") end)
      return t:wait()
    end)
    assert.is_false(ok)
    assert.matches("deep\nstack traceback:", err)
    assert.matches("raised again from task #%d+, which failed here:", err)
  end)
end)
