/* http_server.c: casync.http.serve, an HTTP/1.1 server in C on libuv.
 *
 * Each connection is read and parsed here (http_parse.c); a complete
 * request becomes a Lua table handed to handler(req) in a new task, and
 * what the handler returns is serialized and written from that task in C,
 * so the only Lua code run per request is the handler itself.  Keep-alive
 * and pipelining (one request at a time per connection, answered in
 * order), chunked responses from an iterator body, limits answered with
 * their status (400, 408, 413, 414, 431, 503).  It does not do TLS,
 * HTTP/2 or protocol upgrades: an upgrade request is answered as a plain
 * request and the connection closed after it.
 *
 * Ownership: the listener and each connection are malloc'd blocks owned by
 * libuv until their close callbacks.  A connection block also stays while
 * a request task uses it (c->task, an observer of that task).  The server
 * block stays until the listener is closed and every connection block is
 * gone.  The server userdata (user values: handler, request metatable,
 * request body function, JSON encoder, the request table's key strings) is
 * anchored while it listens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "http.h"
#include "http_parse.h"

#define HTTP_SERVER_MT "casync.HttpServer"
#define SCRATCH_SIZE 65536u /* one read at most, shared by the connections */
#define READ_HWM 65536u     /* buffered while a handler runs: stop reading */
#define LINGER_MS 2000u     /* after a closing answer, read and drop */
#define DEFAULT_BACKLOG 511

/* uv values of the request task's stack: [1 handler][2 req][3 conn]
 * [4 result][5 body] */
#define R_CONN 3
#define R_RESULT 4
#define R_BODY 5

/* c->flags */
#define CF_CLOSING 0x0001u   /* uv_close called */
#define CF_CLOSED 0x0002u    /* its close callback ran */
#define CF_EOF 0x0004u       /* the peer sent FIN */
#define CF_RESPONDED 0x0008u /* the request task answered in full */
#define CF_SENT 0x0010u      /* some of the answer went out */
#define CF_CLOSE_AFTER 0x0020u
#define CF_HEAD 0x0040u      /* the request is a HEAD */
#define CF_HTTP10 0x0080u    /* ... an HTTP/1.0 one */
#define CF_CONTINUED 0x0100u /* "100 Continue" sent */
#define CF_LINGER 0x0200u    /* answered and closing: reading to drop */
#define CF_STOPPED 0x0400u   /* reading paused (a handler runs, data waits) */
#define CF_KICK 0x0800u      /* buffered requests to go on with */
#define CF_REJECTED 0x1000u  /* over max_connections: answered 503 */
#define CF_CHUNKED 0x2000u   /* the answer's body is chunked */

enum { PH_DONE = 1, PH_NEXT }; /* what follows a finished write */

typedef struct hserver hserver;
typedef struct hconn hconn;

typedef struct hserver_ud {
  hserver *srv; /* NULL once closed */
} hserver_ud;

struct hserver {
  casync_handle hd;
  uv_tcp_t tcp;
  hserver_ud *ud; /* NULL once Lua let go */
  hconn *conns;   /* open connections */
  int nconn;      /* ... how many (rejected ones not counted) */
  int blocks;     /* connection blocks + 1 for the listener */
  char *scratch;  /* read buffer shared by the connections */
  lua_Integer max_conn;
  size_t max_head, max_body;
  unsigned max_headers;
  uint64_t header_ms, body_ms, idle_ms;
  double write_s;
  int64_t date_sec; /* the Date header line, made once a second */
  char date[40];
  lua_Integer accepted, requests, rejected, bad;
};

struct hconn {
  casync_handle hd;
  uv_tcp_t tcp;
  hserver *srv;
  hconn *next, *prev; /* in srv->conns until it closes */
  casync_hmsg msg;    /* the request being read */
  char *rbuf;         /* bytes read but not parsed: [rhead, rtail) */
  size_t rhead, rtail, rcap;
  casync_task *task;           /* the request task, NULL between requests */
  casync_obs obs;              /* in that task's observers */
  casync_tnode timer;          /* fires at (or before) deadline */
  uint64_t deadline, timer_at; /* loop time, ms */
  unsigned flags;
  casync_task *writer; /* the request task, while it waits for a write */
  uv_write_t wreq;
  char *wdata; /* the part of a write libuv has */
  int wstatus;
  uv_shutdown_t sreq;
  casync_hbuf out; /* the head of the answer */
};

/* Pushes the hooks http.lua set ({reqmeta=, encode=}). */
static void push_hooks(lua_State *L) {
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_HTTP);
  lua_remove(L, -2);
}

/* ============================================================ lifetime */

static void srv_unref(hserver *srv) {
  if (--srv->blocks > 0) return;
  free(srv->scratch);
  srv->hd.ctx->http_blocks--;
  free(srv);
}

static void conn_free(hconn *c) {
  hserver *srv = c->srv;
  casync__hmsg_free(&c->msg);
  casync__hbuf_free(&c->out);
  free(c->rbuf);
  free(c->wdata);
  free(c);
  srv->hd.ctx->http_blocks--;
  srv_unref(srv);
}

static void conn_closed(casync_handle *h) {
  hconn *c = container_of(h, hconn, hd);
  c->flags |= CF_CLOSED;
  /* a task still using it frees it when it ends (conn_task_ended); once the
   * Lua state is gone no task will end */
  if (!c->task || !h->ctx->alive) conn_free(c);
}

static const casync_hclass conn_class = {"http connection", NULL,
                                         conn_closed};

static void conn_unlist(hconn *c) {
  hserver *srv = c->srv;
  if (!c->prev && srv->conns != c) return; /* not listed */
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
  if (!(c->flags & CF_REJECTED)) srv->nconn--;
}

/* Closes c now.  A task waiting on one of its writes is woken by libuv
 * (the write fails with ECANCELED). */
static void conn_close(hconn *c) {
  if (c->flags & CF_CLOSING) return;
  c->flags |= CF_CLOSING;
  if (c->hd.ctx->alive) casync__timer_remove(c->hd.ctx, &c->timer);
  conn_unlist(c);
  casync__handle_close(&c->hd);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  hconn *c = container_of(req, hconn, sreq);
  if (status < 0) conn_close(c);
}

/* Sets c to fire no later than ms from now (loop time). */
static void conn_deadline(hconn *c, uint64_t ms) {
  casync_ctx *lp = c->hd.ctx;
  uint64_t now = uv_now(lp->loop);
  c->deadline = now + ms;
  if (c->timer.list && c->timer_at <= c->deadline) return;
  casync__timer_remove(lp, &c->timer);
  casync__timer_add(lp, &c->timer, (double)ms / 1000.0);
  c->timer_at = c->deadline;
}

/* Closes c once the peer has read the answer: FIN after the pending
 * writes, then whatever still comes is read and dropped until the peer
 * closes too or LINGER_MS pass.  (Closing at once with unread data makes
 * the kernel send a reset, and the peer may lose the answer.) */
static void conn_linger(hconn *c) {
  if (c->flags & (CF_CLOSING | CF_LINGER)) return;
  if (c->flags & CF_EOF) {
    conn_close(c);
    return;
  }
  c->flags |= CF_LINGER;
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    conn_close(c);
    return;
  }
  c->rhead = c->rtail = 0;
  conn_deadline(c, LINGER_MS);
}

/* Answers with a short error page and closes (`status` 400, 408, 413, 414,
 * 431, 500, 503). */
static void send_error(hconn *c, int status) {
  casync_hbuf *b = &c->out;
  const char *reason = casync__http_reason(status);
  uv_buf_t buf;
  if (c->flags & CF_CLOSING) return;
  if (!(c->flags & CF_SENT)) {
    b->len = 0;
    if (casync__http_status_line(b, status, reason) &&
        casync__hbuf_adds(b, "Content-Type: text/plain; charset=utf-8\r\n"
                             "Connection: close\r\nContent-Length: ") &&
        casync__hbuf_addu(b, strlen(reason) + 1) &&
        casync__hbuf_add(b, "\r\n\r\n", 4) && casync__hbuf_adds(b, reason) &&
        casync__hbuf_add(b, "\n", 1)) {
      buf = uv_buf_init(b->data, (unsigned)b->len);
      /* small, on a socket with nothing queued: it goes out whole or not
       * at all (the connection is going anyway) */
      uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
      c->flags |= CF_SENT;
    }
  }
  if (status >= 400 && status < 500) c->srv->bad++;
  conn_linger(c);
}

/* ============================================================= reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hconn *c = container_of(h, hconn, tcp);
  hserver *srv = c->srv;
  (void)suggested;
  if (c->rtail == c->rhead && !c->task) { /* parse straight from scratch */
    if (!srv->scratch) srv->scratch = malloc(SCRATCH_SIZE);
    buf->base = srv->scratch;
    buf->len = srv->scratch ? SCRATCH_SIZE : 0;
    return;
  }
  if (c->rcap - c->rtail < 4096) {
    size_t avail = c->rtail - c->rhead, cap = c->rcap ? c->rcap : 8192;
    char *nb;
    if (c->rhead > 0) {
      memmove(c->rbuf, c->rbuf + c->rhead, avail);
      c->rhead = 0;
      c->rtail = avail;
    }
    while (cap - avail < 4096)
      cap *= 2;
    if (cap != c->rcap) {
      nb = realloc(c->rbuf, cap);
      if (!nb) {
        buf->base = NULL;
        buf->len = 0;
        return;
      }
      c->rbuf = nb;
      c->rcap = cap;
    }
  }
  buf->base = c->rbuf + c->rtail;
  buf->len = c->rcap - c->rtail;
}

/* Keeps n bytes at p for later (they follow a request still in hand). */
static int conn_keep(hconn *c, const char *p, size_t n) {
  size_t avail = c->rtail - c->rhead;
  if (c->rcap - c->rtail < n) {
    size_t cap = c->rcap ? c->rcap : 8192;
    char *nb;
    while (cap < avail + n)
      cap *= 2;
    nb = malloc(cap);
    if (!nb) return 0;
    if (avail) memcpy(nb, c->rbuf + c->rhead, avail);
    free(c->rbuf);
    c->rbuf = nb;
    c->rcap = cap;
    c->rhead = 0;
    c->rtail = avail;
  }
  memcpy(c->rbuf + c->rtail, p, n);
  c->rtail += n;
  return 1;
}

static void dispatch(hconn *c);

/* Parses what c has at p; dispatches a complete request, answers errors,
 * arms the timeouts.  Returns the bytes used. */
static size_t conn_parse(hconn *c, const char *p, size_t n) {
  hserver *srv = c->srv;
  casync_hmsg *m = &c->msg;
  size_t used = 0;
  int began = m->state == HM_IDLE;
  if (c->task || (c->flags & (CF_CLOSING | CF_LINGER))) return 0;
  if (n) used = casync__hmsg_feed(m, p, n);
  if (m->state == HM_DONE) {
    dispatch(c);
    return used;
  }
  if (m->state == HM_ERROR) {
    send_error(c, m->status);
    return n;
  }
  if (c->flags & CF_EOF) { /* a half request, then the end */
    if (m->state == HM_IDLE)
      conn_close(c);
    else
      send_error(c, 400);
    return n;
  }
  if (m->state == HM_HEAD && began) conn_deadline(c, srv->header_ms);
  if (m->state == HM_BODY && !(c->flags & CF_CONTINUED)) {
    c->flags |= CF_CONTINUED; /* the head is in: the body has its own time */
    conn_deadline(c, srv->body_ms);
    if (m->expect_continue && !(c->flags & CF_SENT)) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
      uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
  }
  return used;
}

/* Goes on with the bytes c has buffered. */
static void conn_resume(hconn *c) {
  size_t used;
  if (c->rtail > c->rhead || (c->flags & CF_EOF)) {
    used =
        conn_parse(c, c->rbuf ? c->rbuf + c->rhead : "", c->rtail - c->rhead);
    if (!(c->flags & CF_CLOSING)) {
      c->rhead += used;
      if (c->rhead == c->rtail) c->rhead = c->rtail = 0;
    }
  }
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(hconn *c) {
  if ((c->flags & (CF_STOPPED | CF_EOF)) != CF_STOPPED) return;
  c->flags &= ~CF_STOPPED;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    conn_close(c);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  hconn *c = container_of(h, hconn, tcp);
  hserver *srv = c->srv;
  if (nread == 0) return;
  if (nread < 0 && nread != UV_EOF) { /* reset, or no memory for a read */
    conn_close(c);
    return;
  }
  if (!srv->hd.ctx->alive) return;
  if (c->flags & CF_LINGER) {
    if (nread == UV_EOF) conn_close(c);
    c->rhead = c->rtail = 0;
    return;
  }
  if (nread == UV_EOF) {
    c->flags |= CF_EOF | CF_STOPPED;
    uv_read_stop(h);
    if (!c->task) conn_resume(c);
    return;
  }
  if (buf->base == srv->scratch) {
    size_t used = conn_parse(c, buf->base, (size_t)nread);
    if ((c->flags & CF_CLOSING) || used >= (size_t)nread) return;
    if (!conn_keep(c, buf->base + used, (size_t)nread - used)) {
      conn_close(c);
      return;
    }
  } else {
    c->rtail += (size_t)nread;
    if (!c->task) conn_resume(c);
  }
  if (c->task && c->rtail - c->rhead >= READ_HWM &&
      !(c->flags & (CF_STOPPED | CF_CLOSING))) {
    c->flags |= CF_STOPPED; /* enough waits behind the running request */
    uv_read_stop(h);
  }
}

/* The timer of c: an idle keep-alive connection is closed, a request whose
 * head or body is late gets 408, a lingering close ends; buffered
 * pipelined requests go on (CF_KICK). */
static void on_conn_timer(casync_ctx *lp, casync_tnode *n) {
  hconn *c = container_of(n, hconn, timer);
  uint64_t now = uv_now(lp->loop);
  if (c->flags & CF_CLOSING) return;
  if (c->flags & CF_KICK) {
    c->flags &= ~CF_KICK;
    if (!c->task) conn_resume(c);
    if (!c->task && !(c->flags & CF_CLOSING) && !c->timer.list)
      conn_deadline(c, c->deadline > now ? c->deadline - now : 0);
    return;
  }
  if (c->task) return; /* its end sets the next deadline */
  if (now < c->deadline) {
    casync__timer_add(lp, &c->timer, (double)(c->deadline - now) / 1000.0);
    c->timer_at = c->deadline;
    return;
  }
  if (c->flags & CF_LINGER)
    conn_close(c);
  else if (c->msg.state == HM_IDLE)
    conn_close(c);
  else
    send_error(c, 408);
}

/* ============================================================ dispatch */

/* The strings a request table is made of, interned once per server (user
 * value 5 of its userdata), so building one hashes no C string. */
enum {
  K_METHOD = 1,
  K_TARGET,
  K_PATH,
  K_VERSION,
  K_HEADERS,
  K_BODY,
  K_V11,
  K_V10,
  K_METHODS
};
#define N_METHODS 64 /* http_parser's methods (34 in 2.9) fit */

static void push_keys(lua_State *L) {
  static const char *const names[] = {"method",  "target", "path", "version",
                                      "headers", "body",   "1.1",  "1.0"};
  int i;
  lua_createtable(L, K_METHODS + N_METHODS, 0);
  for (i = 0; i < K_METHODS - 1; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  for (i = 0; i < N_METHODS; i++) {
    const char *m = http_method_str((enum http_method)i);
    if (m[0] == '<') break; /* "<unknown>": past the last one */
    lua_pushstring(L, m);
    lua_rawseti(L, -2, K_METHODS + i);
  }
}

/* t[keys[k]] = the value on top, popped (t just below it). */
static void set_key(lua_State *L, int kidx, int k) {
  lua_rawgeti(L, kidx, k);
  lua_insert(L, -2);
  lua_rawset(L, -3);
}

/* Builds the request table of c's message; the keys (push_keys) are at
 * kidx.  [-0, +1] */
static void push_request(lua_State *L, hconn *c, int kidx) {
  casync_hmsg *m = &c->msg;
  const char *url = m->head.data ? m->head.data : "", *q;
  size_t ulen = m->first_len, plen;
  unsigned i;
  int v10 = m->p.http_minor == 0 && m->p.http_major == 1;
  /* version (when "1.0") and body (when not empty) only when they say
   * something: the request metatable gives "1.1" and "" otherwise */
  lua_createtable(L, 0, v10 || m->body.len ? 8 : 4);
  if (lua_rawgeti(L, kidx, K_METHODS + (int)m->p.method) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushstring(L, http_method_str((enum http_method)m->p.method));
  }
  set_key(L, kidx, K_METHOD);
  q = memchr(url, '?', ulen);
  plen = q ? (size_t)(q - url) : ulen;
  if (!q) { /* "/a#frag" never comes from a client, but cut it anyway */
    const char *h = memchr(url, '#', ulen);
    if (h) plen = (size_t)(h - url);
  }
  lua_pushlstring(L, url, ulen); /* [req, target] */
  lua_rawgeti(L, kidx, K_PATH);
  if (plen == ulen) lua_pushvalue(L, -2); /* the same string */
  else lua_pushlstring(L, url, plen);
  lua_rawset(L, -4);
  set_key(L, kidx, K_TARGET);
  if (v10) {
    lua_rawgeti(L, kidx, K_V10);
    set_key(L, kidx, K_VERSION);
  }
  lua_createtable(L, 0, (int)m->nfields);
  for (i = 0; i < m->nfields; i++) {
    const casync_hfield *f = &m->fields[i];
    lua_pushlstring(L, m->head.data + f->name, f->nlen);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlstring(L, m->head.data + f->value, f->vlen);
    } else { /* repeated: joined as one list */
      lua_pushstring(L, f->nlen == 6 &&
                                memcmp(m->head.data + f->name, "cookie", 6) == 0
                            ? "; "
                            : ", ");
      lua_pushlstring(L, m->head.data + f->value, f->vlen);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
  set_key(L, kidx, K_HEADERS);
  if (m->body.len) {
    lua_pushlstring(L, m->body.data, m->body.len);
    set_key(L, kidx, K_BODY);
  }
}

static void conn_task_ended(casync_ctx *lp, casync_obs *o, casync_task *t);

/* Spawns the request task for c's complete message.  Runs protected on
 * the main thread: [1 conn (light)]. */
static int dispatch_p(lua_State *L) {
  hconn *c = lua_touserdata(L, 1);
  hserver *srv = c->srv;
  casync_task *t;
  casync__push_pinned(L, srv->hd.pin_ref);  /* 2: the server userdata */
  lua_getiuservalue(L, 2, 5);               /* 3: the keys */
  lua_getiuservalue(L, 2, 3);               /* 4: the request body fn */
  lua_getiuservalue(L, 2, 1);               /* 5: the handler */
  push_request(L, c, 3);                    /* 6: req */
  lua_getiuservalue(L, 2, 2);
  lua_setmetatable(L, 6);
  lua_pushlightuserdata(L, c); /* 7: conn */
  t = casync__spawn(L, srv->hd.ctx, 4, 3, 0);
  c->task = t;
  c->obs.notify = conn_task_ended;
  casync__obs_link(t, &c->obs);
  return 0;
}

/* c has a complete request: records what the answer depends on, frees the
 * message for the next one and runs the handler in a new task. */
static void dispatch(hconn *c) {
  hserver *srv = c->srv;
  casync_hmsg *m = &c->msg;
  lua_State *L = srv->hd.ctx->L;
  int top;
  c->flags &= ~(CF_RESPONDED | CF_SENT | CF_HEAD | CF_HTTP10 | CF_CONTINUED |
                CF_CHUNKED);
  if (m->p.method == HTTP_HEAD) c->flags |= CF_HEAD;
  if (m->p.http_major == 1 && m->p.http_minor == 0) c->flags |= CF_HTTP10;
  if (!m->keep_alive || m->upgrade) c->flags |= CF_CLOSE_AFTER;
  if (srv->hd.pin_ref == LUA_NOREF) { /* the server closed meanwhile */
    conn_close(c);
    return;
  }
  srv->requests++;
  top = lua_gettop(L);
  lua_pushcfunction(L, dispatch_p);
  lua_pushlightuserdata(L, c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) { /* only memory errors */
    lua_settop(L, top);
    casync__hmsg_reset(m);
    send_error(c, 500);
    return;
  }
  lua_settop(L, top);
  casync__hmsg_reset(m);
}

/* The request task ended: go on with the connection. */
static void conn_task_ended(casync_ctx *lp, casync_obs *o, casync_task *t) {
  hconn *c = container_of(o, hconn, obs);
  c->task = NULL;
  c->writer = NULL;
  if (c->flags & CF_CLOSED) {
    conn_free(c);
    return;
  }
  if (c->flags & CF_CLOSING) return;
  if (!(c->flags & CF_RESPONDED)) {
    /* it failed (the scheduler reports it) or was cancelled */
    if (t->outcome == OUT_CANCELLED)
      conn_close(c);
    else
      send_error(c, 500);
    return;
  }
  if ((c->flags & CF_CLOSE_AFTER) || c->srv->hd.pin_ref == LUA_NOREF) {
    conn_linger(c);
    return;
  }
  /* the next request starts afresh */
  c->flags &= ~(CF_RESPONDED | CF_SENT | CF_HEAD | CF_HTTP10 | CF_CONTINUED |
                CF_CHUNKED);
  conn_read_start(c);
  if (c->rtail > c->rhead || (c->flags & CF_EOF)) {
    /* more is buffered: go on from the timer, outside the scheduler */
    c->flags |= CF_KICK;
    casync__timer_remove(lp, &c->timer);
    casync__timer_add(lp, &c->timer, 0);
    c->timer_at = 0;
    c->deadline = uv_now(lp->loop) + c->srv->idle_ms;
    return;
  }
  conn_deadline(c, c->srv->idle_ms);
}

/* ============================================================== answers */

static void on_conn_write(uv_write_t *req, int status) {
  hconn *c = container_of(req, hconn, wreq);
  free(c->wdata);
  c->wdata = NULL;
  c->wstatus = status;
  if (c->writer && c->hd.ctx->alive) {
    casync_task *t = c->writer;
    c->writer = NULL;
    casync__wake(c->hd.ctx, t, WAKE_OK);
  }
}

/* Writes bufs: 0 when all of it went out now, 1 when libuv has the rest
 * (the task waits: wait_write), -1 when the connection failed (closed). */
static int conn_send(hconn *c, uv_buf_t *bufs, unsigned n) {
  size_t total = 0, rest, off = 0;
  unsigned i;
  int r;
  uv_buf_t b;
  if (c->flags & CF_CLOSING) return -1;
  for (i = 0; i < n; i++)
    total += bufs[i].len;
  if (total == 0) return 0;
  r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (r < 0 && r != UV_EAGAIN) {
    conn_close(c);
    return -1;
  }
  if (r < 0) r = 0;
  c->flags |= CF_SENT;
  if ((size_t)r == total) return 0;
  rest = total - (size_t)r;
  c->wdata = malloc(rest);
  if (!c->wdata) {
    conn_close(c);
    return -1;
  }
  for (i = 0; i < n; i++) { /* copy what did not go out */
    size_t skip = (size_t)r > bufs[i].len ? bufs[i].len : (size_t)r;
    r -= (int)skip;
    memcpy(c->wdata + off, bufs[i].base + skip, bufs[i].len - skip);
    off += bufs[i].len - skip;
  }
  b = uv_buf_init(c->wdata, (unsigned)rest);
  c->wstatus = 1;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_conn_write) < 0) {
    free(c->wdata);
    c->wdata = NULL;
    conn_close(c);
    return -1;
  }
  return 1;
}

static int write_cancel(casync_ctx *lp, casync_task *t, int why) {
  hconn *c = t->wait_obj;
  (void)lp;
  (void)why;
  c->writer = NULL; /* the data stays with libuv until on_conn_write */
  return 1;
}

/* A woken write is done: its fate is kept. */
static const casync_wait_kind resp_write_wait = {
  "write", "http response write", write_cancel, CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL};

static int resp_k(lua_State *L, int status, lua_KContext kc);

static int wait_write(lua_State *L, hconn *c, lua_KContext kc) {
  casync_task *t = CASYNC_CTX(L)->current;
  c->writer = t;
  return casync__park(L, t, &resp_write_wait, c,
                      casync__deadline(c->srv->write_s), resp_k, kc);
}

static int respond_done(hconn *c) {
  c->flags |= CF_RESPONDED;
  return 0;
}

/* Sends one chunk of a streamed body, or the end of it (chunk NULL):
 * conn_send's result. */
static int send_chunk(hconn *c, const char *p, size_t len) {
  char size[20];
  uv_buf_t b[3];
  unsigned n = 0;
  int k = 0;
  if (!(c->flags & CF_CHUNKED)) {
    if (!p) return 0;
    b[0] = uv_buf_init((char *)p, (unsigned)len);
    return conn_send(c, b, 1);
  }
  if (!p) {
    b[0] = uv_buf_init("0\r\n\r\n", 5);
    return conn_send(c, b, 1);
  }
  {
    size_t v = len;
    char tmp[18];
    int i = 0;
    do {
      tmp[i++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    while (i > 0)
      size[k++] = tmp[--i];
    size[k++] = '\r';
    size[k++] = '\n';
  }
  b[n++] = uv_buf_init(size, (unsigned)k);
  b[n++] = uv_buf_init((char *)p, (unsigned)len);
  b[n++] = uv_buf_init("\r\n", 2);
  return conn_send(c, b, n);
}

static int chunk_k(lua_State *L, int status, lua_KContext kc);

/* Calls the body iterator for chunks until it returns nil. */
static int stream_body(lua_State *L, hconn *c) {
  for (;;) {
    lua_settop(L, R_BODY);
    lua_pushvalue(L, R_BODY);
    lua_callk(L, 0, 1, 0, chunk_k);
    switch (lua_type(L, -1)) {
    case LUA_TNIL: {
      int r = send_chunk(c, NULL, 0);
      if (r < 0) return 0;
      return r ? wait_write(L, c, PH_DONE) : respond_done(c);
    }
    case LUA_TSTRING:
    case LUA_TNUMBER: {
      size_t len;
      const char *p = lua_tolstring(L, -1, &len);
      int r = len ? send_chunk(c, p, len) : 0;
      if (r < 0) return 0;
      if (r) return wait_write(L, c, PH_NEXT);
      break;
    }
    default:
      return luaL_error(L,
                        "http response: the body iterator returned a %s "
                        "(a string or nil expected)",
                        luaL_typename(L, -1));
    }
  }
}

static int chunk_k(lua_State *L, int status, lua_KContext kc) {
  hconn *c = lua_touserdata(L, R_CONN);
  int r = 0;
  (void)status;
  (void)kc;
  if (c->flags & CF_CLOSING) return 0;
  if (lua_isnil(L, -1)) {
    r = send_chunk(c, NULL, 0);
    if (r < 0) return 0;
    return r ? wait_write(L, c, PH_DONE) : respond_done(c);
  }
  if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
    return luaL_error(L,
                      "http response: the body iterator returned a %s "
                      "(a string or nil expected)",
                      luaL_typename(L, -1));
  {
    size_t len;
    const char *p = lua_tolstring(L, -1, &len);
    r = len ? send_chunk(c, p, len) : 0;
  }
  if (r < 0) return 0;
  if (r) return wait_write(L, c, PH_NEXT);
  return stream_body(L, c);
}

/* After a write the task waited for. */
static int resp_k(lua_State *L, int status, lua_KContext kc) {
  hconn *c = lua_touserdata(L, R_CONN);
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, resp_k);
  c->writer = NULL;
  if (t->wake == WAKE_CANCEL) {
    conn_close(c);
    return casync__raise_cancel(L, t);
  }
  if (t->wake == WAKE_TIMEOUT || c->wstatus < 0 || (c->flags & CF_CLOSING)) {
    conn_close(c); /* the peer does not read, or went away */
    return 0;
  }
  if (kc == PH_DONE) return respond_done(c);
  return stream_body(L, c);
}

/* Lowercase comparison of a header name with a lowercase literal. */
static int name_is(const char *s, size_t n, const char *lit, size_t llen) {
  size_t i;
  if (n != llen) return 0;
  for (i = 0; i < n; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
    if (ch != lit[i]) return 0;
  }
  return 1;
}

#define HAS_CTYPE 1
#define HAS_DATE 2

/* Appends header name: value (the value a string, a number or an array of
 * them: one line each); raises on a bad one.  Returns HAS_* bits. */
static int add_header(lua_State *L, hconn *c, int nidx, int vidx) {
  size_t nlen, vlen;
  const char *name, *v;
  int bits = 0;
  nidx = lua_absindex(L, nidx);
  vidx = lua_absindex(L, vidx);
  if (lua_type(L, nidx) != LUA_TSTRING)
    return luaL_error(L, "http response: header names must be strings");
  name = lua_tolstring(L, nidx, &nlen);
  if (name_is(name, nlen, "content-length", 14) ||
      name_is(name, nlen, "transfer-encoding", 17))
    return 0; /* the framing is the server's business */
  if (name_is(name, nlen, "content-type", 12)) bits |= HAS_CTYPE;
  if (name_is(name, nlen, "date", 4)) bits |= HAS_DATE;
  if (lua_type(L, vidx) == LUA_TTABLE) {
    lua_Integer i, n = luaL_len(L, vidx);
    for (i = 1; i <= n; i++) {
      lua_geti(L, vidx, i);
      bits |= add_header(L, c, nidx, lua_gettop(L));
      lua_pop(L, 1);
    }
    return bits;
  }
  if (lua_type(L, vidx) != LUA_TSTRING && lua_type(L, vidx) != LUA_TNUMBER)
    return luaL_error(L, "http response: header '%s' has a %s value", name,
                      luaL_typename(L, vidx));
  v = lua_tolstring(L, vidx, &vlen);
  if (name_is(name, nlen, "connection", 10) && vlen >= 5 &&
      name_is(v, 5, "close", 5))
    c->flags |= CF_CLOSE_AFTER;
  if (!casync__http_header(&c->out, name, nlen, v, vlen)) {
    if (!casync__http_valid_name(name, nlen) ||
        !casync__http_valid_value(v, vlen))
      return luaL_error(L, "http response: invalid header '%s'", name);
    return luaL_error(L, "not enough memory");
  }
  return bits;
}

/* "Date: <IMF-fixdate>\r\n" (37 bytes), made once a second. */
static const char *server_date(hserver *srv) {
  int64_t now = (int64_t)time(NULL);
  if (now != srv->date_sec) {
    memcpy(srv->date, "Date: ", 6);
    casync__http_date(srv->date + 6, now);
    memcpy(srv->date + 35, "\r\n", 2);
    srv->date_sec = now;
  }
  return srv->date;
}

/* Appends a string literal. */
#define ADDLIT(b, lit) casync__hbuf_add((b), (lit), sizeof(lit) - 1)

/* After the handler returned [4 result]: builds the head, sends the answer
 * (or starts streaming it). */
static int handler_k(lua_State *L, int status, lua_KContext kc) {
  hconn *c = lua_touserdata(L, R_CONN);
  casync_hbuf *b = &c->out;
  lua_Integer code = 200;
  size_t blen = 0;
  const char *body = NULL;
  int bits = 0, stream = 0, json = 0, nobody, r;
  uv_buf_t bufs[2];
  (void)status;
  (void)kc;
  lua_settop(L, R_RESULT);
  if (c->flags & CF_CLOSING) return 0; /* the peer went away meanwhile */
  b->len = 0;
  switch (lua_type(L, R_RESULT)) {
  case LUA_TNIL:
    code = 204;
    lua_pushnil(L);
    break;
  case LUA_TSTRING:
    lua_pushvalue(L, R_RESULT);
    break;
  case LUA_TTABLE: {
    int isint;
    if (lua_getfield(L, R_RESULT, "status") != LUA_TNIL) {
      code = lua_tointegerx(L, -1, &isint);
      if (!isint || code < 100 || code > 999)
        return luaL_error(L, "http response: status must be an integer in "
                             "100..999");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, R_RESULT, "body") == LUA_TNIL &&
        lua_getfield(L, R_RESULT, "json") != LUA_TNIL) {
      lua_getiuservalue(L, lua_upvalueindex(2), 4); /* encode */
      lua_insert(L, -2);
      lua_call(L, 1, 1);
      json = 1;
      lua_replace(L, -2);
    } else if (lua_gettop(L) > R_BODY)
      lua_pop(L, 1);
    break;
  }
  default:
    return luaL_error(L,
                      "http response: the handler returned a %s (a "
                      "string, a table or nil expected)",
                      luaL_typename(L, R_RESULT));
  }
  /* [5 body: nil, a string or an iterator] */
  if (lua_type(L, R_BODY) == LUA_TNUMBER) lua_tostring(L, R_BODY);
  if (lua_type(L, R_BODY) == LUA_TSTRING)
    body = lua_tolstring(L, R_BODY, &blen);
  else if (casync__is_callable(L, R_BODY))
    stream = 1;
  else if (!lua_isnil(L, R_BODY))
    return luaL_error(L,
                      "http response: body must be a string, a function "
                      "or nil, not a %s",
                      luaL_typename(L, R_BODY));
  nobody = code < 200 || code == 204 || code == 304;
  if (!casync__hbuf_reserve(b, 256)) return luaL_error(L, "not enough memory");
  if (code == 200)
    ADDLIT(b, "HTTP/1.1 200 OK\r\n");
  else
    casync__http_status_line(b, (int)code, NULL);
  if (lua_type(L, R_RESULT) == LUA_TTABLE &&
      lua_getfield(L, R_RESULT, "headers") != LUA_TNIL) {
    int hidx = lua_gettop(L);
    if (!lua_istable(L, hidx))
      return luaL_error(L, "http response: headers must be a table");
    lua_pushnil(L);
    while (lua_next(L, hidx)) {
      bits |= add_header(L, c, -2, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, R_BODY);
  if (!nobody) {
    if (!(bits & HAS_CTYPE) && (body || stream))
      casync__hbuf_adds(b, json
                               ? "Content-Type: application/json\r\n"
                               : "Content-Type: text/plain; charset=utf-8\r\n");
    if (stream) {
      if (c->flags & CF_HTTP10)
        c->flags |= CF_CLOSE_AFTER; /* to the end */
      else {
        ADDLIT(b, "Transfer-Encoding: chunked\r\n");
        c->flags |= CF_CHUNKED;
      }
    } else {
      ADDLIT(b, "Content-Length: ");
      casync__hbuf_addu(b, blen);
      casync__hbuf_add(b, "\r\n", 2);
    }
  }
  if (!(bits & HAS_DATE)) {
    casync__hbuf_add(b, server_date(c->srv), 37);
  }
  if (c->flags & CF_CLOSE_AFTER)
    ADDLIT(b, "Connection: close\r\n");
  else if (c->flags & CF_HTTP10)
    ADDLIT(b, "Connection: keep-alive\r\n");
  if (!casync__hbuf_add(b, "\r\n", 2))
    return luaL_error(L, "not enough memory");
  bufs[0] = uv_buf_init(b->data, (unsigned)b->len);
  bufs[1] = uv_buf_init((char *)body, (unsigned)blen);
  if (nobody || (c->flags & CF_HEAD)) {
    r = conn_send(c, bufs, 1);
    if (r < 0) return 0;
    return r ? wait_write(L, c, PH_DONE) : respond_done(c);
  }
  r = conn_send(c, bufs, body && blen ? 2 : 1);
  if (r < 0) return 0;
  if (stream) return r ? wait_write(L, c, PH_NEXT) : stream_body(L, c);
  return r ? wait_write(L, c, PH_DONE) : respond_done(c);
}

/* The body of a request task: handler(req), then the answer.
 * Upvalues: the loop context, the server userdata. */
static int request_body(lua_State *L) {
  lua_settop(L, R_CONN);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_callk(L, 1, 1, 0, handler_k);
  return handler_k(L, LUA_OK, 0);
}

/* ============================================================ accepting */

static void on_connection(uv_stream_t *h, int status) {
  hserver *srv = container_of(h, hserver, tcp);
  casync_ctx *ctx = srv->hd.ctx;
  hconn *c;
  if (status < 0 || !ctx->alive) return; /* EMFILE ...: libuv goes on */
  c = calloc(1, sizeof *c);
  if (!c) return;
  if (uv_tcp_init(ctx->loop, &c->tcp) < 0) {
    free(c);
    return;
  }
  casync__handle_init(ctx, &c->hd, &conn_class, (uv_handle_t *)&c->tcp);
  c->srv = srv;
  srv->blocks++;
  ctx->http_blocks++;
  casync__hmsg_init(&c->msg, HTTP_REQUEST, srv->max_head, srv->max_body,
                    srv->max_headers);
  c->timer.fire = on_conn_timer;
  if (uv_accept(h, (uv_stream_t *)&c->tcp) < 0) {
    c->flags |= CF_CLOSING;
    casync__handle_close(&c->hd);
    return;
  }
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  if (srv->max_conn > 0 && srv->nconn >= srv->max_conn) {
    c->flags |= CF_REJECTED;
    srv->rejected++;
    send_error(c, 503);
  } else {
    srv->nconn++;
    srv->accepted++;
    conn_deadline(c, srv->header_ms);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    conn_close(c);
}

static void listener_closed(casync_handle *h) {
  srv_unref(container_of(h, hserver, hd));
}

static const casync_hclass listener_class = {"http listener", NULL,
                                             listener_closed};

/* Stops listening; closes idle connections; with `cancel`, cancels the
 * running request tasks (the others finish their answer, then close). */
static void server_close(lua_State *L, hserver *srv, int cancel) {
  casync_ctx *ctx = srv->hd.ctx;
  hconn *c, *next;
  if (srv->ud) {
    srv->ud->srv = NULL;
    srv->ud = NULL;
  }
  casync__handle_unpin(&srv->hd);
  for (c = srv->conns; c; c = next) {
    next = c->next;
    if (!c->task)
      conn_close(c);
    else if (cancel && ctx->alive)
      casync__cancel(L, ctx, c->task, 0);
    else
      c->flags |= CF_CLOSE_AFTER;
  }
  casync__handle_close(&srv->hd);
}

/* ============================================================ Lua side */

static hserver *check_open(lua_State *L, const char *fname) {
  hserver_ud *u = luaL_checkudata(L, 1, HTTP_SERVER_MT);
  if (!u->srv) luaL_error(L, "%s: attempt to use a closed server", fname);
  return u->srv;
}

static uint64_t opt_ms(lua_State *L, const char *field, double def) {
  double s = casync__net_opt_seconds(L, 4, field);
  if (s < 0) s = def;
  if (s > 1e9) s = 1e9;
  return (uint64_t)(s * 1000.0 + 0.5);
}

static size_t opt_size(lua_State *L, const char *field, lua_Integer def) {
  lua_Integer v = casync__net_opt_int(L, 4, field, def);
  if (v <= 0 || v > 0x7fffffff)
    luaL_argerror(L, 4,
                  lua_pushfstring(L, "opts.%s must be in 1..2^31-1", field));
  return (size_t)v;
}

/* casync.http.serve(host, port, handler [, opts]) -> server | nil, err:
 * answers HTTP/1.1 on host:port (port 0: a free one, server:port()),
 * running handler(req) in a new task per request.  opts: max_connections
 * (1024; more get 503), max_header_size (16 KiB; 431), max_headers (100),
 * max_body_size (1 MiB; 413), header_timeout (10 s; 408), body_timeout
 * (30 s; 408), keep_alive_timeout (5 s), write_timeout (30 s), backlog;
 * workers = n (> 1): n worker processes serve it (workers.c). */
static int fn_serve(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2), backlog, maxc;
  struct sockaddr_storage ss;
  hserver_ud *u;
  hserver *srv;
  size_t mhead, mbody, mheaders;
  uint64_t hms, bms, ims;
  double ws;
  int r, workers;
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port must be in 0..65535");
  casync__check_callable(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  backlog = casync__net_opt_int(L, 4, "backlog", DEFAULT_BACKLOG);
  luaL_argcheck(L, backlog > 0 && backlog <= 0x7fffffff, 4,
                "opts.backlog must be positive");
  maxc = casync__net_opt_int(L, 4, "max_connections", 1024);
  luaL_argcheck(L, maxc >= 0, 4, "opts.max_connections must not be negative");
  mhead = opt_size(L, "max_header_size", CASYNC_HTTP_MAX_HEAD);
  mheaders = opt_size(L, "max_headers", CASYNC_HTTP_MAX_HEADERS);
  mbody = opt_size(L, "max_body_size", CASYNC_HTTP_MAX_BODY);
  hms = opt_ms(L, "header_timeout", 10);
  bms = opt_ms(L, "body_timeout", 30);
  ims = opt_ms(L, "keep_alive_timeout", 5);
  ws = casync__net_opt_seconds(L, 4, "write_timeout");
  if (ws < 0) ws = 30;
  workers = casync__workers_opt(L, 4);
  if ((r = casync__net_bind_addr(ctx, host, (int)port, &ss)) < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "serve", r);
    return 2;
  }
  /* with workers: returns in each worker only (or with an error) */
  if ((r = casync__workers_start(L, ctx, workers, &ss, "serve")) < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "serve", r);
    return 2;
  }
  /* the userdata: closed until it listens */
  u = lua_newuserdatauv(L, sizeof *u, 5); /* 5 */
  u->srv = NULL;
  luaL_setmetatable(L, HTTP_SERVER_MT);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 5, 1);
  push_hooks(L);
  lua_getfield(L, -1, "reqmeta");
  lua_setiuservalue(L, 5, 2);
  casync__ctx_push(L);
  lua_pushvalue(L, 5);
  lua_pushcclosure(L, request_body, 2);
  lua_setiuservalue(L, 5, 3);
  lua_getfield(L, -1, "encode");
  lua_setiuservalue(L, 5, 4);
  lua_pop(L, 1);
  push_keys(L);
  lua_setiuservalue(L, 5, 5);
  srv = calloc(1, sizeof *srv);
  if (!srv) return luaL_error(L, "not enough memory");
  uv_tcp_init(ctx->loop, &srv->tcp);
  casync__handle_init(ctx, &srv->hd, &listener_class, (uv_handle_t *)&srv->tcp);
  ctx->http_blocks++;
  srv->blocks = 1;
  srv->max_conn = maxc;
  srv->max_head = mhead;
  srv->max_body = mbody;
  srv->max_headers = (unsigned)mheaders;
  srv->header_ms = hms;
  srv->body_ms = bms;
  srv->idle_ms = ims;
  srv->write_s = ws;
  srv->date_sec = -1;
  r = casync__tcp_bind(&srv->tcp, &ss);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&srv->tcp, (int)backlog, on_connection);
  if (r < 0) {
    casync__handle_close(&srv->hd);
    lua_pushnil(L);
    casync__error_uv(L, "serve", r);
    return 2;
  }
  casync__handle_pin(L, &srv->hd, 5);
  srv->ud = u;
  u->srv = srv;
  return 1;
}

/* server:close([{cancel = true}]): stops accepting and closes the idle
 * connections; the requests being answered finish first (with cancel,
 * their tasks are cancelled).  Closing again does nothing.  Also __close
 * and __gc (without cancel). */
static int meth_close(lua_State *L) {
  hserver_ud *u = luaL_checkudata(L, 1, HTTP_SERVER_MT);
  int cancel = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "cancel");
    cancel = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (u->srv) server_close(L, u->srv, cancel);
  return 0;
}

static int meta_gc(lua_State *L) {
  hserver_ud *u = lua_touserdata(L, 1);
  if (u->srv) server_close(L, u->srv, 0);
  return 0;
}

/* server:closed() -> boolean */
static int meth_closed(lua_State *L) {
  hserver_ud *u = luaL_checkudata(L, 1, HTTP_SERVER_MT);
  lua_pushboolean(L, u->srv == NULL);
  return 1;
}

/* server:address() -> host, port | nil, err */
static int meth_address(lua_State *L) {
  hserver *srv = check_open(L, "address");
  struct sockaddr_storage ss;
  int len = sizeof ss, r;
  r = uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &len);
  if (r < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "address", r);
    return 2;
  }
  return casync__net_push_addr(L, (struct sockaddr *)&ss);
}

/* server:port() -> the port it listens on */
static int meth_port(lua_State *L) {
  meth_address(L);
  return 1;
}

/* server:url([path]) -> "http://host:port/" .. path (a path without its
 * leading "/" gets one) */
static int meth_url(lua_State *L) {
  const char *path = luaL_optstring(L, 2, "/");
  const char *host;
  if (meth_address(L) != 2 || lua_isnil(L, -2))
    return luaL_error(L, "url: the server has no address");
  host = lua_tostring(L, -2);
  lua_pushfstring(
      L, strchr(host, ':') ? "http://[%s]:%d%s%s" : "http://%s:%d%s%s", host,
      (int)lua_tointeger(L, -1), path[0] == '/' ? "" : "/", path);
  return 1;
}

/* server:connections() -> open connections (rejected ones not counted) */
static int meth_connections(lua_State *L) {
  lua_pushinteger(L, check_open(L, "connections")->nconn);
  return 1;
}

/* server:stats() -> {accepted=, requests=, rejected=, bad=, connections=} */
static int meth_stats(lua_State *L) {
  hserver *srv = check_open(L, "stats");
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, srv->accepted);
  lua_setfield(L, -2, "accepted");
  lua_pushinteger(L, srv->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, srv->rejected);
  lua_setfield(L, -2, "rejected");
  lua_pushinteger(L, srv->bad);
  lua_setfield(L, -2, "bad");
  lua_pushinteger(L, srv->nconn);
  lua_setfield(L, -2, "connections");
  return 1;
}

static int meta_tostring(lua_State *L) {
  hserver_ud *u = luaL_checkudata(L, 1, HTTP_SERVER_MT);
  lua_pushfstring(L, "casync.HttpServer (%s)", u->srv ? "listening" : "closed");
  return 1;
}

/* _stats() -> {blocks=}: server and connection blocks not yet freed (for
 * tests) */
static int fn_stats(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, CASYNC_CTX(L)->http_blocks);
  lua_setfield(L, -2, "blocks");
  return 1;
}

/* _setup(reqmeta, encode): the request metatable and the JSON encoder
 * (from lua/casync/http.lua) for the servers made afterwards. */
static int fn_setup(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  casync__check_callable(L, 2);
  push_hooks(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "reqmeta");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "encode");
  return 0;
}

/* Adds serve and _setup to the table on top. */
void casync__http_server_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"close", meth_close},     {"closed", meth_closed},
      {"address", meth_address}, {"port", meth_port},
      {"url", meth_url},         {"connections", meth_connections},
      {"stats", meth_stats},     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"serve", fn_serve},
                                 {"_setup", fn_setup},
                                 {"_stats", fn_stats},
                                 {NULL, NULL}};
  luaL_newmetatable(L, HTTP_SERVER_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_setfuncs(L, (const luaL_Reg[]){{"__close", meth_close},
                                             {"__gc", meta_gc},
                                             {"__tostring", meta_tostring},
                                             {NULL, NULL}});
  lua_pop(L, 1);
  push_hooks(L); /* placeholder hooks until http.lua sets them */
  lua_newtable(L);
  lua_setfield(L, -2, "reqmeta");
  lua_pop(L, 1);
  casync__ctx_setfuncs(L, fns);
}
