-- casync.map(fn, list [, opts]) -> results: calls fn(item, i) for every
-- item of list concurrently, at most opts.limit at a time (default: all at
-- once), and returns the first result of each call in list order, as an
-- array with a field n (as gather's list form).  On the first error, the
-- calls still running are cancelled (and waited for) and that error is
-- raised, as gather does.
--
-- limit workers take the items in order, so item i starts only after items
-- 1..i-1 have started; no task is spawned per item.  list.n, if present,
-- gives the number of items (holes allowed), else #list.
local core = require "casync.core"
local argcheck = require "casync.argcheck"

local spawn, gather = core.spawn, core.gather

-- raise(msg): error(msg) positioned at the first caller outside this file
-- (as Lua's own "bad argument" errors point at the caller)
local raise = argcheck.raiser(debug.getinfo(1, "S").source)

local MAX_ITEMS = 1 << 31 -- more than any Lua table holds

local is_callable = argcheck.is_callable

local function bad(n, msg)
  raise(("bad argument #%d to 'map' (%s)"):format(n, msg))
end

return function(fn, list, opts)
  if not is_callable(fn) then
    bad(1, "function expected, got " .. (fn == nil and "no value" or type(fn)))
  end
  if type(list) ~= "table" then
    bad(2, "table expected, got " .. (list == nil and "no value" or type(list)))
  end
  local n = list.n
  if n == nil then n = #list
  elseif math.type(n) ~= "integer" or n < 0 then
    bad(2, "list.n must be a non-negative integer")
  elseif n > MAX_ITEMS then
    bad(2, "list.n is too large")
  end
  local limit = n
  if opts ~= nil then
    if type(opts) ~= "table" then
      bad(3, "table expected, got " .. type(opts))
    end
    if opts.limit ~= nil then
      limit = opts.limit
      if math.type(limit) ~= "integer" then
        if type(limit) == "number" and limit == math.huge then limit = n
        elseif type(limit) == "number" and limit == math.floor(limit) then
          limit = math.tointeger(limit) or n
        else
          bad(3, "opts.limit must be a whole number")
        end
      end
      if limit < 1 then bad(3, "opts.limit must be at least 1") end
    end
  end
  -- outside a task, or in a plain coroutine inside one: say which
  local ok, err = pcall(core._require_task, "map")
  if not ok then raise(err) end
  local results = {n = n}
  if n == 0 then return results end
  local nexti = 0
  local function worker()
    while nexti < n do
      nexti = nexti + 1
      local i = nexti
      results[i] = (fn(list[i], i))
    end
  end
  local workers = {}
  for w = 1, math.min(limit, n) do workers[w] = spawn(worker) end
  gather(workers)
  return results
end
