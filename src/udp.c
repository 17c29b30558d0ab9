/* udp.c: casync.udp: datagram sockets.  bind makes one; send and recv
 * are waits like a stream's write and read (a timeout, cancellation);
 * connect fixes the peer; broadcast and multicast options.
 *
 * Receiving: once a task has called recv, datagrams are read ahead into a
 * queue of at most QMAX, then reading stops and the kernel's buffer holds
 * (and drops) the rest until someone receives again.  One task receives
 * at a time.  A datagram longer than recv's max_size is cut to it and
 * flagged: recv's fourth result is true.
 *
 * Ownership: the casync_udp block is a handle block (context.h), libuv's
 * until its close callback; the userdata is Lua's, pinned while a send
 * request is in flight.
 */
#include <stdlib.h>
#include <string.h>
#include "io.h"

#define CASYNC_UDP_MT "casync.UdpSocket"
#define QMAX 64          /* datagrams read ahead at most */
#define MAX_DGRAM 65536u /* recv's default max_size: any datagram */

typedef struct dgram {
  struct dgram *next;
  size_t len;
  struct sockaddr_storage from;
  char data[];
} dgram;

typedef struct casync_udp {
  casync_handle hd;
  uv_udp_t h;
  struct udp_ud *ud;    /* NULL once Lua let go */
  dgram *qhead, *qtail; /* read ahead, oldest first */
  int qlen;
  int rerr; /* a receive error for the next recv */
  int reading, refd, woken;
  casync_task *receiver; /* the task waiting in recv */
} casync_udp;

typedef struct udp_ud {
  casync_udp *u;  /* NULL once closed */
  double timeout; /* default per-operation timeout, < 0: none */
  int family;     /* of the address bound */
} udp_ud;

/* A send handed to libuv. */
typedef struct sreq {
  uv_udp_send_t req;
  casync_udp *u;
  casync_task *task; /* the waiting sender, NULL once it stopped */
  int ref;           /* anchor of the data */
  int *status;       /* where its outcome goes (the task's stack) */
} sreq;

static void udp_free(casync_handle *h) {
  casync_udp *u = container_of(h, casync_udp, hd);
  dgram *d, *next;
  for (d = u->qhead; d; d = next) {
    next = d->next;
    free(d);
  }
  free(u);
}

static const casync_hclass udp_class = {"udp", NULL, udp_free};

static void set_ref(casync_udp *u, int on) {
  if (on && !u->refd) uv_ref((uv_handle_t *)&u->h);
  else if (!on && u->refd) uv_unref((uv_handle_t *)&u->h);
  u->refd = on;
}

static void udp_close(casync_udp *u) {
  if (u->ud) {
    u->ud->u = NULL;
    u->ud = NULL;
  }
  if (u->receiver && u->hd.ctx->alive) {
    casync_task *t = u->receiver;
    u->receiver = NULL;
    casync__wake(u->hd.ctx, t, WAKE_OK);
  }
  u->receiver = NULL;
  casync__handle_close(&u->hd);
}

static casync_udp *check_open(lua_State *L, const char *fname) {
  udp_ud *ud = luaL_checkudata(L, 1, CASYNC_UDP_MT);
  if (!ud->u) luaL_error(L, "%s: attempt to use a closed socket", fname);
  return ud->u;
}

static int uv_fail(lua_State *L, const char *op, int r) {
  lua_pushnil(L);
  casync__error_uv(L, op, r);
  return 2;
}

static int closed_fail(lua_State *L, const char *op) {
  lua_pushnil(L);
  casync__error_push(L, "closed", NULL, "%s: the socket was closed", op);
  return 2;
}

/* ============================================================ receiving */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  casync_udp *u = container_of(h, casync_udp, h);
  casync_ctx *ctx = u->hd.ctx;
  (void)suggested;
  if (!ctx->scratch) ctx->scratch = malloc(65536);
  buf->base = ctx->scratch;
  buf->len = ctx->scratch ? 65536 : 0;
}

static void stop_reading(casync_udp *u) {
  if (!u->reading) return;
  u->reading = 0;
  uv_udp_recv_stop(&u->h);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  casync_udp *u = container_of(h, casync_udp, h);
  (void)flags;
  if (nread == 0 && !addr) return; /* nothing more for now */
  if (nread < 0) u->rerr = (int)nread;
  else {
    dgram *d = malloc(sizeof *d + (size_t)nread);
    if (!d) u->rerr = UV_ENOMEM;
    else {
      d->next = NULL;
      d->len = (size_t)nread;
      memset(&d->from, 0, sizeof d->from);
      memcpy(&d->from, addr,
             addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in));
      memcpy(d->data, buf->base, (size_t)nread);
      if (u->qtail) u->qtail->next = d;
      else u->qhead = d;
      u->qtail = d;
      u->qlen++;
    }
  }
  if (!u->hd.ctx->alive) return;
  if (u->receiver && !u->woken) {
    u->woken = 1;
    casync__wake(u->hd.ctx, u->receiver, WAKE_OK);
  }
  if (u->qlen >= QMAX && (!u->receiver || u->woken)) stop_reading(u);
}

static void release_receiver(casync_udp *u, casync_task *t) {
  if (!u || u->receiver != t) return;
  u->receiver = NULL;
  u->woken = 0;
  set_ref(u, 0);
}

static int recv_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  release_receiver(t->wait_obj, t);
  return 1;
}

static const casync_wait_kind recv_wait = {"recv", "udp recv", recv_cancel,
                                           CASYNC_WK_EXTERNAL};

/* Pushes the oldest datagram (at most max bytes of it): data, host, port,
 * truncated; or an error; or returns -1 when there is none. */
static int try_recv(lua_State *L, casync_udp *u, size_t max) {
  dgram *d = u->qhead;
  if (!d) {
    if (u->rerr) {
      int r = u->rerr;
      u->rerr = 0;
      return uv_fail(L, "recv", r);
    }
    return -1;
  }
  u->qhead = d->next;
  if (!u->qhead) u->qtail = NULL;
  u->qlen--;
  lua_pushlstring(L, d->data, d->len < max ? d->len : max);
  casync__net_push_addr(L, (struct sockaddr *)&d->from);
  lua_pushboolean(L, d->len > max);
  free(d);
  return 4;
}

static int start_reading(casync_udp *u) {
  int r;
  if (u->reading || u->qlen >= QMAX) return 0;
  r = uv_udp_recv_start(&u->h, on_alloc, on_recv);
  if (r == 0) u->reading = 1;
  return r;
}

/* [1 sock][2 max][3 timeout] */
static int recv_k(lua_State *L, int status, lua_KContext kc) {
  udp_ud *ud = lua_touserdata(L, 1);
  casync_udp *u = ud->u;
  casync_task *t;
  size_t max = (size_t)lua_tointeger(L, 2);
  int n;
  (void)status;
  CASYNC_RESUMED(L, t, kc, recv_k);
  release_receiver(u, t);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    casync__timeout_error(L, "recv", lua_tonumber(L, 3));
    return 2;
  }
  if (!u) return closed_fail(L, "recv");
  if ((n = try_recv(L, u, max)) >= 0) {
    start_reading(u);
    return n;
  }
  return closed_fail(L, "recv"); /* not reached: woken with a datagram */
}

/* sock:recv([max_size [, timeout]]) -> data, host, port, truncated | nil,
 * err: the next datagram and who sent it; one longer than max_size
 * (default 65536: any) is cut to it and truncated is true */
static int meth_recv(lua_State *L) {
  casync_udp *u = check_open(L, "recv");
  udp_ud *ud = lua_touserdata(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, MAX_DGRAM);
  double timeout =
      lua_isnoneornil(L, 3) ? ud->timeout : casync__check_seconds(L, 3, 0);
  casync_task *t;
  int n, r;
  luaL_argcheck(L, max > 0, 2, "max_size must be positive");
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  lua_pushnumber(L, timeout);
  t = casync__wait_begin(L, "recv");
  if (u->receiver)
    return luaL_error(L, "recv: another task is already receiving on this "
                         "socket");
  if ((n = try_recv(L, u, (size_t)max)) >= 0) {
    start_reading(u);
    return n;
  }
  if ((r = start_reading(u)) < 0) return uv_fail(L, "recv", r);
  u->receiver = t;
  u->woken = 0;
  set_ref(u, 1);
  return casync__park(L, t, &recv_wait, u, casync__deadline(timeout), recv_k,
                      0);
}

/* ============================================================== sending */

static void on_send(uv_udp_send_t *req, int status) {
  sreq *w = req->data;
  casync_ctx *ctx = w->u->hd.ctx;
  ctx->requests--;
  if (ctx->alive) {
    casync__unpin(ctx, w->ref);
    if (w->task) { /* its sender still waits */
      *w->status = status;
      casync__wake(ctx, w->task, WAKE_OK);
    }
  }
  casync__handle_unpin(&w->u->hd);
  free(w);
}

/* The send completes in the background. */
static int send_cancel(casync_ctx *lp, casync_task *t, int why) {
  sreq *w = t->wait_obj;
  (void)lp;
  (void)why;
  w->task = NULL;
  w->status = NULL;
  return 1;
}

static const casync_wait_kind send_wait = {
    "send", "udp send", send_cancel, CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL};

/* [1 sock][2 data][3 host][4 port][5 timeout][6 status] */
static int send_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  int st = *(int *)lua_touserdata(L, 6);
  (void)status;
  CASYNC_RESUMED(L, t, kc, send_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    casync__timeout_error(L, "send", lua_tonumber(L, 5));
    return 2;
  }
  if (st < 0) return uv_fail(L, "send", st);
  lua_pushboolean(L, 1);
  return 1;
}

/* Sends the data at 2 to addr (NULL: the connected peer). */
static int do_send(lua_State *L, casync_task *t, const struct sockaddr *addr) {
  udp_ud *ud = lua_touserdata(L, 1);
  casync_udp *u = ud->u;
  uv_buf_t b;
  size_t len;
  sreq *w;
  int r, *st;
  if (!u) return closed_fail(L, "send");
  b.base = (char *)lua_tolstring(L, 2, &len);
  b.len = len;
  r = uv_udp_try_send(&u->h, &b, 1, addr);
  if (r >= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (r != UV_EAGAIN) return uv_fail(L, "send", r);
  st = lua_newuserdatauv(L, sizeof *st, 0); /* 6 */
  *st = 0;
  w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "not enough memory");
  w->u = u;
  w->task = t;
  w->req.data = w;
  w->status = st;
  w->ref = casync__pin(L, u->hd.ctx, 2);
  r = uv_udp_send(&w->req, &u->h, &b, 1, addr, on_send);
  if (r < 0) {
    casync__unpin(u->hd.ctx, w->ref);
    free(w);
    return uv_fail(L, "send", r);
  }
  u->hd.ctx->requests++;
  casync__handle_pin(L, &u->hd, 1);
  return casync__park(L, t, &send_wait, w, casync__deadline(lua_tonumber(L, 5)),
                      send_k, 0);
}

static int send_lookup_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  struct sockaddr_storage ss;
  int r;
  (void)status;
  CASYNC_RESUMED(L, t, kc, send_lookup_k);
  casync__woken(L, t);
  r = casync__net_lookup_addr(L, 6, (int)lua_tointeger(L, 4), &ss);
  lua_settop(L, 5);
  if (r < 0) return uv_fail(L, "send", r);
  return do_send(L, t, (struct sockaddr *)&ss);
}

/* sock:send(data [, host, port [, timeout]]) -> true | nil, err: sends
 * one datagram to host:port (a name is resolved first), or to the
 * connected peer without them; waits only while the kernel has no room */
static int meth_send(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, CASYNC_UDP_MT);
  struct sockaddr_storage ss;
  const char *host = NULL;
  lua_Integer port = 0;
  double timeout;
  casync_task *t;
  check_open(L, "send");
  luaL_checkstring(L, 2);
  if (!lua_isnoneornil(L, 3)) {
    host = luaL_checkstring(L, 3);
    port = casync__net_check_port(L, 4);
  }
  timeout =
      lua_isnoneornil(L, 5) ? ud->timeout : casync__check_seconds(L, 5, 0);
  lua_settop(L, 4);
  lua_pushnumber(L, timeout); /* 5 */
  t = casync__wait_begin(L, "send");
  if (!host) return do_send(L, t, NULL);
  if (casync__net_parse_ip(host, (int)port, &ss))
    return do_send(L, t, (struct sockaddr *)&ss);
  return casync__dns_lookup(L, t, host, NULL,
                            ud->family == AF_INET ? AF_INET : AF_UNSPEC,
                            casync__deadline(timeout), send_lookup_k, 0);
}

/* ====================================================== binding, peers */

static int push_socket(lua_State *L, casync_ctx *ctx, const struct sockaddr *sa,
                       unsigned flags) {
  udp_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  casync_udp *u;
  int r;
  ud->u = NULL;
  ud->timeout = -1;
  ud->family = sa->sa_family;
  luaL_setmetatable(L, CASYNC_UDP_MT);
  u = calloc(1, sizeof *u);
  if (!u) return luaL_error(L, "not enough memory");
  if ((r = uv_udp_init(ctx->loop, &u->h)) < 0) {
    free(u);
    return uv_fail(L, "bind", r);
  }
  casync__handle_init(ctx, &u->hd, &udp_class, (uv_handle_t *)&u->h);
  uv_unref((uv_handle_t *)&u->h);
  u->ud = ud;
  ud->u = u;
  if ((r = uv_udp_bind(&u->h, sa, flags)) < 0) {
    udp_close(u);
    return uv_fail(L, "bind", r);
  }
  return 1;
}

/* bind's stack: [1 host][2 port][3 opts][4 flags] */
static int bind_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  struct sockaddr_storage ss;
  int r;
  (void)status;
  CASYNC_RESUMED(L, t, kc, bind_k);
  casync__woken(L, t);
  r = casync__net_lookup_addr(L, 5, (int)lua_tointeger(L, 2), &ss);
  if (r < 0) return uv_fail(L, "bind", r);
  return push_socket(L, CASYNC_CTX(L), (struct sockaddr *)&ss,
                     (unsigned)lua_tointeger(L, 4));
}

/* casync.udp.bind(host, port [, opts]) -> sock | nil, err: a UDP socket
 * bound to host:port (port 0: a free one; "0.0.0.0" or "::" for every
 * address); opts.reuseaddr (share the port, for multicast), opts.ipv6only.
 * A host name is resolved without blocking the loop: it needs a task */
static int fn_bind(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)casync__net_check_port(L, 2);
  struct sockaddr_storage ss;
  unsigned flags = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "reuseaddr") != LUA_TNIL && lua_toboolean(L, -1))
      flags |= UV_UDP_REUSEADDR;
    if (lua_getfield(L, 3, "ipv6only") != LUA_TNIL && lua_toboolean(L, -1))
      flags |= UV_UDP_IPV6ONLY;
  }
  lua_settop(L, 3);
  lua_pushinteger(L, flags); /* 4 */
  if (casync__net_resolve(L, "bind", host, port, &ss, bind_k, 0) == 0)
    return push_socket(L, CASYNC_CTX(L), (struct sockaddr *)&ss, flags);
  return 0;
}

/* [1 sock][2 host][3 port] */
static int connect_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  struct sockaddr_storage ss;
  udp_ud *ud = lua_touserdata(L, 1);
  int r;
  (void)status;
  CASYNC_RESUMED(L, t, kc, connect_k);
  casync__woken(L, t);
  r = casync__net_lookup_addr(L, 4, (int)lua_tointeger(L, 3), &ss);
  if (r == 0 && !ud->u) return closed_fail(L, "connect");
  if (r == 0) r = uv_udp_connect(&ud->u->h, (struct sockaddr *)&ss);
  if (r < 0) return uv_fail(L, "connect", r);
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:connect(host, port) -> true | nil, err: sends go to host:port
 * only, and only its datagrams are received; a name needs a task */
static int meth_connect(lua_State *L) {
  casync_udp *u = check_open(L, "connect");
  const char *host = luaL_checkstring(L, 2);
  int port = (int)casync__net_check_port(L, 3), r;
  struct sockaddr_storage ss;
  lua_settop(L, 3);
  if (casync__net_resolve(L, "connect", host, port, &ss, connect_k, 0) != 0)
    return 0;
  if ((r = uv_udp_connect(&u->h, (struct sockaddr *)&ss)) < 0)
    return uv_fail(L, "connect", r);
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:disconnect() -> true | nil, err: undoes connect */
static int meth_disconnect(lua_State *L) {
  casync_udp *u = check_open(L, "disconnect");
  int r = uv_udp_connect(&u->h, NULL);
  if (r < 0) return uv_fail(L, "disconnect", r);
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:sockname() -> host, port | nil, err */
static int meth_sockname(lua_State *L) {
  casync_udp *u = check_open(L, "sockname");
  struct sockaddr_storage ss;
  int len = sizeof ss,
      r = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &len);
  if (r < 0) return uv_fail(L, "sockname", r);
  return casync__net_push_addr(L, (struct sockaddr *)&ss);
}

/* sock:peername() -> host, port | nil, err (not connected: ENOTCONN) */
static int meth_peername(lua_State *L) {
  casync_udp *u = check_open(L, "peername");
  struct sockaddr_storage ss;
  int len = sizeof ss,
      r = uv_udp_getpeername(&u->h, (struct sockaddr *)&ss, &len);
  if (r < 0) return uv_fail(L, "peername", r);
  return casync__net_push_addr(L, (struct sockaddr *)&ss);
}

/* ============================================================= options */

static int result(lua_State *L, const char *op, int r) {
  if (r < 0) return uv_fail(L, op, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int check_bool(lua_State *L, int arg) {
  luaL_checktype(L, arg, LUA_TBOOLEAN);
  return lua_toboolean(L, arg);
}

static int check_ttl(lua_State *L, int arg) {
  lua_Integer n = luaL_checkinteger(L, arg);
  luaL_argcheck(L, n >= 0 && n <= 255, arg, "ttl must be in 0..255");
  return (int)n;
}

/* sock:set_broadcast(on) -> true | nil, err: may send to broadcast addresses */
static int meth_set_broadcast(lua_State *L) {
  casync_udp *u = check_open(L, "set_broadcast");
  return result(L, "set_broadcast",
                uv_udp_set_broadcast(&u->h, check_bool(L, 2)));
}

/* sock:set_ttl(n) -> true | nil, err: the unicast time to live (1..255) */
static int meth_set_ttl(lua_State *L) {
  casync_udp *u = check_open(L, "set_ttl");
  return result(L, "set_ttl", uv_udp_set_ttl(&u->h, check_ttl(L, 2)));
}

/* sock:set_multicast_ttl(n) -> true | nil, err: 0 keeps it on this host */
static int meth_set_multicast_ttl(lua_State *L) {
  casync_udp *u = check_open(L, "set_multicast_ttl");
  return result(L, "set_multicast_ttl",
                uv_udp_set_multicast_ttl(&u->h, check_ttl(L, 2)));
}

/* sock:set_multicast_loop(on) -> true | nil, err: own multicast comes back */
static int meth_set_multicast_loop(lua_State *L) {
  casync_udp *u = check_open(L, "set_multicast_loop");
  return result(L, "set_multicast_loop",
                uv_udp_set_multicast_loop(&u->h, check_bool(L, 2)));
}

/* sock:set_multicast_interface(addr) -> true | nil, err: where multicast
 * goes out (an address of this host's interface) */
static int meth_set_multicast_interface(lua_State *L) {
  casync_udp *u = check_open(L, "set_multicast_interface");
  return result(L, "set_multicast_interface",
                uv_udp_set_multicast_interface(&u->h, luaL_checkstring(L, 2)));
}

static int membership(lua_State *L, const char *fname, uv_membership m) {
  casync_udp *u = check_open(L, fname);
  const char *group = luaL_checkstring(L, 2);
  const char *iface = luaL_optstring(L, 3, NULL);
  return result(L, fname, uv_udp_set_membership(&u->h, group, iface, m));
}

/* sock:join(group [, interface]) -> true | nil, err: joins a multicast group */
static int meth_join(lua_State *L) {
  return membership(L, "join", UV_JOIN_GROUP);
}

/* sock:leave(group [, interface]) -> true | nil, err: leaves it */
static int meth_leave(lua_State *L) {
  return membership(L, "leave", UV_LEAVE_GROUP);
}

/* sock:set_timeout(seconds | nil): the default timeout of send and recv */
static int meth_set_timeout(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, CASYNC_UDP_MT);
  double s;
  check_open(L, "set_timeout");
  s = casync__check_seconds(L, 2, 1);
  ud->timeout = s;
  return 0;
}

/* sock:close(): closes it; a task waiting in recv gets an error of kind
 * "closed"; again: nothing.  Also __close and __gc. */
static int meth_close(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, CASYNC_UDP_MT);
  if (ud->u) udp_close(ud->u);
  return 0;
}

/* sock:closed() -> boolean */
static int meth_closed(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, CASYNC_UDP_MT);
  lua_pushboolean(L, ud->u == NULL);
  return 1;
}

static int meta_tostring(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, CASYNC_UDP_MT);
  lua_pushfstring(L, "casync.UdpSocket (%s)", ud->u ? "open" : "closed");
  return 1;
}

void casync__udp_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"send", meth_send},
      {"recv", meth_recv},
      {"connect", meth_connect},
      {"disconnect", meth_disconnect},
      {"sockname", meth_sockname},
      {"peername", meth_peername},
      {"set_broadcast", meth_set_broadcast},
      {"set_ttl", meth_set_ttl},
      {"set_multicast_ttl", meth_set_multicast_ttl},
      {"set_multicast_loop", meth_set_multicast_loop},
      {"set_multicast_interface", meth_set_multicast_interface},
      {"join", meth_join},
      {"leave", meth_leave},
      {"set_timeout", meth_set_timeout},
      {"close", meth_close},
      {"closed", meth_closed},
      {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__close", meth_close},
                                   {"__gc", meth_close},
                                   {"__tostring", meta_tostring},
                                   {NULL, NULL}};
  static const luaL_Reg fns[] = {{"bind", fn_bind}, {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_UDP_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_setfuncs(L, metas);
  lua_pop(L, 1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "udp");
}
