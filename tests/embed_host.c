/* embed_host.c: a C program that embeds Lua 5.4 and runs casync on its own
 * libuv loop, as the README describes.  It checks that tasks spawned from C
 * advance under the host's uv_run, interleaved with the host's own timer,
 * and that the loop closes cleanly after lua_close.
 *   usage: embed_host <dir with casync/init.lua>
 */
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include <lualib.h>
#include "casync.h"

static lua_State *gL;

static void on_host_timer(uv_timer_t *h) {
  /* the host's own callback, between the tasks' wake-ups */
  (void)h;
  lua_getglobal(gL, "log");
  lua_pushstring(gL, "host timer");
  lua_call(gL, 1, 0);
}

static const char tasks[] =
  "local casync = require 'casync'\n"
  "local order = {}\n"
  "function log(s) order[#order + 1] = s end\n"
  "function work(name, d) casync.sleep(d); log(name); return name end\n"
  "function result() return table.concat(order, ',') end\n";

int main(int argc, char **argv) {
  uv_loop_t loop;
  uv_timer_t timer;
  lua_State *L = luaL_newstate();
  int rc = 0, closed;
  if (argc < 2) return 2;
  gL = L;
  uv_loop_init(&loop);
  luaL_openlibs(L);
  if (casync_set_loop(L, &loop) != 0) return 3;
  luaL_requiref(L, "casync.core", luaopen_casync_core, 0);
  lua_pop(L, 1);
  if (casync_loop(L) != &loop) { fprintf(stderr, "wrong loop\n"); return 4; }
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", argv[1], argv[1]);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_dostring(L, tasks)) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); return 5; }

  lua_getglobal(L, "work"); lua_pushstring(L, "slow"); lua_pushnumber(L, 0.25);
  casync_spawn(L, 2);
  lua_getglobal(L, "work"); lua_pushstring(L, "fast"); lua_pushnumber(L, 0.01);
  casync_spawn(L, 2);
  lua_pop(L, 2);
  uv_timer_init(&loop, &timer);
  uv_update_time(&loop);
  uv_timer_start(&timer, on_host_timer, 100, 0);

  uv_run(&loop, UV_RUN_DEFAULT); /* returns once tasks and timer are done */

  luaL_dostring(L, "return result()");
  printf("%s\n", lua_tostring(L, -1));
  if (strcmp(lua_tostring(L, -1), "fast,host timer,slow") != 0) rc = 1;
  uv_close((uv_handle_t *)&timer, NULL);
  lua_close(L);                    /* closes casync's handles on our loop */
  uv_run(&loop, UV_RUN_NOWAIT);    /* lets their close callbacks run */
  closed = uv_loop_close(&loop);
  printf("loop close: %s\n", closed == 0 ? "ok" : uv_err_name(closed));
  return rc || closed != 0;
}
