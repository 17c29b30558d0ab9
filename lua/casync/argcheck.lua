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

-- argerror(i, msg, level): raises Lua's own "bad argument" error (as
-- luaL_argerror does) for argument i of the function `level` frames up
-- from argerror (2: its caller), pointing at the line that called that
-- function; a method's self is argument 0 ("calling 'f' on bad self").
function M.argerror(i, msg, level)
  local ar = debug.getinfo(level, "nf")
  local name = ar and ar.name
  if not name and ar then -- called from C (pcall): its name in a module
    for mod, t in pairs(package.loaded) do
      if type(t) == "table" then
        for k, v in pairs(t) do
          if v == ar.func and type(k) == "string" then
            name = mod == "_G" and k or mod .. "." .. k
            break
          end
        end
      end
      if name then break end
    end
  end
  name = name or "?"
  if ar and ar.namewhat == "method" then
    i = i - 1
    if i == 0 then
      error(("calling '%s' on bad self (%s)"):format(name, msg), level + 1)
    end
  end
  error(("bad argument #%d to '%s' (%s)"):format(i, name, msg), level + 1)
end

-- typeerror(i, want, v, level): "<want> expected, got <type of v>"
function M.typeerror(i, want, v, level)
  M.argerror(i, ("%s expected, got %s"):format(want, v == nil and "no value"
           or type(v)), level + 1)
end

-- check_string(v, i, level) -> v, a string, or a typeerror
function M.check_string(v, i, level)
  if type(v) ~= "string" then M.typeerror(i, "string", v, level + 1) end
  return v
end

return M
