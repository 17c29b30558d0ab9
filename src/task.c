/* task.c: casync.spawn, casync.current, call_later and the methods of a
 * task (wait, cancel, done, cancelled, result, error, add_done_callback,
 * traceback, name, id).  A task's life itself is in life.c and sched.c.
 */
#include <string.h>
#include "scheduler.h"

/* The task userdata at idx, or an argument error. */
casync_task *casync__check_task(lua_State *L, int idx) {
  return casync__check_class(L, idx, CASYNC_CTX(L)->task_mt, CASYNC_TASK_MT);
}

/* casync.spawn([opts,] fn, ...) -> task: runs fn(...) as a new task soon;
 * opts.name names it in messages and tracebacks. */
static int fn_spawn(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int fidx = 1, nameidx = 0;
  if (lua_type(L, 1) == LUA_TTABLE && !casync__is_callable(L, 1)) {
    fidx = 2;
    lua_getfield(L, 1, "name");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 1, "opts.name must be a string");
    lua_replace(L, 1);
    nameidx = 1;
  }
  casync__check_callable(L, fidx);
  casync__spawn(L, lp, fidx, lua_gettop(L) - fidx, nameidx);
  return 1;
}

/* casync.call_later(seconds, fn, ...) -> task: runs fn(...) as a task once
 * the time has passed (a timer callback, after the ready tasks); cancel the
 * task to call it off. */
static int fn_call_later(lua_State *L) {
  double s = casync__check_seconds(L, 1, 0);
  casync__check_callable(L, 2);
  casync__spawn_later(L, CASYNC_CTX(L), 2, lua_gettop(L) - 2, s);
  return 1;
}

/* casync.current() -> the running task, or nil outside tasks */
static int fn_current(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  if (!lp->current || lp->current->co != L) return 0;
  return casync__push_task(L, lp, lp->current);
}

/* ------------------------------------------------------------- outcome */

/* Pushes the results of ended task t (userdata at tidx): all of them, or
 * only the first (nil if none) when `first`.  Returns how many. */
int casync__push_results(lua_State *L, casync_task *t, int tidx, int first) {
  int i;
  tidx = lua_absindex(L, tidx);
  if (t->nres == 0) {
    if (!first) return 0;
    lua_pushnil(L);
    return 1;
  }
  lua_getiuservalue(L, tidx, 1);
  if (t->nres == 1) return 1;
  if (first) {
    lua_rawgeti(L, -1, 1);
    lua_replace(L, -2);
    return 1;
  }
  luaL_checkstack(L, t->nres, "too many results");
  for (i = 1; i <= t->nres; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -t->nres - 1);
  return t->nres;
}

/* Pushes the error of failed task t (userdata at tidx) and marks it
 * observed; the running task, if any, remembers it as the cause of what
 * it may raise next (for the traceback). */
int casync__push_error_of(lua_State *L, casync_task *t, int tidx) {
  casync_ctx *lp = t->loop;
  tidx = lua_absindex(L, tidx);
  t->flags |= TF_OBSERVED;
  if (lp->current && lp->current->co == L && lp->current != t) {
    casync__push_task(L, lp, lp->current);
    casync__extras(L, -1);
    lua_pushvalue(L, tidx);
    lua_setfield(L, -2, "cause");
    lua_pop(L, 2);
  }
  lua_getiuservalue(L, tidx, 1);
  return 1;
}

/* ------------------------------------------------------------- methods */

static void join_notify(casync_ctx *lp, casync_obs *o, casync_task *ended) {
  (void)ended;
  casync__wake(lp, container_of(o, casync_task, u.join), WAKE_OK);
}

static int join_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  casync__obs_unlink(t->wait_obj, &t->u.join);
  return 1;
}

static void join_describe(lua_State *L, casync_task *t) {
  casync__push_task_label(L, t->wait_obj);
  lua_pushfstring(L, "task:wait() for %s", lua_tostring(L, -1));
  lua_remove(L, -2);
}

static int join_blockers(lua_State *L, casync_task *t, casync_task **out,
                         int max) {
  (void)L;
  if (max < 1) return 0;
  out[0] = t->wait_obj;
  return 1;
}

static const casync_wait_kind join_wait = {"wait",        "task:wait()",
                                           join_cancel,   CASYNC_WK_ON_TASKS,
                                           join_describe, join_blockers};

static int outcome_of(lua_State *L, casync_task *t, int tidx) {
  if (t->outcome == OUT_OK) return casync__push_results(L, t, tidx, 0);
  casync__push_error_of(L, t, tidx);
  return lua_error(L);
}

static int wait_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *self;
  (void)status;
  CASYNC_RESUMED(L, self, kc, wait_k);
  casync__woken(L, self);
  return outcome_of(L, casync__check_task(L, 1), 1);
}

/* task:wait() -> ...: suspends until the task ends; its results, or its
 * error re-raised unchanged */
static int meth_wait(lua_State *L) {
  casync_task *t = casync__check_task(L, 1);
  casync_task *self = casync__wait_begin(L, "wait");
  lua_settop(L, 1);
  if (t == self) return luaL_error(L, "wait: a task cannot wait for itself");
  if (t->state == T_DONE) return outcome_of(L, t, 1);
  self->u.join.notify = join_notify;
  casync__obs_link(t, &self->u.join);
  return casync__park(L, self, &join_wait, t, 0, wait_k, 0);
}

/* task:cancel([msg]) -> boolean: requests cancellation (an error of kind
 * "cancelled" raised where it waits); false if it had already ended */
static int meth_cancel(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = casync__check_task(L, 1);
  if (!lua_isnoneornil(L, 2) && !lua_isstring(L, 2))
    luaL_typeerror(L, 2, "string");
  if (t->state == T_DONE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  casync__cancel(L, lp, t, lua_isnoneornil(L, 2) ? 0 : 2);
  lua_pushboolean(L, 1);
  return 1;
}

/* task:done() -> whether it has ended (in any way) */
static int meth_done(lua_State *L) {
  lua_pushboolean(L, casync__check_task(L, 1)->state == T_DONE);
  return 1;
}

/* task:cancelled() -> whether it ended by an uncaught cancellation */
static int meth_cancelled(lua_State *L) {
  lua_pushboolean(L, casync__check_task(L, 1)->outcome == OUT_CANCELLED);
  return 1;
}

static void check_done(lua_State *L, casync_task *t, const char *fname) {
  if (t->state != T_DONE) luaL_error(L, "%s: the task has not finished", fname);
}

/* task:result() -> ...: the results of an ended task; re-raises its error */
static int meth_result(lua_State *L) {
  casync_task *t = casync__check_task(L, 1);
  check_done(L, t, "result");
  return outcome_of(L, t, 1);
}

/* task:error() -> err: the error of a failed task, nil if it succeeded */
static int meth_error(lua_State *L) {
  casync_task *t = casync__check_task(L, 1);
  check_done(L, t, "error");
  if (t->outcome == OUT_OK) return 0;
  return casync__push_error_of(L, t, 1);
}

/* task:add_done_callback(cb): cb(task) is called once the task has ended
 * (soon, if it already has); an error in cb is reported, not raised */
static int meth_add_done_callback(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = casync__check_task(L, 1);
  casync__check_callable(L, 2);
  lua_settop(L, 2);
  casync__extras(L, 1);
  if (lua_getfield(L, -1, "callbacks") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "callbacks");
  }
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  t->flags |= TF_HAS_CALLBACKS;
  if (t->state == T_DONE && !(t->flags & TF_QUEUED)) {
    if (t->ref == LUA_NOREF) { /* anchor it until the callbacks ran */
      casync__ctx_push_lp(L, lp);
      casync__task_anchor(L, lp, lua_gettop(L), t, 1);
      lua_pop(L, 1);
    }
    casync__enqueue(lp, t);
  }
  return 0;
}

/* task:traceback() -> where it failed and where it was spawned, or nil */
static int meth_traceback(lua_State *L) {
  casync__check_task(L, 1);
  if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 0;
  lua_getfield(L, -1, "traceback");
  return 1;
}

/* task:name() -> the name given to spawn, or nil */
static int meth_name(lua_State *L) {
  casync__check_task(L, 1);
  if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 0;
  lua_getfield(L, -1, "name");
  return 1;
}

/* task:id() -> its number, unique in this Lua state */
static int meth_id(lua_State *L) {
  lua_pushinteger(L, casync__check_task(L, 1)->id);
  return 1;
}

static int meta_tostring(lua_State *L) {
  casync_task *t = casync__check_task(L, 1);
  static const char *const outcomes[] = {"", "done", "failed", "cancelled"};
  casync__task_describe(L, t, 1);
  switch (t->state) {
  case T_DONE:
    lua_pushfstring(L, "%s (%s)", lua_tostring(L, -1), outcomes[t->outcome]);
    break;
  case T_WAITING:
    lua_pushfstring(L, "%s (waiting in %s)", lua_tostring(L, -1),
                    casync__waiting_in(t));
    break;
  default:
    lua_pushfstring(L, "%s (%s)", lua_tostring(L, -1),
                    t->state == T_RUNNING ? "running" : "ready");
  }
  return 1;
}

/* A task has no finalizer: a finalizer costs every task a trip through
 * the GC's list of objects to finalize, a call when it is collected and a
 * GC cycle more alive.  A live task is anchored (so never collected with a
 * timer armed; at the state's close the context stops the timers before
 * anything is freed).  Only a failure nobody observed needs reporting when
 * its task is collected: casync__finish gives such a task a sentinel, a
 * userdata only the task references, whose finalizer reports it (the task
 * is still there: what a finalized object references lives one cycle
 * more). */
static int failure_gc(lua_State *L) {
  luaL_checkudata(L, 1, CASYNC_FAILURE_MT); /* a hand call */
  lua_getiuservalue(L, 1, 1);
  if (lua_type(L, -1) == LUA_TUSERDATA)
    casync__report_unobserved(L, lua_touserdata(L, -1), -1);
  return 0;
}

void casync__task_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"spawn", fn_spawn},
                                 {"current", fn_current},
                                 {"call_later", fn_call_later},
                                 {"on_unobserved", casync__fn_on_unobserved},
                                 {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"wait", meth_wait},
      {"cancel", meth_cancel},
      {"done", meth_done},
      {"cancelled", meth_cancelled},
      {"result", meth_result},
      {"error", meth_error},
      {"add_done_callback", meth_add_done_callback},
      {"traceback", meth_traceback},
      {"name", meth_name},
      {"id", meth_id},
      {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  luaL_newmetatable(L, CASYNC_TASK_MT);
  casync__ctx_get(L)->task_mt = lua_topointer(L, -1);
  casync__ctx_push(L);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, CTX_TASK_MT);
  lua_pop(L, 1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_push(L);
  lua_pushcclosure(L, meta_tostring, 1);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, CASYNC_FAILURE_MT);
  lua_pushcfunction(L, failure_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
