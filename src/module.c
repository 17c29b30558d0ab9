/* module.c: luaopen_casync_core, the entry of require "casync.core".
 * Each area registers its functions with the loop context as upvalue 1. */
#include "internal.h"

/* luaL_setfuncs with the context as the single upvalue. */
void casync__setfuncs(lua_State *L, const luaL_Reg *l) {
  casync__loop_push(L);
  luaL_setfuncs(L, l, 1);
}

CASYNC_API int luaopen_casync_core(lua_State *L) {
  luaL_checkversion(L);
  casync__loop_init(L);
  lua_pop(L, 1);
  lua_newtable(L);
  casync__error_open(L);
  casync__loop_open(L);
  casync__timer_open(L);
  casync__task_open(L);
  casync__combinators_open(L);
  casync__channel_open(L);
  casync__sync_open(L);
  casync__thread_open(L); /* after combinators: uses gather */
  casync__net_open(L); /* first of the network files: makes their state */
  casync__stream_open(L);
  casync__stdio_open(L);
  casync__server_open(L);
  casync__tcp_open(L);
  casync__pipe_open(L);
  casync__dns_open(L);
  casync__http_open(L); /* after net */
  casync__fs_open(L);
  casync__signal_open(L);
  casync__process_open(L);
  casync__watchdog_open(L);
  casync__wrap_open(L);
  lua_pushliteral(L, CASYNC_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
