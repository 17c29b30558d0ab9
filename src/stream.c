/* stream.c: casync.Stream, a byte stream over a libuv uv_stream_t (TCP,
 * Unix-domain pipes, stdio pipes and TTYs): buffered reads (read, read_line,
 * read_until, read_exactly, peek), writes with backpressure, shutdown,
 * close, timeouts and addresses.  Connecting, listening, stdio and name
 * resolution live in tcp.c, pipe.c, server.c, stdio.c and dns.c; the
 * helpers they share in net.c.  This file has the block, its lifecycle and
 * the small methods; stream_read.c the reads, stream_write.c the writes,
 * shutdown and connect.
 *
 * Ownership: the casync_stream block is a handle block (context.h): libuv's
 * from init until its close callback frees it; the userdata is Lua's.
 * close() and __gc detach the two.  The userdata is pinned only while a
 * write or shutdown request is in flight; a waiting task holds it on its
 * own stack anyway.
 *
 * Reading: once a task has read, the stream reads ahead into its buffer
 * until the buffer holds HWM bytes and no reader waits (then uv_read_stop),
 * so memory stays bounded when nobody reads.  The handle keeps the loop
 * alive only while a reader waits (requests keep it alive by themselves).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include "stream.h"

/* ============================================================ the block */

static const char *kind_name(int kind) {
  return kind == CASYNC_TCP ? "tcp" : kind == CASYNC_PIPE ? "pipe" : "tty";
}

static void stream_free(casync_handle *h) {
  casync_stream *s = container_of(h, casync_stream, hd);
  if (s->tls) casync__tls_free(s->tls);
  free(s->rbuf);
  free(s);
}

static const casync_hclass stream_class = {"stream", NULL, stream_free};

/* Stream blocks libuv has not freed yet. */
int casync__stream_count(casync_ctx *ctx) {
  casync_handle *h;
  int n = 0;
  for (h = ctx->handles; h; h = h->next) n += h->cls == &stream_class;
  return n;
}

/* Creates a stream userdata (pushed) and its block with an initialized
 * handle of `kind`: a new TCP or pipe handle (fd < 0), or one over fd (TCP,
 * pipe or TTY).  On failure the userdata is left closed, *uverr set, and
 * NULL returned. */
casync_stream *casync__stream_new_fd(lua_State *L, casync_ctx *ctx, int kind,
                                     int fd, int *uverr) {
  uv_loop_t *loop = ctx->loop;
  stream_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  casync_stream *s;
  int r;
  memset(u, 0, sizeof *u);
  u->timeout = -1;
  u->kind = kind;
  luaL_setmetatable(L, CASYNC_STREAM_MT); /* closed, until it has a block */
  s = calloc(1, sizeof *s);
  if (!s) luaL_error(L, "not enough memory");
  r = kind == CASYNC_TCP ? uv_tcp_init(loop, &s->u.tcp)
      : kind == CASYNC_PIPE
          ? uv_pipe_init(loop, &s->u.pipe, 0)
          : uv_tty_init(loop, &s->u.tty, fd,
                        (fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY);
  if (r < 0) { /* not in the loop: nothing to close */
    free(s);
    *uverr = r;
    return NULL;
  }
  casync__handle_init(ctx, &s->hd, &stream_class, &s->u.h);
  s->ud = u;
  s->kind = kind;
  s->stdio_fd = -1;
  ctx->streams_open++;
  u->s = s;
  uv_unref(&s->u.h);
  if (fd >= 0 && kind != CASYNC_TTY) {
    r = kind == CASYNC_TCP ? uv_tcp_open(&s->u.tcp, (uv_os_sock_t)fd)
                           : uv_pipe_open(&s->u.pipe, (uv_file)fd);
    if (r < 0) {
      casync__stream_close(s, 0);
      *uverr = r;
      return NULL;
    }
  }
  return s;
}

/* The same with a new TCP or pipe handle. */
casync_stream *casync__stream_new(lua_State *L, casync_ctx *ctx, int kind,
                                  int *uverr) {
  return casync__stream_new_fd(L, ctx, kind, -1, uverr);
}

/* The handle keeps the loop alive (on) or not: on while a reader waits,
 * or a task waits for the TLS handshake. */
void casync__stream_ref_handle(casync_stream *s, int on) {
  if (!on && s->tls && s->connecter) return;
  if (on && !(s->flags & SF_REF)) {
    s->flags |= SF_REF;
    uv_ref(&s->u.h);
  } else if (!on && (s->flags & SF_REF)) {
    s->flags &= ~SF_REF;
    uv_unref(&s->u.h);
  }
}

/* Wakes waiting task *slot (if any) and clears the slot. */
void casync__stream_wake_slot(casync_stream *s, casync_task **slot) {
  casync_task *t = *slot;
  *slot = NULL;
  if (!t) return;
  casync__wake(CTX(s), t, WAKE_OK);
}

/* Closes stream s: Lua lets go of it (the userdata reads as closed), every
 * task waiting on it is woken (with `wake`; __gc passes 0: nothing can
 * wait on an unreachable stream, and during lua_close nothing should run),
 * and libuv closes the handle and frees the block later. */
void casync__stream_close(casync_stream *s, int wake) {
  stream_ud *u = s->ud;
  if (s->flags & SF_CLOSING) return;
  s->flags |= SF_CLOSING;
  if (u) {
    if (s->writer) u->wstatus = ST_CLOSED;
    if (s->shutter) u->sstatus = ST_CLOSED;
    if (s->connecter) u->cstatus = ST_CLOSED;
    u->s = NULL;
    s->ud = NULL;
  }
  if (s->wwait) ((wreq *)s->wwait)->task = NULL;
  s->wwait = NULL;
  if (wake && CTX(s)->alive) {
    casync__stream_wake_slot(s, &s->reader);
    casync__stream_wake_slot(s, &s->writer);
    casync__stream_wake_slot(s, &s->shutter);
    casync__stream_wake_slot(s, &s->connecter);
  } else s->reader = s->writer = s->shutter = s->connecter = NULL;
  s->on_data = NULL;
  if (s->on_close) s->on_close(s, s->on_close_arg);
  if (s->tls) casync__tls_close(s); /* close_notify, if it can go now */
  CTX(s)->streams_open--;
  casync__handle_close(&s->hd);
  /* a stdio descriptor stays open (libuv does not close fds 0-2): give it
   * back in the blocking mode the rest of the process expects */
  if (s->stdio_fd >= 0 && s->stdio_fd <= 2)
    fcntl(s->stdio_fd, F_SETFL, s->stdio_flags);
}

/* Pushes "read on tcp 127.0.0.1:8080" (the peer), for task dumps. */
void casync__stream_describe(lua_State *L, casync_stream *s, const char *op) {
  if (s->kind == CASYNC_TCP) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[INET6_ADDRSTRLEN + 1] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len) == 0) {
      uv_ip_name((struct sockaddr *)&ss, host, sizeof host);
      port = ntohs(ss.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    }
    lua_pushfstring(
        L, ss.ss_family == AF_INET6 ? "%s on tcp [%s]:%d" : "%s on tcp %s:%d",
        op, host, port);
  } else if (s->kind == CASYNC_PIPE) {
    char path[256];
    size_t len = sizeof path;
    if (uv_pipe_getpeername(&s->u.pipe, path, &len) == 0 && len > 0)
      lua_pushfstring(L, "%s on pipe %s", op, path);
    else lua_pushfstring(L, "%s on a pipe", op);
  } else lua_pushfstring(L, "%s on a tty", op);
}

/* The block of the stream userdata at idx, NULL if it is closed. */
casync_stream *casync__stream_of(lua_State *L, int idx) {
  stream_ud *u = luaL_checkudata(L, idx, CASYNC_STREAM_MT);
  return u->s;
}

/* The open stream at idx, or a Lua error naming fname. */
casync_stream *casync__stream_check_open(lua_State *L, int idx,
                                         const char *fname) {
  stream_ud *u = luaL_checkudata(L, idx, CASYNC_STREAM_MT);
  if (!u->s) luaL_error(L, "%s: attempt to use a closed stream", fname);
  return u->s;
}

/* Pushes nil and the error of operation op that failed with err (a libuv
 * error, or CASYNC_ETLS: the TLS layer says why); returns 2. */
int casync__stream_err(lua_State *L, casync_stream *s, const char *op,
                       int err) {
  if (err == CASYNC_ETLS && s && s->tls)
    return casync__tls_push_error(L, s, op);
  return casync__stream_uv_err(L, op, err);
}

/* A timeout argument at arg: nil for the stream's default. */
double casync__stream_opt_timeout(lua_State *L, int arg) {
  stream_ud *u = lua_touserdata(L, 1);
  if (lua_isnoneornil(L, arg)) return u->timeout;
  return casync__check_seconds(L, arg, 0);
}

/* A byte count argument: a non-negative integer (or the default). */
size_t casync__stream_opt_count(lua_State *L, int arg, size_t def,
                                const char *what) {
  lua_Integer n;
  int isint;
  if (lua_isnoneornil(L, arg)) return def;
  n = lua_tointegerx(L, arg, &isint);
  if (!isint) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "%s must be a whole number", what));
    luaL_typeerror(L, arg, "integer");
  }
  if (n < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must not be negative", what));
  return (size_t)n;
}

/* ================================================================= misc */

/* stream:close(): closes it now; tasks waiting on it get nil and an error
 * of kind "closed"; closing again does nothing.  Also __close and __gc. */
static int meth_close(lua_State *L) {
  stream_ud *u = luaL_checkudata(L, 1, CASYNC_STREAM_MT);
  if (u->s) casync__stream_close(u->s, 1);
  return 0;
}

static int meta_gc(lua_State *L) {
  stream_ud *u = lua_touserdata(L, 1);
  if (u->s) casync__stream_close(u->s, 0);
  return 0;
}

/* stream:closed() -> boolean */
static int meth_closed(lua_State *L) {
  stream_ud *u = luaL_checkudata(L, 1, CASYNC_STREAM_MT);
  lua_pushboolean(L, u->s == NULL);
  return 1;
}

/* stream:set_timeout(seconds | nil): the default timeout of each waiting
 * operation (nil: none) */
static int meth_set_timeout(lua_State *L) {
  stream_ud *u = luaL_checkudata(L, 1, CASYNC_STREAM_MT);
  double s;
  casync__stream_check_open(L, 1, "set_timeout");
  s = casync__check_seconds(L, 2, 1);
  u->timeout = s;
  return 0;
}

/* Pushes the local (peer == 0) or remote address of s. */
static int push_name(lua_State *L, casync_stream *s, int peer) {
  const char *op = peer ? "peername" : "sockname";
  if (s->kind == CASYNC_TCP) {
    struct sockaddr_storage ss;
    int len = sizeof ss, r;
    r = peer ? uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len)
             : uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&ss, &len);
    if (r < 0) return casync__stream_uv_err(L, op, r);
    return casync__net_push_addr(L, (struct sockaddr *)&ss);
  }
  if (s->kind == CASYNC_PIPE) {
    char buf[256];
    size_t len = sizeof buf;
    int r = peer ? uv_pipe_getpeername(&s->u.pipe, buf, &len)
                 : uv_pipe_getsockname(&s->u.pipe, buf, &len);
    if (r < 0) return casync__stream_uv_err(L, op, r);
    lua_pushlstring(L, buf, len);
    return 1;
  }
  return casync__stream_uv_err(L, op, UV_ENOTSOCK);
}

/* stream:sockname() -> host, port (TCP) | path (pipe) | nil, err */
static int meth_sockname(lua_State *L) {
  return push_name(L, casync__stream_check_open(L, 1, "sockname"), 0);
}

/* stream:peername() -> host, port (TCP) | path (pipe) | nil, err */
static int meth_peername(lua_State *L) {
  return push_name(L, casync__stream_check_open(L, 1, "peername"), 1);
}

/* stream:set_nodelay(on) -> true | nil, err: TCP_NODELAY (on by default
 * for TCP streams casync makes) */
static int meth_set_nodelay(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "set_nodelay");
  int r;
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  if (s->kind != CASYNC_TCP)
    return luaL_error(L, "set_nodelay: not a TCP stream");
  r = uv_tcp_nodelay(&s->u.tcp, lua_toboolean(L, 2));
  if (r < 0) return casync__stream_uv_err(L, "set_nodelay", r);
  lua_pushboolean(L, 1);
  return 1;
}

/* stream:kind() -> "tcp" | "pipe" | "tty" */
static int meth_kind(lua_State *L) {
  stream_ud *u = luaL_checkudata(L, 1, CASYNC_STREAM_MT);
  lua_pushstring(L, kind_name(u->kind));
  return 1;
}

static int meta_tostring(lua_State *L) {
  stream_ud *u = luaL_checkudata(L, 1, CASYNC_STREAM_MT);
  lua_pushfstring(L, "casync.Stream (%s, %s)", kind_name(u->kind),
                  u->s ? "open" : "closed");
  return 1;
}
/* ================================================================= open */

void casync__stream_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", meth_close},
                                     {"closed", meth_closed},
                                     {"set_timeout", meth_set_timeout},
                                     {"sockname", meth_sockname},
                                     {"peername", meth_peername},
                                     {"set_nodelay", meth_set_nodelay},
                                     {"kind", meth_kind},
                                     {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__close", meth_close}, {NULL, NULL}};
  static const luaL_Reg stream_fns[] = {{"_stats", casync__net_stats},
                                        {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_STREAM_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  casync__ctx_setfuncs(L, casync__stream_read_methods);
  casync__ctx_setfuncs(L, casync__stream_write_methods);
  casync__ctx_setfuncs(L, casync__stream_tls_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  casync__ctx_setfuncs(L, metas);
  lua_pop(L, 1);
  lua_newtable(L); /* casync.stream */
  casync__ctx_setfuncs(L, stream_fns);
  lua_setfield(L, -2, "stream");
}
