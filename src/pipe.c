/* pipe.c: Unix-domain stream sockets: casync.pipe.connect and
 * casync.pipe.listen.  The streams and servers are the same as TCP's
 * (stream.c, server.c); addresses are socket paths.  A server removes its
 * socket file when it closes, and refuses a path that already exists.
 */
#include <string.h>
#include <unistd.h>
#include "io.h"

#define DEFAULT_BACKLOG 511

/* sun_path holds 108 bytes with the terminating zero on Linux */
#define MAX_PATH 107

static const char *check_path(lua_State *L, int arg) {
  size_t len;
  const char *path = luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, len > 0, arg, "path must not be empty");
  luaL_argcheck(L, len <= MAX_PATH, arg, "path is too long for a socket");
  luaL_argcheck(L, strlen(path) == len, arg, "path contains a zero byte");
  return path;
}

static int connect_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  int st;
  (void)status;
  CASYNC_RESUMED(L, t, kc, connect_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    casync__timeout_error(L, "connect",
                          casync__net_opt_seconds(L, 2, "timeout"));
    return 2;
  }
  st = casync__stream_connect_status(L, 3);
  if (st == 0) {
    lua_settop(L, 3);
    if (t->flags & TF_CANCEL_PENDING) { /* connected: no leak on cancel */
      casync__stream_close(casync__stream_of(L, 3), 1);
      return casync__raise_cancel(L, t);
    }
    return 1;
  }
  if (casync__stream_of(L, 3)) casync__stream_close(casync__stream_of(L, 3), 1);
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  lua_pushnil(L);
  casync__error_uv(L, "connect", st);
  return 2;
}

/* casync.pipe.connect(path [, opts]) -> stream | nil, err: connects to the
 * Unix-domain socket at path; opts.timeout */
static int fn_connect(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  const char *path = check_path(L, 1);
  double timeout;
  casync_task *t;
  int r;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  timeout = casync__net_opt_seconds(L, 2, "timeout");
  lua_settop(L, 2);
  t = casync__wait_begin(L, "connect");
  if (!casync__stream_new(L, ctx, CASYNC_PIPE, &r)) {
    lua_pushnil(L);
    casync__error_uv(L, "connect", r);
    return 2;
  }
  return casync__stream_connect(L, t, 3, NULL, path, casync__deadline(timeout),
                                connect_k, 0);
}

/* casync.pipe.listen(path, handler [, opts]) -> server | nil, err: listens
 * on a new Unix-domain socket at path and runs handler(stream) in a new
 * task for each connection; opts.backlog */
static int fn_listen(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  const char *path = check_path(L, 1);
  lua_Integer backlog;
  casync_server *srv;
  int r;
  casync__check_callable(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  backlog = casync__net_opt_int(L, 3, "backlog", DEFAULT_BACKLOG);
  luaL_argcheck(L, backlog > 0 && backlog <= 0x7fffffff, 3,
                "opts.backlog must be positive");
  lua_settop(L, 3);
  srv = casync__server_new(L, ctx, CASYNC_PIPE, 2);
  r = uv_pipe_bind((uv_pipe_t *)casync__server_handle(srv), path);
  if (r == 0) {
    r = casync__server_listen(L, srv, -1, (int)backlog, path);
    if (r < 0) unlink(path); /* the file this bind made */
  }
  if (r < 0) {
    casync__server_close(L, srv, 0);
    lua_pushnil(L);
    casync__error_uv(L, "listen", r);
    return 2;
  }
  return 1;
}

void casync__pipe_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"connect", fn_connect}, {"listen", fn_listen}, {NULL, NULL}};
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "pipe");
}
