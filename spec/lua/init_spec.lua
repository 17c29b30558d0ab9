-- lua/casync/init.lua: the casync table names every function of casync.core
-- and adds the Lua modules.  Every function it exports, swept with each
-- wrong first argument (nil, wrong types, NaN, huge and negative numbers),
-- refuses it as Lua's own functions do: no "attempt to ..." from inside
-- casync, no crash.  The sweep runs in a child process, so a crash fails
-- this spec with what was being called instead of ending busted.
local casync = require "casync"
local q = helper.quote

local SWEEP = [==[
local root, build = ...
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath
local casync = require "casync"
local helper = dofile(root .. "/spec/helper.lua")
-- not swept: run (its own spec), the stdio streams (they take this
-- process's descriptors), HTTP (its own spec), private names
local SKIP = {run = true, stdin = true, stdout = true, stderr = true, http = true}
local fns = {}
local function collect(t, prefix, seen)
  for k, v in pairs(t) do
    if type(k) == "string" and not SKIP[k] and k:sub(1, 1) ~= "_" then
      if type(v) == "function" then fns[#fns + 1] = {prefix .. k, v}
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        collect(v, prefix .. k .. ".", seen)
      end
    end
  end
end
collect(casync, "casync.", {})
table.sort(fns, function(a, b) return a[1] < b[1] end)
for _, f in ipairs(fns) do
  for _, v in ipairs(helper.BAD_VALUES) do
    io.stderr:write(("calling %s(%s)\n"):format(f[1], v[1]))
    local ok, err = casync.run(function()
      local t = casync.spawn(function() return f[2](v[2]) end)
      local okw, e = pcall(casync.wait_for, t, 0.05)
      if not okw and casync.is_error(e, "timeout") and t:cancelled() then return true end
      return okw, e
    end)
    if not ok and not helper.acceptable(err) then
      print((("%s(%s) raised %s"):format(f[1], v[1], tostring(err)):gsub("\n", " | ")))
    end
  end
end
print(("swept %d functions"):format(#fns))
]==]

describe("casync (init.lua)", function()
  it("exports every function of casync.core under the same name", function()
    local core = getmetatable(package.loaded["casync.core"]).__index
    -- http: casync.http is lua/casync/http.lua, built on core.http
    local REPLACED = {http = true}
    for k, v in pairs(core) do
      assert(REPLACED[k] or casync[k] == v, ("casync.core.%s is not exported by lua/casync/init.lua " ..
        "(add `%s = core.%s,` to the table there)"):format(k, k, k))
    end
  end)

  it("refuses a wrong first argument to every function it exports, without a crash", function()
    if os.getenv("CASYNC_SANITIZED") then
      pending("the sweep runs in a plain lua5.4, which cannot load a sanitized module")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. q(dir))
    local script = dir .. "/sweep.lua"
    local f = assert(io.open(script, "w"))
    f:write(SWEEP)
    f:close()
    -- in a scratch directory: fs.mkdir("x") and the like land there
    local code, out, err = helper.sh(("cd %s && lua5.4 %s %s %s"):format(q(dir), q(script),
      q(helper.root), q(helper.build)))
    os.execute("rm -rf " .. q(dir))
    local last = err:match("([^\n]*)\n$") or ""
    assert(code == 0, ("the sweep ended with status %d while %s\n%s"):format(code, last, out))
    local swept = out:match("swept (%d+) functions")
    assert(swept and tonumber(swept) > 50, "the sweep did not finish:\n" .. out)
    -- (the sweep's own lines: casync.dump(io.stdout) writes there too)
    local problems = {}
    for line in out:gmatch("[^\n]+") do
      if line:match("^casync%.[%w_.]+%(.-%) raised ") then problems[#problems + 1] = line end
    end
    assert(#problems == 0, "errors raised from inside casync:\n" .. table.concat(problems, "\n"))
  end)
end)
