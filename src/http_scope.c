/* http_scope.c: each request of casync.http.serve runs in a cancel scope
 * of its own (embedded in the connection: nothing allocated per request).
 *
 * The scope is cancelled when the client goes away while the handler runs
 * (a reset, or the end of its stream with no further request buffered,
 * as Go's server cancels a request's context), and when the server's
 * request_timeout passes.  Every wait in the handler, in the scopes it
 * opens and their tasks, and in the thread jobs it starts, then raises
 * the cancellation; the request task takes it back here, so a request cut
 * short is no failure: the connection is closed, or (the deadline, before
 * any of the answer went out) answered 503.
 *
 * The request's id (its X-Request-Id when that is a plain token, else one
 * made from the server's random prefix and a count) is the request task's
 * context value "request_id", which the tasks it spawns inherit and the
 * HTTP client forwards.  The context is made only when someone looks.
 */
#include <string.h>
#include "http_server.h"

/* Is the value at v (n bytes) a request id we pass on as it is? */
int casync__hscope_sane_id(const char *v, size_t n) {
  size_t i;
  if (n == 0 || n > HTTP_MAX_ID) return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || (ch && strchr("-_.:/+=@", ch))))
      return 0;
  }
  return 1;
}

/* The context of request task t, made when first looked at (tcontext.c
 * calls it through ctx->lazy_context): {request_id = its id}.  Nothing is
 * made for requests whose handlers never look. */
static void lazy_context(lua_State *L, casync_task *t) {
  hconn *c = casync__hconn_of_task(t);
  if (!c) return;
  lua_pushliteral(L, "request_id");
  if (c->rid_len) lua_pushlstring(L, c->rid, c->rid_len);
  else lua_pushfstring(L, "%s-%I", c->srv->id_prefix, c->req_no);
  casync__context_set(L, t, -2, -1);
  lua_pop(L, 2);
}

/* The request task t begins: its scope opens (with the server's
 * request_timeout); its context is for later. */
static void scope_open(hconn *c, casync_task *t) {
  hserver *srv = c->srv;
  memset(&c->rscope, 0, sizeof c->rscope);
  casync__cs_open(t, &c->rscope);
  if (srv->request_s > 0)
    casync__cs_set_deadline(srv->ctx, &c->rscope, srv->request_s);
  c->flags |= CF_SCOPED | CF_HANDLING;
  t->loop->lazy_context = lazy_context;
  t->flags |= TF_LAZY_CONTEXT;
}

/* The client went away (why: a reset, or its end while the handler runs):
 * the request's scope is cancelled. */
void casync__hscope_gone(hconn *c, int reset) {
  if (!c->task || !(c->flags & CF_SCOPED) || (c->flags & CF_UPGRADED)) return;
  if (!reset && !(c->flags & CF_HANDLING)) return; /* the answer goes on */
  if (!(c->rscope.flags & (CS_CANCELLED | CS_CLOSED)))
    casync__cs_cancel(c->srv->ctx, &c->rscope, 0);
}

/* The Lua state closes under a request task that will never end: its
 * scope leaves the tree before the connection block goes. */
void casync__hscope_drop(hconn *c) {
  if ((c->flags & CF_SCOPED) && !(c->rscope.flags & CS_CLOSED))
    casync__cs_close(c->srv->ctx, &c->rscope);
  c->flags &= ~CF_SCOPED;
}

/* After the handler and the answer: [1 msgh][error] when they raised. */
/* The handler failed (the error on top of L, the request at 2): said at
 * once, naming the request, as Go's server logs a handler's panic; the
 * client gets a 500.  Not again as a lost failure when collected. */
static void report_failure(lua_State *L, casync_task *t) {
  luaL_checkstack(L, 4, NULL);
  lua_getfield(L, 2, "method");
  lua_getfield(L, 2, "target");
  casync__push_task_label(L, t);
  lua_pushfstring(L, "the HTTP handler of %s %s (%s)", lua_tostring(L, -3),
                  lua_tostring(L, -2), lua_tostring(L, -1));
  casync__report_failure(L, t, -5, lua_tostring(L, -1));
  lua_pop(L, 4);
}

static int request_k(lua_State *L, int status, lua_KContext kc) {
  hconn *c = (hconn *)kc;
  casync_task *t = casync__resumed(L);
  int caught = 0;
  if (!t) return casync__not_resumed(L, kc, request_k);
  if (status != LUA_OK && status != LUA_YIELD)
    caught = casync__cs_catches(L, t, &c->rscope, -1);
  casync__cs_close_owned(t, &c->rscope);
  c->flags &= ~(CF_SCOPED | CF_HANDLING);
  if (status == LUA_OK || status == LUA_YIELD) return 0;
  if (!caught) {
    if (!casync__error_is(L, -1, "cancelled")) report_failure(L, t);
    return casync__reraise(L, t);
  }
  c->flags |= CF_CUT;
  if (c->rscope.flags & CS_BY_DEADLINE) c->flags |= CF_TIMED_OUT;
  return 0;
}

/* The body of a request task: [1 handler][2 req][3 conn].  Upvalues: the
 * loop context, the server userdata, the handler-and-answer function
 * (casync__hresp_request_body). */
int casync__hscope_request(lua_State *L) {
  hconn *c = lua_touserdata(L, 3);
  casync_task *t = CASYNC_CTX(L)->current;
  int status;
  lua_settop(L, 3);
  scope_open(c, t);
  /* pushed above the arguments, which stay for a failure's report (and
   * pushes cost less than rotations) */
  lua_pushcfunction(L, casync__task_msgh);
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3); /* [4 msgh][5 body][6 handler][7 req][8 conn] */
  status = lua_pcallk(L, 3, 0, 4, (lua_KContext)c, request_k);
  return request_k(L, status, (lua_KContext)c);
}
