-- casync.busted: async specs for busted (2.x has no async support).  Each
-- test body runs as a task of its own casync.run, with a timeout, and the
-- test fails when the body leaves something behind:
--
--   * a task that failed and nothing waited for (casync.on_unobserved hears
--     of it instead of stderr), or a done callback that failed;
--   * a task still running when the body returned (it is cancelled);
--   * in test builds of casync (casync._debug): a handle left open, a
--     request left in flight, a value left pinned for libuv.
--
--   local async = require("casync.busted").async
--   it("times out", async(function() ... end, {clock = "virtual", timeout = 5}))
--   require("casync.busted").it("the same", function() ... end, {seed = 7})
--
-- opts: timeout (seconds of real time, default 10), clock ("virtual" or
-- "real"), seed, preempt (passed to casync.run), leaks = false (allow
-- tasks left running: they are cancelled at the end, as casync.run does).
local argcheck = require "casync.argcheck"
local casync = require "casync"

local M = {}

local fmt = string.format

-- raises "bad argument #n to 'fname' (msg)" at the caller of the public
-- function `depth` levels up (1: bad's caller is the public function)
local function bad(n, fname, msg, depth)
  error(fmt("bad argument #%d to '%s' (%s)", n, fname, msg), (depth or 1) + 2)
end

local is_callable = argcheck.is_callable

-- Checks async's (fn, opts) at argument positions n, n + 1 of fname.
local function check(fname, n, fn, opts)
  if not is_callable(fn) then
    bad(n, fname, "function expected, got " .. (fn == nil and "no value" or type(fn)), 2)
  end
  if opts == nil then return {} end
  if type(opts) ~= "table" then bad(n + 1, fname, "table expected, got " .. type(opts), 2) end
  local t = opts.timeout
  if t ~= nil and (type(t) ~= "number" or t ~= t or t <= 0) then
    bad(n + 1, fname, "opts.timeout must be a positive number of seconds", 2)
  end
  if opts.clock ~= nil and opts.clock ~= "virtual" and opts.clock ~= "real" then
    bad(n + 1, fname, 'opts.clock must be "virtual" or "real"', 2)
  end
  if opts.seed ~= nil and math.type(opts.seed) ~= "integer" then
    bad(n + 1, fname, "opts.seed must be an integer", 2)
  end
  if opts.preempt ~= nil and (type(opts.preempt) ~= "number" or not (opts.preempt > 0)) then
    bad(n + 1, fname, "opts.preempt must be a positive number of seconds", 2)
  end
  for k in pairs(opts) do
    if k ~= "timeout" and k ~= "clock" and k ~= "seed" and k ~= "preempt" and k ~= "leaks" then
      bad(n + 1, fname, fmt("unknown option '%s'", tostring(k)), 2)
    end
  end
  return opts
end

-- Handle classes that stay open after a test by design: a signal a task has
-- waited for stays handled, the watchdog stays on, the thread hub serves
-- every pool.
local LASTING = {signal = true, ["thread hub"] = true, ["watchdog idle"] = true}

local function open_handles(d)
  local n, what = 0, {}
  for class, k in pairs(d.open) do
    if not LASTING[class] then
      n = n + k
      what[#what + 1] = class .. " " .. k
    end
  end
  table.sort(what)
  return n, table.concat(what, ", ")
end

-- Fails the test with msg .. what unless ok.
local function check_clean(ok, msg, what)
  if not ok then error(msg .. tostring(what), 0) end
end

-- Runs the loop until fn() is true or a second has passed.
local function settle(fn)
  collectgarbage() -- what nothing references is closed by its __gc
  if fn() then return end
  casync.run(function()
    local t0 = casync.now()
    while not fn() and casync.now() - t0 < 1 do casync.sleep(0.005) end
  end)
end

-- The live tasks but the running one, described ("task #3 'x' (waiting in
-- sleep)"), or their number when casync cannot list them.
local function leftovers()
  if casync.tasks then
    local list, me = {}, casync.current()
    for _, t in ipairs(casync.tasks()) do
      if t ~= me and not t:done() then list[#list + 1] = tostring(t) end
    end
    return #list, table.concat(list, ", ")
  end
  local n = casync._stats().live - 1
  return n, n == 1 and "1 task" or n .. " tasks"
end

-- A real-time alarm that works under the virtual clock too (a luv timer
-- on the same loop, not keeping it alive); nil without luv.
local function alarm(seconds, fn)
  local ok, uv = pcall(require, "luv")
  if not ok or type(uv) ~= "table" or not uv.new_timer then return nil end
  local t = uv.new_timer()
  t:start(math.max(1, math.floor(seconds * 1000 + 0.5)), 0, fn)
  t:unref()
  return function()
    t:stop()
    if not t:is_closing() then t:close() end
  end
end

local function runopts(opts)
  local r, any = {}, false
  for _, k in ipairs({"clock", "seed", "preempt"}) do
    if opts[k] ~= nil then r[k], any = opts[k], true end
  end
  return any and r or nil
end

-- The body as casync.run's main task: fn in a task of its own, with the
-- timeout; then the tasks it left running.
local function driver(fn, opts, timeout)
  return function()
    local results
    if opts.clock == "virtual" then
      -- casync.now() is virtual: the timeout is measured in real time
      local body = casync.spawn(fn)
      local timed_out = false
      local stop = alarm(timeout, function()
        timed_out = true
        body:cancel("the test timed out")
      end)
      local ok, r = pcall(function() return table.pack(body:wait()) end)
      if stop then stop() end
      if timed_out then
        error(fmt("the test did not finish within %g s of real time (opts.timeout)", timeout), 0)
      end
      if not ok then error(r, 0) end
      results = r
    else
      local ok, r = pcall(function() return table.pack(casync.wait_for(fn, timeout)) end)
      if not ok then
        if type(r) == "table" and r.kind == "timeout" then
          error(fmt("the test did not finish within %g s (opts.timeout)", timeout), 0)
        end
        error(r, 0)
      end
      results = r
    end
    if opts.leaks ~= false then
      -- tasks about to end (a cancellation unwinding, a handler that
      -- reads the end of its closed connection) may end first: 0.1 s
      local deadline, turns = casync.now() + 0.1, 0
      while leftovers() > 0 and casync.now() < deadline do
        turns = turns + 1
        casync.sleep(turns <= 3 and 0 or 0.002)
      end
      local n, what = leftovers()
      if n > 0 then
        error(fmt("%s still running when the test ended (cancelled): %s",
                  n == 1 and "a task was" or n .. " tasks were", what), 0)
      end
    end
    return table.unpack(results, 1, results.n)
  end
end

-- async(fn [, opts]) -> a function for busted's `it` that runs fn(...) as a
-- task in casync.run and fails on what the body left behind (see above).
function M.async(fn, opts)
  opts = check("async", 1, fn, opts)
  local timeout = opts.timeout or 10
  return function(...)
    local args = table.pack(...)
    local body = function() return fn(table.unpack(args, 1, args.n)) end
    local before = casync._debug and casync._debug()
    local lost = {}
    local previous = casync.on_unobserved(function(report) lost[#lost + 1] = report end)
    local ro = runopts(opts)
    local results
    local ok, err = pcall(function()
      if ro then
        results = table.pack(casync.run(driver(body, opts, timeout), ro))
      else
        results = table.pack(casync.run(driver(body, opts, timeout)))
      end
    end)
    collectgarbage() -- a failed task nothing references is reported now
    casync.on_unobserved(previous)
    if not ok then error(err, 0) end
    if #lost > 0 then
      local msgs = {}
      for i, r in ipairs(lost) do
        msgs[i] = r.message .. (r.traceback and "\n" .. r.traceback or "")
      end
      error(fmt("%s failed and nothing waited for %s:\n%s",
                #lost == 1 and "a task" or #lost .. " tasks", #lost == 1 and "it" or "them",
                table.concat(msgs, "\n")), 0)
    end
    local s = casync._stats()
    check_clean(s.live == 0, "tasks still alive after the test: ", s.live)
    check_clean(s.ready == 0, "tasks still ready after the test: ", s.ready)
    check_clean(s.timers == 0, "timers still armed after the test: ", s.timers)
    if before then
      local n0 = open_handles(before)
      -- what a test closed at its end finishes closing, a cancelled request
      -- comes back, on the next turns of the loop
      settle(function()
        local d = casync._debug()
        return open_handles(d) <= n0 and d.requests <= before.requests and
               d.pins <= before.pins
      end)
      local d = casync._debug()
      local n, what = open_handles(d)
      check_clean(n <= n0, "handles still open after the test: ", what)
      check_clean(d.requests <= before.requests, "requests still in flight after the test: ",
                  d.requests)
      check_clean(d.pins <= before.pins, "values still pinned after the test: ",
                  d.pins - before.pins)
    end
    return table.unpack(results, 1, results.n)
  end
end

-- it(name, fn [, opts]): busted's `it` with fn run by async(fn, opts).
function M.it(name, fn, opts)
  if type(name) ~= "string" then
    bad(1, "it", "string expected, got " .. (name == nil and "no value" or type(name)))
  end
  local body = M.async(fn, check("it", 2, fn, opts))
  return require("busted").it(name, body)
end

return M
