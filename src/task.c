/* task.c: casync.spawn, casync.current, call_later and the methods of a
 * task (wait, cancel, done, cancelled, result, error, add_done_callback,
 * traceback, name).
 *
 * A task's body runs under a yieldable lua_pcallk inside its own coroutine,
 * so when it fails its to-be-closed variables are closed by Lua with yields
 * allowed (a __close may suspend), and the coroutine ends normally and can
 * be reused for the next task.
 */
#include <string.h>
#include "internal.h"

/* Coroutine stack of a task: [1 task][2 spawner][3 msgh][4 body][5.. args] */
#define ENTRY_BODY 4

/* The task userdata at idx, or an argument error. */
casync_task *casync__check_task(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CASYNC_TASK_MT);
}

int casync__is_callable(lua_State *L, int idx) {
  int yes;
  if (lua_isfunction(L, idx)) return 1;
  if (!luaL_getmetafield(L, idx, "__call")) return 0;
  yes = 1;
  lua_pop(L, 1);
  return yes;
}

void casync__check_callable(lua_State *L, int arg) {
  if (!casync__is_callable(L, arg)) luaL_typeerror(L, arg, "function");
}

/* Pushes the extras table of the task at tidx, creating it if needed. */
void casync__extras(lua_State *L, int tidx) {
  tidx = lua_absindex(L, tidx);
  if (lua_getiuservalue(L, tidx, 2) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, tidx, 2);
}

/* Pushes "task #id 'name'" for messages. */
void casync__task_describe(lua_State *L, casync_task *t, int tidx) {
  tidx = lua_absindex(L, tidx);
  if ((t->flags & TF_NAMED) && lua_getiuservalue(L, tidx, 2) == LUA_TTABLE &&
      lua_getfield(L, -1, "name") != LUA_TNIL) {
    lua_pushfstring(L, "task #%I '%s'", t->id, luaL_tolstring(L, -1, NULL));
    lua_replace(L, -4);
    lua_pop(L, 2);
    return;
  }
  if (t->flags & TF_NAMED) lua_pop(L, 2);
  lua_pushfstring(L, (t->flags & TF_MAIN) ? "task #%I (main)" : "task #%I",
                  t->id);
}

/* ------------------------------------------------------------ the body */

/* Message handler of the body: records where it failed (while the stack
 * is still there) and hands the error value on unchanged. */
static int task_msgh(lua_State *co) {
  casync_ctx *lp = casync__loop_get(co);
  casync_task *t = lp ? lp->current : NULL;
  if (!t || t->co != co) return 1;
  lua_settop(co, 1);
  luaL_checkstack(co, 8, NULL);
  casync__push_task(co, lp, t);
  casync__extras(co, -1);
  if (casync__error_is(co, 1, "cancelled")) {
    /* Cancellations are routine (every gather error, race and timeout
     * makes some) and a full traceback costs tens of microseconds (it
     * searches package.loaded for every frame's name): note just where. */
    lua_Debug ar;
    int level = 1;
    while (lua_getstack(co, level, &ar) && lua_getinfo(co, "Sl", &ar) &&
           ar.currentline < 0)
      level++;
    if (ar.currentline >= 0)
      lua_pushfstring(co, "cancelled at %s:%d (waiting in %s)", ar.short_src,
                      ar.currentline, casync__waiting_in(t));
    else
      lua_pushfstring(co, "cancelled (waiting in %s)", casync__waiting_in(t));
    lua_setfield(co, -2, "traceback");
    lua_settop(co, 1);
    return 1;
  }
  /* a casync.thread task: where it failed in the worker (thread.c) */
  if (lua_getfield(co, -1, "worker_traceback") == LUA_TSTRING) {
    lua_pushnil(co);
    lua_setfield(co, -3, "worker_traceback");
    lua_setfield(co, -2, "traceback");
    lua_settop(co, 1);
    return 1;
  }
  lua_pop(co, 1);
  luaL_traceback(co, co, NULL, 1);
  /* an error re-raised from a task it waited on: show that task's too */
  if (lua_getfield(co, -2, "cause") == LUA_TUSERDATA) {
    lua_getiuservalue(co, -1, 1);
    if (lua_rawequal(co, -1, 1)) {
      casync_task *c = lua_touserdata(co, -2);
      lua_getiuservalue(co, -2, 2);
      lua_getfield(co, -1, "traceback");
      casync__task_describe(co, c, -4);
      lua_pushfstring(co, "%s\n(raised again from %s, which failed here:)\n%s",
                      lua_tostring(co, -6), lua_tostring(co, -1),
                      luaL_optstring(co, -2, "?"));
      lua_replace(co, -7); /* over this task's own traceback */
      lua_pop(co, 3);
    }
    lua_pop(co, 1);
  }
  lua_pop(co, 1);
  lua_setfield(co, -2, "traceback");
  lua_settop(co, 1);
  return 1;
}

static const char *tb_or(lua_State *L, int idx) {
  const char *s = lua_tostring(L, idx);
  return s ? s : "stack traceback: (none)";
}

static int task_entry_k(lua_State *co, int status, lua_KContext ctx) {
  casync_task *t = lua_touserdata(co, 1);
  lua_Debug ar;
  (void)ctx;
  if (status == LUA_OK || status == LUA_YIELD) {
    t->outcome = OUT_OK;
    return lua_gettop(co) - (ENTRY_BODY - 1);
  }
  t->outcome = casync__error_is(co, -1, "cancelled") ? OUT_CANCELLED : OUT_FAILED;
  /* add where it was spawned to the traceback */
  casync__extras(co, 1);
  lua_getfield(co, -1, "traceback");
  lua_pushvalue(co, 2);
  casync__task_describe(co, t, 1);
  if (lua_isfunction(co, -2)) {
    lua_pushvalue(co, -2);
    lua_getinfo(co, ">S", &ar);
    lua_pushfstring(co, "%s\n(%s was spawned at %s:%d)",
                    tb_or(co, -3), lua_tostring(co, -1), ar.short_src,
                    t->spawn_line);
  } else
    lua_pushfstring(co, "%s\n(%s was spawned from C)", tb_or(co, -3),
                    lua_tostring(co, -1));
  lua_setfield(co, -5, "traceback");
  lua_pop(co, 4);
  return 1; /* the error value */
}

static int task_entry(lua_State *co) {
  int status = lua_pcallk(co, lua_gettop(co) - ENTRY_BODY, LUA_MULTRET, 3, 0,
                          task_entry_k);
  return task_entry_k(co, status, 0);
}

/* ------------------------------------------------------------ spawning */

/* Spawns the callable at fidx with the nargs values after it; pushes the
 * task.  nameidx (0 for none) names it.  Arguments must have been checked. */
casync_task *casync__spawn(lua_State *L, casync_ctx *lp, int fidx, int nargs,
                           int nameidx) {
  casync_task *t;
  lua_State *co;
  lua_Debug ar;
  int tidx, i;
  fidx = lua_absindex(L, fidx);
  if (nameidx) nameidx = lua_absindex(L, nameidx);
  luaL_checkstack(L, 8, NULL);
  t = lua_newuserdatauv(L, sizeof *t, 2);
  memset(t, 0, sizeof *t);
  t->ref = LUA_NOREF;
  luaL_setmetatable(L, CASYNC_TASK_MT);
  tidx = lua_gettop(L);
  /* a recycled coroutine, or a new one */
  co = NULL;
  casync__loop_push(L);
  if (lp->pool_len > 0) {
    lua_getiuservalue(L, -1, 2);
    lua_rawgeti(L, -1, lp->pool_len);
    lua_pushnil(L);
    lua_rawseti(L, -3, lp->pool_len--);
    co = lua_tothread(L, -1);
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else {
    co = lua_newthread(L);
    lua_replace(L, -2);
  }
  lua_setiuservalue(L, tidx, 1);
  t->co = co;
  t->loop = lp;
  t->id = ++lp->next_id;
  if (!lua_checkstack(co, nargs + 8)) luaL_error(L, "spawn: too many arguments");
  lua_pushcfunction(co, task_entry);
  lua_pushvalue(L, tidx);
  lua_xmove(L, co, 1);
  /* where it was spawned: the first Lua function calling (spawn, through a
   * C function or two like pcall or gather); none when only C called it */
  for (i = 1; i <= 3 && lua_getstack(L, i, &ar); i++) {
    lua_getinfo(L, "fl", &ar);
    if (ar.currentline > 0) {
      t->spawn_line = ar.currentline;
      break;
    }
    lua_pop(L, 1);
  }
  if (t->spawn_line > 0) lua_xmove(L, co, 1);
  else lua_pushnil(co);
  lua_pushcfunction(co, task_msgh);
  for (i = 0; i <= nargs; i++) lua_pushvalue(L, fidx + i);
  lua_xmove(L, co, nargs + 1);
  /* anchored while it lives: nobody has to hold it for it to finish */
  casync__loop_push(L);
  lua_getiuservalue(L, -1, 1);
  lua_pushvalue(L, tidx);
  t->ref = luaL_ref(L, -2);
  lua_pop(L, 2);
  if (nameidx && !lua_isnil(L, nameidx)) {
    casync__extras(L, tidx);
    lua_pushvalue(L, nameidx);
    lua_setfield(L, -2, "name");
    lua_pop(L, 1);
    t->flags |= TF_NAMED;
  }
  lp->live++;
  casync__enqueue(lp, t);
  return t;
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

static void later_fire(casync_ctx *lp, casync_tnode *n) {
  casync__enqueue(lp, container_of(n, casync_task, timer));
}

static int later_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)why;
  casync__enqueue(lp, t); /* ends cancelled without running */
  return 0;
}

static const casync_wait_kind later_wait = {"call_later", "call_later",
                                            later_cancel, 0};

/* casync.call_later(seconds, fn, ...) -> task: runs fn(...) as a task once
 * the time has passed (a timer callback, after the ready tasks); cancel the
 * task to call it off. */
static int fn_call_later(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  double s = casync__check_seconds(L, 1, 0);
  casync_task *t;
  casync__check_callable(L, 2);
  t = casync__spawn(L, lp, 2, lua_gettop(L) - 2, 0);
  /* take it off the ready queue: it waits in the timer heap instead */
  if (lp->qtail == t) {
    casync_task *p = lp->qhead;
    if (p == t) lp->qhead = lp->qtail = NULL;
    else {
      while (p->qnext != t) p = p->qnext;
      p->qnext = NULL;
      lp->qtail = p;
    }
    t->flags &= ~TF_QUEUED;
    if (!lp->qhead) uv_idle_stop(&lp->idle);
  }
  t->state = T_WAITING;
  t->wait = &later_wait;
  t->timer.fire = later_fire;
  casync__timer_add(lp, &t->timer, s);
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

static const casync_wait_kind join_wait = {"wait", "task:wait()", join_cancel,
                                           0};

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
  if (t->state != T_DONE)
    luaL_error(L, "%s: the task has not finished", fname);
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
      casync__loop_push(L);
      lua_getiuservalue(L, -1, 1);
      lua_pushvalue(L, 1);
      t->ref = luaL_ref(L, -2);
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

/* Collected: detach from the scheduler; report a failure nobody saw. */
static int meta_gc(lua_State *L) {
  casync_task *t = lua_touserdata(L, 1);
  if (t->loop && t->timer.list)
    casync__timer_remove(t->loop, &t->timer);
  if (t->state == T_DONE) casync__report_unobserved(L, t, 1);
  return 0;
}

void casync__task_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"spawn", fn_spawn}, {"current", fn_current},
    {"call_later", fn_call_later}, {NULL, NULL}};
  static const luaL_Reg methods[] = {
    {"wait", meth_wait}, {"cancel", meth_cancel}, {"done", meth_done},
    {"cancelled", meth_cancelled}, {"result", meth_result},
    {"error", meth_error}, {"add_done_callback", meth_add_done_callback},
    {"traceback", meth_traceback}, {"name", meth_name}, {"id", meth_id},
    {NULL, NULL}};
  casync__setfuncs(L, fns);
  luaL_newmetatable(L, CASYNC_TASK_MT);
  lua_newtable(L);
  casync__setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
