/* stream_write.c: the writing side of casync.Stream: write (the kernel
 * takes what it can at once; the rest goes to libuv and the task waits,
 * with the data pinned until libuv is done), shutdown, and connecting a
 * new stream (for tcp.c and pipe.c).
 */
#include <stdlib.h>
#include <string.h>
#include "stream.h"

/* =============================================================== writing */

/* The write w is over: its data let go, its writer (if it still waits)
 * woken with status, w freed.  For plain writes and the TLS layer's. */
void casync__stream_write_done(wreq *w, int status) {
  casync_stream *s = w->s;
  if (CTX(s)->alive) {
    casync__unpin(CTX(s), w->ref);
    if (w->task) { /* its writer still waits */
      stream_ud *u = s->ud;
      if (u) u->wstatus = status;
      s->wwait = NULL;
      casync__stream_wake_slot(s, &s->writer);
    }
  }
  casync__handle_unpin(&s->hd);
  free(w);
}

static void on_write(uv_write_t *req, int status) {
  wreq *w = req->data;
  CTX(w->s)->requests--;
  casync__stream_write_done(w, status);
}

static int write_cancel(casync_ctx *lp, casync_task *t, int why) {
  wreq *w = t->wait_obj;
  (void)lp;
  (void)why;
  /* the data stays anchored until libuv is done with it; a TLS write
   * encrypts the rest now, so a later write cannot overtake it */
  w->task = NULL;
  if (w->s->tls) casync__tls_write_abandon(w);
  w->s->wwait = NULL;
  w->s->writer = NULL;
  return 1;
}

/* A woken write is done: the caller learns its fate even if cancelled. */
static void write_describe(lua_State *L, casync_task *t) {
  casync__stream_describe(L, ((wreq *)t->wait_obj)->s, "write");
}

static const casync_wait_kind write_wait = {
    "write", "write", write_cancel, CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL,
    write_describe};

static int write_k(lua_State *L, int status, lua_KContext kc) {
  stream_ud *u = lua_touserdata(L, 1);
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, write_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT)
    return casync__stream_timeout_err(L, "write",
                                      casync__stream_opt_timeout(L, 3));
  /* written: a cancellation that came since waits for the next
   * suspension point, so the caller learns the data went out */
  if (u->wstatus == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (u->wstatus == ST_CLOSED || u->wstatus == ST_PENDING ||
      u->wstatus == UV_ECANCELED)
    return casync__stream_closed_err(L, "write");
  return casync__stream_err(L, u->s, "write", u->wstatus);
}

/* Anchors the data of a write (stack: [1 self][2 data]) until it is
 * written: the string, or a copy of the array (the caller may change
 * theirs meanwhile).  Returns the reference. */
static int pin_data(lua_State *L, casync_stream *s, size_t n) {
  size_t i;
  int ref;
  if (lua_type(L, 2) != LUA_TTABLE) return casync__pin(L, CTX(s), 2);
  lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  ref = casync__pin(L, CTX(s), -1);
  lua_pop(L, 1);
  return ref;
}

/* The TLS layer encrypts and sends bufs (see tls.c), the task waiting
 * while libuv holds a part of it. */
static int tls_write(lua_State *L, casync_stream *s, casync_task *t,
                     const uv_buf_t *bufs, size_t n, double timeout) {
  stream_ud *u = lua_touserdata(L, 1);
  wreq *w = malloc(sizeof *w + n * sizeof *bufs);
  int r;
  if (!w) return luaL_error(L, "not enough memory");
  w->bufs = (uv_buf_t *)(void *)(w + 1);
  memcpy(w->bufs, bufs, n * sizeof *bufs);
  w->nbufs = (unsigned)n;
  w->at = 0;
  w->s = s;
  w->task = t;
  w->ref = pin_data(L, s, n);
  casync__handle_pin(L, &s->hd, 1);
  r = casync__tls_write_start(s, w);
  if (r <= 0) { /* all out now, or failed */
    w->task = NULL;
    casync__stream_write_done(w, r);
    if (r < 0) return casync__stream_err(L, s, "write", r);
    lua_pushboolean(L, 1);
    return 1;
  }
  s->writer = t;
  s->wwait = w;
  u->wstatus = ST_PENDING;
  return casync__park(L, t, &write_wait, w, casync__deadline(timeout), write_k,
                      0);
}

/* stream:write(data [, timeout]) -> true | nil, err: writes a string or an
 * array of strings (in order, without joining them); suspends until the
 * kernel has taken all of it.  A write that is cancelled or times out
 * after libuv took it still completes in the background. */
static int meth_write(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "write");
  stream_ud *u = lua_touserdata(L, 1);
  uv_buf_t small[16], *bufs = small;
  casync_task *t;
  size_t total = 0, i, n = 1;
  double timeout;
  int written, r, first;
  wreq *w;
  if (lua_type(L, 2) == LUA_TTABLE) {
    n = (size_t)lua_rawlen(L, 2);
    luaL_argcheck(L, n <= MAX_WRITE_BUFS, 2, "too many strings");
    for (i = 1; i <= n; i++)
      if (lua_rawgeti(L, 2, (lua_Integer)i) != LUA_TSTRING)
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "item %d is not a string", (int)i));
      else lua_pop(L, 1);
  } else if (lua_type(L, 2) != LUA_TSTRING)
    luaL_typeerror(L, 2, "string or array of strings");
  timeout = casync__stream_opt_timeout(L, 3);
  lua_settop(L, 3);
  t = casync__wait_begin(L, "write");
  if (s->writer)
    return luaL_error(L, "write: another task is already writing to this "
                         "stream");
  if (s->flags & SF_SHUT)
    return luaL_error(L, "write: the stream was shut down for writing");
  /* the buffers, straight from the Lua strings */
  if (lua_type(L, 2) == LUA_TSTRING) {
    bufs[0].base = (char *)lua_tolstring(L, 2, &bufs[0].len);
    total = bufs[0].len;
  } else {
    if (n > 16) bufs = lua_newuserdatauv(L, n * sizeof *bufs, 0);
    for (i = 0; i < n; i++) {
      size_t len;
      lua_rawgeti(L, 2, (lua_Integer)i + 1);
      bufs[i].base = (char *)lua_tolstring(L, -1, &len);
      bufs[i].len = len;
      total += len;
      lua_pop(L, 1); /* the table keeps it; it is copied below if needed */
    }
  }
  if (total == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (s->tls) return tls_write(L, s, t, bufs, n, timeout);
  /* the fast path: the kernel takes it all now */
  written = uv_try_write(&s->u.s, bufs, (unsigned)n);
  if (written < 0 && written != UV_EAGAIN && written != UV_ENOSYS)
    return casync__stream_uv_err(L, "write", written);
  if (written < 0) written = 0;
  if ((size_t)written == total) {
    lua_pushboolean(L, 1);
    return 1;
  }
  for (first = 0; written > 0;) { /* skip what went out */
    if ((size_t)written >= bufs[first].len) {
      written -= (int)bufs[first].len;
      first++;
    } else {
      bufs[first].base += written;
      bufs[first].len -= (size_t)written;
      written = 0;
    }
  }
  w = malloc(sizeof *w);
  if (!w) return luaL_error(L, "not enough memory");
  w->ref = pin_data(L, s, n); /* until libuv is done with it */
  w->s = s;
  w->task = t;
  w->req.data = w;
  r = uv_write(&w->req, &s->u.s, bufs + first, (unsigned)(n - (size_t)first),
               on_write);
  if (r < 0) {
    casync__unpin(CTX(s), w->ref);
    free(w);
    return casync__stream_uv_err(L, "write", r);
  }
  CTX(s)->requests++;
  casync__handle_pin(L, &s->hd, 1);
  s->writer = t;
  s->wwait = w;
  u->wstatus = ST_PENDING;
  return casync__park(L, t, &write_wait, w, casync__deadline(timeout), write_k,
                      0);
}

/* ============================================================== shutdown */

static void on_shutdown(uv_shutdown_t *req, int status) {
  casync_stream *s = req->data;
  s->flags |= SF_SHUT_DONE;
  if (CTX(s)->alive && s->shutter) {
    stream_ud *u = s->ud;
    if (u) u->sstatus = status;
    casync__stream_wake_slot(s, &s->shutter);
  }
  casync__handle_unpin(&s->hd);
}

static int shutdown_cancel(casync_ctx *lp, casync_task *t, int why) {
  casync_stream *s = t->wait_obj;
  (void)lp;
  (void)why;
  s->shutter = NULL;
  return 1;
}

/* A woken shutdown was done: its result is kept. */
static void shutdown_describe(lua_State *L, casync_task *t) {
  casync__stream_describe(L, t->wait_obj, "shutdown");
}

static const casync_wait_kind shutdown_wait = {
    "shutdown", "shutdown", shutdown_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL, shutdown_describe};

static int shutdown_k(lua_State *L, int status, lua_KContext kc) {
  stream_ud *u = lua_touserdata(L, 1);
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, shutdown_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT)
    return casync__stream_timeout_err(L, "shutdown",
                                      casync__stream_opt_timeout(L, 2));
  if (u->sstatus == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (u->sstatus == ST_CLOSED || u->sstatus == UV_ECANCELED)
    return casync__stream_closed_err(L, "shutdown");
  return casync__stream_err(L, u->s, "shutdown", u->sstatus);
}

/* stream:shutdown([timeout]) -> true | nil, err: sends end-of-stream to the
 * peer once the pending writes are out (reading goes on); no more writes */
static int meth_shutdown(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "shutdown");
  stream_ud *u = lua_touserdata(L, 1);
  double timeout = casync__stream_opt_timeout(L, 2);
  casync_task *t;
  int r;
  lua_settop(L, 2);
  t = casync__wait_begin(L, "shutdown");
  if (s->shutter)
    return luaL_error(L, "shutdown: another task is already shutting this "
                         "stream down");
  if (s->flags & SF_SHUT) { /* done, or finishing in the background */
    lua_pushboolean(L, 1);
    return 1;
  }
  if (s->tls) casync__tls_shutdown(s); /* close_notify first */
  s->sreq.data = s;
  r = uv_shutdown(&s->sreq, &s->u.s, on_shutdown);
  if (r < 0) return casync__stream_uv_err(L, "shutdown", r);
  s->flags |= SF_SHUT;
  casync__handle_pin(L, &s->hd, 1);
  s->shutter = t;
  u->sstatus = ST_PENDING;
  return casync__park(L, t, &shutdown_wait, s, casync__deadline(timeout),
                      shutdown_k, 0);
}

/* =============================================================== connect */

static void on_connect(uv_connect_t *req, int status) {
  casync_stream *s = req->data;
  if (CTX(s)->alive && s->connecter) {
    stream_ud *u = s->ud;
    if (u) u->cstatus = status;
    casync__stream_wake_slot(s, &s->connecter);
  }
}

/* The cancel hook of a wait for a stream to be made (a connect, a TLS
 * handshake): cancelled or timed out, the half-made stream is closed. */
int casync__stream_connect_cancel(casync_ctx *lp, casync_task *t, int why) {
  casync_stream *s = t->wait_obj;
  (void)lp;
  (void)why;
  s->connecter = NULL;
  casync__stream_close(s, 1);
  return 1;
}

/* A woken connect is made: kept (the caller closes it on a cancel). */
static const casync_wait_kind connect_wait = {
    "connect", "connect", casync__stream_connect_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL};

/* Connects the new stream at sidx to addr (TCP) or path (pipe), suspending
 * t until it is done; k(kc) continues, and reads the outcome with
 * casync__stream_connect_status.  Returns only if it could not start: the
 * libuv error (the stream is then still open). */
int casync__stream_connect(lua_State *L, casync_task *t, int sidx,
                           const struct sockaddr *addr, const char *path,
                           uint64_t deadline, lua_KFunction k,
                           lua_KContext kc) {
  stream_ud *u = lua_touserdata(L, sidx);
  casync_stream *s = u->s;
  s->creq.data = s;
  if (addr) {
    int r = uv_tcp_connect(&s->creq, &s->u.tcp, addr, on_connect);
    if (r < 0) return r;
  } else uv_pipe_connect(&s->creq, &s->u.pipe, path, on_connect);
  s->connecter = t;
  u->cstatus = ST_PENDING;
  return casync__park(L, t, &connect_wait, s, deadline, k, kc);
}

/* After the wake: 0 when connected, else a libuv error (UV_ECANCELED when
 * it was closed meanwhile).  The caller checks t->wake first. */
int casync__stream_connect_status(lua_State *L, int sidx) {
  stream_ud *u = lua_touserdata(L, sidx);
  if (!u->s || u->cstatus == ST_CLOSED || u->cstatus == ST_PENDING)
    return UV_ECANCELED;
  return u->cstatus;
}

const luaL_Reg casync__stream_write_methods[] = {
    {"write", meth_write}, {"shutdown", meth_shutdown}, {NULL, NULL}};
