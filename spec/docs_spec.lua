-- The documents: every ```lua block of README.md and examples/README.md
-- either runs as written (under lua5.4 and under the casync runner) or is
-- marked as a signature listing (an HTML comment `<!-- signatures -->` on
-- the line before the fence) whose casync names and methods all exist;
-- docs/api.md is what scripts/apidoc.lua makes of lua/casync/meta.lua;
-- the man page renders cleanly and covers the runner's options; no
-- document points outside the repository; the versions agree.
local casync = require "casync"
local q = helper.quote

local DOCS = {"README.md", "examples/README.md"}
local SIGNATURES = "<!-- signatures -->"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- blocks(path) -> {{lang =, code =, line =, signatures = bool}, ...}
local function blocks(path)
  local out, cur, prev = {}, nil, nil
  local n = 0
  for line in (read(path) .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur = nil
      else
        cur.code = cur.code .. line .. "\n"
      end
    else
      local lang = line:match("^```(%S*)")
      if lang then
        cur = {lang = lang, code = "", line = n, signatures = prev == SIGNATURES}
      end
      if line:match("%S") then prev = line end
    end
  end
  return out
end

local function lua_blocks()
  local all = {}
  for _, doc in ipairs(DOCS) do
    for _, b in ipairs(blocks(doc)) do
      if b.lang == "lua" then
        b.doc = doc
        all[#all + 1] = b
      end
    end
  end
  return all
end

-- The method names casync objects have (every class), and Lua's string
-- methods (s:upper() in a listing).
local function all_methods()
  local names = {}
  local function add(t)
    for k, v in pairs(t or {}) do
      if type(k) == "string" and type(v) == "function" then names[k] = true end
    end
  end
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^casync%.") and type(v) == "table" then
      add(rawget(v, "__index") ~= nil and type(v.__index) == "table" and v.__index or nil)
      add(rawget(v, "methods"))
    end
  end
  add(getmetatable(casync.rate_limiter(1)))
  add(getmetatable(casync.process_pool{size = 1}))
  add(getmetatable(casync.http.session{}))
  add(string)
  names.json = true -- req:json() and response:json() (their __index is a function)
  return names
end

-- resolve("casync.fs.stat") -> whether the name exists in casync, or in a
-- module of its own ("casync.timeline.chart": require "casync.timeline")
local function resolve(path)
  local parts = {}
  for part in path:gmatch("[^.]+") do parts[#parts + 1] = part end
  local function walk(v, from)
    for i = from, #parts do
      if type(v) ~= "table" then return false end
      v = v[parts[i]]
      if v == nil then return false end
    end
    return true
  end
  if walk({casync = casync}, 1) then return true end
  local ok, mod = pcall(require, "casync." .. (parts[2] or ""))
  return ok and type(mod) == "table" and walk(mod, 3)
end

-- The problems with one signature listing: names that do not exist.
local function check_signatures(b, methods)
  local problems = {}
  local aliases = {}
  for alias, path in b.code:gmatch("local%s+([%w_]+)%s*=%s*(casync[%w_.]*)") do
    aliases[alias] = path
  end
  local function bad(what)
    problems[#problems + 1] = ("%s:%d: %s"):format(b.doc, b.line, what)
  end
  for path in b.code:gmatch("casync%.[%w_.]*[%w_]") do
    if not resolve(path) then bad(path .. " does not exist") end
  end
  for alias, path in pairs(aliases) do
    for name in b.code:gmatch("%f[%w_]" .. alias .. "%.([%w_]+)") do
      if not resolve(path .. "." .. name) then
        bad(("%s.%s (%s.%s) does not exist"):format(alias, name, path, name))
      end
    end
  end
  for name in b.code:gmatch("[%w_%]]:([%w_]+)%s*[%({\"]") do
    if not methods[name] then bad((":%s is no method of any casync object"):format(name)) end
  end
  return problems
end

-- run(code, how) -> exit code, stdout, stderr of the block run as a script
local function run(code, how)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir " .. q(dir))
  local path = dir .. "/block.lua"
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local cmd
  if how == "lua5.4" then
    cmd = ("cd %s && env -u LD_PRELOAD LUA_PATH=%s LUA_CPATH=%s timeout 30 lua5.4 block.lua"):format(q(dir),
      q(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;"),
      q(helper.build .. "/lib/?.so;;"))
  else
    cmd = ("cd %s && env -u LD_PRELOAD timeout 30 %s block.lua"):format(q(dir),
      q(helper.build .. "/casync"))
  end
  local c, out, err = helper.sh(cmd)
  os.execute("rm -rf " .. q(dir))
  return c, out, err
end

describe("the documents", function()
  it("have only runnable ```lua blocks and marked signature listings", function()
    local runnable, listings = 0, 0
    for _, b in ipairs(lua_blocks()) do
      if b.signatures then listings = listings + 1 else runnable = runnable + 1 end
    end
    assert.is_true(runnable >= 4, "few runnable blocks: " .. runnable)
    assert.is_true(listings >= 1)
  end)

  for _, b in ipairs(lua_blocks()) do
    if b.signatures then
      it(("%s:%d: a signature listing naming only what exists"):format(b.doc, b.line), function()
        local problems = check_signatures(b, all_methods())
        assert(#problems == 0, table.concat(problems, "\n"))
      end)
    else
      it(("%s:%d: runs as written under lua5.4 and the casync runner"):format(b.doc, b.line), function()
        assert(load(b.code, "=" .. b.doc), "does not compile")
        -- lua5.4 cannot load a sanitized module (the runner links the
        -- sanitizers itself): under them, the runner only
        local hows = os.getenv("CASYNC_SANITIZED") and {"casync"} or {"lua5.4", "casync"}
        for _, how in ipairs(hows) do
          local code, out, err = run(b.code, how)
          assert(code == 0, ("%s:%d under %s exited %d:\n%s%s"):format(b.doc, b.line, how,
            code, out, err))
          assert(err == "", ("%s:%d under %s wrote to stderr:\n%s"):format(b.doc, b.line, how, err))
        end
      end)
    end
  end

  it("docs/api.md is what scripts/apidoc.lua makes of lua/casync/meta.lua", function()
    local apidoc = dofile("scripts/apidoc.lua")
    local want = apidoc.render(apidoc.parse("lua/casync/meta.lua"))
    assert(read("docs/api.md") == want, "docs/api.md is out of date: run " ..
      "`lua5.4 scripts/apidoc.lua > docs/api.md` and commit it")
  end)

  it("point nowhere outside the repository, and their links resolve", function()
    local files = {"README.md", "examples/README.md", "bench/README.md", "docs/api.md",
                   "ARCHITECTURE.md"}
    local problems = {}
    for _, path in ipairs(files) do
      local text = read(path)
      local dir = path:match("^(.*)/") or "."
      if text:find("../shared", 1, true) or text:find("/work/", 1, true) then
        problems[#problems + 1] = path .. " names a path outside the repository"
      end
      for target in text:gmatch("%]%(([^)#]+)[)#]") do
        if not target:match("^%a+:") then
          local full = dir .. "/" .. target
          -- normalize a/b/../c
          repeat
            local before = full
            full = full:gsub("[^/]+/%.%./", "", 1)
          until full == before
          full = full:gsub("^%./", "")
          if full:match("^%.%./") or not io.open(full) then
            problems[#problems + 1] = ("%s links to %s, which is not in the repository")
              :format(path, target)
          end
        end
      end
    end
    assert(#problems == 0, table.concat(problems, "\n"))
  end)

  it("the README names the MIT licence, the API reference and the man page", function()
    local readme = read("README.md")
    assert.truthy(readme:find("MIT", 1, true))
    assert.truthy(readme:find("(LICENSE)", 1, true))
    assert.truthy(readme:find("(docs/api.md)", 1, true))
    assert.truthy(readme:find("(docs/casync.1)", 1, true))
  end)

  it("the man page renders without warnings and covers every option of --help", function()
    local code, _, err = helper.sh("env -u LD_PRELOAD man --warnings -l docs/casync.1 >/dev/null")
    if code == 127 or err:find("not found") then pending("man is not installed") return end
    assert.equal(0, code, err)
    assert.equal("", err)
    local page = read("docs/casync.1"):gsub("\\%-", "-")
    local _, usage = helper.sh(q(helper.build .. "/casync") .. " --help")
    for opt in usage:gmatch("\n%s+(%-%-?[%w-]+)") do
      assert(page:find(opt, 1, true), "docs/casync.1 does not mention " .. opt)
    end
    for _, word in ipairs({"CASYNC_DEBUG", "EXIT STATUS", "130"}) do
      assert(page:find(word, 1, true), "docs/casync.1 does not mention " .. word)
    end
    assert.truthy(page:find('"casync ' .. casync.version .. '"', 1, true))
  end)

  it("casync.h, CMakeLists.txt and casync.version agree on the version", function()
    local h = read("src/casync.h")
    local major = h:match("#define CASYNC_VERSION_MAJOR (%d+)")
    local minor = h:match("#define CASYNC_VERSION_MINOR (%d+)")
    local patch = h:match("#define CASYNC_VERSION_PATCH (%d+)")
    local v = ("%s.%s.%s"):format(major, minor, patch)
    assert.equal(v, h:match('#define CASYNC_VERSION "([%d.]+)"'))
    assert.equal(v, read("CMakeLists.txt"):match("project%(casync VERSION ([%d.]+)"))
    assert.equal(v, casync.version)
  end)
end)
