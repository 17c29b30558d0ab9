/* module.c: luaopen_casync_core, the entry of require "casync.core".
 * Makes the per-state context, then lets each part register its functions
 * (each with the context as upvalue 1), layer by layer. */
#include "http.h"

CASYNC_API int luaopen_casync_core(lua_State *L) {
  casync_ctx *ctx;
  luaL_checkversion(L);
  casync__ctx_init(L);
  ctx = *(casync_ctx **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  lua_newtable(L);
  casync__error_open(L);
  /* the scheduler */
  casync__sched_open(L, ctx);
  casync__loop_open(L);
  casync__timer_open(L);
  casync__sleep_until_open(L);
  casync__cscope_open(L);
  casync__scope_open(L);
  casync__tcontext_open(L);
  casync__trace_open(L);
  casync__task_open(L);
  casync__debug_open(L); /* adds task:info */
  casync__watchdog_open(L);
  /* primitives */
  casync__combinators_open(L);
  casync__channel_open(L);
  casync__select_open(L);
  casync__queue_open(L);
  casync__sync_open(L);
  casync__thread_open(L);
  casync__wrap_open(L);
  /* I/O */
  casync__net_open(L);
  casync__stream_open(L); /* makes casync.stream, which stdio.c extends */
  casync__stdio_open(L);
  casync__server_open(L);
  casync__tcp_open(L);
  casync__workers_open(L);
  casync__pipe_open(L);
  casync__dns_open(L);
  casync__tls_open(L);
  casync__udp_open(L);
  casync__fs_open(L);
  casync__signal_open(L);
  casync__process_open(L);
  /* HTTP */
  casync__http_open(L);
#ifdef CASYNC_TESTING
  casync__ctx_push(L);
  lua_pushcclosure(L, casync__ctx_debug, 1);
  lua_setfield(L, -2, "_debug");
#endif
  lua_pushliteral(L, CASYNC_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
