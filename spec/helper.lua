-- Spec helper: busted 2 has no async support, so each test body runs as a
-- task of casync.run with a timeout (lua/casync/busted.lua, which users
-- have too), and after it the scheduler must be clean: no task left running
-- or failed unobserved, nothing ready, no timer armed; and (in test builds,
-- which have casync._debug) no handle left open, nothing left pinned for
-- libuv, no request left in flight.
local build = os.getenv("CASYNC_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath

local casync = require "casync"

local helper = {}

local cbusted = require "casync.busted"

-- async(fn [, timeout [, opts]]) -> a function for `it` that runs fn as a
-- task (casync.busted's async: a timeout, and the test fails on a task
-- left running or failed unobserved, a handle, request or pin left over).
function helper.async(fn, timeout, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.timeout = timeout or o.timeout
  return cbusted.async(fn, o)
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

-- others_cpu() -> a meter: calling it gives the CPU seconds the rest of
-- the machine (other processes) used since the meter was made, from
-- /proc/stat less this process's own (all its threads) and that of the
-- children it has waited for (so a child still running counts as another
-- process until it is reaped).  Speed-up checks skip the tries a busy
-- machine disturbed.
local CLK_TCK
function helper.others_cpu()
  if not CLK_TCK then
    local p = io.popen("getconf CLK_TCK")
    CLK_TCK = tonumber(p and p:read("l")) or 100
    if p then p:close() end
  end
  local function first_line(path)
    local f = io.open(path)
    if not f then return nil end
    local l = f:read("l")
    f:close()
    return l
  end
  local function busy()
    local l = first_line("/proc/stat")
    if not l then return 0 end
    local v = {}
    for n in l:gmatch("%d+") do v[#v + 1] = tonumber(n) end
    -- user nice system idle iowait irq softirq steal
    return (v[1] + v[2] + v[3] + v[6] + v[7] + (v[8] or 0)) / CLK_TCK
  end
  local function own() -- utime, stime, cutime, cstime (fields 14-17)
    local l = first_line("/proc/self/stat")
    if not l then return os.clock() end
    local v = {}
    for n in l:match(".*%)(.*)"):gmatch("%S+") do v[#v + 1] = n end
    return (v[12] + v[13] + v[14] + v[15]) / CLK_TCK
  end
  local b0, c0 = busy(), own()
  return function()
    return math.max(0, (busy() - b0) - (own() - c0))
  end
end

-- fresh_dir() -> dir: a directory for each test of a spec file, made by
-- before_each(dir.make) and removed by after_each(dir.remove) (busted's
-- hooks are the spec file's own); dir() is its path, dir(name) a file in it.
function helper.fresh_dir()
  local root
  return setmetatable({
    make = function()
      root = os.tmpname()
      os.remove(root)
      assert(os.execute("mkdir -p '" .. root .. "'"))
    end,
    remove = function() os.execute("rm -rf '" .. root .. "'") end,
  }, {__call = function(_, name)
    return name and root .. "/" .. name or root
  end})
end

-- read_all(stream) -> everything stream gives until its end (inside a task)
function helper.read_all(stream)
  local parts = {}
  while true do
    local s = stream:read()
    if not s then break end
    parts[#parts + 1] = s
  end
  return table.concat(parts)
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

-- Argument sweeps -------------------------------------------------------

-- The values a sweep puts where an argument goes: wrong types, nil, NaN,
-- huge, negative and fractional numbers, a wrong self.
helper.BAD_VALUES = {
  {"nil", nil}, {"false", false}, {"true", true}, {"0", 0}, {"-1", -1},
  {"-0.5", -0.5}, {"1.5", 1.5}, {"NaN", 0 / 0}, {"math.huge", math.huge},
  {"-math.huge", -math.huge}, {"math.maxinteger", math.maxinteger},
  {"math.mininteger", math.mininteger}, {"''", ""}, {"'x'", "x"},
  {"'a\\0b'", "a\0b"}, {"{}", {}}, {"{1, 2}", {1, 2}},
  {"a function", function() end}, {"a userdata", io.stdout},
  {"a coroutine", coroutine.create(print)},
}

-- acceptable(err) -> whether err is how casync refuses bad input: a Lua
-- style "bad argument" message, a casync error value, or the message a
-- waiting function gives outside a task; never "attempt to ..." or an
-- error raised at a line inside casync's own Lua files.
function helper.acceptable(err)
  if casync.is_error(err) then return true end
  if type(err) ~= "string" then return false end
  if err:find("attempt to", 1, true) then return false end
  if err:find("casync/[%w_]+%.lua:%d+:") then return false end
  return err:find("bad argument #%d+ to '[^']+' %(") ~= nil
      or err:find("^[%w_.:]+: must be called inside a task") ~= nil
      or err:find("^[%w_.:]+: cannot suspend a coroutine that casync does not manage") ~= nil
end

-- sweep(name, fn, make_args [, opts]) -> problems: calls fn(args...) once
-- per argument position and BAD_VALUE, with that argument replaced
-- (make_args() gives a fresh list of good arguments, with field n), each
-- call in a task of its own bounded by opts.timeout (1 s).  A problem is a
-- string naming the call and what went wrong: an unacceptable error, or a
-- call that did not return in time.  opts.fields = {i = {names}} also
-- sweeps the fields of a table argument i; opts.cleanup(args) runs (as a
-- task) after each call.
function helper.sweep(name, fn, make_args, opts)
  opts = opts or {}
  local problems = {}
  local function try(desc, args)
    local ok, err = casync.run(function()
      local t = casync.spawn(function() return fn(table.unpack(args, 1, args.n)) end)
      local okw, e = pcall(casync.wait_for, t, opts.timeout or 1)
      if not okw and casync.is_error(e, "timeout") and t:cancelled() then
        return false, "did not return in time"
      end
      return okw, e
    end)
    if not ok and err == "did not return in time" then
      problems[#problems + 1] = ("%s: %s"):format(desc, err)
    elseif not ok and not helper.acceptable(err) then
      problems[#problems + 1] = ("%s raised %s"):format(desc, tostring(err))
    end
    if opts.cleanup then casync.run(opts.cleanup, args) end
  end
  local n = make_args().n
  for i = 1, n do
    for _, v in ipairs(helper.BAD_VALUES) do
      local args = make_args()
      args[i] = v[2]
      try(("%s with argument #%d = %s"):format(name, i, v[1]), args)
    end
    for _, field in ipairs((opts.fields or {})[i] or {}) do
      for _, v in ipairs(helper.BAD_VALUES) do
        local args = make_args()
        args[i][field] = v[2]
        try(("%s with argument #%d.%s = %s"):format(name, i, field, v[1]), args)
      end
    end
  end
  return problems
end

-- assert_sweep(...): helper.sweep(...) finds no problem
function helper.assert_sweep(...)
  local problems = helper.sweep(...)
  assert(#problems == 0, ("%d problem(s):\n  %s"):format(#problems,
    table.concat(problems, "\n  ")))
end

_G.async = helper.async
_G.helper = helper
return helper
