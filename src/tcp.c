/* tcp.c: casync.tcp.connect and casync.tcp.listen.
 *
 * connect resolves the host (numeric addresses without the thread pool)
 * and races its addresses the way browsers do (connect.c), all within
 * opts.timeout.  listen binds and hands the listener to server.c; a host
 * name is resolved without blocking the loop, so listening on a name
 * needs a task (a numeric address works anywhere).
 */
#include <string.h>
#include "io.h"

#define DEFAULT_BACKLOG 511

/* A port argument: an integer in 0..65535. */
lua_Integer casync__net_check_port(lua_State *L, int arg) {
  lua_Integer port = luaL_checkinteger(L, arg);
  luaL_argcheck(L, port >= 0 && port <= 65535, arg, "port must be in 0..65535");
  return port;
}

static int connect_done(lua_State *L, int status, lua_KContext kc) {
  (void)status;
  (void)kc;
  return lua_gettop(L) - 3; /* the stream, or nil and the error */
}

/* casync.tcp.connect(host, port [, opts]) -> stream | nil, err: connects
 * to host (a name, or an IPv4 or IPv6 address), racing its addresses
 * (Happy Eyeballs); opts.timeout bounds the whole of it (kind "timeout") */
static int fn_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = casync__net_check_port(L, 2);
  double timeout;
  casync_task *t;
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  timeout = casync__net_opt_seconds(L, 3, "timeout");
  lua_settop(L, 3);
  t = casync__wait_begin(L, "connect");
  return casync__tcp_connect(L, t, host, (int)port, casync__deadline(timeout),
                             timeout, connect_done, 0);
}

/* listen's frame above base: */
#define L_HANDLER 1
#define L_PORT 2
#define L_BACKLOG 3
#define L_NAME 4
#define L_WORKERS 5

/* Binds and listens on ss; pushes the server or nil and the error. */
static int do_listen(lua_State *L, int base, struct sockaddr_storage *ss) {
  casync_ctx *ctx = CASYNC_CTX(L);
  const char *fname = lua_tostring(L, base + L_NAME);
  casync_server *srv;
  int r;
  /* with workers: returns in each worker only (or with an error) */
  r = casync__workers_start(L, ctx, (int)lua_tointeger(L, base + L_WORKERS), ss,
                            fname);
  if (r < 0) {
    lua_pushnil(L);
    casync__error_uv(L, fname, r);
    return 2;
  }
  srv = casync__server_new(L, ctx, CASYNC_TCP, base + L_HANDLER);
  r = casync__tcp_bind((uv_tcp_t *)casync__server_handle(srv), ss);
  if (r == 0)
    r = casync__server_listen(L, srv, -1,
                              (int)lua_tointeger(L, base + L_BACKLOG), NULL);
  if (r < 0) {
    casync__server_close(L, srv, 0);
    lua_pushnil(L);
    casync__error_uv(L, fname, r);
    return 2;
  }
  return 1;
}

static int listen_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  struct sockaddr_storage ss;
  int base = (int)kc, r;
  (void)status;
  CASYNC_RESUMED(L, t, kc, listen_k);
  casync__woken(L, t); /* raises a cancellation */
  r = casync__net_lookup_addr(L, -1, (int)lua_tointeger(L, base + L_PORT), &ss);
  lua_pop(L, 1);
  if (r < 0) {
    lua_pushnil(L);
    casync__error_uv(L, lua_tostring(L, base + L_NAME), r);
    return 2;
  }
  return do_listen(L, base, &ss);
}

/* Listens on host:port and runs the handler at hidx for each connection
 * (tcp.listen, tls.listen): pushes the server, or nil and the error.  A
 * host name is resolved first, suspending the task (a name outside a
 * task raises, naming fname). */
int casync__tcp_listen(lua_State *L, const char *fname, const char *host,
                       int port, int hidx, int backlog, int workers) {
  struct sockaddr_storage ss;
  int base;
  hidx = lua_absindex(L, hidx);
  base = lua_gettop(L);
  lua_pushvalue(L, hidx);
  lua_pushinteger(L, port);
  lua_pushinteger(L, backlog);
  lua_pushstring(L, fname);
  lua_pushinteger(L, workers);
  if (casync__net_resolve(L, fname, host, port, &ss, listen_k, base) == 0)
    return do_listen(L, base, &ss);
  return 0; /* not reached: the task waits for the name */
}

/* casync.tcp.listen(host, port, handler [, opts]) -> server | nil, err:
 * listens on host:port (port 0: a free one, see server:port()) and runs
 * handler(stream) in a new task for each connection; opts.backlog;
 * opts.workers = n (> 1): n worker processes listen on it (workers.c).  A
 * host name (not a numeric address) is resolved without blocking the
 * loop, so it needs a task. */
static int fn_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = casync__net_check_port(L, 2), backlog;
  int workers;
  casync__check_callable(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  backlog = casync__net_opt_int(L, 4, "backlog", DEFAULT_BACKLOG);
  luaL_argcheck(L, backlog > 0 && backlog <= 0x7fffffff, 4,
                "opts.backlog must be positive");
  workers = casync__workers_opt(L, 4);
  lua_settop(L, 4);
  return casync__tcp_listen(L, "listen", host, (int)port, 3, (int)backlog,
                            workers);
}

void casync__tcp_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"connect", fn_connect}, {"listen", fn_listen}, {NULL, NULL}};
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "tcp");
}
