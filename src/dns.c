/* dns.c: casync.dns.resolve, and the asynchronous getaddrinfo that
 * tcp.connect uses, through libuv's thread pool.
 *
 * A lookup is a request block (libuv's until its callback, then the
 * userdata's) and a userdata on the waiting task's stack.  A task that
 * stops waiting (cancelled, timed out) leaves the lookup to finish; the
 * userdata's __gc frees the result, or leaves that to the callback.
 */
#include <stdlib.h>
#include <string.h>
#include "io.h"

#define DNS_MT "casync.DnsLookup"

typedef struct gai_ud gai_ud;
typedef struct gai_req {
  uv_getaddrinfo_t req;
  casync_ctx *ctx;   /* referenced until the request is freed */
  gai_ud *ud;        /* NULL once Lua let go */
  casync_task *task; /* the waiting task, NULL once it stopped waiting */
  struct addrinfo *res;
  int status, done;
} gai_req;

struct gai_ud {
  gai_req *r; /* NULL once freed */
};

static void free_req(gai_req *r) {
  if (r->res) uv_freeaddrinfo(r->res);
  casync__ctx_unref(r->ctx);
  free(r);
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  gai_req *r = req->data;
  r->status = status;
  r->res = res;
  r->done = 1;
  r->ctx->requests--;
  if (!r->ud) { /* nobody wants it any more */
    free_req(r);
    return;
  }
  if (r->task && r->ctx->alive) {
    casync_task *t = r->task;
    r->task = NULL;
    casync__wake(r->ctx, t, WAKE_OK);
  }
}

static int gai_gc(lua_State *L) {
  gai_ud *u = lua_touserdata(L, 1);
  gai_req *r = u->r;
  if (!r) return 0;
  u->r = NULL;
  if (r->done) free_req(r);
  else { /* the callback frees it */ r->ud = NULL;
    r->task = NULL;
    uv_cancel((uv_req_t *)&r->req);
  }
  return 0;
}

static int lookup_cancel(casync_ctx *lp, casync_task *t, int why) {
  gai_req *r = t->wait_obj;
  (void)lp;
  (void)why;
  r->task = NULL;
  uv_cancel((uv_req_t *)&r->req); /* if it has not started */
  return 1;
}

static const casync_wait_kind lookup_wait = {"resolve", "resolve",
                                             lookup_cancel, CASYNC_WK_EXTERNAL};

/* Starts resolving host (service: a port number as a string, or NULL) for
 * family (AF_UNSPEC, AF_INET, AF_INET6); pushes the lookup userdata and
 * suspends t; k(kc) runs when the answer (or the deadline) came: read it
 * with casync__dns_result.  Does not return. */
int casync__dns_lookup(lua_State *L, casync_task *t, const char *host,
                       const char *service, int family, uint64_t deadline,
                       lua_KFunction k, lua_KContext kc) {
  casync_ctx *ctx = CASYNC_CTX(L);
  struct addrinfo hints;
  gai_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  gai_req *r;
  int rc;
  u->r = NULL;
  luaL_setmetatable(L, DNS_MT);
  r = calloc(1, sizeof *r);
  if (!r) return luaL_error(L, "not enough memory");
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  if (service) hints.ai_flags = AI_NUMERICSERV;
  r->ctx = ctx;
  r->req.data = r;
  ctx->refs++;
  ctx->requests++;
  u->r = r;
  r->ud = u;
  rc = uv_getaddrinfo(ctx->loop, &r->req, on_gai, host, service, &hints);
  if (rc < 0) { /* no callback will come */
    ctx->requests--;
    r->status = rc;
    r->done = 1;
    t->wake = WAKE_OK;
    t->wait = &lookup_wait; /* k's casync__woken reads it (it was NULL for a
                               task that never waited: SIGSEGV) */
    return k(L, LUA_OK, kc);
  }
  r->task = t;
  return casync__park(L, t, &lookup_wait, r, deadline, k, kc);
}

/* The answer of the lookup userdata at idx: the list, or NULL and *status
 * the error. */
struct addrinfo *casync__dns_result(lua_State *L, int idx, int *status) {
  gai_ud *u = luaL_testudata(L, idx, DNS_MT);
  if (!u || !u->r || !u->r->done) {
    *status = UV_EINVAL;
    return NULL;
  }
  *status = u->r->status;
  return u->r->status < 0 ? NULL : u->r->res;
}

/* Parses opts.family at arg; AF_UNSPEC when absent. */
static int opt_family(lua_State *L, int arg) {
  static const char *const names[] = {"any", "inet", "inet6", NULL};
  static const int fams[] = {AF_UNSPEC, AF_INET, AF_INET6};
  int i;
  if (lua_getfield(L, arg, "family") == LUA_TNIL) {
    lua_pop(L, 1);
    return AF_UNSPEC;
  }
  if (lua_type(L, -1) == LUA_TSTRING)
    for (i = 0; names[i]; i++)
      if (strcmp(lua_tostring(L, -1), names[i]) == 0) {
        lua_pop(L, 1);
        return fams[i];
      }
  luaL_argerror(L, arg, "opts.family must be \"inet\", \"inet6\" or \"any\"");
  return AF_UNSPEC;
}

static int resolve_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  struct addrinfo *ai;
  int st, n = 0;
  (void)status;
  CASYNC_RESUMED(L, t, kc, resolve_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    casync__timeout_error(L, "resolve",
                          casync__net_opt_seconds(L, 2, "timeout"));
    return 2;
  }
  ai = casync__dns_result(L, 3, &st);
  if (st < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "resolve", st);
    return 2;
  }
  lua_newtable(L); /* 4: the list */
  lua_newtable(L); /* 5: addresses seen */
  for (; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    casync__net_push_addr(L, ai->ai_addr);
    lua_pop(L, 1); /* the port */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 5) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, 5);
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "address");
    lua_pushstring(L, ai->ai_family == AF_INET ? "inet" : "inet6");
    lua_setfield(L, -2, "family");
    lua_rawseti(L, 4, ++n);
  }
  lua_pop(L, 1);
  return 1;
}

/* casync.dns.resolve(host [, opts]) -> {{address=, family="inet"|"inet6"},
 * ...} | nil, err: the addresses of host; opts.family ("inet", "inet6",
 * "any"), opts.timeout (seconds) */
static int fn_resolve(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int family = AF_UNSPEC;
  double timeout = -1;
  casync_task *t;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    family = opt_family(L, 2);
    timeout = casync__net_opt_seconds(L, 2, "timeout");
  }
  lua_settop(L, 2);
  t = casync__wait_begin(L, "resolve");
  return casync__dns_lookup(L, t, host, NULL, family, casync__deadline(timeout),
                            resolve_k, 0);
}

void casync__dns_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"resolve", fn_resolve}, {NULL, NULL}};
  luaL_newmetatable(L, DNS_MT);
  lua_pushcfunction(L, gai_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "dns");
}
