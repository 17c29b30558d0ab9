-- wrap.c: casync.wrap(fn [, nargs [, opts]]) turns a callback-last function
-- into one that suspends the calling task; casync.uv is luv's request
-- functions wrapped so.
local casync = require "casync"
local uv = require "luv"

-- a callback API on luv: calls cb(...) after ms milliseconds; returns the
-- luv timer (a handle)
local function after(ms, cb, ...)
  local args = table.pack(...)
  local t = uv.new_timer()
  t:start(ms, 0, function()
    t:close()
    cb(table.unpack(args, 1, args.n))
  end)
  return t
end

describe("casync.wrap", function()
  it("suspends the task until the callback comes and returns its values", async(function()
    local w = casync.wrap(function(ms, a, b, cb) return after(ms, cb, a, nil, b) end, 3)
    local ticks = 0
    local ticker = casync.spawn(function()
      while true do casync.sleep(0.005); ticks = ticks + 1 end
    end)
    local t0 = casync.now()
    local r = table.pack(w(30, "x", 42))
    ticker:cancel()
    assert.same({"x", nil, 42, n = 3}, r)
    assert.is_true(casync.now() - t0 >= 0.029)
    assert.is_true(ticks >= 2, "other tasks ran while it waited")
  end))

  it("puts the callback after all the arguments without nargs", async(function()
    local seen
    local w = casync.wrap(function(...)
      seen = table.pack(...)
      local cb = seen[seen.n]
      casync.call_later(0, cb, "done")
    end)
    assert.equal("done", w(1, nil, 3))
    assert.equal(4, seen.n)
    assert.equal("function", type(seen[4]))
    assert.is_nil(seen[2])
  end))

  it("with nargs, pads missing arguments with nil and drops extra ones", async(function()
    local seen
    local w = casync.wrap(function(...)
      seen = table.pack(...)
      seen[seen.n]("ok")
    end, 3)
    assert.equal("ok", w("a"))
    assert.equal(4, seen.n)
    assert.same({"a", nil, nil}, {seen[1], seen[2], seen[3]})
    assert.equal("ok", w(1, 2, 3, 4, 5))
    assert.equal(4, seen.n)
    assert.equal(3, seen[3])
    local w0 = casync.wrap(function(cb) cb(select("#", "x")) end, 0)
    assert.equal(1, w0("ignored", "too"))
  end))

  it("returns at once when the callback is called before fn returns", async(function()
    local w = casync.wrap(function(x, cb) cb(x * 2, "sync") return "ignored" end)
    local t0 = casync.now()
    local a, b = w(21)
    assert.equal(42, a)
    assert.equal("sync", b)
    assert.is_true(casync.now() - t0 < 0.01)
  end))

  it("returns no values for a callback called with none", async(function()
    local w = casync.wrap(function(cb) casync.call_later(0, cb) end)
    assert.equal(0, select("#", w()))
  end))

  it("ignores a callback called a second time", async(function()
    local calls = 0
    local cb_of
    local w = casync.wrap(function(cb)
      cb_of = cb
      casync.call_later(0, function() calls = calls + 1; cb("first") end)
      casync.call_later(0.01, function() calls = calls + 1; cb("second") end)
    end)
    assert.equal("first", w())
    casync.sleep(0.02)
    assert.equal(2, calls)
    cb_of("third") -- harmless
  end))

  it("raises what fn raises, and an io error when fn returns nil and an error", async(function()
    local w = casync.wrap(function() error("fn failed", 0) end)
    assert.equal("fn failed", helper.errmsg(w))
    local v = {}
    w = casync.wrap(function() error(v) end)
    assert.equal(v, helper.errmsg(w))
    w = casync.wrap(function() return nil, "EINVAL: invalid argument", "EINVAL" end,
                    0, {name = "thing"})
    local err = helper.errmsg(w)
    assert.is_true(casync.is_error(err, "io"))
    assert.equal("EINVAL", err.code)
    assert.equal("thing: EINVAL: invalid argument", err.message)
    -- a nil result alone, or false with nothing after it, is not a failure
    w = casync.wrap(function(cb) casync.call_later(0, cb, "later") return nil end)
    assert.equal("later", w())
  end))

  it("can be cancelled while it waits: the late callback is dropped", async(function()
    local late, got = false, nil
    local w = casync.wrap(function(cb)
      casync.call_later(0.03, function() late = true; cb("too late") end)
    end)
    local t = casync.spawn(function() got = w() end)
    casync.sleep(0.01)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "cancelled"))
    casync.sleep(0.04)
    assert.is_true(late)
    assert.is_nil(got)
  end))

  it("hands a late callback's values to opts.on_drop", async(function()
    local dropped
    local w = casync.wrap(function(cb) after(20, cb, nil, "fd 7") end, 0,
      {on_drop = function(...) dropped = table.pack(...) end})
    local t = casync.spawn(w)
    casync.sleep(0.005)
    t:cancel()
    pcall(t.wait, t)
    casync.sleep(0.04)
    assert.same({nil, "fd 7", n = 2}, dropped)
  end))

  it("closes the luv handle fn returned when the wait is cancelled", async(function()
    local handle, fired = nil, false
    local w = casync.wrap(function(ms, cb)
      handle = after(ms, function() fired = true; cb() end)
      return handle
    end, 1)
    local t = casync.spawn(w, 50)
    casync.sleep(0.01)
    assert.is_false(handle:is_closing())
    t:cancel()
    pcall(t.wait, t)
    assert.is_true(handle:is_closing())
    casync.sleep(0.07)
    assert.is_false(fired)
  end))

  it("cancels the luv request fn returned when the wait is cancelled", async(function()
    -- a request that cannot end before the loop turns: uv.cancel takes it back
    local req
    local got = {}
    local w = casync.wrap(function(path, cb)
      req = uv.fs_stat(path, function(err, st) got[#got + 1] = err or st; cb(err, st) end)
      return req
    end, 1)
    local t = casync.spawn(w, "/")
    casync.sleep(0) -- the task has started the request
    t:cancel()
    pcall(t.wait, t)
    assert.equal("uv_req", getmetatable(req).__name)
    casync.sleep(0.05)
    -- the request either ended cancelled or had run already; nothing
    -- reached the task either way
    assert.is_true(t:cancelled())
  end))

  it("raises a pending cancellation before calling fn", async(function()
    local called = false
    local w = casync.wrap(function(cb) called = true; cb() end)
    local t = casync.spawn(function()
      casync.current():cancel()
      w()
    end)
    assert.is_false(pcall(t.wait, t))
    assert.is_true(t:cancelled())
    assert.is_false(called)
  end))

  it("keeps a value delivered before a cancellation", async(function()
    local callback
    local w = casync.wrap(function(cb) callback = cb end)
    local got
    local t = casync.spawn(function()
      got = w()
      casync.sleep(1) -- the cancellation lands here
    end)
    casync.sleep(0)
    callback("value") -- wakes the task...
    t:cancel()        -- ...which is cancelled before it runs
    pcall(t.wait, t)
    assert.equal("value", got)
    assert.is_true(t:cancelled())
  end))

  it("must be called in a task, and not from a plain coroutine in one", function()
    local w = casync.wrap(function(cb) cb() end, 0, {name = "my_op"})
    assert.matches("my_op: must be called inside a task", helper.errmsg(w))
    async(function()
      local ok, err = coroutine.wrap(function() return pcall(w) end)()
      assert.is_false(ok)
      assert.matches("my_op: cannot suspend a coroutine that casync does not manage", err)
    end)()
    local anon = casync.wrap(function(cb) cb() end)
    assert.matches("wrapped function: must be called inside a task", helper.errmsg(anon))
  end)

  it("says what a task waits on in its info and in task dumps", async(function()
    local w = casync.wrap(function(cb) casync.call_later(0.05, cb, "done") end, 0,
                          {name = "load_level"})
    local t = casync.spawn(w)
    casync.sleep(0.01)
    assert.matches("load_level: waiting for its callback", t:info().waiting_on)
    assert.equal("done", t:wait())
  end))

  it("holds the virtual clock still while it waits, as I/O does", function()
    local uv = require "luv"
    local took = casync.run(function()
      local w = casync.wrap(function(ms, cb)
        local timer = uv.new_timer()
        timer:start(ms, 0, function() timer:close(); cb() end)
      end, 1)
      local t0 = casync.now()
      casync.spawn(function() casync.sleep(3600) end) -- would jump the clock
      w(30)
      return casync.now() - t0
    end, {clock = "virtual"})
    assert.is_true(took < 1, "the clock jumped while a callback was awaited: " .. took)
  end)

  it("names the wait in a deadlock message", function()
    -- in a process of its own: handles other specs left on this loop
    -- (a child still running) would keep it from being a deadlock
    local code, _, err = helper.lua([[
      local casync = require "casync"
      local w = casync.wrap(function() end, 0, {name = "never_calls_back"})
      casync.run(function() w() end)
    ]])
    assert.equal(1, code)
    assert.matches("deadlock: the main task waits in never_calls_back", err)
  end)

  it("checks its arguments as Lua's own functions do", function()
    local f = function() end
    local function bad(pattern, ...)
      local ok, err = pcall(casync.wrap, ...)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    bad("bad argument #1 to '[%w.]*wrap' %(function expected, got no value%)")
    bad("bad argument #1 to '[%w.]*wrap' %(function expected, got nil%)", nil)
    bad("bad argument #1 to '[%w.]*wrap' %(function expected, got number%)", 1)
    bad("bad argument #1 to '[%w.]*wrap' %(function expected, got table%)", {})
    bad("bad argument #2 to '[%w.]*wrap' %(integer expected, got string%)", f, "x")
    bad("bad argument #2 to '[%w.]*wrap' %(number has no integer representation%)", f, 1.5)
    bad("bad argument #2 to '[%w.]*wrap' %(number has no integer representation%)", f, 0 / 0)
    bad("bad argument #2 to '[%w.]*wrap' %(number has no integer representation%)", f, math.huge)
    bad("bad argument #2 to '[%w.]*wrap' %(nargs must be between 0 and 200%)", f, -1)
    bad("bad argument #2 to '[%w.]*wrap' %(nargs must be between 0 and 200%)", f, 201)
    bad("bad argument #2 to '[%w.]*wrap' %(nargs must be between 0 and 200%)", f, math.mininteger)
    bad("bad argument #3 to '[%w.]*wrap' %(table expected, got string%)", f, 1, "x")
    bad("bad argument #3 to '[%w.]*wrap' %(opts.name must be a string%)", f, 1, {name = 1})
    bad("bad argument #3 to '[%w.]*wrap' %(opts.on_drop must be a function%)", f, 1, {on_drop = 1})
    -- a callable table is a function
    local callable = setmetatable({}, {__call = function(_, cb) cb("called") end})
    local w = casync.wrap(callable)
    assert.equal("called", casync.run(function() return w() end))
    assert.equal("function", type(casync.wrap(f, 2.0)))
  end)
end)

describe("casync.uv", function()
  it("gives luv's request functions as waits returning the callback's values", async(function()
    local err, st = casync.uv.fs_stat("/")
    assert.is_nil(err)
    assert.equal("directory", st.type)
    err = casync.uv.fs_stat("/nonexistent/really")
    assert.matches("^ENOENT", err)
    local path = os.tmpname()
    local e1, fd = casync.uv.fs_open(path, "w", tonumber("644", 8))
    assert.is_nil(e1)
    assert.is_nil((casync.uv.fs_write(fd, "hello", 0)))
    assert.is_nil((casync.uv.fs_close(fd)))
    local _, rfd = casync.uv.fs_open(path, "r", 0)
    local _, data = casync.uv.fs_read(rfd, 100) -- offset: nil (the current position)
    assert.equal("hello", data)
    casync.uv.fs_close(rfd)
    assert.is_nil((casync.uv.fs_unlink(path)))
    local _, addrs = casync.uv.getaddrinfo("localhost", nil, {family = "inet"})
    assert.equal("127.0.0.1", addrs[1].addr)
    local _, dir = casync.uv.fs_opendir("/", 4)
    local _, entries = casync.uv.fs_readdir(dir)
    assert.is_true(#entries >= 1 and #entries <= 4)
    casync.uv.fs_closedir(dir)
  end))

  it("raises for a request luv refuses", async(function()
    local err = helper.errmsg(casync.uv.fs_open, "/tmp", "no such flags", 0)
    assert.matches("flag", tostring(err))
  end))

  it("wraps every luv request function that takes a callback", function()
    for _, name in ipairs({"fs_stat", "fs_open", "fs_read", "fs_write", "fs_close",
                           "fs_scandir", "fs_opendir", "fs_readdir", "getaddrinfo",
                           "getnameinfo", "random"}) do
      assert.equal("function", type(casync.uv[name]), name)
    end
    for name in pairs(casync.uv) do
      assert.equal("function", type(uv[name]), name .. " is not a luv function")
    end
  end)
end)
