-- scripts/apidoc.lua: the API reference, generated from the LuaLS
-- annotations in lua/casync/meta.lua.
--
--   lua5.4 scripts/apidoc.lua [lua/casync/meta.lua] > docs/api.md
--
-- Also a library (dofile it): parse(path) -> api, render(api) -> markdown.
-- spec/annotations_spec.lua checks the annotations against the real module
-- with parse; spec/docs_spec.lua checks that docs/api.md is render's output.
local M = {}

-- parse(path) -> {sections = {...}, entries = {...}}.  A section is a module
-- or a class: {name =, kind = "module" | "class", doc = {lines}, fields =
-- {{name, type, doc}}, line =}.  An entry is a function: {key =
-- "casync.fs.stat" | "casync.Task:wait", section =, name =, params =
-- {names in the function line}, doc = {lines}, param_docs = {{name, type,
-- doc}}, returns = {{type, name, doc}}, line =}.
function M.parse(path)
  local sections, entries = {}, {}
  local locals = {}   -- local name -> class name
  local block = {}    -- the --- lines since the last code line
  local pending       -- a section whose table line has not come yet
  local current       -- the section functions go to
  local n = 0
  local function flush() block = {} end
  -- a type expression at the start of s (brackets balanced: table and
  -- function types have spaces), and the rest
  local function split_type(s)
    local depth, i = 0, 1
    while i <= #s do
      local c = s:sub(i, i)
      if c:match("[%(%{%<%[]") then depth = depth + 1
      elseif c:match("[%)%}%>%]]") then depth = depth - 1
      elseif c:match("%s") and depth == 0 then
        -- "fun(...): type" and "{...}|nil" go on after a colon or a bar
        if not s:sub(1, i - 1):match("[:|,]$") then break end
      end
      i = i + 1
    end
    return s:sub(1, i - 1), (s:sub(i):gsub("^%s+", ""))
  end
  local function docs(b)
    local doc, params, returns, fields, class = {}, {}, {}, {}, nil
    for _, l in ipairs(b) do
      local tag, rest = l:match("^@(%w+)%s*(.*)$")
      if not tag then doc[#doc + 1] = l
      elseif tag == "param" or tag == "field" then
        local name, r = rest:match("^(%S+)%s+(.*)$")
        local ty, d = split_type(r)
        local list = tag == "param" and params or fields
        list[#list + 1] = {name = name, type = ty, doc = d}
      elseif tag == "return" then
        local ty, r = split_type(rest)
        local name, d = r:match("^(%S*)%s*(.*)$")
        -- a return's name is one word; more words are its description
        if name ~= "..." and not name:match("^[%a_][%w_]*$") then name, d = "", r end
        if d ~= "" and name ~= "" and name ~= "..." and not r:match("^%S+%s") then d = "" end
        returns[#returns + 1] = {type = ty, name = name, doc = d}
      elseif tag == "class" then class = rest:match("^(%S+)")
      end
    end
    return doc, params, returns, fields, class
  end
  for line in io.lines(path) do
    n = n + 1
    local ann = line:match("^%-%-%-(.*)$")
    if ann then
      block[#block + 1] = ann:gsub("^ ", "", 1)
    else
      local doc, params, returns, fields, class = docs(block)
      if class then
        pending = {name = class, doc = doc, fields = fields, line = n - 1}
      end
      local lname = line:match("^local ([%w_]+) = {}")
      local mname = line:match("^(casync[%w_.]*) = {}")
      if pending and (lname or mname) then
        pending.kind = (lname and lname ~= "casync") and "class" or "module"
        sections[#sections + 1] = pending
        current = pending
        if lname then locals[lname] = pending.name end
        pending = nil
      end
      local head, sep, name, args = line:match("^function ([%w_.]+)([.:])([%w_]+)%(([^)]*)%)")
      if head then
        local key
        if sep == ":" then key = (locals[head] or head) .. ":" .. name
        else key = head .. "." .. name end
        local names = {}
        for a in args:gmatch("[^,%s]+") do names[#names + 1] = a end
        entries[#entries + 1] = {key = key, section = current and current.name,
          name = name, params = names, doc = doc, param_docs = params,
          returns = returns, line = n, method = sep == ":"}
      end
      flush()
    end
  end
  return {sections = sections, entries = entries}
end

-- GitHub's anchor for a heading.
local function anchor(s)
  return (s:lower():gsub("[^%w%- ]", ""):gsub(" ", "-"))
end

local function signature(e)
  local sig = e.key .. "(" .. table.concat(e.params, ", ") .. ")"
  if #e.returns > 0 then
    local r = {}
    for i, ret in ipairs(e.returns) do
      r[i] = ret.name ~= "" and ret.name ~= "..." and ret.name or ret.type
      if ret.name == "..." then r[i] = "..." end
    end
    sig = sig .. " -> " .. table.concat(r, ", ")
  end
  return sig
end

-- render(api) -> the reference as Markdown.
function M.render(api)
  local out = {}
  local function w(s) out[#out + 1] = s or "" end
  w("# casync API reference")
  w()
  w("Generated from the annotations in [lua/casync/meta.lua](../lua/casync/meta.lua)")
  w("by `lua5.4 scripts/apidoc.lua > docs/api.md`; do not edit it by hand")
  w("(spec/docs_spec.lua fails when it is out of date). Editors that read")
  w("LuaLS annotations (lua-language-server) show the same types and")
  w("descriptions as you type. The [README](../README.md) explains the ideas;")
  w("this lists every function and method.")
  w()
  w("## Contents")
  w()
  for _, s in ipairs(api.sections) do
    local title = (s.kind == "class" and "class " or "") .. s.name
    w(("- [%s](#%s)"):format(title, anchor(title)))
  end
  for _, s in ipairs(api.sections) do
    w()
    local title = (s.kind == "class" and "class " or "") .. s.name
    w("## " .. title)
    w()
    if #s.doc > 0 then
      w(table.concat(s.doc, "\n"))
      w()
    end
    if #s.fields > 0 then
      for _, f in ipairs(s.fields) do
        w(("- `%s` (`%s`)%s"):format(f.name, f.type, f.doc ~= "" and ": " .. f.doc or ""))
      end
      w()
    end
    for _, e in ipairs(api.entries) do
      if e.section == s.name then
        w("### `" .. signature(e) .. "`")
        w()
        if #e.doc > 0 then
          w(table.concat(e.doc, "\n"))
          w()
        end
        for _, p in ipairs(e.param_docs) do
          w(("- `%s`: `%s`%s"):format(p.name, p.type, p.doc ~= "" and ", " .. p.doc or ""))
        end
        for _, r in ipairs(e.returns) do
          local name = r.name ~= "" and r.name or "result"
          w(("- returns `%s`: `%s`%s"):format(name, r.type, r.doc ~= "" and ", " .. r.doc or ""))
        end
        if #e.param_docs + #e.returns > 0 then w() end
      end
    end
  end
  return table.concat(out, "\n"):gsub("\n+$", "") .. "\n"
end

if arg and arg[0] and arg[0]:match("apidoc%.lua$") and not package.loaded["busted"] then
  local path = arg[1] or "lua/casync/meta.lua"
  io.write(M.render(M.parse(path)))
end

return M
