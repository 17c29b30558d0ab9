-- Regression: a plain Lua host (lua5.4, busted) that closes its state while
-- a child process casync spawned still runs.  lua_close unloads the C
-- modules (dlclose); casync.core was unloaded, and libuv with it, while
-- libuv's SIGCHLD handler stayed installed for the child, so the child's
-- exit jumped into unmapped code (SIGSEGV; busted crashed at exit after the
-- process_pool specs).  The module is linked with -z nodelete now.
local q = helper.quote

describe("closing a Lua state with casync loaded", function()
  it("keeps the module (and libuv) loaded", function()
    local code, out = helper.sh("readelf -d " .. q(helper.build .. "/lib/casync/core.so"))
    if code ~= 0 then pending("readelf is not available") return end
    assert.matches("NODELETE", out)
  end)

  it("survives a child that exits after lua_close", function()
    if os.getenv("CASYNC_SANITIZED") then
      pending("a sanitized module cannot load in a plain host")
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. q(dir))
    local src = dir .. "/host.c"
    local f = assert(io.open(src, "w"))
    f:write([[
#include <unistd.h>
#include <stdio.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, argv[1]) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 2;
  }
  lua_close(L);   /* unloads the C modules */
  usleep(400000); /* the child exits meanwhile: SIGCHLD */
  puts("survived");
  return 0;
}
]])
    f:close()
    local exe = dir .. "/host"
    local code, _, err = helper.sh(("cc -o %s %s $(pkg-config --cflags --libs lua5.4)")
      :format(q(exe), q(src)))
    if code ~= 0 then
      os.execute("rm -rf " .. q(dir))
      pending("cannot compile a Lua host here: " .. err)
      return
    end
    local lua = ([[
      package.path = %q .. package.path
      package.cpath = %q .. package.cpath
      local casync = require "casync"
      casync.run(function()
        local p = assert(casync.process.spawn({"sleep", "0.1"}))
      end)
    ]]):format(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;",
               helper.build .. "/lib/?.so;")
    local out
    code, out, err = helper.sh("env -u LD_PRELOAD " .. q(exe) .. " " .. q(lua))
    os.execute("rm -rf " .. q(dir))
    assert.equal(0, code, err)
    assert.equal("survived\n", out)
  end)
end)
