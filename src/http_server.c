/* http_server.c: casync.http.serve, an HTTP/1.1 server in C on libuv:
 * the server object, its options and methods, and accepting.  It listens
 * with server.c's listener, which hands each accepted stream (stream.c) to
 * http_conn.c instead of spawning a handler task; a connection is read and
 * parsed there, a complete request becomes a Lua table handed to
 * handler(req) in a new task, and http_respond.c serializes and writes
 * what the handler returns, so the only Lua code run per request is the
 * handler itself.  It does not do TLS or HTTP/2; an upgrade request is a
 * plain request unless the handler takes it with req:websocket().
 *
 * The server userdata (user values: handler, request metatable, request
 * body function, JSON encoder, the request table's key strings, the
 * listener's userdata) is anchored while it listens.  The server block
 * stays until it is closed and every connection block is gone.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "http_server.h"

#define HTTP_SERVER_MT "casync.HttpServer"
#define DEFAULT_BACKLOG 511

/* Pushes the hooks http.lua set ({reqmeta=, encode=}). */
static void push_hooks(lua_State *L) {
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_HTTP);
  lua_remove(L, -2);
}

/* Drops one hold on srv: a connection block, or the server's own until it
 * is closed; the last one frees it. */
void casync__hserver_unref(hserver *srv) {
  if (--srv->blocks > 0) return;
  if (srv->ublock) *srv->ublock = NULL; /* the userdata outlives it */
  srv->ctx->http_blocks--;
  casync__ctx_unref(srv->ctx);
  free(srv);
}

/* "Date: <IMF-fixdate>\r\n" (37 bytes), made once a second. */
const char *casync__hserver_date(hserver *srv) {
  int64_t now = (int64_t)time(NULL);
  if (now != srv->date_sec) {
    memcpy(srv->date, "Date: ", 6);
    casync__http_date(srv->date + 6, now);
    memcpy(srv->date + 35, "\r\n", 2);
    srv->date_sec = now;
  }
  return srv->date;
}

/* Stops listening; closes idle connections; with `cancel`, cancels the
 * running request tasks (the others finish their answer, then close). */
static void server_close(lua_State *L, hserver *srv, int cancel) {
  casync_ctx *ctx = srv->ctx;
  hconn *c, *next;
  if (srv->ud) {
    srv->ud->srv = NULL;
    srv->ud = NULL;
  }
  if (srv->pin_ref != LUA_NOREF) {
    casync__unpin(ctx, srv->pin_ref);
    srv->pin_ref = LUA_NOREF;
  }
  for (c = srv->conns; c; c = next) {
    next = c->next;
    if (c->flags & CF_CLOSING) continue;
    if (!c->task) casync__hconn_close(c);
    else if (cancel && ctx->alive) casync__cancel(L, ctx, c->task, 0);
    else c->flags |= CF_CLOSE_AFTER;
  }
  if (srv->lsn) {
    casync__server_close(L, srv->lsn, 0);
    srv->lsn = NULL;
    casync__hserver_unref(srv);
  }
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

/* The random part of the request ids srv makes: 8 hex digits. */
static void make_id_prefix(hserver *srv) {
  unsigned char r[4];
  int i;
  if (uv_random(NULL, NULL, r, sizeof r, 0, NULL) < 0) {
    uint64_t h = uv_hrtime() ^ (uint64_t)(uintptr_t)srv;
    memcpy(r, &h, sizeof r);
  }
  for (i = 0; i < 4; i++) {
    srv->id_prefix[2 * i] = "0123456789abcdef"[r[i] >> 4];
    srv->id_prefix[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
  }
  srv->id_prefix[8] = 0;
}

/* casync.http.serve(host, port, handler [, opts]) -> server | nil, err:
 * answers HTTP/1.1 on host:port (port 0: a free one, server:port()),
 * running handler(req) in a new task per request.  opts: max_connections
 * (1024; more get 503), max_header_size (16 KiB; 431), max_headers (100),
 * max_body_size (1 MiB; 413), header_timeout (10 s; 408), body_timeout
 * (30 s; 408), keep_alive_timeout (5 s), write_timeout (30 s),
 * request_timeout (none: a deadline on each request's handler and answer;
 * 503 when it passes before the answer began), backlog; workers = n (> 1):
 * n worker processes serve it (workers.c). */
static int fn_serve(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2), backlog, maxc;
  struct sockaddr_storage ss;
  hserver_ud *u;
  hserver *srv;
  size_t mhead, mbody, mheaders;
  uint64_t hms, bms, ims, wms;
  double rs;
  casync_tls_conf *tls = NULL;
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
  wms = opt_ms(L, "write_timeout", 30);
  workers = casync__workers_opt(L, 4);
  rs = casync__net_opt_seconds(L, 4, "request_timeout");
  /* opts.tls = {cert =, key =, ...}: HTTPS, through the TLS layer of each
   * connection's stream (tls.c) */
  if (lua_isnil(L, 4) || lua_getfield(L, 4, "tls") == LUA_TNIL) {
    lua_settop(L, 4);
    lua_pushnil(L); /* 5 */
  } else {
    if (!lua_istable(L, 5)) luaL_argerror(L, 4, "opts.tls must be a table");
    if (!(tls = casync__tls_conf(L, 5, 1, "serve"))) return 2; /* 6 */
    lua_replace(L, 5);
  }
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
  u = lua_newuserdatauv(L, sizeof *u, 7); /* 6 */
  u->srv = u->block = NULL;
  luaL_setmetatable(L, HTTP_SERVER_MT);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 6, 1);
  push_hooks(L);
  lua_getfield(L, -1, "reqmeta");
  lua_setiuservalue(L, 6, 2);
  casync__ctx_push(L);
  lua_pushvalue(L, 6);
  casync__ctx_push(L);
  lua_pushvalue(L, 6);
  lua_pushcclosure(L, casync__hresp_request_body, 2);
  lua_pushcclosure(L, casync__hscope_request, 3);
  lua_setiuservalue(L, 6, 3);
  lua_getfield(L, -1, "encode");
  lua_setiuservalue(L, 6, 4);
  lua_pop(L, 1);
  casync__hconn_push_keys(L);
  lua_setiuservalue(L, 6, 5);
  srv = calloc(1, sizeof *srv);
  if (!srv) return luaL_error(L, "not enough memory");
  srv->ctx = ctx;
  ctx->refs++;
  ctx->http_blocks++;
  srv->blocks = 1; /* until it is closed */
  u->block = srv;
  srv->ublock = &u->block;
  srv->pin_ref = LUA_NOREF;
  srv->max_conn = maxc;
  srv->max_head = mhead;
  srv->max_body = mbody;
  srv->max_headers = (unsigned)mheaders;
  srv->header_ms = hms;
  srv->body_ms = bms;
  srv->idle_ms = ims;
  srv->write_ms = wms;
  srv->request_s = rs < 0 ? 0 : rs > 1e9 ? 1e9 : rs;
  if (rs == 0) srv->request_s = 1e-9; /* 0: every request at once */
  make_id_prefix(srv);
  srv->date_sec = -1;
  /* the listener: server.c's, handing each stream to http_conn.c */
  srv->tls = tls;
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, 6, 7); /* the TLS settings, alive as long as it */
  srv->lsn = casync__server_new(L, ctx, CASYNC_TCP, 3); /* 7 */
  lua_pushvalue(L, 7);
  lua_setiuservalue(L, 6, 6);
  casync__server_set_accept(srv->lsn, casync__hconn_accept, srv);
  r = casync__tcp_bind((uv_tcp_t *)casync__server_handle(srv->lsn), &ss);
  if (r == 0) r = casync__server_listen(L, srv->lsn, 7, (int)backlog, NULL);
  if (r < 0) {
    server_close(L, srv, 0);
    lua_pushnil(L);
    casync__error_uv(L, "serve", r);
    return 2;
  }
  srv->pin_ref = casync__pin(L, ctx, 6);
  srv->ud = u;
  u->srv = srv;
  lua_settop(L, 6);
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

/* __gc: closes it; a request task would have kept it reachable, so a
 * connection that still has one is being dropped with the Lua state. */
static int meta_gc(lua_State *L) {
  hserver_ud *u = lua_touserdata(L, 1);
  hserver *srv = u->block;
  hconn *c, *next;
  if (!srv) return 0;
  u->block = NULL;
  srv->ublock = NULL;
  srv->blocks++; /* closing and its connections may free it meanwhile */
  if (u->srv) server_close(L, u->srv, 0);
  for (c = srv->conns; c; c = next) {
    next = c->next;
    casync__hconn_orphan(c);
  }
  casync__hserver_unref(srv);
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
  r = uv_tcp_getsockname((uv_tcp_t *)casync__server_handle(srv->lsn),
                         (struct sockaddr *)&ss, &len);
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
  lua_pushfstring(L, strchr(host, ':') ? "%s://[%s]:%d%s%s" : "%s://%s:%d%s%s",
                  check_open(L, "url")->tls ? "https" : "http", host,
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

/* _upgrade() -> stream | nil, err: the connection of the calling request
 * task, handed over for a WebSocket (req:websocket() in lua/casync/http.lua
 * writes the 101 and frames on it); nil and an error once an answer has
 * begun.  The stream closes when the request task ends. */
static int fn_upgrade(lua_State *L) {
  casync_task *t = casync__wait_begin(L, "websocket");
  hconn *c = casync__hconn_of_task(t);
  if (!c)
    return luaL_error(L, "websocket: not called from the task of an HTTP "
                         "request handler");
  if (!casync__hconn_upgrade(L, c)) {
    lua_pushnil(L);
    casync__error_push(L, "closed", NULL,
                       "websocket: the request was already answered or its "
                       "connection closed");
    return 2;
  }
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
                                 {"_upgrade", fn_upgrade},
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
