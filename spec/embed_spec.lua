-- casync.h: a C host embeds Lua, installs its own loop with casync_set_loop,
-- spawns tasks with casync_spawn and runs them with its own uv_run; and the
-- README's embedding snippet builds, as written, against an installed
-- libcasync with pkg-config.
local build = os.getenv("CASYNC_BUILD") or "build"
local q = helper.quote

-- the README's first ```c block
local function readme_snippet()
  local f = assert(io.open("README.md"))
  local text = f:read("a")
  f:close()
  local snippet = text:match("\n```c\n(.-\n)```\n")
  assert(snippet, "README.md has no ```c block")
  return snippet
end

describe("the C embedding API", function()
  it("runs tasks on the host's loop, interleaved with its own handles", function()
    local p = io.popen(build .. "/embed_host lua 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.equal("fast,host timer,slow\nloop close: ok\n", out)
    assert.is_true(ok)
  end)

  it("builds the README's snippet with cc host.c $(pkg-config --cflags --libs casync)", function()
    if os.getenv("CASYNC_SANITIZED") then
      pending("a sanitized libcasync needs the sanitizers linked in; the normal run builds it")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    local prefix = dir .. "/prefix"
    assert(os.execute("mkdir -p " .. q(prefix)))
    local code, out, err = helper.sh(("cmake --install %s --prefix %s"):format(
      q(helper.build), q(prefix)))
    assert(code == 0, "cmake --install failed:\n" .. out .. err)
    for _, file in ipairs({"lib/libcasync.so", "lib/libcasync.so.0", "include/casync.h",
                           "lib/pkgconfig/casync.pc", "share/man/man1/casync.1",
                           "share/lua/5.4/casync/meta.lua", "lib/lua/5.4/casync/core.so"}) do
      assert(io.open(prefix .. "/" .. file), "not installed: " .. file)
    end
    local f = assert(io.open(dir .. "/host.c", "w"))
    f:write(readme_snippet())
    f:close()
    -- as the README says, with the temporary prefix's casync.pc
    code, out, err = helper.sh(("cd %s && PKG_CONFIG_PATH=%s/lib/pkgconfig " ..
      "cc -Wall -Wextra -Werror host.c $(PKG_CONFIG_PATH=%s/lib/pkgconfig " ..
      "pkg-config --cflags --libs casync)"):format(q(dir), q(prefix), q(prefix)))
    assert(code == 0, "the snippet does not compile:\n" .. out .. err)
    local soname
    code, soname = helper.sh("readelf -d " .. q(prefix .. "/lib/libcasync.so"))
    -- run with no LUA_PATH: require "casync" is libcasync's own
    code, out, err = helper.sh(("cd %s && env -u LD_PRELOAD -u LUA_PATH -u LUA_PATH_5_4 " ..
      "LD_LIBRARY_PATH=%s/lib ./a.out"):format(q(dir), q(prefix)))
    os.execute("rm -rf " .. q(dir))
    assert.equal(0, code, err)
    assert.equal("host: its own timer fired\ntask: woke up after 0.1 s\n", out)
    assert.equal("", err)
    assert.matches("SONAME%)%s+Library soname: %[libcasync%.so%.0%]", soname)
  end)
end)
