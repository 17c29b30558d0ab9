-- casync-scm-1.rockspec and casync-0.1.0-1.rockspec: `luarocks make
-- --lua-version=5.4` builds the rock from a copy of this checkout into a
-- temporary tree, and a script run from that tree uses it (lua5.4 and the
-- installed casync runner).  Skipped when Debian's luarocks is not
-- installed (setup.sh does not install it: apt-get install luarocks).
local q = helper.quote

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function has_luarocks()
  return helper.sh("command -v luarocks") == 0
end

-- the version in CMakeLists.txt's project()
local function project_version()
  return read("CMakeLists.txt"):match("project%(casync VERSION ([%d.]+)")
end

describe("the rockspecs", function()
  it("name the MIT licence, and the release one this version", function()
    for _, name in ipairs({"casync-scm-1.rockspec", "casync-0.1.0-1.rockspec"}) do
      local env = {}
      assert(load(read(name), "@" .. name, "t", env))()
      assert.equal("casync", env.package)
      assert.equal("MIT", env.description.license)
      assert.equal("cmake", env.build.type)
    end
    local env = {}
    assert(load(read("casync-0.1.0-1.rockspec"), "=rockspec", "t", env))()
    assert.equal(project_version() .. "-1", env.version)
    assert.matches("^MIT License", read("LICENSE"))
  end)

  it("build and install with luarocks make into a tree a script then uses", function()
    if not has_luarocks() then
      pending("luarocks is not installed (apt-get install luarocks): the rock is not built")
      return
    end
    if os.getenv("CASYNC_SANITIZED") then
      pending("the rock is built once, in the normal run")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    local src, tree = dir .. "/src", dir .. "/tree"
    assert(os.execute("mkdir -p " .. q(src)))
    -- a copy of the checkout (with uncommitted changes, without builds):
    -- luarocks builds in the source directory
    local code, _, err = helper.sh(("git ls-files -co --exclude-standard | " ..
      "grep -v '^build' | tar -cf - -T - | tar -xf - -C %s"):format(q(src)))
    assert.equal(0, code, err)
    local out
    code, out, err = helper.sh(("cd %s && env -u LD_PRELOAD MAKEFLAGS=-j2 luarocks " ..
      "--lua-version=5.4 --tree=%s make casync-scm-1.rockspec"):format(q(src), q(tree)))
    if code ~= 0 then os.execute("rm -rf " .. q(dir)) end
    assert(code == 0, "luarocks make failed:\n" .. out .. err)
    assert.matches("casync scm%-1 is now installed", out)
    -- lua5.4 with the tree's paths finds the rock's casync, types included
    local _, paths = helper.sh(("luarocks --lua-version=5.4 --tree=%s path"):format(q(tree)))
    code, out, err = helper.sh(paths .. "\ncd / && env -u LD_PRELOAD lua5.4 -e " .. q([[
      local casync = require "casync"
      print(package.searchpath("casync", package.path))
      print(package.searchpath("casync.core", package.cpath))
      print(package.searchpath("casync.meta", package.path) ~= nil)
      casync.run(function()
        local a, b = casync.gather(function() casync.sleep(0.02) return "a" end,
                                   function() return "b" end)
        print(a .. b, casync.version)
      end)
    ]]))
    local runner_code, runner_out, runner_err = helper.sh(("env -u LD_PRELOAD %s/bin/casync -e %s")
      :format(q(tree), q("casync.sleep(0.01) print('runner', casync.version)")))
    os.execute("rm -rf " .. q(dir))
    assert.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(tree .. "/share/lua/5.4/casync/init.lua", lines[1])
    assert.equal(tree .. "/lib/lua/5.4/casync/core.so", lines[2])
    assert.equal("true", lines[3])
    assert.equal("ab\t" .. project_version(), lines[4])
    assert.equal(0, runner_code, runner_err)
    assert.equal("runner\t" .. project_version() .. "\n", runner_out)
  end)
end)
