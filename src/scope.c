/* scope.c: casync.scope, a cancel scope that owns the tasks spawned in it
 * (Trio's nursery, asyncio's TaskGroup).
 *
 * The scope's owner runs the body; s:spawn attaches a child to the scope.
 * Closing it (the end of the block, an error, the owner's cancellation)
 * waits until every child has ended.  The first failure (a child's or the
 * body's) cancels the scope, so the body and the other children unwind;
 * the scope then raises that failure unchanged, or, when several failed on
 * their own, one error of kind "group" listing each.  Cancellations the
 * scope itself caused are no failures.  A child's end reaches the scope
 * from the task's end (life.c calls casync__scope_task_ended), so a child
 * costs no allocation beyond its task.
 */
#include <string.h>
#include "scheduler.h"

#define SCOPE_MT "casync.Scope"
#define CS_BODY_FAILED 0x100u /* the body's own error is among the failures */

/* ------------------------------------------------------------ failures */

/* Appends a failure to the scope (userdata pinned by s->ref): the failed
 * task at tidx, or (tidx 0) the body's error on top of L (popped). */
static void add_failure(lua_State *L, casync_cscope *s, int tidx) {
  int top = lua_gettop(L);
  luaL_checkstack(L, 6, NULL);
  if (tidx) tidx = lua_absindex(L, tidx);
  casync__push_pinned(L, s->ref);
  lua_getiuservalue(L, -1, 1);
  lua_createtable(L, 0, 3);
  if (tidx) {
    casync_task *t = lua_touserdata(L, tidx);
    lua_pushvalue(L, tidx);
    lua_setfield(L, -2, "task");
    lua_getiuservalue(L, tidx, 1);
    lua_setfield(L, -2, "error");
    if (lua_getiuservalue(L, tidx, 2) == LUA_TTABLE)
      lua_getfield(L, -1, "traceback");
    else lua_pushnil(L);
    lua_setfield(L, -3, "traceback");
    lua_pop(L, 1);
    t->flags |= TF_OBSERVED; /* the scope hands it out */
  } else {
    lua_pushvalue(L, top);
    lua_setfield(L, -2, "error");
  }
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_settop(L, tidx ? top : top - 1);
  if (s->nfailed++ == 0) casync__cs_cancel(s->owner->loop, s, 0);
}

/* Raises what the scope at sidx ends with: its one failure unchanged, or
 * a "group" error over all of them. */
static int raise_failures(lua_State *L, casync_task *t, int sidx) {
  int n, i;
  lua_getiuservalue(L, sidx, 1);
  n = (int)lua_rawlen(L, -1);
  if (n == 1) {
    lua_rawgeti(L, -1, 1);
    if (lua_getfield(L, -1, "task") == LUA_TUSERDATA)
      return casync__push_error_of(L, lua_touserdata(L, -1), -1), lua_error(L);
    lua_getfield(L, -2, "error");
    return casync__reraise(L, t);
  }
  /* several: kind "group", each listed in the message and in `errors` */
  {
    int list = lua_gettop(L), parts = lua_gettop(L) + 1;
    luaL_checkstack(L, 10, NULL);
    lua_pushfstring(L, "%d tasks failed:", n);
    for (i = 1; i <= n; i++) {
      int entry = lua_gettop(L) + 1;
      lua_rawgeti(L, list, i);
      lua_getfield(L, entry, "error"); /* entry+1 */
      lua_getfield(L, entry, "task");  /* entry+2 */
      if (lua_type(L, entry + 2) == LUA_TUSERDATA)
        casync__task_describe(L, lua_touserdata(L, entry + 2), entry + 2);
      else lua_pushliteral(L, "the scope's body");
      casync__tostring(L, entry + 1); /* entry+4 */
      lua_pushfstring(L, "\n  %s: %s", lua_tostring(L, entry + 3),
                      lua_tostring(L, entry + 4));
      lua_replace(L, entry);
      lua_settop(L, entry);
    }
    lua_concat(L, lua_gettop(L) - parts + 1);
    casync__error_push(L, "group", NULL, "%s", lua_tostring(L, -1));
    lua_pushvalue(L, list);
    lua_setfield(L, -2, "errors");
    return lua_error(L);
  }
}

/* ------------------------------------------------------------- closing */

/* The owner waits for the children; its own cancellation (from outside)
 * cancels them and it goes on waiting. */
static int close_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)why;
  casync__cs_cancel(lp, t->wait_obj, 0);
  return 0; /* woken when the last child has ended */
}

static void close_describe(lua_State *L, casync_task *t) {
  casync_cscope *s = t->wait_obj;
  lua_pushfstring(L, "scope close: waiting for its %d task%s%s", s->nchildren,
                  s->nchildren == 1 ? "" : "s",
                  s->flags & CS_CANCELLED ? " (cancelled)" : "");
}

static int close_blockers(lua_State *L, casync_task *t, casync_task **out,
                          int max) {
  casync_cscope *s = t->wait_obj;
  casync_task *c;
  int n = 0;
  (void)L;
  for (c = s->tasks; c && n < max; c = c->cs_next)
    if (c != t && (c->flags & TF_SCOPE_CHILD)) out[n++] = c;
  return n;
}

static const casync_wait_kind close_wait = {
    "scope",        "scope close (waiting for its tasks)",
    close_cancel,   CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS,
    close_describe, close_blockers};

/* The body is over (with its error at eidx, 0 for none): a failure of its
 * own counts and cancels the children; a cancellation does not count but
 * (when from outside) cancels them too. */
static void body_over(lua_State *L, casync_task *t, casync_cscope *s,
                      int eidx) {
  while (t->cscope && t->cscope != s && t->cscope->owner == t)
    casync__cs_close(t->loop, t->cscope); /* opened inside, left open */
  if (!eidx) return;
  if (casync__error_is(L, eidx, "cancelled")) {
    casync__cs_cancel(t->loop, s, 0);
    return;
  }
  lua_pushvalue(L, eidx);
  add_failure(L, s, 0);
  s->flags |= CS_BODY_FAILED;
}

/* Ends the scope at sidx (its children have ended): closes it and raises
 * its failures, if any.  Returns whether the error at eidx (0: none) is
 * its own cancellation (for the function form to swallow). */
static int finish_scope(lua_State *L, casync_task *t, casync_cscope *s,
                        int sidx, int eidx) {
  int own = eidx && !s->nfailed && casync__cs_catches(L, t, s, eidx);
  s->closer = NULL;
  casync__cs_close(t->loop, s);
  if (s->nfailed) raise_failures(L, t, sidx);
  /* cancelled from outside while it waited for its tasks: that goes on
   * now that they have ended (an error on its way out goes on anyway) */
  if (!eidx && CASYNC_CANCELLED(t)) casync__raise_cancel(L, t);
  return own;
}

/* Waits, if needed, until the scope at sidx has no children; then k. */
static int wait_children(lua_State *L, casync_task *t, casync_cscope *s,
                         lua_KFunction k, lua_KContext kc) {
  if (s->nchildren == 0) return k(L, LUA_OK, kc);
  if (!lua_isyieldable(L))
    return luaL_error(L, "scope: cannot wait for its tasks across a C call "
                         "boundary");
  s->closer = t;
  return casync__park(L, t, &close_wait, s, 0, k, kc);
}

static casync_cscope *check_scope(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, SCOPE_MT);
}

/* After the children of a <close> scope: [1 scope][2 err]. */
static int close_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, close_k);
  finish_scope(L, t, lua_touserdata(L, 1), 1, lua_isnil(L, 2) ? 0 : 2);
  return 0; /* an error on its way out goes on */
}

/* scope:__close(err) / scope:close(): waits for every task of the scope,
 * then raises its failure(s), if any */
static int meth_close(lua_State *L) {
  casync_cscope *s = check_scope(L, 1);
  casync_task *t = casync__resumed(L);
  if (s->flags & CS_CLOSED) return 0;
  if (!t || s->owner != t)
    return luaL_error(L, "close: the scope belongs to another task");
  lua_settop(L, 2);
  body_over(L, t, s, lua_isnil(L, 2) ? 0 : 2);
  return wait_children(L, t, s, close_k, 0);
}

/* ------------------------------------------------------------- opening */

/* Pushes a new scope opened in task t. */
static casync_cscope *new_scope(lua_State *L, casync_task *t) {
  casync_cscope *s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  s->flags = CS_NURSERY;
  luaL_setmetatable(L, SCOPE_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  casync__cs_open(t, s);
  s->ref = casync__pin(L, t->loop, -1);
  return s;
}

/* After the children of a function-form scope:
 * [1 scope][2 msgh][3 error | results...]; kc: 1 if the body failed. */
static int form_close_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, form_close_k);
  if (finish_scope(L, t, lua_touserdata(L, 1), 1, kc ? 3 : 0)) return 0;
  if (kc) return casync__reraise(L, t); /* not the scope's own doing */
  return lua_gettop(L) - 2;
}

static int form_body_k(lua_State *L, int status, lua_KContext kc) {
  casync_cscope *s = lua_touserdata(L, 1);
  casync_task *t = casync__resumed(L);
  int failed = status != LUA_OK && status != LUA_YIELD;
  (void)kc;
  if (!t) return casync__not_resumed(L, kc, form_body_k);
  if (failed) lua_settop(L, 3); /* [1 scope][2 msgh][3 error] */
  body_over(L, t, s, failed ? 3 : 0);
  return wait_children(L, t, s, form_close_k, failed);
}

/* casync.scope() -> s: `local s <close> = casync.scope()`, closed (its
 * tasks waited for) at the end of the block.  casync.scope(fn, ...) ->
 * ...: the same around fn(s, ...), whose results it returns (none when
 * the scope was cancelled, s:cancel(), and that ended fn). */
static int fn_scope(lua_State *L) {
  casync_task *t;
  int nargs, status;
  if (lua_isnoneornil(L, 1)) {
    t = casync__task_begin(L, "scope");
    new_scope(L, t);
    return 1;
  }
  casync__check_callable(L, 1);
  t = casync__task_begin(L, "scope");
  nargs = lua_gettop(L) - 1;
  luaL_checkstack(L, 4, NULL);
  new_scope(L, t);
  lua_insert(L, 1);
  lua_pushcfunction(L, casync__task_msgh);
  lua_insert(L, 2); /* [1 scope][2 msgh][3 fn][4.. args] */
  lua_pushvalue(L, 1);
  lua_insert(L, 4); /* fn(s, ...) */
  status = lua_pcallk(L, nargs + 1, LUA_MULTRET, 2, 0, form_body_k);
  return form_body_k(L, status, 0);
}

/* --------------------------------------------------------------- tasks */

/* s:spawn([opts,] fn, ...) -> task: runs fn(...) as a task of the scope
 * (spawning into it from one of its tasks works too); raises once the
 * scope is closed */
static int meth_spawn(lua_State *L) {
  casync_cscope *s = check_scope(L, 1);
  int fidx = 2, nameidx = 0;
  casync_task *child;
  if (lua_type(L, 2) == LUA_TTABLE && !casync__is_callable(L, 2)) {
    fidx = 3;
    lua_getfield(L, 2, "name");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 2, "opts.name must be a string");
    lua_replace(L, 2);
    nameidx = 2;
  }
  casync__check_callable(L, fidx);
  if (s->flags & CS_CLOSED) return luaL_error(L, "spawn: the scope is closed");
  child = casync__spawn(L, CASYNC_CTX(L), fidx, lua_gettop(L) - fidx, nameidx);
  child->flags |= TF_SCOPE_CHILD;
  casync__cs_attach(child, s);
  s->nchildren++;
  return 1;
}

/* Task t (userdata at tidx) ends: the scopes it left open close, and the
 * scope it belongs to learns of it (a failure cancels the scope). */
void casync__scope_task_ended(lua_State *L, casync_ctx *lp, casync_task *t,
                              int tidx) {
  casync_cscope *s;
  while (t->cscope && t->cscope->owner == t) casync__cs_close(lp, t->cscope);
  s = t->cscope;
  casync__cs_detach(t);
  t->cscope = NULL;
  if (!s || !(t->flags & TF_SCOPE_CHILD) || !(s->flags & CS_NURSERY)) return;
  s->nchildren--;
  if (t->outcome == OUT_FAILED) add_failure(L, s, tidx);
  if (s->nchildren == 0 && s->closer) casync__wake(lp, s->closer, WAKE_OK);
}

/* s:cancel(): cancels the body and every task of the scope */
static int meth_cancel(lua_State *L) {
  casync__cs_cancel(CASYNC_CTX(L), check_scope(L, 1), 0);
  return 0;
}

/* s:cancelled() -> whether it was cancelled (or a task of it failed) */
static int meth_cancelled(lua_State *L) {
  lua_pushboolean(L, (check_scope(L, 1)->flags & CS_CANCELLED) != 0);
  return 1;
}

/* s:closed() -> whether it has ended */
static int meth_closed(lua_State *L) {
  lua_pushboolean(L, (check_scope(L, 1)->flags & CS_CLOSED) != 0);
  return 1;
}

/* s:tasks() -> how many of its tasks are still running */
static int meth_tasks(lua_State *L) {
  lua_pushinteger(L, check_scope(L, 1)->nchildren);
  return 1;
}

static int meta_tostring(lua_State *L) {
  casync_cscope *s = check_scope(L, 1);
  lua_pushfstring(L, "casync.Scope (%d task%s, %s)", s->nchildren,
                  s->nchildren == 1 ? "" : "s",
                  s->flags & CS_CLOSED      ? "closed"
                  : s->flags & CS_CANCELLED ? "cancelled"
                                            : "open");
  return 1;
}

void casync__scope_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"scope", fn_scope}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"spawn", meth_spawn},
                                     {"cancel", meth_cancel},
                                     {"cancelled", meth_cancelled},
                                     {"closed", meth_closed},
                                     {"tasks", meth_tasks},
                                     {"close", meth_close},
                                     {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  luaL_newmetatable(L, SCOPE_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_push(L);
  lua_pushcclosure(L, meth_close, 1);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
