-- casync.retry(fn [, opts] [, ...]): calls fn(...) until it succeeds, waiting
-- longer after each failure (exponential backoff), and returns its results;
-- after the last attempt, raises the last error unchanged.
--
--   opts.attempts  how many calls in all (default 3)
--   opts.base      the first wait, seconds (default 1)
--   opts.factor    each wait is the previous one times factor (default 2)
--   opts.max       no wait is longer (default: no limit)
--   opts.jitter    0..1: each wait is shortened by up to this fraction, at
--                  random, so that many clients do not retry in step
--                  (default 0)
--   opts.timeout   seconds allowed for each attempt (wait_for; a timeout
--                  counts as a failure of kind "timeout"); default none
--   opts.retry_if  function(err, attempt) -> boolean: whether to retry after
--                  this error (default: every error)
--   opts.on_retry  function(err, attempt, delay): called before each wait
--
-- The waits are base, base*factor, base*factor^2, ...: 1 s, 2 s, 4 s with
-- the defaults.  A cancellation is never retried: it propagates at once.
local core = require "casync.core"
local argcheck = require "casync.argcheck"

local sleep, wait_for = core.sleep, core.wait_for

-- raise(msg): error(msg) positioned at the first caller outside this file
-- (as Lua's own "bad argument" errors point at the caller)
local raise = argcheck.raiser(debug.getinfo(1, "S").source)

local is_callable = argcheck.is_callable

local function is_cancel(err)
  return type(err) == "table" and err.kind == "cancelled"
end

local function bad(n, msg)
  raise(("bad argument #%d to 'retry' (%s)"):format(n, msg))
end

local function number_opt(opts, name, default, min)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v then
    bad(2, ("opts.%s must be a number"):format(name))
  end
  if v < min then bad(2, ("opts.%s must be at least %g"):format(name, min)) end
  return v
end

local function check_opts(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    bad(2, "table expected, got " .. type(opts))
  end
  local o = {
    attempts = number_opt(opts, "attempts", 3, 1),
    base = number_opt(opts, "base", 1, 0),
    factor = number_opt(opts, "factor", 2, 0),
    max = number_opt(opts, "max", math.huge, 0),
    jitter = number_opt(opts, "jitter", 0, 0),
    timeout = number_opt(opts, "timeout", nil, 0),
    retry_if = opts.retry_if,
    on_retry = opts.on_retry,
  }
  if math.type(o.attempts) ~= "integer" and o.attempts ~= math.huge then
    if o.attempts ~= math.floor(o.attempts) then
      bad(2, "opts.attempts must be a whole number")
    end
  end
  if o.jitter > 1 then bad(2, "opts.jitter must be at most 1") end
  for _, name in ipairs({"retry_if", "on_retry"}) do
    if o[name] ~= nil and not is_callable(o[name]) then
      bad(2, ("opts.%s must be a function"):format(name))
    end
  end
  return o
end

-- The wait after failed attempt k (1-based).
local function delay(o, k)
  local d = math.min(o.base * o.factor ^ (k - 1), o.max)
  if o.jitter > 0 then d = d * (1 - o.jitter * math.random()) end
  return d
end

local function call(o, fn, ...)
  if o.timeout then return pcall(wait_for, fn, o.timeout) end
  return pcall(fn, ...)
end

return function(fn, opts, ...)
  if not is_callable(fn) then
    bad(1, "function expected, got " .. (fn == nil and "no value" or type(fn)))
  end
  local o = check_opts(opts)
  -- outside a task, or in a plain coroutine inside one: say which
  local ok, err = pcall(core._require_task, "retry")
  if not ok then raise(err) end
  if o.timeout then
    -- wait_for takes a function and a timeout: bind the arguments
    local f, args = fn, table.pack(...)
    fn = function() return f(table.unpack(args, 1, args.n)) end
  end
  local k = 1
  while true do
    local r = table.pack(call(o, fn, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local err = r[2]
    if is_cancel(err) or k >= o.attempts or
       (o.retry_if and not o.retry_if(err, k)) then
      error(err, 0)
    end
    local d = delay(o, k)
    if o.on_retry then o.on_retry(err, k, d) end
    sleep(d)
    k = k + 1
  end
end
