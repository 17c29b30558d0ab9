-- signal.c: casync.signal.wait/reset/raise/name, and Ctrl-C (SIGINT)
-- during casync.run, tried on child processes (the casync runner and
-- lua5.4) so the cleanup, the error and the exit status can be seen.
local casync = require "casync"
local S = casync.signal
local P = casync.process

local errmsg = helper.errmsg
local RUNNER = helper.build .. "/casync"

-- Each test stops handling the signals it used, so the process goes back
-- to their default actions.
after_each(function()
  casync.run(function()
    for _, s in ipairs({"USR1", "USR2", "HUP", "INT"}) do S.reset(s) end
  end)
end)

local read_all = helper.read_all

describe("signal.wait", function()
  it("suspends until the signal comes; returns its name", async(function()
    local t = casync.spawn(function() return S.wait("SIGUSR1") end)
    casync.sleep(0.02)
    assert.is_false(t:done())
    assert.is_true(S.raise("usr1"))
    assert.equal("SIGUSR1", t:wait())
  end))

  it("wakes every task waiting for it; others keep waiting", async(function()
    local a = casync.spawn(S.wait, "USR1")
    local b = casync.spawn(S.wait, 10) -- SIGUSR1 by number
    local c = casync.spawn(S.wait, "USR2")
    casync.sleep(0.01)
    S.raise("SIGUSR1")
    assert.equal("SIGUSR1", a:wait())
    assert.equal("SIGUSR1", b:wait())
    casync.sleep(0.01)
    assert.is_false(c:done())
    S.raise("SIGUSR2")
    assert.equal("SIGUSR2", c:wait())
  end))

  it("keeps a signal that came while nobody waited for the next wait", async(function()
    assert.is_nil(S.wait("USR1", 0)) -- starts handling it
    S.raise("USR1")
    casync.sleep(0.02)
    local t0 = casync.now()
    assert.equal("SIGUSR1", S.wait("USR1", 1))
    assert.is_true(casync.now() - t0 < 0.5)
    assert.is_nil(S.wait("USR1", 0.01)) -- once only
  end))

  it("times out with nil and an error of kind timeout", async(function()
    local t0 = casync.now()
    local r, err = S.wait("HUP", 0.05)
    assert.is_nil(r)
    assert.is_true(casync.is_error(err, "timeout"))
    assert.is_true(casync.now() - t0 >= 0.045)
  end))

  it("can be cancelled; reset wakes waiters with an error of kind closed", async(function()
    local ok, err = pcall(casync.wait_for, function() return S.wait("USR2") end, 0.02)
    assert.is_false(ok)
    assert.is_true(casync.is_error(err, "timeout"))
    local t = casync.spawn(S.wait, "USR2")
    casync.sleep(0.01)
    S.reset("USR2")
    local r, e = t:wait()
    assert.is_nil(r)
    assert.is_true(casync.is_error(e, "closed"))
  end))

  it("keeps the loop alive only while a task waits (no false deadlock)", function()
    local got = casync.run(function()
      local t = casync.spawn(S.wait, "USR1")
      casync.sleep(0.01)
      -- from another process, while the main task only waits on t
      assert(P.spawn({"sh", "-c", "sleep 0.05; kill -USR1 " .. P.pid()}))
      return t:wait()
    end)
    assert.equal("SIGUSR1", got)
  end)

  it("luv's uv.walk sees signal, process and watchdog handles as casync's", async(function()
    local uv = require "luv"
    local t = casync.spawn(S.wait, "USR2")
    local p = assert(P.spawn({"sleep", "5"}))
    casync.watchdog{threshold = 1, on_block = function() end}
    casync.sleep(0.01)
    local names, open = {}, 0
    uv.walk(function(h)
      names[#names + 1] = tostring(h)
      if not h:is_closing() then open = open + 1 end
    end)
    casync.watchdog(false)
    p:kill()
    p:wait()
    t:cancel()
    assert.equal(0, open) -- every handle there is casync's, shown as closing
    assert.is_true(#names >= 3)
  end))

  it("rejects bad arguments and calls outside a task", async(function()
    assert.truthy(errmsg(S.wait, "SIGNOPE"):find("unknown signal 'SIGNOPE'", 1, true))
    assert.truthy(errmsg(S.wait, 0):find("no such signal", 1, true))
    assert.truthy(errmsg(S.wait, {}):find("signal number or name expected", 1, true))
    assert.truthy(errmsg(S.wait, "KILL"):find("SIGKILL and SIGSTOP cannot be caught", 1, true))
    assert.truthy(errmsg(S.wait, "USR1", "x"):find("number expected", 1, true))
    assert.equal("SIGTERM", S.name(15))
    assert.equal("SIGINT", S.name("int"))
    assert.truthy(errmsg(S.name, "x"):find("unknown signal", 1, true))
  end))

  it("raises outside a task", function()
    assert.truthy(errmsg(S.wait, "USR1"):find("wait: must be called inside a task", 1, true))
  end)
end)

describe("Ctrl-C during casync.run", function()
  -- starts code in a child (the runner, or lua5.4 -e), waits for "ready" on
  -- its stdout, sends SIGINT (twice if asked), returns code, signal, output
  local function interrupt(argv, times)
    return casync.run(function()
      local p = assert(P.spawn(argv, {stdout = "pipe", stderr = "pipe",
                                      env = {LUA_PATH = package.path, LUA_CPATH = package.cpath}}))
      local errs = casync.spawn(read_all, p.stderr)
      local out = {(assert(p.stdout:read_line(), "no ready line"))}
      assert.equal("ready", out[1])
      for i = 1, times or 1 do
        p:kill("INT")
        if i < (times or 1) then
          assert.equal("cleaning", p.stdout:read_line())
          casync.sleep(0.1) -- let it reach its wait (else the Lua code running is interrupted)
        end
      end
      out[#out + 1] = read_all(p.stdout)
      local code, sig = p:wait()
      p:close()
      return code, sig, table.concat(out, "\n"), errs:wait()
    end)
  end

  local script = [[
    local casync = require "casync"
    local ok, err = pcall(function()
      local x <close> = setmetatable({}, {__close = function()
        print("cleaning"); io.stdout:flush()
        casync.sleep(%s) -- a cleanup that itself suspends
        print("closed")
      end})
      print("ready"); io.stdout:flush()
      casync.sleep(30)
    end)
    print("caught " .. tostring(err.kind) .. ": " .. tostring(err.message))
    error(err, 0)
  ]]

  it("cancels the main task: cleanup runs, the runner exits with 130", function()
    local code, sig, out, err = interrupt({RUNNER, "-e", script:format("0.01")})
    assert.equal(130, code)
    assert.is_nil(sig)
    assert.equal("ready\ncleaning\nclosed\ncaught cancelled: interrupted (SIGINT)\n", out)
    assert.truthy(err:find("interrupted", 1, true), err)
  end)

  it("makes casync.run raise an error of kind interrupted (lua5.4)", function()
    local code, _, out = interrupt({"lua5.4", "-e", [[
      local casync = require "casync"
      local ok, err = pcall(casync.run, function()
        local x <close> = setmetatable({}, {__close = function() print("closed") end})
        print("ready"); io.stdout:flush()
        casync.sleep(30)
      end)
      print(ok, err.kind, err.code, tostring(err))
    ]]})
    assert.equal(0, code)
    assert.equal("ready\nclosed\nfalse\tinterrupted\tSIGINT\tinterrupted: the main task was cancelled by SIGINT\n", out)
  end)

  it("a second Ctrl-C while the cleanup waits ends the process the default way", function()
    local code, sig, out = interrupt({RUNNER, "-e", script:format("30")}, 2)
    assert.equal(130, code)
    assert.equal("SIGINT", sig)
    assert.equal("ready\n", out)
  end)

  it("a second Ctrl-C interrupts a task that never suspends (cleanup runs)", function()
    local code, sig, out, err = casync.run(function()
      local p = assert(P.spawn({RUNNER, "-e", [[
        local casync = require "casync"
        local x <close> = setmetatable({}, {__close = function(_, e)
          print("closed: " .. tostring(e and e.kind)); io.stdout:flush()
        end})
        print("ready"); io.stdout:flush()
        while true do end -- never suspends: the loop never sees the first one
      ]]}, {stdout = "pipe", stderr = "pipe"}))
      local errs = casync.spawn(read_all, p.stderr)
      assert.equal("ready", p.stdout:read_line())
      p:kill("INT")
      casync.sleep(0.1)
      assert.is_nil(p:poll()) -- still busy
      p:kill("INT")
      local out = read_all(p.stdout)
      local code, sig = p:wait()
      p:close()
      return code, sig, out, errs:wait()
    end)
    assert.equal(130, code)
    assert.is_nil(sig)
    assert.equal("closed: interrupted\n", out)
    assert.truthy(err:find("interrupted", 1, true), err)
  end)

  it("goes to a task that waits for SIGINT, instead of cancelling main", function()
    local code, _, out = interrupt({RUNNER, "-e", [[
      local casync = require "casync"
      local t = casync.spawn(casync.signal.wait, "INT")
      casync.sleep(0.01)
      print("ready"); io.stdout:flush()
      print("got " .. t:wait())
      casync.sleep(0.01)
      print("main went on")
    ]]})
    assert.equal(0, code)
    assert.equal("ready\ngot SIGINT\nmain went on\n", out)
  end)
end)
