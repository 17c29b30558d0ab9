/* preload.c: casync_preload, the Lua front end compiled into the binary.
 * The runner and libcasync.so carry lua/casync/*.lua (embedded at build
                                                  * time by cmake/embed_lua.cmake); casync_preload registers them and the C
                                                  * core in package.preload, so `require "casync"` in that Lua state loads
                                                  * this build's casync, whatever LUA_PATH says. */
#include <lauxlib.h>
#include "casync.h"

typedef struct {
  const char *name, *chunkname, *src;
  size_t len;
} casync_embedded_t;
extern const casync_embedded_t casync_embedded_lua[];

static int load_embedded(lua_State *L) {
  const casync_embedded_t *e = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, e->src, e->len, e->chunkname) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

/* Registers casync.core and the embedded Lua modules in package.preload. */
CASYNC_API void casync_preload(lua_State *L) {
  const casync_embedded_t *e;
  luaL_checkstack(L, 4, NULL);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_casync_core);
  lua_setfield(L, -2, "casync.core");
  for (e = casync_embedded_lua; e->name; e++) {
    lua_pushlightuserdata(L, (void *)e);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, e->name);
  }
  lua_pop(L, 1);
}
