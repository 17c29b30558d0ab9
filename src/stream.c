/* stream.c: casync.Stream, a byte stream over a libuv uv_stream_t (TCP,
 * Unix-domain pipes, stdio pipes and TTYs): buffered reads (read, read_line,
 * read_until, read_exactly, peek), writes with backpressure, shutdown,
 * close, timeouts and addresses.  Connecting, listening, stdio and name
 * resolution live in tcp.c, pipe.c, server.c, stdio.c and dns.c; the
 * state they share in net.c.
 *
 * Ownership (STYLE 5): the casync_stream block is libuv's from init until
 * on_close frees it; the userdata is Lua's.  close() and __gc detach the
 * two.  The userdata is pinned only while a write or shutdown request is
 * in flight; a waiting task holds it on its own stack anyway.
 *
 * Reading: once a task has read, the stream reads ahead into its buffer
 * until the buffer holds HWM bytes and no reader waits (then uv_read_stop),
 * so memory stays bounded when nobody reads.  The handle keeps the loop
 * alive only while a reader waits (requests keep it alive by themselves).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define SCRATCH_SIZE 65536u      /* one read(2) at most */
#define HWM (64u * 1024u)        /* read-ahead stops above this */
#define DEFAULT_READ 65536u      /* read() without n */
#define DEFAULT_MAX_LINE 65536u  /* read_line / read_until limit */
#define MIN_DIRECT 4096u         /* read straight into the buffer's tail */
#define KEEP_BUF (64u * 1024u)   /* a drained buffer larger than this goes */
#define MAX_WRITE_BUFS 1024      /* write{...}: at most this many strings */

/* s->flags */
#define SF_READING 0x01u  /* uv_read_start is on */
#define SF_SHUT 0x02u     /* shutdown requested */
#define SF_SHUT_DONE 0x04u
#define SF_CLOSING 0x08u  /* uv_close called */
#define SF_WOKEN 0x10u    /* the waiting reader has been woken */
#define SF_REF 0x20u      /* the handle is ref'd (a reader waits) */

enum { R_SOME = 1, R_LINE, R_UNTIL, R_EXACT };
enum { ST_PENDING = 1, ST_CLOSED = 2 }; /* u->wstatus etc. besides 0/uverr */

/* The Lua side of a stream. */
typedef struct stream_ud {
  casync_stream *s;   /* NULL once closed */
  double timeout;     /* default per-operation timeout, < 0 for none */
  uint64_t rdeadline; /* the current read's deadline (ns), 0 for none */
  int wstatus, sstatus, cstatus; /* results for a waiting write, shutdown,
                                    connect */
  int kind;
} stream_ud;

/* A write handed to libuv. */
typedef struct wreq {
  uv_write_t req;
  casync_stream *s;
  casync_task *task; /* the waiting writer, NULL once it stopped waiting */
  int ref;           /* anchor of the data (a string or a table) */
} wreq;

static int closed_err(lua_State *L, const char *op) {
  lua_pushnil(L);
  casync__error_push(L, "closed", NULL, "%s: the stream was closed", op);
  return 2;
}

static int uv_err(lua_State *L, const char *op, int uverr) {
  lua_pushnil(L);
  casync__error_uv(L, op, uverr);
  return 2;
}

/* ============================================================ the block */

static const char *kind_name(int kind) {
  return kind == CASYNC_TCP ? "tcp" : kind == CASYNC_PIPE ? "pipe" : "tty";
}

static void pin(lua_State *L, casync_stream *s, int idx) {
  if (s->npins++ == 0) s->pin_ref = casync__net_anchor(L, s->net, idx);
}

static void unpin(casync_stream *s) {
  if (s->npins > 0 && --s->npins == 0) {
    casync__net_unanchor(s->net, s->pin_ref);
    s->pin_ref = LUA_NOREF;
  }
}

static void on_close(uv_handle_t *h) {
  casync_stream *s = container_of(h, casync_stream, u.h);
  casync_net *net = s->net;
  free(s->rbuf);
  net->streams--;
  if (s->npins) casync__net_unanchor(net, s->pin_ref);
  free(s);
  casync__net_unref(net);
}

/* Creates a stream userdata (pushed) and its block with an initialized
 * handle of `kind`: a new TCP or pipe handle (fd < 0), or one over fd (TCP,
 * pipe or TTY).  On failure the userdata is left closed, *uverr set, and
 * NULL returned. */
casync_stream *casync__stream_new_fd(lua_State *L, casync_net *net, int kind,
                                     int fd, int *uverr) {
  uv_loop_t *loop = net->lp->loop;
  stream_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  casync_stream *s;
  int r;
  memset(u, 0, sizeof *u);
  u->timeout = -1;
  u->kind = kind;
  luaL_setmetatable(L, CASYNC_STREAM_MT); /* closed, until it has a block */
  s = calloc(1, sizeof *s);
  if (!s) luaL_error(L, "not enough memory");
  r = kind == CASYNC_TCP    ? uv_tcp_init(loop, &s->u.tcp)
      : kind == CASYNC_PIPE ? uv_pipe_init(loop, &s->u.pipe, 0)
                            : uv_tty_init(loop, &s->u.tty, fd,
                                          (fcntl(fd, F_GETFL) & O_ACCMODE) !=
                                              O_WRONLY);
  if (r < 0) { /* not in the loop: nothing to close */
    free(s);
    *uverr = r;
    return NULL;
  }
  s->u.h.data = net->luvh; /* see casync_net */
  s->net = net;
  s->ud = u;
  s->kind = kind;
  s->pin_ref = LUA_NOREF;
  s->stdio_fd = -1;
  net->refs++;
  net->streams++;
  net->open++;
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
casync_stream *casync__stream_new(lua_State *L, casync_net *net, int kind,
                                  int *uverr) {
  return casync__stream_new_fd(L, net, kind, -1, uverr);
}

static void ref_handle(casync_stream *s, int on) {
  if (on && !(s->flags & SF_REF)) {
    s->flags |= SF_REF;
    uv_ref(&s->u.h);
  } else if (!on && (s->flags & SF_REF)) {
    s->flags &= ~SF_REF;
    uv_unref(&s->u.h);
  }
}

/* Wakes waiting task *slot (if any) and clears the slot. */
static void wake_slot(casync_stream *s, casync_task **slot) {
  casync_task *t = *slot;
  *slot = NULL;
  if (!t) return;
  casync__timer_remove(s->net->lp, &t->timer);
  casync__wake(s->net->lp, t, WAKE_OK);
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
  if (wake && s->net->alive) {
    wake_slot(s, &s->reader);
    wake_slot(s, &s->writer);
    wake_slot(s, &s->shutter);
    wake_slot(s, &s->connecter);
  } else
    s->reader = s->writer = s->shutter = s->connecter = NULL;
  if (s->owner) {
    const casync_stream_owner *o = s->owner;
    s->owner = NULL;
    if (o->on_closed) o->on_closed(s);
  }
  s->net->open--;
  uv_close(&s->u.h, on_close);
  /* a stdio descriptor stays open (libuv does not close fds 0-2): give it
   * back in the blocking mode the rest of the process expects */
  if (s->stdio_fd >= 0 && s->stdio_fd <= 2)
    fcntl(s->stdio_fd, F_SETFL, s->stdio_flags);
}

/* The block of the stream userdata at idx, NULL if it is closed. */
casync_stream *casync__stream_of(lua_State *L, int idx) {
  stream_ud *u = luaL_checkudata(L, idx, CASYNC_STREAM_MT);
  return u->s;
}

/* The open stream at idx, or a Lua error naming fname. */
static casync_stream *check_open(lua_State *L, int idx, const char *fname) {
  stream_ud *u = luaL_checkudata(L, idx, CASYNC_STREAM_MT);
  if (!u->s) luaL_error(L, "%s: attempt to use a closed stream", fname);
  return u->s;
}

/* A timeout argument at arg: nil for the stream's default. */
static double opt_timeout(lua_State *L, int arg) {
  stream_ud *u = lua_touserdata(L, 1);
  if (lua_isnoneornil(L, arg)) return u->timeout;
  return casync__check_seconds(L, arg, 0);
}

/* A byte count argument: a non-negative integer (or the default). */
static size_t opt_count(lua_State *L, int arg, size_t def, const char *what) {
  lua_Integer n;
  int isint;
  if (lua_isnoneornil(L, arg)) return def;
  n = lua_tointegerx(L, arg, &isint);
  if (!isint) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a whole number",
                                            what));
    luaL_typeerror(L, arg, "integer");
  }
  if (n < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must not be negative", what));
  return (size_t)n;
}

/* =============================================================== reading */

/* Consumes n buffered bytes. */
static void consume(casync_stream *s, size_t n) {
  s->rhead += n;
  s->rscan = 0;
  if (s->rhead == s->rtail) {
    s->rhead = s->rtail = 0;
    if (s->rcap > KEEP_BUF) {
      free(s->rbuf);
      s->rbuf = NULL;
      s->rcap = 0;
    }
  }
}

/* Makes room for n more bytes at the tail; 0 when out of memory. */
static int reserve(casync_stream *s, size_t n) {
  size_t avail = s->rtail - s->rhead, cap;
  char *nb;
  if (s->rcap - s->rtail >= n) return 1;
  if (s->rhead > 0 && s->rcap - avail >= n) { /* compact */
    memmove(s->rbuf, s->rbuf + s->rhead, avail);
    s->rhead = 0;
    s->rtail = avail;
    return 1;
  }
  cap = s->rcap ? s->rcap : 1024;
  while (cap < avail + n) cap *= 2;
  if (s->rhead > 0) {
    nb = malloc(cap);
    if (!nb) return 0;
    memcpy(nb, s->rbuf + s->rhead, avail);
    free(s->rbuf);
  } else {
    nb = realloc(s->rbuf, cap);
    if (!nb) return 0;
  }
  s->rbuf = nb;
  s->rcap = cap;
  s->rhead = 0;
  s->rtail = avail;
  return 1;
}

/* The offset of the delimiter in the buffer, or -1 (then rscan remembers
 * how far it is known to be absent). */
static ptrdiff_t find_delim(casync_stream *s) {
  const char *p = s->rbuf + s->rhead, *q;
  size_t avail = s->rtail - s->rhead, from = s->rscan;
  if (avail < s->dlen || from > avail - s->dlen) return -1;
  if (s->dlen == 1)
    q = memchr(p + from, s->delim[0], avail - from);
  else {
    const char *end = p + avail - s->dlen + 1;
    q = p + from;
    for (;;) {
      q = memchr(q, s->delim[0], (size_t)(end - q));
      if (!q || memcmp(q, s->delim, s->dlen) == 0) break;
      q++;
    }
  }
  if (q) return q - p;
  s->rscan = avail - s->dlen + 1;
  return -1;
}

/* The most bytes that may be buffered without a delimiter before the line
 * counts as too long: the limit plus a partial delimiter ("\r" for lines). */
static size_t line_limit(casync_stream *s) {
  return s->rmax + (s->rmode == R_LINE ? 1 : s->dlen - 1);
}

/* Can the waiting read complete (or fail) now? */
static int read_ready(casync_stream *s) {
  size_t avail = s->rtail - s->rhead;
  if (s->rerr) return 1;
  switch (s->rmode) {
  case R_SOME: return avail > 0;
  case R_EXACT: return avail >= s->rn;
  default: return find_delim(s) >= 0 || avail > line_limit(s);
  }
}

static void stop_reading(casync_stream *s) {
  if (!(s->flags & SF_READING)) return;
  s->flags &= ~SF_READING;
  uv_read_stop(&s->u.s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  casync_stream *s = container_of(h, casync_stream, u.h);
  casync_net *net = s->net;
  (void)suggested;
  if (s->rcap - s->rtail < MIN_DIRECT && s->rhead > 0 &&
      s->rcap - (s->rtail - s->rhead) >= MIN_DIRECT)
    reserve(s, MIN_DIRECT); /* compacts, no allocation */
  if (s->rcap - s->rtail >= MIN_DIRECT) {
    buf->base = s->rbuf + s->rtail;
    buf->len = s->rcap - s->rtail;
    return;
  }
  /* read into the shared scratch buffer, keep only what came */
  if (!net->scratch) net->scratch = malloc(SCRATCH_SIZE);
  buf->base = net->scratch;
  buf->len = net->scratch ? SCRATCH_SIZE : 0; /* 0: libuv says ENOBUFS */
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  casync_stream *s = container_of(h, casync_stream, u.s);
  if (nread > 0) {
    if (buf->base == s->net->scratch) {
      if (reserve(s, (size_t)nread)) {
        memcpy(s->rbuf + s->rtail, buf->base, (size_t)nread);
        s->rtail += (size_t)nread;
      } else {
        s->rerr = UV_ENOMEM;
        stop_reading(s);
      }
    } else
      s->rtail += (size_t)nread;
  } else if (nread < 0) {
    s->rerr = (int)nread;
    stop_reading(s);
  } else
    return;
  if (!s->net->alive) return;
  if (s->owner && s->owner->on_data) { /* a C owner reads */
    s->owner->on_data(s);
    return;
  }
  if (s->reader && !(s->flags & SF_WOKEN) && read_ready(s)) {
    /* the reader stays in its slot until its continuation runs, so no
     * other task starts reading in between */
    s->flags |= SF_WOKEN;
    casync__timer_remove(s->net->lp, &s->reader->timer);
    casync__wake(s->net->lp, s->reader, WAKE_OK);
  }
  if (s->rtail - s->rhead >= HWM && (!s->reader || (s->flags & SF_WOKEN)))
    stop_reading(s);
}

/* Starts reading (ahead) unless it is on, over, or the buffer is full
 * (`force`: a reader is about to wait for more). */
static int start_reading(casync_stream *s, int force) {
  int r;
  if ((s->flags & (SF_READING | SF_CLOSING)) || s->rerr) return 0;
  if (!force && s->rtail - s->rhead >= HWM) return 0;
  r = uv_read_start(&s->u.s, on_alloc, on_read);
  if (r < 0) return r;
  s->flags |= SF_READING;
  return 0;
}

/* For a C owner: consumes n buffered bytes; starts reading (0 or a
 * libuv error) or stops. */
void casync__stream_consume(casync_stream *s, size_t n) { consume(s, n); }

int casync__stream_read_start(casync_stream *s) {
  return start_reading(s, 1);
}

void casync__stream_read_stop(casync_stream *s) { stop_reading(s); }

/* Clears the reader slot if t holds it. */
static void release_reader(casync_stream *s, casync_task *t) {
  if (!s || s->reader != t) return;
  s->reader = NULL;
  s->flags &= ~SF_WOKEN;
  ref_handle(s, 0);
}

static int read_cancel(casync_ctx *lp, casync_task *t) {
  casync_stream *s = t->wait_data;
  casync__timer_remove(lp, &t->timer);
  release_reader(s, t);
  return 1;
}

/* What a read call asks for, parsed from its arguments (stack: [1 self]
 * [2 n|max|delim] [3 timeout|max] [4 timeout]). */
typedef struct rspec {
  int mode;
  size_t n, max;
  const char *delim;
  size_t dlen;
  int targ; /* where the timeout is */
  const char *name;
} rspec;

static void parse_read(lua_State *L, int mode, rspec *sp) {
  sp->mode = mode;
  sp->n = sp->max = 0;
  sp->delim = NULL;
  sp->dlen = 0;
  sp->targ = 3;
  switch (mode) {
  case R_SOME:
    sp->name = "read";
    sp->n = opt_count(L, 2, DEFAULT_READ, "count");
    break;
  case R_EXACT:
    sp->name = "read_exactly";
    luaL_checkinteger(L, 2);
    sp->n = opt_count(L, 2, 0, "count");
    break;
  case R_LINE:
    sp->name = "read_line";
    sp->max = opt_count(L, 2, DEFAULT_MAX_LINE, "max_len");
    sp->delim = "\n";
    sp->dlen = 1;
    break;
  default:
    sp->name = "read_until";
    sp->delim = luaL_checklstring(L, 2, &sp->dlen);
    luaL_argcheck(L, sp->dlen > 0, 2, "delimiter must not be empty");
    sp->max = opt_count(L, 3, DEFAULT_MAX_LINE, "max_len");
    sp->targ = 4;
  }
}

/* Tries to complete the read on s from its buffer: pushes the results and
 * returns how many, or returns -1 when it must wait for more. */
static int try_read(lua_State *L, casync_stream *s, const rspec *sp) {
  size_t avail = s->rtail - s->rhead;
  const char *p = s->rbuf + s->rhead;
  switch (sp->mode) {
  case R_SOME:
    if (avail > 0 || sp->n == 0) {
      size_t k = avail < sp->n ? avail : sp->n;
      lua_pushlstring(L, p, k);
      consume(s, k);
      return 1;
    }
    break;
  case R_EXACT:
    if (avail >= sp->n) {
      lua_pushlstring(L, p, sp->n);
      consume(s, sp->n);
      return 1;
    }
    if (s->rerr == UV_EOF) {
      lua_pushnil(L);
      casync__error_push(L, "eof", "EOF", "read_exactly: the stream ended "
                         "after %I of %I bytes", (lua_Integer)avail,
                         (lua_Integer)sp->n);
      return 2;
    }
    break;
  default: { /* R_LINE, R_UNTIL */
    ptrdiff_t i = find_delim(s);
    if (i >= 0) {
      size_t len = (size_t)i;
      if (sp->mode == R_LINE && len > 0 && p[len - 1] == '\r') len--;
      if (len > sp->max) goto too_long;
      lua_pushlstring(L, p, len);
      consume(s, (size_t)i + s->dlen);
      return 1;
    }
    if (avail > line_limit(s)) goto too_long;
    if (s->rerr == UV_EOF && avail > 0) {
      if (sp->mode == R_LINE) { /* the last line, without its "\n" */
        lua_pushlstring(L, p, avail);
        consume(s, avail);
        return 1;
      }
      lua_pushnil(L);
      casync__error_push(L, "eof", "EOF", "read_until: the stream ended "
                         "before the delimiter");
      return 2;
    }
    break;
  too_long:
    lua_pushnil(L);
    casync__error_push(L, "limit", "ETOOLONG", "%s: %s longer than %I bytes",
                       sp->name, sp->mode == R_LINE ? "line" : "data",
                       (lua_Integer)sp->max);
    return 2;
  }
  }
  if (s->rerr == UV_EOF) {
    lua_pushnil(L);
    return 1;
  }
  if (s->rerr) return uv_err(L, sp->name, s->rerr);
  return -1;
}

static int read_k(lua_State *L, int status, lua_KContext kc);

/* The body of every read: first call (t NULL) or continuation in t. */
static int do_read(lua_State *L, int mode, casync_task *t) {
  stream_ud *u = lua_touserdata(L, 1);
  casync_stream *s = u->s;
  rspec sp;
  int n, r;
  parse_read(L, mode, &sp); /* already checked: raises nothing now */
  if (t) {
    casync__timer_remove(t->loop, &t->timer);
    release_reader(s, t);
    if (t->wake == WAKE_CANCEL || (t->flags & TF_CANCEL_PENDING))
      return casync__raise_cancel(L, t);
    if (t->wake == WAKE_TIMEOUT) return casync__net_timeout_err(L, sp.name);
    if (!s) return closed_err(L, sp.name);
  } else {
    t = casync__net_task(L, sp.name);
    if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
    if (s->reader)
      return luaL_error(L, "%s: another task is already reading from this "
                        "stream", sp.name);
    u->rdeadline = casync__net_deadline(opt_timeout(L, sp.targ));
    s->rscan = 0;
  }
  s->rmode = mode; /* for find_delim */
  s->delim = sp.delim;
  s->dlen = sp.dlen;
  s->rmax = sp.max;
  s->rn = sp.n;
  n = try_read(L, s, &sp);
  if (n >= 0) {
    start_reading(s, 0); /* read ahead while the buffer has room */
    return n;
  }
  if (u->rdeadline && uv_hrtime() >= u->rdeadline)
    return casync__net_timeout_err(L, sp.name);
  if ((r = start_reading(s, 1)) < 0) return uv_err(L, sp.name, r);
  s->reader = t;
  s->flags &= ~SF_WOKEN;
  ref_handle(s, 1);
  return casync__net_suspend(L, t, sp.name, read_cancel, s, u->rdeadline,
                             read_k, mode);
}

static int read_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_NET_RESUMED(L, t, kc, read_k);
  return do_read(L, (int)kc, t);
}

/* Checks self and the arguments of a read, fixes the stack, reads. */
static int start_read(lua_State *L, int mode, const char *fname) {
  rspec sp;
  check_open(L, 1, fname);
  parse_read(L, mode, &sp);
  opt_timeout(L, sp.targ);
  lua_settop(L, sp.targ);
  return do_read(L, mode, NULL);
}

/* stream:read([n [, timeout]]) -> string | nil (end of stream) | nil, err:
 * up to n bytes (default 65536) once at least one is there */
static int meth_read(lua_State *L) { return start_read(L, R_SOME, "read"); }

/* stream:read_line([max_len [, timeout]]) -> line | nil | nil, err: the next
 * line without its "\n" or "\r\n" (the last one may lack it); an error of
 * kind "limit" if it is longer than max_len (default 65536), which leaves
 * the data buffered */
static int meth_read_line(lua_State *L) {
  return start_read(L, R_LINE, "read_line");
}

/* stream:read_until(delim [, max_len [, timeout]]) -> data | nil | nil, err:
 * the bytes before the next delim (consumed, not returned); kind "eof" if
 * the stream ends first, "limit" past max_len (default 65536) */
static int meth_read_until(lua_State *L) {
  return start_read(L, R_UNTIL, "read_until");
}

/* stream:read_exactly(n [, timeout]) -> string | nil, err: exactly n bytes;
 * an error of kind "eof" if the stream ends first (the bytes that came
 * stay buffered) */
static int meth_read_exactly(lua_State *L) {
  return start_read(L, R_EXACT, "read_exactly");
}

/* stream:peek([n]) -> string: up to n of the bytes already buffered (all by
 * default), without consuming them or waiting */
static int meth_peek(lua_State *L) {
  casync_stream *s = check_open(L, 1, "peek");
  size_t avail = s->rtail - s->rhead;
  size_t n = opt_count(L, 2, avail, "count");
  lua_pushlstring(L, s->rbuf ? s->rbuf + s->rhead : "", n < avail ? n : avail);
  return 1;
}

/* stream:buffered() -> number of bytes read but not yet consumed */
static int meth_buffered(lua_State *L) {
  casync_stream *s = check_open(L, 1, "buffered");
  lua_pushinteger(L, (lua_Integer)(s->rtail - s->rhead));
  return 1;
}

/* stream:unread(data): puts data back in front of the buffered bytes, for
 * a parser that took more than it used */
static int meth_unread(lua_State *L) {
  casync_stream *s = check_open(L, 1, "unread");
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (len == 0) return 0;
  if (s->rhead < len) {
    size_t avail = s->rtail - s->rhead, cap = s->rcap ? s->rcap : 1024;
    char *nb;
    while (cap < avail + len) cap *= 2;
    nb = malloc(cap);
    if (!nb) return luaL_error(L, "not enough memory");
    if (avail) memcpy(nb + len, s->rbuf + s->rhead, avail);
    free(s->rbuf);
    s->rbuf = nb;
    s->rcap = cap;
    s->rhead = len;
    s->rtail = len + avail;
  }
  s->rhead -= len;
  memcpy(s->rbuf + s->rhead, data, len);
  s->rscan = 0;
  return 0;
}

/* =============================================================== writing */

static void on_write(uv_write_t *req, int status) {
  wreq *w = req->data;
  casync_stream *s = w->s;
  if (s->net->alive) {
    casync__net_unanchor(s->net, w->ref);
    if (w->task) { /* its writer still waits */
      stream_ud *u = s->ud;
      if (u) u->wstatus = status;
      s->wwait = NULL;
      wake_slot(s, &s->writer);
    }
  }
  unpin(s);
  free(w);
}

static int write_cancel(casync_ctx *lp, casync_task *t) {
  wreq *w = t->wait_data;
  casync__timer_remove(lp, &t->timer);
  /* the data stays anchored until libuv is done with it */
  w->task = NULL;
  w->s->wwait = NULL;
  w->s->writer = NULL;
  return 1;
}

static int write_k(lua_State *L, int status, lua_KContext kc) {
  stream_ud *u = lua_touserdata(L, 1);
  casync_task *t;
  (void)status;
  CASYNC_NET_RESUMED(L, t, kc, write_k);
  casync__timer_remove(t->loop, &t->timer);
  if (t->wake == WAKE_CANCEL) return casync__raise_cancel(L, t);
  if (t->wake == WAKE_TIMEOUT) return casync__net_timeout_err(L, "write");
  /* written: a cancellation that came since waits for the next
   * suspension point, so the caller learns the data went out */
  if (u->wstatus == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (u->wstatus == ST_CLOSED || u->wstatus == ST_PENDING ||
      u->wstatus == UV_ECANCELED)
    return closed_err(L, "write");
  return uv_err(L, "write", u->wstatus);
}

/* stream:write(data [, timeout]) -> true | nil, err: writes a string or an
 * array of strings (in order, without joining them); suspends until the
 * kernel has taken all of it.  A write that is cancelled or times out
 * after libuv took it still completes in the background. */
static int meth_write(lua_State *L) {
  casync_stream *s = check_open(L, 1, "write");
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
        luaL_argerror(L, 2, lua_pushfstring(L, "item %d is not a string",
                                            (int)i));
      else
        lua_pop(L, 1);
  } else if (lua_type(L, 2) != LUA_TSTRING)
    luaL_typeerror(L, 2, "string or array of strings");
  timeout = opt_timeout(L, 3);
  lua_settop(L, 2);
  t = casync__net_task(L, "write");
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
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
  /* the fast path: the kernel takes it all now */
  written = uv_try_write(&s->u.s, bufs, (unsigned)n);
  if (written < 0 && written != UV_EAGAIN && written != UV_ENOSYS)
    return uv_err(L, "write", written);
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
  /* anchor the data until libuv is done: the string, or a copy of the
   * array (the caller may change theirs meanwhile) */
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 2, (lua_Integer)i);
      lua_rawseti(L, -2, (lua_Integer)i);
    }
    w->ref = casync__net_anchor(L, s->net, -1);
    lua_pop(L, 1);
  } else
    w->ref = casync__net_anchor(L, s->net, 2);
  w->s = s;
  w->task = t;
  w->req.data = w;
  r = uv_write(&w->req, &s->u.s, bufs + first, (unsigned)(n - (size_t)first),
               on_write);
  if (r < 0) {
    casync__net_unanchor(s->net, w->ref);
    free(w);
    return uv_err(L, "write", r);
  }
  pin(L, s, 1);
  s->writer = t;
  s->wwait = w;
  u->wstatus = ST_PENDING;
  return casync__net_suspend(L, t, "write", write_cancel, w,
                             casync__net_deadline(timeout), write_k, 0);
}

/* ============================================================== shutdown */

static void on_shutdown(uv_shutdown_t *req, int status) {
  casync_stream *s = req->data;
  s->flags |= SF_SHUT_DONE;
  if (s->net->alive && s->shutter) {
    stream_ud *u = s->ud;
    if (u) u->sstatus = status;
    wake_slot(s, &s->shutter);
  }
  unpin(s);
}

static int shutdown_cancel(casync_ctx *lp, casync_task *t) {
  casync_stream *s = t->wait_data;
  casync__timer_remove(lp, &t->timer);
  s->shutter = NULL;
  return 1;
}

static int shutdown_k(lua_State *L, int status, lua_KContext kc) {
  stream_ud *u = lua_touserdata(L, 1);
  casync_task *t;
  (void)status;
  CASYNC_NET_RESUMED(L, t, kc, shutdown_k);
  casync__timer_remove(t->loop, &t->timer);
  if (t->wake == WAKE_CANCEL) return casync__raise_cancel(L, t);
  if (t->wake == WAKE_TIMEOUT) return casync__net_timeout_err(L, "shutdown");
  if (u->sstatus == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (u->sstatus == ST_CLOSED || u->sstatus == UV_ECANCELED)
    return closed_err(L, "shutdown");
  return uv_err(L, "shutdown", u->sstatus);
}

/* stream:shutdown([timeout]) -> true | nil, err: sends end-of-stream to the
 * peer once the pending writes are out (reading goes on); no more writes */
static int meth_shutdown(lua_State *L) {
  casync_stream *s = check_open(L, 1, "shutdown");
  stream_ud *u = lua_touserdata(L, 1);
  double timeout = opt_timeout(L, 2);
  casync_task *t;
  int r;
  lua_settop(L, 1);
  t = casync__net_task(L, "shutdown");
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  if (s->shutter)
    return luaL_error(L, "shutdown: another task is already shutting this "
                      "stream down");
  if (s->flags & SF_SHUT) { /* done, or finishing in the background */
    lua_pushboolean(L, 1);
    return 1;
  }
  s->sreq.data = s;
  r = uv_shutdown(&s->sreq, &s->u.s, on_shutdown);
  if (r < 0) return uv_err(L, "shutdown", r);
  s->flags |= SF_SHUT;
  pin(L, s, 1);
  s->shutter = t;
  u->sstatus = ST_PENDING;
  return casync__net_suspend(L, t, "shutdown", shutdown_cancel, s,
                             casync__net_deadline(timeout), shutdown_k, 0);
}

/* =============================================================== connect */

static void on_connect(uv_connect_t *req, int status) {
  casync_stream *s = req->data;
  if (s->net->alive && s->connecter) {
    stream_ud *u = s->ud;
    if (u) u->cstatus = status;
    wake_slot(s, &s->connecter);
  }
}

/* Cancelled or timed out: the half-made connection is closed. */
static int connect_cancel(casync_ctx *lp, casync_task *t) {
  casync_stream *s = t->wait_data;
  casync__timer_remove(lp, &t->timer);
  s->connecter = NULL;
  casync__stream_close(s, 1);
  return 1;
}

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
  } else
    uv_pipe_connect(&s->creq, &s->u.pipe, path, on_connect);
  s->connecter = t;
  u->cstatus = ST_PENDING;
  return casync__net_suspend(L, t, "connect", connect_cancel, s, deadline, k,
                             kc);
}

/* After the wake: 0 when connected, else a libuv error (UV_ECANCELED when
 * it was closed meanwhile).  The caller checks t->wake first. */
int casync__stream_connect_status(lua_State *L, int sidx) {
  stream_ud *u = lua_touserdata(L, sidx);
  if (!u->s || u->cstatus == ST_CLOSED || u->cstatus == ST_PENDING)
    return UV_ECANCELED;
  return u->cstatus;
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
  check_open(L, 1, "set_timeout");
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
    if (r < 0) return uv_err(L, op, r);
    return casync__net_push_addr(L, (struct sockaddr *)&ss);
  }
  if (s->kind == CASYNC_PIPE) {
    char buf[256];
    size_t len = sizeof buf;
    int r = peer ? uv_pipe_getpeername(&s->u.pipe, buf, &len)
                 : uv_pipe_getsockname(&s->u.pipe, buf, &len);
    if (r < 0) return uv_err(L, op, r);
    lua_pushlstring(L, buf, len);
    return 1;
  }
  return uv_err(L, op, UV_ENOTSOCK);
}

/* stream:sockname() -> host, port (TCP) | path (pipe) | nil, err */
static int meth_sockname(lua_State *L) {
  return push_name(L, check_open(L, 1, "sockname"), 0);
}

/* stream:peername() -> host, port (TCP) | path (pipe) | nil, err */
static int meth_peername(lua_State *L) {
  return push_name(L, check_open(L, 1, "peername"), 1);
}

/* stream:set_nodelay(on) -> true | nil, err: TCP_NODELAY (on by default
 * for TCP streams casync makes) */
static int meth_set_nodelay(lua_State *L) {
  casync_stream *s = check_open(L, 1, "set_nodelay");
  int r;
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  if (s->kind != CASYNC_TCP)
    return luaL_error(L, "set_nodelay: not a TCP stream");
  r = uv_tcp_nodelay(&s->u.tcp, lua_toboolean(L, 2));
  if (r < 0) return uv_err(L, "set_nodelay", r);
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
  static const luaL_Reg methods[] = {
    {"read", meth_read}, {"read_line", meth_read_line},
    {"read_until", meth_read_until}, {"read_exactly", meth_read_exactly},
    {"peek", meth_peek}, {"buffered", meth_buffered}, {"unread", meth_unread},
    {"write", meth_write}, {"shutdown", meth_shutdown},
    {"close", meth_close}, {"closed", meth_closed},
    {"set_timeout", meth_set_timeout}, {"sockname", meth_sockname},
    {"peername", meth_peername}, {"set_nodelay", meth_set_nodelay},
    {"kind", meth_kind}, {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__close", meth_close}, {NULL, NULL}};
  static const luaL_Reg stream_fns[] = {
    {"_stats", casync__net_stats}, {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_STREAM_MT);
  lua_newtable(L);
  casync__net_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  casync__net_setfuncs(L, metas);
  lua_pop(L, 1);
  lua_newtable(L); /* casync.stream */
  casync__net_setfuncs(L, stream_fns);
  lua_setfield(L, -2, "stream");
}
