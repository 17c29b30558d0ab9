-- lua/casync/meta.lua: the LuaLS annotations of the public API, checked
-- against the real module: every public function and method is annotated,
-- nothing is annotated that does not exist, and each annotation says what
-- the function promises and documents exactly its parameters.  When a
-- function is added to casync, the failure says what to add where.
local casync = require "casync"
local apidoc = dofile("scripts/apidoc.lua")

local META = "lua/casync/meta.lua"
local api = apidoc.parse(META)

-- Metatables in the registry that are not part of the API (no methods a
-- program calls): objects casync uses inside.
local INTERNAL = {
  ["casync.HttpParser"] = true, -- casync.core.http.parser, for http.lua
}

-- The classes written in Lua: their annotation name -> a function giving
-- an instance (their metatables are not in the registry).
local LUA_CLASSES = {
  ["casync.RateLimiter"] = function() return casync.rate_limiter(1) end,
  ["casync.ProcessPool"] = function() return casync.process_pool{size = 1} end,
  ["casync.http.Session"] = function() return casync.http.session{} end,
  ["casync.WebSocket"] = function()
    return casync.run(function()
      local srv = assert(casync.http.serve("127.0.0.1", 0, function(req)
        local ws = assert(req:websocket())
        ws:recv()
      end))
      local ws = assert(casync.http.websocket(("ws://127.0.0.1:%d/"):format(srv:port())))
      ws:close()
      srv:close()
      return ws
    end)
  end,
}

-- A request and a response, from a real exchange on loopback.
local function http_objects()
  local req, resp
  casync.run(function()
    local srv = assert(casync.http.serve("127.0.0.1", 0, function(r)
      req = r
      return "ok"
    end))
    resp = assert(casync.http.get(srv:url("/x")))
    srv:close()
    casync.http.close_idle()
  end)
  return req, resp
end

-- The methods of an object's class: a table of name -> true.  nil when the
-- class cannot be listed (an __index function, as the HTTP request's).
local function methods_of(mt)
  local idx = rawget(mt, "__index")
  if type(idx) == "function" and type(rawget(mt, "methods")) == "table" then
    idx = rawget(mt, "methods") -- casync.Process: fields, then methods
  end
  if type(idx) ~= "table" then return nil end
  local names = {}
  for k, v in pairs(idx) do
    if type(k) == "string" and type(v) == "function" and not k:match("^_") then
      names[k] = true
    end
  end
  return names
end

-- Every public function: "casync.x" or "casync.mod.x" -> true.
local function real_functions()
  local names = {}
  for k, v in pairs(casync) do
    if type(k) == "string" and not k:match("^_") then
      if type(v) == "function" then names["casync." .. k] = true
      elseif type(v) == "table" and getmetatable(v) == nil then
        for k2, v2 in pairs(v) do
          if type(k2) == "string" and type(v2) == "function" and not k2:match("^_") then
            names["casync." .. k .. "." .. k2] = true
          end
        end
      end
    end
  end
  return names
end

-- Every public class: annotation name -> {methods = set | nil, instance =}
local function real_classes()
  local classes = {}
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^casync%.") and type(v) == "table" and
       not INTERNAL[k] then
      local m = methods_of(v)
      if m and next(m) then classes[k] = {methods = m} end
    end
  end
  for name, make in pairs(LUA_CLASSES) do
    local obj = make()
    classes[name] = {methods = methods_of(getmetatable(obj)), instance = obj}
  end
  local req, resp = http_objects()
  classes["casync.http.Request"] = {methods = methods_of(getmetatable(req)), instance = req}
  classes["casync.http.Response"] = {methods = methods_of(getmetatable(resp)), instance = resp}
  return classes
end

local annotated = {}
for _, e in ipairs(api.entries) do annotated[e.key] = e end
local annotated_classes = {}
for _, s in ipairs(api.sections) do annotated_classes[s.name] = s end

-- the local name meta.lua uses for a class: casync.http.Session -> Session
local function short(class) return class:match("([%w_]+)$") end

describe("the LuaLS annotations (lua/casync/meta.lua)", function()
  it("annotate every public function of casync", function()
    local missing = {}
    for name in pairs(real_functions()) do
      if not annotated[name] then
        missing[#missing + 1] = ("%s exists but has no annotation: add to %s a `---` line " ..
          "saying what it promises, its ---@param and ---@return lines, and " ..
          "`function %s(...) end`"):format(name, META, name)
      end
    end
    table.sort(missing)
    assert(#missing == 0, table.concat(missing, "\n"))
  end)

  it("annotate every method of every public class", function()
    local missing = {}
    for class, c in pairs(real_classes()) do
      if not annotated_classes[class] then
        missing[#missing + 1] = ("class %s (its metatable is in the registry) has no " ..
          "annotation: add `---@class %s` and `local %s = {}` to %s, with its methods " ..
          "(or, if no program calls its methods, list it in INTERNAL in " ..
          "spec/annotations_spec.lua)"):format(class, class, short(class), META)
      end
      for m in pairs(c.methods or {}) do
        if not annotated[class .. ":" .. m] then
          missing[#missing + 1] = ("%s:%s exists but has no annotation: add `function " ..
            "%s:%s(...) end`, with a `---` line saying what it promises and its " ..
            "---@param/---@return lines, after `---@class %s` in %s")
            :format(class, m, short(class), m, class, META)
        end
      end
    end
    table.sort(missing)
    assert(#missing == 0, table.concat(missing, "\n"))
  end)

  it("annotate nothing that does not exist", function()
    local functions, classes = real_functions(), real_classes()
    local extra = {}
    for _, e in ipairs(api.entries) do
      local class, m = e.key:match("^(.+):([%w_]+)$")
      local exists
      if class then
        local c = classes[class]
        if c and c.methods then exists = c.methods[m]
        elseif c and c.instance then exists = type(c.instance[m]) == "function"
        end
      elseif e.key:match("^casync%.uv%.") and casync.uv == nil then
        exists = true -- luv is not installed here: cannot tell
      else
        exists = functions[e.key]
      end
      if not exists then
        extra[#extra + 1] = ("%s:%d annotates %s, which casync does not have (remove it, " ..
          "or fix its name)"):format(META, e.line, e.key)
      end
    end
    assert(#extra == 0, table.concat(extra, "\n"))
  end)

  it("say what each function promises and document exactly its parameters", function()
    local bad = {}
    for _, e in ipairs(api.entries) do
      if #e.doc == 0 or e.doc[1]:match("^%s*$") then
        bad[#bad + 1] = ("%s:%d: %s has no `---` line saying what it promises")
          :format(META, e.line, e.key)
      end
      local documented = {}
      for _, p in ipairs(e.param_docs) do
        local name = p.name:gsub("%?$", "")
        documented[name] = true
      end
      local params = {}
      for _, p in ipairs(e.params) do
        params[p] = true
        if not documented[p] then
          bad[#bad + 1] = ("%s:%d: %s has no ---@param for %s"):format(META, e.line, e.key, p)
        end
      end
      for name in pairs(documented) do
        if not params[name] then
          bad[#bad + 1] = ("%s:%d: %s documents a parameter %s it does not have")
            :format(META, e.line, e.key, name)
        end
      end
    end
    assert(#bad == 0, table.concat(bad, "\n"))
  end)

  it("is a ---@meta file named casync, and init.lua names its functions", function()
    local f = assert(io.open(META))
    assert.equal("---@meta casync", f:read("l"))
    f:close()
    f = assert(io.open("lua/casync/init.lua"))
    local init = f:read("a")
    f:close()
    assert.falsy(init:find("pairs%(core%)"), "init.lua copies casync.core with pairs")
    local core = getmetatable(package.loaded["casync.core"]).__index
    for k, v in pairs(core) do
      if type(v) == "function" then
        assert(init:find(("%s = core%%.%s,"):format(k, k)),
          ("lua/casync/init.lua does not name casync.core.%s: add `%s = core.%s,`")
          :format(k, k, k))
      end
    end
  end)
end)
