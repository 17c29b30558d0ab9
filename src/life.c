/* life.c: a task's life: spawning it (a recycled coroutine or a new one,
 * anchored in the context while it lives), its body (run under a
 * yieldable lua_pcallk, so when it fails its to-be-closed variables are
 * closed with yields allowed and the coroutine ends normally and can be
 * reused), its end (results kept, observers told, done callbacks
 * queued), and the report of a failure nobody observed.  sched.c resumes
 * it in between.
 */
#include <stdio.h>
#include <string.h>
#include "scheduler.h"

#define POOL_MAX 1024 /* coroutines kept for reuse */

/* Coroutine stack of a task: [1 task][2 spawner][3 msgh][4 body][5.. args] */
#define ENTRY_BODY 4

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

/* Drops the traceback's last lines (on top of co) that are "[C]: in ?":
 * casync's own entry frames under the task's function (task_entry, an
 * HTTP request's body), which say nothing to the reader. */
static void trim_entry_frames(lua_State *co) {
  static const char tail[] = "\n\t[C]: in ?";
  size_t len, n = sizeof tail - 1, end;
  const char *tb = lua_tolstring(co, -1, &len);
  end = len;
  while (end >= n && memcmp(tb + end - n, tail, n) == 0) end -= n;
  if (end < len) {
    lua_pushlstring(co, tb, end);
    lua_replace(co, -2);
  }
}

/* Message handler of the body: records where it failed (while the stack
 * is still there) and hands the error value on unchanged. */
int casync__task_msgh(lua_State *co) {
  casync_ctx *lp = casync__ctx_get(co);
  casync_task *t = lp ? lp->current : NULL;
  if (!t || t->co != co) return 1;
  lua_settop(co, 1);
  luaL_checkstack(co, 8, NULL);
  casync__push_task(co, lp, t);
  casync__extras(co, -1);
  /* raised again by casync (a scope that caught it): where it failed was
   * recorded the first time */
  if (lua_getfield(co, -1, "reraised") != LUA_TNIL && lua_rawequal(co, -1, 1)) {
    lua_pushnil(co);
    lua_setfield(co, -3, "reraised");
    lua_settop(co, 1);
    return 1;
  }
  lua_pop(co, 1);
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
  trim_entry_frames(co);
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
  t->outcome =
      casync__error_is(co, -1, "cancelled") ? OUT_CANCELLED : OUT_FAILED;
  /* add where it was spawned to the traceback */
  casync__extras(co, 1);
  lua_getfield(co, -1, "traceback");
  lua_pushvalue(co, 2);
  casync__task_describe(co, t, 1);
  if (lua_isfunction(co, -2)) {
    lua_pushvalue(co, -2);
    lua_getinfo(co, ">S", &ar);
    lua_pushfstring(co, "%s\n(%s was spawned at %s:%d)", tb_or(co, -3),
                    lua_tostring(co, -1), ar.short_src, t->spawn_line);
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

/* Anchors the task at tidx in CTX_TASKS (the context userdata at cidx):
 * alive while it runs, whoever holds it. */
void casync__task_anchor(lua_State *L, casync_ctx *lp, int cidx, casync_task *t,
                         int tidx) {
  tidx = lua_absindex(L, tidx);
  lua_getiuservalue(L, cidx, CTX_TASKS);
  lua_pushvalue(L, tidx);
  t->ref = casync__slot_new(lp);
  lua_rawseti(L, -2, t->ref);
  lua_pop(L, 1);
}

/* Lets task t go from CTX_TASKS (the context userdata at cidx). */
void casync__task_unanchor(lua_State *L, casync_ctx *lp, int cidx,
                           casync_task *t) {
  lua_getiuservalue(L, cidx, CTX_TASKS);
  lua_pushnil(L);
  lua_rawseti(L, -2, t->ref);
  lua_pop(L, 1);
  casync__slot_free(lp, t->ref);
  t->ref = LUA_NOREF;
}

/* Makes a task of the callable at fidx with the nargs values after it,
 * not yet scheduled; pushes it.  nameidx (0 for none) names it. */
static casync_task *make_task(lua_State *L, casync_ctx *lp, int fidx, int nargs,
                              int nameidx, int from_c) {
  casync_task *t;
  lua_State *co;
  lua_Debug ar;
  int tidx, cidx, i;
  fidx = lua_absindex(L, fidx);
  if (nameidx) nameidx = lua_absindex(L, nameidx);
  luaL_checkstack(L, 8, NULL);
  casync__ctx_push_lp(L, lp); /* the context's user values, at cidx */
  cidx = lua_gettop(L);
  t = lua_newuserdatauv(L, sizeof *t, 2);
  memset(t, 0, sizeof *t);
  t->ref = LUA_NOREF;
  lua_getiuservalue(L, cidx, CTX_TASK_MT);
  lua_setmetatable(L, -2);
  tidx = lua_gettop(L);
  /* a recycled coroutine, or a new one */
  if (lp->pool_len > 0) {
    lua_getiuservalue(L, cidx, CTX_COROS);
    lua_rawgeti(L, -1, lp->pool_len);
    lua_pushnil(L);
    lua_rawseti(L, -3, lp->pool_len--);
    co = lua_tothread(L, -1);
    lua_remove(L, -2);
  } else co = lua_newthread(L);
  lua_setiuservalue(L, tidx, 1);
  t->co = co;
  t->loop = lp;
  t->id = ++lp->next_id;
  if (!lua_checkstack(co, nargs + 8))
    luaL_error(L, "spawn: too many arguments");
  lua_pushcfunction(co, task_entry);
  lua_pushvalue(L, tidx);
  lua_xmove(L, co, 1);
  /* where it was spawned: the first Lua function calling (spawn, through a
   * C function or two like pcall or gather); none when only C called it */
  for (i = 1; !from_c && i <= 3 && lua_getstack(L, i, &ar); i++) {
    lua_getinfo(L, "fl", &ar);
    if (ar.currentline > 0) {
      t->spawn_line = ar.currentline;
      break;
    }
    lua_pop(L, 1);
  }
  if (t->spawn_line > 0) lua_xmove(L, co, 1);
  else lua_pushnil(co);
  lua_pushcfunction(co, casync__task_msgh);
  for (i = 0; i <= nargs; i++) lua_pushvalue(L, fidx + i);
  lua_xmove(L, co, nargs + 1);
  /* anchored while it lives: nobody has to hold it for it to finish */
  casync__task_anchor(L, lp, cidx, t, tidx);
  lua_remove(L, cidx); /* the task, on top */
  tidx--;
  if (nameidx && !lua_isnil(L, nameidx)) {
    casync__extras(L, tidx);
    lua_pushvalue(L, nameidx);
    lua_setfield(L, -2, "name");
    lua_pop(L, 1);
    t->flags |= TF_NAMED;
  }
  lp->live++;
  { /* the spawner's task-local context, shared until one of them writes */
    casync_task *by = lp->current;
    t->parent_id = by ? by->id : 0;
    if (by ? (by->flags & (TF_CONTEXT | TF_LAZY_CONTEXT)) != 0
           : lp->root_context)
      casync__context_inherit(L, by, t, tidx);
    if (lp->trace) casync__trace_spawn(L, lp, t, tidx, by);
  }
  return t;
}

/* Spawns the callable at fidx with the nargs values after it (checked by
 * the caller): it runs soon.  Pushes the task.  nameidx (0 for none) is
 * the index of its name. */
casync_task *casync__spawn(lua_State *L, casync_ctx *lp, int fidx, int nargs,
                           int nameidx) {
  casync_task *t = make_task(L, lp, fidx, nargs, nameidx, 0);
  casync__enqueue(lp, t);
  return t;
}

/* The same for a task C spawns for what a callback brought (a connection,
 * a request): no Lua code spawned it, so no spawner's line is looked for
 * (the Lua frames below a callback are not where it came from). */
casync_task *casync__spawn_c(lua_State *L, casync_ctx *lp, int fidx,
                             int nargs) {
  casync_task *t = make_task(L, lp, fidx, nargs, 0, 1);
  casync__enqueue(lp, t);
  return t;
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

/* The same, but the task starts once `seconds` have passed: until then it
 * waits on its timer (cancelling it calls the start off). */
casync_task *casync__spawn_later(lua_State *L, casync_ctx *lp, int fidx,
                                 int nargs, double seconds) {
  casync_task *t = make_task(L, lp, fidx, nargs, 0, 0);
  t->state = T_WAITING;
  t->wait = &later_wait;
  t->timer.fire = later_fire;
  casync__timer_add(lp, &t->timer, seconds);
  return t;
}

/* The same, but the task starts parked in a wait of `kind` on obj (an
 * operation already under way for it, such as a thread job): it first runs
 * when that wait wakes it, so it costs no turn until then, and a
 * cancellation before that reaches the wait's cancel hook like any other. */
casync_task *casync__spawn_parked(lua_State *L, casync_ctx *lp, int fidx,
                                  int nargs, const casync_wait_kind *kind,
                                  void *obj) {
  casync_task *t = make_task(L, lp, fidx, nargs, 0, 0);
  t->state = T_WAITING;
  t->wait = kind;
  t->wait_obj = obj;
  t->wake = WAKE_OK;
  if ((kind->flags & CASYNC_WK_EXTERNAL) || lp->trace || lp->debug)
    casync__park_slow(L, t, kind, 0);
  return t;
}

/* ----------------------------------------------------------- reporting */

/* The registry key of the handler casync.on_unobserved set. */
static const char unobserved_key = 0;

/* casync.on_unobserved(fn | nil) -> the previous handler: fn(report)
 * hears of every failure that would be printed as lost (a task that failed
 * and nothing waited for, a done callback that failed) instead of stderr;
 * report = {task =, error =, traceback =, message =}.  nil: stderr again. */
int casync__fn_on_unobserved(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) casync__check_callable(L, 1);
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &unobserved_key);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &unobserved_key);
  return 1;
}

/* Hands a report to the casync.on_unobserved handler: the task at tidx,
 * the error at eidx, traceback tb (or NULL), the message msg that would
 * be printed.  Returns 0 when there is none, or it failed (then say so):
 * the caller prints the message. */
static int hand_over(lua_State *L, int tidx, int eidx, const char *tb,
                     const char *msg) {
  int top = lua_gettop(L);
  luaL_checkstack(L, 6, NULL);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &unobserved_key) == LUA_TNIL) {
    lua_settop(L, top);
    return 0;
  }
  lua_createtable(L, 0, 4); /* handler report */
  lua_pushvalue(L, tidx);
  lua_setfield(L, -2, "task");
  lua_pushvalue(L, eidx);
  lua_setfield(L, -2, "error");
  if (tb) {
    lua_pushstring(L, tb);
    lua_setfield(L, -2, "traceback");
  }
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "casync: the on_unobserved handler failed: %s\n",
            casync__tostring(L, -1));
    fflush(stderr);
    lua_settop(L, top);
    return 0;
  }
  lua_settop(L, top);
  return 1;
}

/* Says "<what> failed<how>: <error>" of the task at tidx (its error at
 * eidx) with its traceback: to the on_unobserved handler, else on stderr.
 * Leaves what it pushed on the stack. */
static void say_failed(lua_State *L, int tidx, int eidx, const char *what,
                       const char *how) {
  const char *tb = NULL;
  luaL_checkstack(L, 8, NULL);
  if (lua_getiuservalue(L, tidx, 2) == LUA_TTABLE &&
      lua_getfield(L, -1, "traceback") == LUA_TSTRING)
    tb = lua_tostring(L, -1);
  lua_pushfstring(L, "%s failed%s: %s", what, how, casync__tostring(L, eidx));
  if (!hand_over(L, tidx, eidx, tb, lua_tostring(L, -1))) {
    fprintf(stderr, "casync: %s\n%s\n", lua_tostring(L, -1),
            tb ? tb : "(no traceback)");
    fflush(stderr);
  }
}

/* Reports the failure of task t (userdata at tidx), once: to the
 * on_unobserved handler, else on stderr. */
void casync__report_unobserved(lua_State *L, casync_task *t, int tidx) {
  int top = lua_gettop(L);
  if (t->flags & (TF_OBSERVED | TF_REPORTED) || t->outcome != OUT_FAILED)
    return;
  t->flags |= TF_REPORTED;
  tidx = lua_absindex(L, tidx);
  lua_getiuservalue(L, tidx, 1);
  casync__task_describe(L, t, tidx);
  say_failed(L, tidx, top + 1, lua_tostring(L, -1),
             " and nothing waited for it");
  lua_settop(L, top);
}

/* Reports now the failure of running task t, the error at eidx of L (t's
 * coroutine), as `what` failed, and marks it observed (not reported again
 * when collected): for failures a caller has handled without waiting,
 * such as an HTTP handler's, answered 500. */
void casync__report_failure(lua_State *L, casync_task *t, int eidx,
                            const char *what) {
  int top = lua_gettop(L);
  eidx = lua_absindex(L, eidx);
  t->flags |= TF_OBSERVED;
  casync__push_task(L, casync__ctx_get(L), t);
  say_failed(L, top + 1, eidx, what, "");
  lua_settop(L, top);
}

/* ------------------------------------------------------------- ending */

/* Calls the done callbacks of ended task t (userdata at top of L). */
void casync__run_callbacks(lua_State *L, casync_ctx *lp, casync_task *t) {
  int i, n, tidx = lua_gettop(L), cbs;
  lua_getiuservalue(L, tidx, 2);
  lua_getfield(L, -1, "callbacks");
  lua_pushnil(L);
  lua_setfield(L, -3, "callbacks");
  t->flags &= ~TF_HAS_CALLBACKS;
  cbs = lua_gettop(L);
  n = lua_istable(L, cbs) ? (int)lua_rawlen(L, cbs) : 0;
  for (i = 1; i <= n; i++) {
    lua_pushcfunction(L, casync__traceback_msgh);
    lua_rawgeti(L, cbs, i);
    lua_pushvalue(L, tidx);
    if (lua_pcall(L, 1, 0, -3) != LUA_OK) {
      int eidx = lua_gettop(L);
      const char *err = casync__tostring(L, -1);
      casync__task_describe(L, t, tidx);
      lua_pushfstring(L, "a done callback of %s failed: %s",
                      lua_tostring(L, -1), err);
      if (!hand_over(L, tidx, eidx, NULL, lua_tostring(L, -1))) {
        fprintf(stderr, "casync: %s\n", lua_tostring(L, -1));
        fflush(stderr);
      }
      lua_settop(L, eidx - 1);
    }
    lua_pop(L, 1); /* msgh */
  }
  lua_settop(L, tidx);
  /* the callbacks kept it anchored; it may go now, unless a callback
   * added another one (then it is queued again and stays anchored) */
  if (t->ref != LUA_NOREF && !(t->flags & TF_HAS_CALLBACKS)) {
    casync__ctx_push_lp(L, lp);
    casync__task_unanchor(L, lp, lua_gettop(L), t);
    lua_pop(L, 1);
  }
}

/* Ends task t.  Its coroutine returned (status LUA_OK, with task_entry's
 * outcome and nres values on top) or died outside the entry's pcall.  L is
 * the main thread; the stack is left as found. */
void casync__finish(lua_State *L, casync_ctx *lp, casync_task *t, int status,
                    int nres) {
  lua_State *co = t->co;
  int tidx, cidx, i;
  casync_obs *o;
  /* the coroutine may be freed from here on: not while the watchdog
   * thread is setting a hook on it */
  if (lp->wd) casync__watchdog_gate(lp);
  luaL_checkstack(L, nres + 8, NULL);
  casync__ctx_push_lp(L, lp); /* the context's user values, at cidx */
  cidx = lua_gettop(L);
  lua_getiuservalue(L, cidx, CTX_TASKS);
  lua_rawgeti(L, -1, t->ref);
  lua_remove(L, -2);
  tidx = lua_gettop(L);
  if (status != LUA_OK) { /* failed outside the body's pcall */
    t->outcome = OUT_FAILED;
    casync__extras(L, tidx);
    luaL_traceback(L, co, NULL, 0);
    lua_setfield(L, -2, "traceback");
    lua_pop(L, 1);
    nres = 1;
  }
  if (t->outcome == OUT_OK) {
    t->nres = nres;
    if (nres == 0) lua_pushnil(L);
    else if (nres == 1) lua_xmove(co, L, 1);
    else {
      lua_createtable(L, nres, 0);
      lua_xmove(co, L, nres);
      for (i = nres; i >= 1; i--) lua_rawseti(L, tidx + 1, i);
    }
  } else {
    t->nres = 1;
    lua_xmove(co, L, 1); /* the error value */
  }
  /* the coroutine, replaced by the outcome, goes back to the pool */
  lua_getiuservalue(L, tidx, 1);
  lua_insert(L, -2);
  lua_setiuservalue(L, tidx, 1);
  if (status == LUA_OK && lp->pool_len < POOL_MAX) {
    /* it returned normally (the body ran under a pcall): its stack only
     * needs emptying.  lua_resetthread would also shrink the stack to its
     * minimum, which the next task grows again. */
    lua_settop(co, 0);
    lua_getiuservalue(L, cidx, CTX_COROS);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, ++lp->pool_len);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (t->cscope) casync__scope_task_ended(L, lp, t, tidx);
  if (lp->trace) casync__trace_end(lp, t);
  t->co = NULL;
  t->state = T_DONE;
  t->wait = NULL;
  t->wait_obj = NULL;
  lp->live--;
  if (t->outcome == OUT_FAILED && !(t->flags & TF_OBSERVED)) {
    /* remember it until observed or reported */
    lua_getiuservalue(L, cidx, CTX_FAILED);
    lua_pushvalue(L, tidx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    /* reported when collected unobserved: by its sentinel (task.c) */
    casync__extras(L, tidx);
    lua_newuserdatauv(L, 0, 1);
    luaL_setmetatable(L, CASYNC_FAILURE_MT);
    lua_pushvalue(L, tidx);
    lua_setiuservalue(L, -2, 1);
    lua_setfield(L, -2, "unobserved");
    lua_pop(L, 1);
  }
  /* wake who waits, first come first served; they only mark tasks ready
   * or cancel them (and may unlink other observers of t) */
  while ((o = t->observers) != NULL) {
    casync__obs_unlink(t, o);
    o->notify(lp, o, t);
  }
  if (t->flags & TF_HAS_CALLBACKS) casync__enqueue(lp, t); /* stays anchored */
  else {
    casync__task_unanchor(L, lp, cidx, t);
  }
  /* main ended: the tasks still ready do not run before run has cancelled
   * them; setting the queue aside ends this drain */
  if ((t->flags & TF_MAIN) && lp->running == 1) {
    lp->held_head = lp->qhead;
    lp->held_tail = lp->qtail;
    lp->qhead = lp->qtail = NULL;
  }
  lua_settop(L, cidx - 1);
}

/* A task cancelled before it ever ran ends without running its body. */
void casync__finish_unstarted(lua_State *L, casync_ctx *lp, casync_task *t) {
  lua_State *co = t->co;
  int top = lua_gettop(L);
  casync__push_task(L, lp, t);
  lua_getiuservalue(L, -1, 2);
  lua_getfield(L, -1, "cancel_error");
  lua_settop(co, 0);
  lua_xmove(L, co, 1);
  lua_settop(L, top);
  t->outcome = OUT_CANCELLED;
  casync__finish(L, lp, t, LUA_OK, 1);
}

/* Message handler that adds a traceback to string errors (callbacks). */
int casync__traceback_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg) luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Raises again the error on top of L, which casync caught in task t with
 * casync__task_msgh as the message handler: its traceback stays the one
 * recorded where it was first raised. */
int casync__reraise(lua_State *L, casync_task *t) {
  luaL_checkstack(L, 4, NULL);
  casync__push_task(L, t->loop, t);
  casync__extras(L, -1);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "reraised");
  lua_pop(L, 2);
  return lua_error(L);
}
