-- Spec helper: busted 2 has no async support, so each test body runs as the
-- main task of casync.run with a timeout, and after it the scheduler must be
-- clean: no live task, nothing ready, no timer armed; and (in test builds,
-- which have casync._debug) no handle left open, nothing left pinned for
-- libuv, no request left in flight.
local build = os.getenv("CASYNC_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath

local casync = require "casync"

local helper = {}

-- Handles that stay open after a test by design: a signal a task has waited
-- for stays handled, the watchdog stays on, the thread hub serves all pools.
local lasting = {signal = true, ["thread hub"] = true, ["watchdog idle"] = true}

local function open_handles(d)
  local n, what = 0, {}
  for class, k in pairs(d.open) do
    if not lasting[class] then
      n = n + k
      what[#what + 1] = class .. " " .. k
    end
  end
  table.sort(what)
  return n, table.concat(what, ", ")
end

-- Waits (running the loop) until fn() is true or a second has passed.
local function settle(fn)
  collectgarbage() -- what nothing references is closed by its __gc
  if fn() then return end
  casync.run(function()
    local t0 = casync.now()
    while not fn() and casync.now() - t0 < 1 do casync.sleep(0.005) end
  end)
end

-- async(fn [, timeout]) -> a function for `it` that runs fn in the loop.
function helper.async(fn, timeout)
  return function()
    local before = casync._debug and casync._debug()
    local results = table.pack(casync.run(function()
      return casync.wait_for(fn, timeout or 10)
    end))
    local s = casync._stats()
    assert(s.live == 0, "tasks still alive after the test: " .. s.live)
    assert(s.ready == 0, "tasks still ready after the test: " .. s.ready)
    assert(s.timers == 0, "timers still armed after the test: " .. s.timers)
    if before then
      local n0 = open_handles(before)
      -- what a test closed at its end finishes closing, a cancelled
      -- request comes back, on the next turns of the loop
      settle(function()
        local d = casync._debug()
        return open_handles(d) <= n0 and d.requests <= before.requests and
               d.pins <= before.pins
      end)
      local d = casync._debug()
      local n, what = open_handles(d)
      assert(n <= n0, "handles still open after the test: " .. what)
      assert(d.requests <= before.requests,
             "requests still in flight after the test: " .. d.requests)
      assert(d.pins <= before.pins, "values still pinned after the test: " ..
             d.pins - before.pins)
    end
    return table.unpack(results, 1, results.n)
  end
end

-- counter() -> a callable that counts its calls; c.n, c.args[i]
function helper.counter()
  local c = {n = 0, args = {}}
  return setmetatable(c, {__call = function(self, ...)
    self.n = self.n + 1
    self.args[self.n] = table.pack(...)
  end})
end

-- elapsed(fn) -> seconds fn took, and its results
function helper.elapsed(fn, ...)
  local t0 = casync.now()
  local r = table.pack(fn(...))
  return casync.now() - t0, table.unpack(r, 1, r.n)
end

-- errmsg(fn, ...) -> the error fn raised (fails if it did not raise)
function helper.errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

-- The build tree as an absolute path (for child processes).
local function abspath(dir)
  local p = io.popen("cd '" .. dir .. "' && pwd")
  local abs = p:read("l")
  p:close()
  return abs
end
helper.build = abspath(build)
helper.root = abspath(".")

-- sh(cmd [, stdin]) -> exit code, stdout, stderr of a shell command.
function helper.sh(cmd, stdin)
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  local f = io.open(inp, "w")
  f:write(stdin or "")
  f:close()
  local ok, how, code = os.execute(("(%s) <'%s' >'%s' 2>'%s'"):format(cmd, inp, out, err))
  local function slurp(name)
    local h = io.open(name)
    local s = h:read("a")
    h:close()
    os.remove(name)
    return s
  end
  os.remove(inp)
  if how == "signal" then code = 128 + code end
  return code, slurp(out), slurp(err)
end

-- quote(s) -> s quoted for the shell
function helper.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- lua(code) -> exit code, stdout, stderr of `lua5.4 -e code` in a child
-- process that finds this build of casync.
function helper.lua(code)
  local setup = ("package.path = %q .. package.path; package.cpath = %q .. package.cpath; ")
    :format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
            helper.build .. "/lib/?.so;")
  return helper.sh("lua5.4 -e " .. helper.quote(setup .. code))
end

_G.async = helper.async
_G.helper = helper
return helper
