-- casync.argcheck: what the Lua modules of casync share to check their
-- arguments as the C functions do, with errors that point at the caller.
local M = {}

-- raiser(source) -> raise(msg): error(msg) positioned at the first caller
-- outside the file `source` (a module passes its own,
-- debug.getinfo(1, "S").source), as Lua's own "bad argument" errors point
-- at the caller's line, not into the library.
function M.raiser(source)
  return function(msg)
    local level = 2
    while (debug.getinfo(level, "S") or {}).source == source do
      level = level + 1
    end
    error(msg, level)
  end
end

-- is_callable(f) -> whether f can be called: a function, or a value whose
-- metatable has __call.
function M.is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and mt.__call ~= nil
end

return M
