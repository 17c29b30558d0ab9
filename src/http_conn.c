/* http_conn.c: one connection of casync.http.serve.  Its stream (accepted
 * by server.c's listener, buffered by stream.c) is read here in C: the
 * bytes are parsed as they come (http_parse.c), a complete request becomes
 * a Lua table handed to handler(req) in a new task, and the connection's
 * timer enforces header_timeout, body_timeout, keep_alive_timeout and
 * write_timeout.  Keep-alive and pipelining: one request at a time, the
 * next one parsed once the answer is out.  Errors the parser finds are
 * answered here in C (400, 408, 413, 414, 431, 501, 505) and the
 * connection closed.  The answer itself is http_respond.c's.
 */
#include <stdlib.h>
#include <string.h>
#include "http_server.h"

#define READ_HWM 65536u /* buffered while a handler runs: stop reading */
#define LINGER_MS 2000u /* after a closing answer, read and drop */

/* ============================================================ lifetime */

/* Takes c out of its server's list (at free) and out of the count of
 * open connections (at close). */
static void conn_uncount(hconn *c) {
  if (c->flags & CF_COUNTED) {
    c->flags &= ~CF_COUNTED;
    c->srv->nconn--;
  }
}

static void conn_unlist(hconn *c) {
  hserver *srv = c->srv;
  conn_uncount(c);
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

static void conn_free(hconn *c) {
  hserver *srv = c->srv;
  if (srv->ctx->alive) casync__timer_remove(srv->ctx, &c->timer);
  conn_unlist(c);
  casync__hmsg_free(&c->msg);
  casync__hbuf_free(&c->out);
  free(c);
  srv->ctx->http_blocks--;
  casync__hserver_unref(srv);
}

/* Frees c once nothing uses it: its stream closed, no request task, no
 * write or shutdown in libuv's hands.  Once the Lua state is gone no task
 * will end. */
static void conn_maybe_free(hconn *c) {
  if (c->s || c->inflight) return;
  if (c->task && c->srv->ctx->alive) return;
  conn_free(c);
}

/* The same, for http_respond.c's write callback. */
void casync__hconn_release(hconn *c) { conn_maybe_free(c); }

/* The Lua state is closing (the server's __gc, which a running request
 * task would have kept from running otherwise): c's task will never end,
 * so c forgets it and goes once libuv is done with its writes. */
void casync__hconn_orphan(hconn *c) {
  casync__hscope_drop(c);
  if (c->task) {
    casync__obs_unlink(c->task, &c->obs);
    c->task = NULL;
    c->writer = NULL;
  }
  c->flags |= CF_ORPHAN;
  if (c->s) casync__stream_close(c->s, 0); /* calls on_stream_closed */
  else conn_maybe_free(c);
}

/* The stream closed (by casync__hconn_close, or with the Lua state).  The
 * block is freed later (from its timer, or when its task or its last
 * write ends), never under a caller that may still look at it. */
static void on_stream_closed(casync_stream *s, void *arg) {
  hconn *c = arg;
  casync_ctx *ctx = c->srv->ctx;
  s->on_close = NULL;
  c->flags |= CF_CLOSING;
  c->s = NULL;
  conn_uncount(c);
  casync__unpin(ctx, c->sref);
  c->sref = LUA_NOREF;
  if (!ctx->alive || (c->flags & CF_ORPHAN)) {
    conn_maybe_free(c);
    return;
  }
  casync__timer_remove(ctx, &c->timer);
  if (!c->task) casync__timer_add(ctx, &c->timer, 0);
}

/* Hands c's stream to the request task (req:websocket()): from now on Lua
 * reads and writes it; it is closed when that task ends.  Returns the
 * stream, whose userdata it pushes, or NULL (pushing nothing) when c has
 * begun an answer or is closing. */
casync_stream *casync__hconn_upgrade(lua_State *L, hconn *c) {
  if (c->flags & (CF_CLOSING | CF_SENT | CF_UPGRADED | CF_LINGER)) return NULL;
  c->flags |= CF_UPGRADED;
  c->s->on_data = NULL; /* Lua reads from now on; the close is still ours */
  casync__timer_remove(c->srv->ctx, &c->timer);
  casync__push_pinned(L, c->sref);
  return c->s;
}

/* Closes c now.  A task waiting on one of its writes is woken by libuv
 * (the write fails with ECANCELED). */
void casync__hconn_close(hconn *c) {
  if (c->flags & CF_CLOSING) return;
  c->flags |= CF_CLOSING;
  if (c->s) casync__stream_close(c->s, 1); /* calls on_stream_closed */
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  hconn *c = container_of(req, hconn, sreq);
  c->inflight--;
  if (status < 0) casync__hconn_close(c);
  conn_maybe_free(c);
}

/* Sets c to fire no later than ms from now (loop time). */
void casync__hconn_deadline(hconn *c, uint64_t ms) {
  casync_ctx *lp = c->srv->ctx;
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
void casync__hconn_linger(hconn *c) {
  if (c->flags & (CF_CLOSING | CF_LINGER)) return;
  if (c->flags & CF_EOF) {
    casync__hconn_close(c);
    return;
  }
  c->flags |= CF_LINGER;
  if (casync__stream_shutdown(c->s, &c->sreq, on_shutdown) < 0) {
    casync__hconn_close(c);
    return;
  }
  c->inflight++;
  casync__stream_consume(c->s, c->s->rtail - c->s->rhead);
  if (casync__stream_read_start(c->s) < 0) {
    casync__hconn_close(c);
    return;
  }
  casync__hconn_deadline(c, LINGER_MS);
}

/* Answers with a short error page and closes (`status` 400, 408, 413, 414,
 * 431, 500, 501, 503, 505). */
void casync__hconn_error(hconn *c, int status) {
  casync_hbuf *b = &c->out;
  const char *reason = casync__http_reason(status);
  uv_buf_t buf;
  if (c->flags & CF_CLOSING) return;
  if (!(c->flags & CF_SENT)) {
    b->len = 0;
    if (casync__http_status_line(b, status, reason) &&
        casync__hbuf_adds(b, "Content-Type: text/plain; charset=utf-8\r\n"
                             "Connection: close\r\n") &&
        casync__hbuf_add(b, casync__hserver_date(c->srv), 37) &&
        casync__hbuf_adds(b, "Content-Length: ") &&
        casync__hbuf_addu(b, strlen(reason) + 1) &&
        casync__hbuf_add(b, "\r\n\r\n", 4) && casync__hbuf_adds(b, reason) &&
        casync__hbuf_add(b, "\n", 1)) {
      buf = uv_buf_init(b->data, (unsigned)b->len);
      casync__stream_send(c->s, &buf, 1, NULL, NULL);
      c->flags |= CF_SENT;
    }
  }
  if (status >= 400 && status < 500) c->srv->bad++;
  casync__hconn_linger(c);
}

/* ============================================================= reading */

static void dispatch(hconn *c);

/* Parses what c has buffered; dispatches a complete request, answers
 * errors, arms the timeouts. */
static void conn_parse(hconn *c) {
  hserver *srv = c->srv;
  casync_hmsg *m = &c->msg;
  casync_stream *s = c->s;
  size_t n = s->rtail - s->rhead, used = 0;
  int began = m->state == HM_IDLE;
  if (c->task || (c->flags & (CF_CLOSING | CF_LINGER))) return;
  if (n) {
    used = casync__hmsg_feed(m, s->rbuf + s->rhead, n);
    casync__stream_consume(s, used);
  }
  if (m->state == HM_DONE) {
    dispatch(c);
    return;
  }
  if (m->state == HM_ERROR) {
    casync__hconn_error(c, m->status);
    return;
  }
  if (c->flags & CF_EOF) { /* a half request, then the end */
    if (m->state == HM_IDLE) casync__hconn_close(c);
    else casync__hconn_error(c, 400);
    return;
  }
  if (m->state == HM_HEAD && began) casync__hconn_deadline(c, srv->header_ms);
  if (m->state == HM_BODY && !(c->flags & CF_CONTINUED)) {
    c->flags |= CF_CONTINUED; /* the head is in: the body has its own time */
    casync__hconn_deadline(c, srv->body_ms);
    if (m->expect_continue && !(c->flags & CF_SENT)) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
      casync__stream_send(s, &b, 1, NULL, NULL);
    }
  }
}

static void conn_read_start(hconn *c) {
  if ((c->flags & (CF_STOPPED | CF_EOF)) != CF_STOPPED) return;
  c->flags &= ~CF_STOPPED;
  if (casync__stream_read_start(c->s) < 0) casync__hconn_close(c);
}

/* Bytes came, or the stream ended (s->rerr). */
static void on_data(casync_stream *s, void *arg) {
  hconn *c = arg;
  if (c->flags & CF_UPGRADED) return;
  if (c->flags & CF_LINGER) {
    casync__stream_consume(s, s->rtail - s->rhead);
    if (s->rerr) casync__hconn_close(c);
    return;
  }
  if (s->rerr && s->rerr != UV_EOF) { /* reset, or no memory for a read */
    casync__hscope_gone(c, 1);
    casync__hconn_close(c);
    return;
  }
  if (s->rerr) {
    c->flags |= CF_EOF | CF_STOPPED;
    /* the client left (no request of its own follows): as Go does, the
     * running request is cancelled */
    if (c->task && s->rtail == s->rhead) casync__hscope_gone(c, 0);
  }
  if (!c->task) {
    conn_parse(c);
    return;
  }
  if (s->rtail - s->rhead >= READ_HWM &&
      !(c->flags & (CF_STOPPED | CF_CLOSING))) {
    c->flags |= CF_STOPPED; /* enough waits behind the running request */
    casync__stream_read_stop(s);
  }
}

/* The timer of c: an idle keep-alive connection is closed, a request whose
 * head or body is late gets 408, an answer the peer has not read any of for
 * write_timeout is dropped, a lingering close ends; buffered pipelined
 * requests go on (CF_KICK). */
static void on_conn_timer(casync_ctx *lp, casync_tnode *n) {
  hconn *c = container_of(n, hconn, timer);
  uint64_t now = uv_now(lp->loop);
  if (c->flags & CF_CLOSING) {
    if (!c->s) conn_maybe_free(c);
    return;
  }
  if (c->flags & CF_KICK) {
    c->flags &= ~CF_KICK;
    if (!c->task) conn_parse(c);
    if (!c->task && !(c->flags & CF_CLOSING) && !c->timer.list)
      casync__hconn_deadline(c, c->deadline > now ? c->deadline - now : 0);
    return;
  }
  if (c->writer) { /* the answer waits for the peer to read */
    size_t q = casync__stream_write_queue(c->s);
    if (q < c->wqueue) { /* it read some meanwhile: idle time starts anew */
      c->wqueue = q;
      casync__hconn_deadline(c, c->srv->write_ms);
    } else if (now >= c->deadline)
      casync__hconn_close(c); /* wakes the writer with ECANCELED */
    else {
      casync__timer_add(lp, &c->timer, (double)(c->deadline - now) / 1000.0);
      c->timer_at = c->deadline;
    }
    return;
  }
  if (c->task) return; /* its end sets the next deadline */
  if (now < c->deadline) {
    casync__timer_add(lp, &c->timer, (double)(c->deadline - now) / 1000.0);
    c->timer_at = c->deadline;
    return;
  }
  if ((c->flags & CF_LINGER) || c->msg.state == HM_IDLE) casync__hconn_close(c);
  else casync__hconn_error(c, 408);
}

/* server.c's listener accepted stream s (userdata at sidx) for server
 * `data`: it becomes a connection.  Runs protected on the main thread. */
void casync__hconn_accept(lua_State *L, void *data, casync_stream *s,
                          int sidx) {
  hserver *srv = data;
  casync_ctx *ctx = srv->ctx;
  hconn *c = calloc(1, sizeof *c);
  if (!c) {
    casync__stream_close(s, 0);
    return;
  }
  c->s = s;
  c->srv = srv;
  c->sref = casync__pin(L, ctx, sidx);
  s->on_data = on_data;
  s->on_close = on_stream_closed;
  s->on_close_arg = c;
  srv->blocks++;
  ctx->http_blocks++;
  casync__hmsg_init(&c->msg, HTTP_REQUEST, srv->max_head, srv->max_body,
                    srv->max_headers);
  c->timer.fire = on_conn_timer;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  /* HTTPS: the handshake runs as bytes come; on_data sees the plaintext
   * (or s->rerr when the handshake failed) */
  if (srv->tls && casync__tls_start(s, srv->tls, NULL) < 0) {
    casync__hconn_close(c);
    return;
  }
  if (srv->max_conn > 0 && srv->nconn >= srv->max_conn) {
    c->flags |= CF_REJECTED;
    srv->rejected++;
    casync__hconn_error(c, 503);
    return;
  }
  srv->nconn++;
  c->flags |= CF_COUNTED;
  srv->accepted++;
  casync__hconn_deadline(c, srv->header_ms);
  if (casync__stream_read_start(s) < 0) casync__hconn_close(c);
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
#define N_METHODS 64 /* llhttp's method numbers (0..45 in 8.1) fit */

/* Pushes the table of those strings. */
void casync__hconn_push_keys(lua_State *L) {
  static const char *const names[] = {"method",  "target", "path", "version",
                                      "headers", "body",   "1.1",  "1.0"};
  int i;
  lua_createtable(L, K_METHODS + N_METHODS + HNAME_SLOTS, 0);
  for (i = 0; i < K_METHODS - 1; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  for (i = 0; i < N_METHODS; i++) {
    const char *m = casync__http_method_name(i);
    if (!m) continue;
    lua_pushstring(L, m);
    lua_rawseti(L, -2, K_METHODS + i);
  }
}

/* Where header names are kept in the keys table: K_NAMES + their slot. */
#define K_NAMES (K_METHODS + N_METHODS)

/* Pushes header name p (n bytes, lowercased): the string kept for it in
 * the keys table at kidx when the server has seen it (its slot is a hash
 * of the bytes), else a new one, kept if its slot is free. */
static void push_name(lua_State *L, hserver *srv, int kidx, const char *p,
                      uint32_t n) {
  struct hname *h;
  unsigned slot;
  if (n == 0 || n >= sizeof h->name) {
    lua_pushlstring(L, p, n);
    return;
  }
  slot = (n * 7u + (unsigned char)p[0] * 3u + (unsigned char)p[n - 1] +
          (unsigned char)p[n / 2]) %
         HNAME_SLOTS;
  h = &srv->hnames[slot];
  if (h->len == n && memcmp(h->name, p, n) == 0) {
    lua_rawgeti(L, kidx, K_NAMES + (int)slot);
    return;
  }
  lua_pushlstring(L, p, n);
  if (h->len == 0) {
    h->len = (uint8_t)n;
    memcpy(h->name, p, n);
    lua_pushvalue(L, -1);
    lua_rawseti(L, kidx, K_NAMES + (int)slot);
  }
}

/* The path of a request target: origin-form "/a?b" gives "/a"; the
 * absolute-form "http://host:port/a?b" (RFC 9112 3.2.2) gives "/a" too
 * (or "/" when it has no path). */
static const char *target_path(const char *url, size_t ulen, size_t *plen) {
  const char *end = url + ulen, *p = url, *q;
  if (ulen && url[0] != '/' && url[0] != '*') {
    const char *colon = memchr(url, ':', ulen);
    if (colon && end - colon > 2 && colon[1] == '/' && colon[2] == '/') {
      p = colon + 3;
      while (p < end && *p != '/' && *p != '?' && *p != '#') p++;
      if (p == end || *p != '/') {
        *plen = 1;
        return "/";
      }
    } else p = url;
  }
  q = p;
  while (q < end && *q != '?' && *q != '#') q++;
  *plen = (size_t)(q - p);
  return p;
}

/* Builds the request table of c's message; the keys (push_keys) are at
 * kidx.  [-0, +1] */
static void push_request(lua_State *L, hconn *c, int kidx) {
  const char *head;
  casync_hmsg *m = &c->msg;
  const char *url = m->head.data ? m->head.data : "", *path;
  size_t ulen = m->first_len, plen;
  unsigned i;
  int v10 = m->p.http_minor == 0 && m->p.http_major == 1;
  /* version (when "1.0") and body (when not empty) only when they say
   * something: the request metatable gives "1.1" and "" otherwise */
  lua_createtable(L, 0, v10 || m->body.len ? 8 : 4);
  /* each key pushed before its value: no stack rotations */
  lua_rawgeti(L, kidx, K_METHOD);
  if (lua_rawgeti(L, kidx, K_METHODS + (int)m->p.method) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushstring(L, casync__http_method_name(m->p.method));
  }
  lua_rawset(L, -3);
  path = target_path(url, ulen, &plen);
  lua_rawgeti(L, kidx, K_TARGET);
  lua_pushlstring(L, url, ulen); /* [req, "target", target] */
  lua_rawgeti(L, kidx, K_PATH);
  if (path == url && plen == ulen) lua_pushvalue(L, -2); /* the same string */
  else lua_pushlstring(L, path, plen);
  lua_rawset(L, -5);
  lua_rawset(L, -3);
  if (v10) {
    lua_rawgeti(L, kidx, K_VERSION);
    lua_rawgeti(L, kidx, K_V10);
    lua_rawset(L, -3);
  }
  lua_rawgeti(L, kidx, K_HEADERS);
  lua_createtable(L, 0, (int)m->nfields);
  head = m->head.data;
  for (i = 0; i < m->nfields; i++) {
    const casync_hfield *f = &m->fields[i];
    unsigned j = 0;
    int seen;
    if (f->nlen == 12 && memcmp(head + f->name, "x-request-id", 12) == 0) {
      const char *v = head + f->value;
      c->rid_len = casync__hscope_sane_id(v, f->vlen) ? f->vlen : 0;
      if (c->rid_len) memcpy(c->rid, v, f->vlen);
    }
    /* seen before in this request?  (names are lowercased)  Compared here
     * in a short head, asked of the table in a long one */
    push_name(L, c->srv, kidx, head + f->name, f->nlen);
    if (m->nfields <= 16) {
      while (j < i &&
             (m->fields[j].nlen != f->nlen ||
              memcmp(head + m->fields[j].name, head + f->name, f->nlen) != 0))
        j++;
      seen = j < i;
    } else {
      lua_pushvalue(L, -1);
      seen = lua_rawget(L, -3) != LUA_TNIL;
      lua_pop(L, 1);
    }
    if (!seen) lua_pushlstring(L, head + f->value, f->vlen);
    else { /* repeated: joined as one list */ lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      lua_pushstring(L, f->nlen == 6 &&
                                memcmp(m->head.data + f->name, "cookie", 6) == 0
                            ? "; "
                            : ", ");
      lua_pushlstring(L, m->head.data + f->value, f->vlen);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
  lua_rawset(L, -3); /* req.headers */
  if (m->body.len) {
    lua_rawgeti(L, kidx, K_BODY);
    lua_pushlstring(L, m->body.data, m->body.len);
    lua_rawset(L, -3);
  }
}

static void conn_task_ended(casync_ctx *lp, casync_obs *o, casync_task *t);

/* The connection whose request task t is, or NULL (for req:websocket()). */
hconn *casync__hconn_of_task(casync_task *t) {
  casync_obs *o = t->observers;
  if (!o) return NULL;
  do {
    if (o->notify == conn_task_ended) return container_of(o, hconn, obs);
    o = o->next;
  } while (o != t->observers);
  return NULL;
}

/* Spawns the request task for c's complete message.  Runs protected on
 * the main thread: [1 conn (light)]. */
static int dispatch_p(lua_State *L) {
  hconn *c = lua_touserdata(L, 1);
  hserver *srv = c->srv;
  casync_task *t;
  casync__push_pinned_lp(L, srv->ctx, srv->pin_ref); /* 2: the server */
  lua_getiuservalue(L, 2, 5);                        /* 3: the keys */
  lua_getiuservalue(L, 2, 3); /* 4: the request body fn */
  lua_getiuservalue(L, 2, 1); /* 5: the handler */
  push_request(L, c, 3);      /* 6: req */
  lua_getiuservalue(L, 2, 2);
  lua_setmetatable(L, 6);
  lua_pushlightuserdata(L, c); /* 7: conn */
  t = casync__spawn_c(L, srv->ctx, 4, 3);
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
  lua_State *L = srv->ctx->L;
  int top;
  c->flags &= ~CF_PER_REQUEST;
  if (m->p.method == HTTP_HEAD) c->flags |= CF_HEAD;
  if (m->p.http_major == 1 && m->p.http_minor == 0) c->flags |= CF_HTTP10;
  if (!m->keep_alive) c->flags |= CF_CLOSE_AFTER;
  if (srv->pin_ref == LUA_NOREF) { /* the server closed meanwhile */
    casync__hconn_close(c);
    return;
  }
  srv->requests++;
  c->req_no = srv->requests;
  c->rid_len = 0;
  top = lua_gettop(L);
  lua_pushcfunction(L, dispatch_p);
  lua_pushlightuserdata(L, c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) { /* only memory errors */
    lua_settop(L, top);
    casync__hmsg_reset(m);
    casync__hconn_error(c, 500);
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
  if (c->flags & CF_UPGRADED) { /* the WebSocket ends with its handler */
    if (c->flags & CF_CLOSING) conn_maybe_free(c);
    else casync__hconn_close(c); /* freed from the timer */
    return;
  }
  if (c->flags & CF_CLOSING) {
    conn_maybe_free(c);
    return;
  }
  if (c->flags & CF_CUT) { /* its scope: the client left, or the deadline */
    if ((c->flags & (CF_TIMED_OUT | CF_SENT)) == CF_TIMED_OUT)
      casync__hconn_error(c, 503);
    else casync__hconn_close(c);
    return;
  }
  if (!(c->flags & CF_RESPONDED)) {
    /* it failed (the scheduler reports it) or was cancelled */
    if (t->outcome == OUT_CANCELLED) casync__hconn_close(c);
    else casync__hconn_error(c, 500);
    return;
  }
  if ((c->flags & CF_CLOSE_AFTER) || c->srv->pin_ref == LUA_NOREF) {
    casync__hconn_linger(c);
    return;
  }
  /* the next request starts afresh */
  c->flags &= ~CF_PER_REQUEST;
  conn_read_start(c);
  if (c->s->rtail > c->s->rhead || (c->flags & CF_EOF)) {
    /* more is buffered: go on from the timer, outside the scheduler */
    c->flags |= CF_KICK;
    casync__timer_remove(lp, &c->timer);
    casync__timer_add(lp, &c->timer, 0);
    c->timer_at = 0;
    c->deadline = uv_now(lp->loop) + c->srv->idle_ms;
    return;
  }
  casync__hconn_deadline(c, c->srv->idle_ms);
}
