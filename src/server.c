/* server.c: casync.Server, a listening TCP or Unix-domain socket that runs
 * handler(stream) in a new task for each connection it accepts (tcp.c and
 * pipe.c create and bind it).  The stream is closed when its handler task
 * ends.  server:close{cancel = true} also cancels the running handlers.
 *
 * Ownership: the casync_server block is a handle block (context.h),
 * libuv's until its close callback; the userdata (user value 1: the
 * handler) is pinned while it listens, since every accepted connection
 * needs the handler.  Each running handler task
 * has a casync_conn: an observer of the task (so its end is seen without a
 * Lua callback) in the server's list of connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io.h"

typedef struct casync_conn casync_conn;

struct casync_server {
  casync_handle hd;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  struct server_ud *ud; /* NULL once Lua let go */
  int kind;
  casync_conn *conns; /* running handler tasks */
  lua_Integer nconn, accepted, errors;
  int last_error;
  char *path;              /* a pipe's socket file, removed at close */
  casync_accept_hook hook; /* or a handler task per connection */
  void *hook_data;
};

struct casync_conn {
  casync_obs obs; /* in the handler task's observers */
  casync_conn *next, *prev;
  casync_server *srv; /* NULL once the server is gone */
  casync_stream *s;   /* NULL once the stream is closed */
  casync_task *task;  /* the handler task */
};

typedef struct server_ud {
  casync_server *srv; /* NULL once closed */
  int kind;
} server_ud;

static void conn_unlink(casync_conn *c) {
  casync_server *srv = c->srv;
  if (!srv) return;
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
  c->srv = NULL;
  srv->nconn--;
}

/* The handler task ended: close its stream, forget the connection. */
static void conn_ended(casync_ctx *lp, casync_obs *o, casync_task *ended) {
  casync_conn *c = container_of(o, casync_conn, obs);
  (void)lp;
  (void)ended;
  if (c->s) {
    casync_stream *s = c->s;
    c->s = NULL;
    s->on_close = NULL;
    casync__stream_close(s, 1);
  }
  conn_unlink(c);
  free(c);
}

/* The stream of a connection closed before its task ended. */
static void conn_stream_closed(casync_stream *s, void *arg) {
  casync_conn *c = arg;
  c->s = NULL;
  s->on_close = NULL;
}

static void server_free(casync_handle *h) {
  casync_server *srv = container_of(h, casync_server, hd);
  casync_conn *c, *next;
  for (c = srv->conns; c; c = next) {
    next = c->next;
    c->srv = NULL;
    c->next = c->prev = NULL;
    /* once the Lua state is gone no task will end: nothing else frees it */
    if (!h->ctx->alive) free(c);
  }
  free(srv->path);
  free(srv);
}

static const casync_hclass server_class = {"server", NULL, server_free};

/* Listeners libuv has not freed yet. */
int casync__server_count(casync_ctx *ctx) {
  casync_handle *h;
  int n = 0;
  for (h = ctx->handles; h; h = h->next) n += h->cls == &server_class;
  return n;
}

uv_stream_t *casync__server_handle(casync_server *srv) { return &srv->u.s; }

/* Makes srv hand each accepted stream to hook instead of spawning a
 * handler task (the HTTP server). */
void casync__server_set_accept(casync_server *srv, casync_accept_hook hook,
                               void *data) {
  srv->hook = hook;
  srv->hook_data = data;
}

/* Creates a server userdata (pushed; user value 1 the handler at hidx)
 * and its block with an initialized handle.  Raises only for memory. */
casync_server *casync__server_new(lua_State *L, casync_ctx *ctx, int kind,
                                  int hidx) {
  server_ud *u;
  casync_server *srv;
  hidx = lua_absindex(L, hidx);
  u = lua_newuserdatauv(L, sizeof *u, 1);
  u->srv = NULL;
  u->kind = kind;
  luaL_setmetatable(L, CASYNC_SERVER_MT);
  lua_pushvalue(L, hidx);
  lua_setiuservalue(L, -2, 1);
  srv = calloc(1, sizeof *srv);
  if (!srv) luaL_error(L, "not enough memory");
  if (kind == CASYNC_TCP) uv_tcp_init(ctx->loop, &srv->u.tcp);
  else uv_pipe_init(ctx->loop, &srv->u.pipe, 0);
  casync__handle_init(ctx, &srv->hd, &server_class, &srv->u.h);
  srv->ud = u;
  srv->kind = kind;
  u->srv = srv;
  return srv;
}

/* Accepts one connection and spawns its handler.  Runs protected, on the
 * main thread: [1 server block (light)]. */
static int accept_one(lua_State *L) {
  casync_server *srv = lua_touserdata(L, 1);
  casync_ctx *ctx = srv->hd.ctx;
  casync_stream *s;
  casync_task *t;
  casync_conn *c;
  int r;
  casync__push_pinned(L, srv->hd.pin_ref);       /* 2: the server userdata */
  lua_getiuservalue(L, 2, 1);                    /* 3: the handler */
  s = casync__stream_new(L, ctx, srv->kind, &r); /* 4: the stream */
  if (s) r = uv_accept(&srv->u.s, &s->u.s);
  if (!s || r < 0) {
    /* NOTE: libuv stops listening until uv_accept is called; a failed
     * accept still took the connection off its hands */
    if (s) casync__stream_close(s, 0);
    srv->errors++;
    srv->last_error = r;
    return 0;
  }
  if (srv->kind == CASYNC_TCP) uv_tcp_nodelay(&s->u.tcp, 1);
  srv->accepted++;
  if (srv->hook) {
    srv->hook(L, srv->hook_data, s, 4);
    return 0;
  }
  t = casync__spawn_c(L, ctx, 3, 1);
  /* without its record (no memory) the connection is not counted, and its
   * stream is closed by the garbage collector instead of at the end */
  if ((c = malloc(sizeof *c)) == NULL) return 0;
  memset(c, 0, sizeof *c);
  c->obs.notify = conn_ended;
  casync__obs_link(t, &c->obs);
  c->s = s;
  c->task = t;
  s->on_close = conn_stream_closed;
  s->on_close_arg = c;
  c->srv = srv;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconn++;
  return 0;
}

static void on_connection(uv_stream_t *h, int status) {
  casync_server *srv = container_of(h, casync_server, u.s);
  lua_State *L;
  int top;
  if (status < 0) { /* e.g. EMFILE: libuv dropped that one and goes on */
    srv->errors++;
    srv->last_error = status;
    return;
  }
  if (!srv->hd.ctx->alive || !srv->ud) return;
  L = srv->hd.ctx->L;
  top = lua_gettop(L);
  lua_pushcfunction(L, accept_one);
  lua_pushlightuserdata(L, srv);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) { /* only memory errors */
    fprintf(stderr, "casync: accepting a connection: %s\n",
            lua_tostring(L, -1));
    fflush(stderr);
  }
  lua_settop(L, top);
}

/* Starts listening (the handle is bound); pins the userdata at sidx.  A
 * pipe's path is removed again when the server closes.  Returns 0 or a
 * libuv error. */
int casync__server_listen(lua_State *L, casync_server *srv, int sidx,
                          int backlog, const char *path) {
  int r = uv_listen(&srv->u.s, backlog, on_connection);
  if (r < 0) return r;
  casync__handle_pin(L, &srv->hd, sidx);
  if (path) {
    srv->path = malloc(strlen(path) + 1);
    if (srv->path) strcpy(srv->path, path);
  }
  return 0;
}

/* Stops listening, cancels the running handlers if `cancel` (L: a thread
 * of the state), lets go of the block. */
void casync__server_close(lua_State *L, casync_server *srv, int cancel) {
  casync_ctx *ctx = srv->hd.ctx;
  casync_conn *c;
  if (cancel && ctx->alive)
    for (c = srv->conns; c; c = c->next) casync__cancel(L, ctx, c->task, 0);
  if (srv->ud) {
    srv->ud->srv = NULL;
    srv->ud = NULL;
  }
  casync__handle_unpin(&srv->hd);
  if (srv->path) unlink(srv->path);
  casync__handle_close(&srv->hd);
}

/* ------------------------------------------------------------- methods */

static casync_server *check_open(lua_State *L, const char *fname) {
  server_ud *u = luaL_checkudata(L, 1, CASYNC_SERVER_MT);
  if (!u->srv) luaL_error(L, "%s: attempt to use a closed server", fname);
  return u->srv;
}

/* server:close([{cancel = true}]): stops accepting (a pipe's socket file
 * is removed); with cancel, the running handler tasks are cancelled too.
 * Closing again does nothing.  Also __close and __gc (without cancel). */
static int meth_close(lua_State *L) {
  server_ud *u = luaL_checkudata(L, 1, CASYNC_SERVER_MT);
  int cancel = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "cancel");
    cancel = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (u->srv) casync__server_close(L, u->srv, cancel);
  return 0;
}

static int meta_close(lua_State *L) {
  server_ud *u = luaL_checkudata(L, 1, CASYNC_SERVER_MT);
  /* a listener with an accept hook belongs to its C owner, which closes
   * it (its own __gc may run after this one's) */
  if (u->srv && !u->srv->hook) casync__server_close(L, u->srv, 0);
  return 0;
}

/* server:closed() -> boolean */
static int meth_closed(lua_State *L) {
  server_ud *u = luaL_checkudata(L, 1, CASYNC_SERVER_MT);
  lua_pushboolean(L, u->srv == NULL);
  return 1;
}

/* server:address() -> host, port (TCP) | path (pipe) | nil, err */
static int meth_address(lua_State *L) {
  casync_server *srv = check_open(L, "address");
  int r;
  if (srv->kind == CASYNC_TCP) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    r = uv_tcp_getsockname(&srv->u.tcp, (struct sockaddr *)&ss, &len);
    if (r == 0) return casync__net_push_addr(L, (struct sockaddr *)&ss);
  } else {
    char buf[256];
    size_t len = sizeof buf;
    r = uv_pipe_getsockname(&srv->u.pipe, buf, &len);
    if (r == 0) {
      lua_pushlstring(L, buf, len);
      return 1;
    }
  }
  lua_pushnil(L);
  casync__error_uv(L, "address", r);
  return 2;
}

/* server:port() -> the TCP port it listens on (the one picked for port 0) */
static int meth_port(lua_State *L) {
  casync_server *srv = check_open(L, "port");
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (srv->kind != CASYNC_TCP) return luaL_error(L, "port: not a TCP server");
  if (uv_tcp_getsockname(&srv->u.tcp, (struct sockaddr *)&ss, &len) < 0)
    return 0;
  casync__net_push_addr(L, (struct sockaddr *)&ss);
  return 1;
}

/* server:connections() -> number of handler tasks still running */
static int meth_connections(lua_State *L) {
  casync_server *srv = check_open(L, "connections");
  lua_pushinteger(L, srv->nconn);
  return 1;
}

/* server:stats() -> {accepted=, errors=, last_error=, connections=} */
static int meth_stats(lua_State *L) {
  casync_server *srv = check_open(L, "stats");
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, srv->accepted);
  lua_setfield(L, -2, "accepted");
  lua_pushinteger(L, srv->errors);
  lua_setfield(L, -2, "errors");
  lua_pushinteger(L, srv->nconn);
  lua_setfield(L, -2, "connections");
  if (srv->last_error) {
    lua_pushstring(L, uv_err_name(srv->last_error));
    lua_setfield(L, -2, "last_error");
  }
  return 1;
}

static int meta_tostring(lua_State *L) {
  server_ud *u = luaL_checkudata(L, 1, CASYNC_SERVER_MT);
  lua_pushfstring(L, "casync.Server (%s, %s)",
                  u->kind == CASYNC_TCP ? "tcp" : "pipe",
                  u->srv ? "listening" : "closed");
  return 1;
}

void casync__server_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", meth_close},
                                     {"closed", meth_closed},
                                     {"address", meth_address},
                                     {"port", meth_port},
                                     {"connections", meth_connections},
                                     {"stats", meth_stats},
                                     {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__close", meta_close},
                                   {"__gc", meta_close},
                                   {"__tostring", meta_tostring},
                                   {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_SERVER_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_setfuncs(L, metas);
  lua_pop(L, 1);
}
