/* http_respond.c: the answer of casync.http.serve's request task.  The
 * handler's result (a string, a table {status=, headers=, body= | json=},
 * or nothing) is serialized here in C and written to the connection's
 * stream; a function body is an iterator whose chunks go out chunked (to
 * the end of the stream for HTTP/1.0), the task waiting whenever the peer
 * reads slower than it writes.  The framing headers (Content-Length,
 * Transfer-Encoding, Connection, Date unless given) are the server's.
 */
#include <stdlib.h>
#include <string.h>
#include "http_server.h"

/* ============================================================== answers */

/* A write libuv held is done (or failed, or the stream closed). */
static void on_sent(void *arg, int status) {
  hconn *c = arg;
  c->inflight--;
  c->wstatus = status;
  if (c->writer && c->srv->ctx->alive) {
    casync_task *t = c->writer;
    c->writer = NULL;
    casync__wake(c->srv->ctx, t, WAKE_OK);
  }
  if (!c->s) casync__hconn_release(c); /* maybe the last user */
}

/* Writes bufs: 0 when all of it went out now, 1 when libuv has the rest
 * (the task waits: wait_write), -1 when the connection failed (closed). */
int casync__hconn_send(hconn *c, uv_buf_t *bufs, unsigned n) {
  int r;
  if (c->flags & CF_CLOSING) return -1;
  r = casync__stream_send(c->s, bufs, n, on_sent, c);
  if (r < 0) {
    casync__hconn_close(c);
    return -1;
  }
  c->flags |= CF_SENT;
  if (r) c->inflight++;
  return r;
}

static int write_cancel(casync_ctx *lp, casync_task *t, int why) {
  hconn *c = t->wait_obj;
  (void)lp;
  (void)why;
  c->writer = NULL; /* the data stays with libuv until on_sent */
  return 1;
}

/* For task dumps: "http response write (N bytes not taken yet)". */
static void write_describe(lua_State *L, casync_task *t) {
  hconn *c = t->wait_obj;
  lua_pushfstring(L, "http response write (%I bytes not taken yet)",
                  (lua_Integer)(c->s ? casync__stream_write_queue(c->s) : 0));
}

/* A woken write is done: its fate is kept. */
static const casync_wait_kind resp_write_wait = {
    "write",        "http response write",
    write_cancel,   CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL,
    write_describe, NULL};

static int resp_k(lua_State *L, int status, lua_KContext kc);

/* Waits until libuv has written what the kernel did not take at once.
 * write_timeout is an idle timeout, kept by the connection's timer: it
 * drops a peer that reads nothing of it for that long, not one that reads
 * slowly. */
static int wait_write(lua_State *L, hconn *c, lua_KContext kc) {
  casync_task *t = CASYNC_CTX(L)->current;
  c->writer = t;
  c->wqueue = casync__stream_write_queue(c->s);
  casync__timer_remove(t->loop, &c->timer);
  casync__hconn_deadline(c, c->srv->write_ms);
  return casync__park(L, t, &resp_write_wait, c, 0, resp_k, kc);
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
    return casync__hconn_send(c, b, 1);
  }
  if (!p) {
    b[0] = uv_buf_init("0\r\n\r\n", 5);
    return casync__hconn_send(c, b, 1);
  }
  {
    size_t v = len;
    char tmp[18];
    int i = 0;
    do {
      tmp[i++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    while (i > 0) size[k++] = tmp[--i];
    size[k++] = '\r';
    size[k++] = '\n';
  }
  b[n++] = uv_buf_init(size, (unsigned)k);
  b[n++] = uv_buf_init((char *)p, (unsigned)len);
  b[n++] = uv_buf_init("\r\n", 2);
  return casync__hconn_send(c, b, n);
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
    casync__hconn_close(c);
    return casync__raise_cancel(L, t);
  }
  if (c->wstatus < 0 || (c->flags & CF_CLOSING)) {
    casync__hconn_close(c); /* the peer does not read, or went away */
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
  if (name_is(name, nlen, "connection", 10)) {
    /* the server writes its own Connection line: a handler's "close" asks
     * it to close after this answer, the rest is the server's business */
    size_t i;
    for (i = 0; i + 5 <= vlen; i++)
      if (name_is(v + i, 5, "close", 5)) c->flags |= CF_CLOSE_AFTER;
    return 0;
  }
  if (!casync__http_header(&c->out, name, nlen, v, vlen)) {
    if (!casync__http_valid_name(name, nlen) ||
        !casync__http_valid_value(v, vlen))
      return luaL_error(L, "http response: invalid header '%s'", name);
    return luaL_error(L, "not enough memory");
  }
  return bits;
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
  c->flags &= ~CF_HANDLING;
  if ((c->flags & CF_SCOPED) && (c->rscope.flags & CS_CANCELLED)) {
    /* past the deadline (or the client left), a handler that caught the
     * cancellation and returned is not answered: 503 or the close */
    c->flags |= CF_CUT;
    if (c->rscope.flags & CS_BY_DEADLINE) c->flags |= CF_TIMED_OUT;
    return 0;
  }
  lua_settop(L, R_RESULT);
  if (c->flags & CF_CLOSING) return 0; /* the peer went away meanwhile */
  if (c->flags & CF_UPGRADED) return respond_done(c); /* a WebSocket's */
  b->len = 0;
  switch (lua_type(L, R_RESULT)) {
  case LUA_TNIL:
    code = 204;
    lua_pushnil(L);
    break;
  case LUA_TSTRING: lua_pushvalue(L, R_RESULT); break;
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
    } else if (lua_gettop(L) > R_BODY) lua_pop(L, 1);
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
  else if (casync__is_callable(L, R_BODY)) stream = 1;
  else if (!lua_isnil(L, R_BODY))
    return luaL_error(L,
                      "http response: body must be a string, a function "
                      "or nil, not a %s",
                      luaL_typename(L, R_BODY));
  nobody = code < 200 || code == 204 || code == 304;
  if (!casync__hbuf_reserve(b, 256)) return luaL_error(L, "not enough memory");
  if (code == 200) ADDLIT(b, "HTTP/1.1 200 OK\r\n");
  else casync__http_status_line(b, (int)code, NULL);
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
      if (c->flags & CF_HTTP10) c->flags |= CF_CLOSE_AFTER; /* to the end */
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
    casync__hbuf_add(b, casync__hserver_date(c->srv), 37);
  }
  if (c->flags & CF_CLOSE_AFTER) ADDLIT(b, "Connection: close\r\n");
  else if (c->flags & CF_HTTP10) ADDLIT(b, "Connection: keep-alive\r\n");
  if (!casync__hbuf_add(b, "\r\n", 2))
    return luaL_error(L, "not enough memory");
  bufs[0] = uv_buf_init(b->data, (unsigned)b->len);
  bufs[1] = uv_buf_init((char *)body, (unsigned)blen);
  if (nobody || (c->flags & CF_HEAD)) {
    r = casync__hconn_send(c, bufs, 1);
    if (r < 0) return 0;
    return r ? wait_write(L, c, PH_DONE) : respond_done(c);
  }
  r = casync__hconn_send(c, bufs, body && blen ? 2 : 1);
  if (r < 0) return 0;
  if (stream) return r ? wait_write(L, c, PH_NEXT) : stream_body(L, c);
  return r ? wait_write(L, c, PH_DONE) : respond_done(c);
}

/* What a request task does inside its scope (http_scope.c): handler(req),
 * then the answer.  Upvalues: the loop context, the server userdata. */
int casync__hresp_request_body(lua_State *L) {
  lua_settop(L, R_CONN);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_callk(L, 1, 1, 0, handler_k);
  return handler_k(L, LUA_OK, 0);
}
