/* stream_read.c: the reading side of casync.Stream: its buffer, read-ahead
 * bounded by HWM while nobody reads, and read, read_line, read_until,
 * read_exactly, peek, buffered and unread.  A read completes from the
 * buffer when it can; otherwise the task waits as the stream's one reader
 * until on_read has what it needs (or the deadline passes).
 */
#include <stdlib.h>
#include <string.h>
#include "stream.h"

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
int casync__stream_reserve(casync_stream *s, size_t n) {
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
  if (s->dlen == 1) q = memchr(p + from, s->delim[0], avail - from);
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

void casync__stream_read_stop(casync_stream *s) {
  if (!(s->flags & SF_READING)) return;
  s->flags &= ~SF_READING;
  uv_read_stop(&s->u.s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  casync_stream *s = container_of(h, casync_stream, u.h);
  casync_ctx *ctx = CTX(s);
  (void)suggested;
  if (s->tls) goto scratch; /* ciphertext: the TLS layer copies it */
  if (s->rcap - s->rtail < MIN_DIRECT && s->rhead > 0 &&
      s->rcap - (s->rtail - s->rhead) >= MIN_DIRECT)
    casync__stream_reserve(s, MIN_DIRECT); /* compacts, no allocation */
  if (s->rcap - s->rtail >= MIN_DIRECT) {
    buf->base = s->rbuf + s->rtail;
    buf->len = s->rcap - s->rtail;
    return;
  }
  /* read into the shared scratch buffer, keep only what came */
scratch:
  if (!ctx->scratch) ctx->scratch = malloc(SCRATCH_SIZE);
  buf->base = ctx->scratch;
  buf->len = ctx->scratch ? SCRATCH_SIZE : 0; /* 0: libuv says ENOBUFS */
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  casync_stream *s = container_of(h, casync_stream, u.s);
  if (s->tls) { /* ciphertext: the TLS layer puts the plaintext in rbuf */
    if (!casync__tls_input(s, nread, buf->base)) return;
  } else if (nread > 0) {
    if (buf->base == CTX(s)->scratch) {
      if (casync__stream_reserve(s, (size_t)nread)) {
        memcpy(s->rbuf + s->rtail, buf->base, (size_t)nread);
        s->rtail += (size_t)nread;
      } else {
        s->rerr = UV_ENOMEM;
        casync__stream_read_stop(s);
      }
    } else s->rtail += (size_t)nread;
  } else if (nread < 0) {
    s->rerr = (int)nread;
    casync__stream_read_stop(s);
  } else return;
  casync__stream_arrived(s);
}

/* Bytes (or the end, or an error) came into the buffer: wakes the waiting
 * reader if it has what it needs; stops reading ahead above HWM. */
void casync__stream_arrived(casync_stream *s) {
  if (!CTX(s)->alive) return;
  if (s->on_data) { /* a C owner reads */
    s->on_data(s, s->on_close_arg);
    return;
  }
  if (s->reader && !(s->flags & SF_WOKEN) && read_ready(s)) {
    /* the reader stays in its slot until its continuation runs, so no
     * other task starts reading in between */
    s->flags |= SF_WOKEN;
    casync__wake(CTX(s), s->reader, WAKE_OK);
  }
  if (s->rtail - s->rhead >= HWM && (!s->reader || (s->flags & SF_WOKEN)))
    casync__stream_read_stop(s);
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

/* Starts reading (for the TLS layer, or a C owner): 0 or a libuv error. */
int casync__stream_read_start(casync_stream *s) { return start_reading(s, 1); }

/* For a C owner (s->on_data): consumes n buffered bytes. */
void casync__stream_consume(casync_stream *s, size_t n) { consume(s, n); }

/* Clears the reader slot if t holds it. */
static void release_reader(casync_stream *s, casync_task *t) {
  if (!s || s->reader != t) return;
  s->reader = NULL;
  s->flags &= ~SF_WOKEN;
  casync__stream_ref_handle(s, 0);
}

static int read_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  release_reader(t->wait_obj, t);
  return 1;
}

static void read_describe(lua_State *L, casync_task *t) {
  casync__stream_describe(L, t->wait_obj, t->wait->op);
}

static const casync_wait_kind read_waits[] = {
    {"read", "read", read_cancel, CASYNC_WK_EXTERNAL, read_describe},
    {"read_line", "read_line", read_cancel, CASYNC_WK_EXTERNAL, read_describe},
    {"read_until", "read_until", read_cancel, CASYNC_WK_EXTERNAL,
     read_describe},
    {"read_exactly", "read_exactly", read_cancel, CASYNC_WK_EXTERNAL,
     read_describe}};

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
    sp->n = casync__stream_opt_count(L, 2, DEFAULT_READ, "count");
    break;
  case R_EXACT:
    sp->name = "read_exactly";
    luaL_checkinteger(L, 2);
    sp->n = casync__stream_opt_count(L, 2, 0, "count");
    break;
  case R_LINE:
    sp->name = "read_line";
    sp->max = casync__stream_opt_count(L, 2, DEFAULT_MAX_LINE, "max_len");
    sp->delim = "\n";
    sp->dlen = 1;
    break;
  default:
    sp->name = "read_until";
    sp->delim = luaL_checklstring(L, 2, &sp->dlen);
    luaL_argcheck(L, sp->dlen > 0, 2, "delimiter must not be empty");
    sp->max = casync__stream_opt_count(L, 3, DEFAULT_MAX_LINE, "max_len");
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
      casync__error_push(L, "eof", "EOF",
                         "read_exactly: the stream ended "
                         "after %I of %I bytes",
                         (lua_Integer)avail, (lua_Integer)sp->n);
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
      casync__error_push(L, "eof", "EOF",
                         "read_until: the stream ended "
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
  if (s->rerr) return casync__stream_err(L, s, sp->name, s->rerr);
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
    release_reader(s, t);
    if (casync__woken(L, t) == WAKE_TIMEOUT)
      return casync__stream_timeout_err(L, sp.name,
                                        casync__stream_opt_timeout(L, sp.targ));
    if (!s) return casync__stream_closed_err(L, sp.name);
  } else {
    t = casync__wait_begin(L, sp.name);
    if (s->reader)
      return luaL_error(L,
                        "%s: another task is already reading from this "
                        "stream",
                        sp.name);
    u->rdeadline = casync__deadline(casync__stream_opt_timeout(L, sp.targ));
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
    return casync__stream_timeout_err(L, sp.name,
                                      casync__stream_opt_timeout(L, sp.targ));
  if ((r = start_reading(s, 1)) < 0)
    return casync__stream_uv_err(L, sp.name, r);
  s->reader = t;
  s->flags &= ~SF_WOKEN;
  casync__stream_ref_handle(s, 1);
  return casync__park(L, t, &read_waits[mode - R_SOME], s, u->rdeadline, read_k,
                      mode);
}

static int read_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, read_k);
  return do_read(L, (int)kc, t);
}

/* Checks self and the arguments of a read, fixes the stack, reads. */
static int start_read(lua_State *L, int mode, const char *fname) {
  rspec sp;
  casync__stream_check_open(L, 1, fname);
  parse_read(L, mode, &sp);
  casync__stream_opt_timeout(L, sp.targ);
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
  casync_stream *s = casync__stream_check_open(L, 1, "peek");
  size_t avail = s->rtail - s->rhead;
  size_t n = casync__stream_opt_count(L, 2, avail, "count");
  lua_pushlstring(L, s->rbuf ? s->rbuf + s->rhead : "", n < avail ? n : avail);
  return 1;
}

/* stream:buffered() -> number of bytes read but not yet consumed */
static int meth_buffered(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "buffered");
  lua_pushinteger(L, (lua_Integer)(s->rtail - s->rhead));
  return 1;
}

/* stream:unread(data): puts data back in front of the buffered bytes, for
 * a parser that took more than it used */
static int meth_unread(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "unread");
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

const luaL_Reg casync__stream_read_methods[] = {
    {"read", meth_read},
    {"read_line", meth_read_line},
    {"read_until", meth_read_until},
    {"read_exactly", meth_read_exactly},
    {"peek", meth_peek},
    {"buffered", meth_buffered},
    {"unread", meth_unread},
    {NULL, NULL}};
