/* tcp.c: casync.tcp.connect and casync.tcp.listen.
 *
 * connect resolves the host (numeric addresses without the thread pool),
 * then tries each address in turn until one accepts, all within
 * opts.timeout.  listen binds and hands the listener to server.c.  A
 * host name given to listen is resolved synchronously (it is usually
 * "localhost" or a numeric address).
 */
#include <stdio.h>
#include <string.h>
#include "io.h"

#define DEFAULT_BACKLOG 511

/* connect's stack: [1 host][2 port][3 opts][4 deadline][5 addresses][6 last
 * error][7 stream being connected] */
#define C_DEADLINE 4
#define C_ADDRS 5
#define C_LASTERR 6
#define C_STREAM 7

static lua_Integer check_port(lua_State *L, int arg) {
  lua_Integer port = luaL_checkinteger(L, arg);
  luaL_argcheck(L, port >= 0 && port <= 65535, arg,
                "port must be in 0..65535");
  return port;
}

/* The i-th address to try (0-based), or NULL past the end. */
static const struct sockaddr *nth_addr(lua_State *L, lua_KContext i) {
  int status;
  struct addrinfo *ai = casync__dns_result(L, C_ADDRS, &status);
  if (status == UV_EINVAL) /* a numeric address: one sockaddr_storage */
    return i == 0 ? lua_touserdata(L, C_ADDRS) : NULL;
  for (; ai; ai = ai->ai_next)
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && i-- == 0)
      return ai->ai_addr;
  return NULL;
}

static int connect_k(lua_State *L, int status, lua_KContext kc);

/* Tries the addresses from the i-th on. */
static int try_from(lua_State *L, casync_task *t, lua_KContext i) {
  casync_ctx *ctx = CASYNC_CTX(L);
  uint64_t deadline = (uint64_t)lua_tointeger(L, C_DEADLINE);
  const struct sockaddr *sa;
  for (; (sa = nth_addr(L, i)) != NULL; i++) {
    int r;
    lua_settop(L, C_LASTERR);
    if (!casync__stream_new(L, ctx, CASYNC_TCP, &r)) {
      lua_pushinteger(L, r);
      lua_replace(L, C_LASTERR);
      continue;
    }
    r = casync__stream_connect(L, t, C_STREAM, sa, NULL, deadline, connect_k,
                               i);
    /* it could not start (EMFILE, EAFNOSUPPORT ...): the next one */
    casync__stream_close(casync__stream_of(L, C_STREAM), 0);
    lua_pushinteger(L, r);
    lua_replace(L, C_LASTERR);
  }
  lua_pushnil(L);
  casync__error_uv(L, "connect", (int)lua_tointeger(L, C_LASTERR));
  return 2;
}

/* Pushes nil and the timeout error of connect (opts at 3). */
static int timed_out(lua_State *L) {
  lua_pushnil(L);
  casync__timeout_error(L, "connect", casync__net_opt_seconds(L, 3, "timeout"));
  return 2;
}

static int connect_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  casync_stream *s = casync__stream_of(L, C_STREAM);
  int st;
  (void)status;
  CASYNC_RESUMED(L, t, kc, connect_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) return timed_out(L);
  st = casync__stream_connect_status(L, C_STREAM);
  if (st == 0) {
    uv_tcp_nodelay(&s->u.tcp, 1);
    lua_settop(L, C_STREAM);
    if (t->flags & TF_CANCEL_PENDING) { /* connected: no leak on cancel */
      casync__stream_close(s, 1);
      return casync__raise_cancel(L, t);
    }
    return 1;
  }
  if (s) casync__stream_close(s, 1);
  lua_pushinteger(L, st);
  lua_replace(L, C_LASTERR);
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  return try_from(L, t, kc + 1);
}

static int dns_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  int st;
  (void)status;
  CASYNC_RESUMED(L, t, kc, dns_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) return timed_out(L);
  if (!casync__dns_result(L, C_ADDRS, &st)) {
    lua_pushnil(L);
    casync__error_uv(L, "connect", st < 0 ? st : UV_EAI_NONAME);
    return 2;
  }
  lua_pushinteger(L, UV_EAI_NONAME); /* C_LASTERR: if none is usable */
  return try_from(L, t, 0);
}

/* casync.tcp.connect(host, port [, opts]) -> stream | nil, err: connects
 * to host (a name, or an IPv4 or IPv6 address), trying each of its
 * addresses; opts.timeout bounds the whole of it (kind "timeout") */
static int fn_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = check_port(L, 2);
  double timeout;
  casync_task *t;
  struct sockaddr_storage *ss;
  char service[16];
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  timeout = casync__net_opt_seconds(L, 3, "timeout");
  lua_settop(L, 3);
  t = casync__wait_begin(L, "connect");
  lua_pushinteger(L, (lua_Integer)casync__deadline(timeout));
  ss = lua_newuserdatauv(L, sizeof *ss, 0);
  if (casync__net_parse_ip(host, (int)port, ss)) {
    lua_pushinteger(L, UV_EINVAL); /* C_LASTERR */
    return try_from(L, t, 0);
  }
  lua_pop(L, 1);
  snprintf(service, sizeof service, "%d", (int)port);
  return casync__dns_lookup(L, t, host, service, AF_UNSPEC,
                            (uint64_t)lua_tointeger(L, C_DEADLINE), dns_k, 0);
}

/* casync.tcp.listen(host, port, handler [, opts]) -> server | nil, err:
 * listens on host:port (port 0: a free one, see server:port()) and runs
 * handler(stream) in a new task for each connection; opts.backlog */
static int fn_listen(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = check_port(L, 2), backlog;
  struct sockaddr_storage ss;
  casync_server *srv;
  int r;
  casync__check_callable(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  backlog = casync__net_opt_int(L, 4, "backlog", DEFAULT_BACKLOG);
  luaL_argcheck(L, backlog > 0 && backlog <= 0x7fffffff, 4,
                "opts.backlog must be positive");
  lua_settop(L, 4);
  if ((r = casync__net_bind_addr(ctx, host, (int)port, &ss)) < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "listen", r);
    return 2;
  }
  srv = casync__server_new(L, ctx, CASYNC_TCP, 3);
  r = uv_tcp_bind((uv_tcp_t *)casync__server_handle(srv),
                  (struct sockaddr *)&ss, 0);
  if (r == 0) r = casync__server_listen(L, srv, -1, (int)backlog, NULL);
  if (r < 0) {
    casync__server_close(L, srv, 0);
    lua_pushnil(L);
    casync__error_uv(L, "listen", r);
    return 2;
  }
  return 1;
}

void casync__tcp_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"connect", fn_connect}, {"listen", fn_listen}, {NULL, NULL}};
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "tcp");
}
