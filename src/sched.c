/* sched.c: the ready queue, the one place tasks are resumed, and how a task
 * ends: results stored, observers notified, done callbacks queued.
 *
 * The queue is drained first-in first-out in the loop's check phase (the
 * one fixed point).  Tasks made ready during a drain run in the same drain,
 * which goes on until the queue is empty or a millisecond has passed; then
 * the loop polls for I/O (with a zero timeout while tasks are still ready).
 * So the OS is not asked anything between task switches.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

#define DRAIN_BUDGET_NS 1000000u /* poll I/O at least every millisecond */
#define POOL_MAX 1024            /* coroutines kept for reuse */

static void on_idle(uv_idle_t *h) { (void)h; }

/* Appends t to the ready queue. */
void casync__enqueue(casync_ctx *lp, casync_task *t) {
  if (t->state != T_DONE) t->state = T_READY;
  if (t->flags & TF_QUEUED) return;
  t->flags |= TF_QUEUED;
  t->qnext = NULL;
  if (lp->qtail) lp->qtail->qnext = t;
  else {
    lp->qhead = t;
    uv_idle_start(&lp->idle, on_idle); /* keeps poll from blocking */
  }
  lp->qtail = t;
}

/* Ends t's wait: it will resume with `wake` (WAKE_OK, _CANCEL, _TIMEOUT);
 * its deadline, if any, is called off. */
void casync__wake(casync_ctx *lp, casync_task *t, int wake) {
  if (t->timer.list) casync__timer_remove(lp, &t->timer);
  t->wake = (unsigned char)wake;
  casync__enqueue(lp, t);
}

/* Pushes the task userdata of a live (anchored) task. */
int casync__push_task(lua_State *L, casync_ctx *lp, casync_task *t) {
  casync__loop_push(L);
  lua_getiuservalue(L, -1, 1);
  lua_rawgeti(L, -1, t->ref);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

/* Requests the cancellation of t; the message (a string or nil) is at
 * msgidx, or 0 for the default.  Runs no Lua code of the user. */
void casync__cancel(lua_State *L, casync_ctx *lp, casync_task *t,
                    int msgidx) {
  if (t->state == T_DONE) return;
  if (!(t->flags & TF_CANCEL_PENDING)) {
    int top = lua_gettop(L);
    if (msgidx) msgidx = lua_absindex(L, msgidx);
    luaL_checkstack(L, 6, NULL);
    casync__push_task(L, lp, t);
    casync__extras(L, -1);
    if (msgidx && !lua_isnil(L, msgidx))
      casync__error_push(L, "cancelled", NULL, "%s", lua_tostring(L, msgidx));
    else
      casync__error_push(L, "cancelled", NULL, "task cancelled");
    lua_setfield(L, -2, "cancel_error");
    lua_settop(L, top);
    t->flags |= TF_CANCEL_PENDING;
  }
  /* A task that waits is woken now (or, in a combinator, once the tasks it
   * cancels in turn have unwound).  A ready or running one raises at its
   * next suspension point, so a value it was already handed is not lost. */
  if (t->state == T_WAITING && t->wait->cancel) {
    if (t->timer.list) casync__timer_remove(lp, &t->timer);
    if (t->wait->cancel(lp, t, WAKE_CANCEL)) casync__wake(lp, t, WAKE_CANCEL);
  }
}

/* ----------------------------------------------------------- observers */

/* A task's observers form a circular list, oldest first (its head), so
 * they are told in the order they came; next is NULL when not linked. */
void casync__obs_link(casync_task *t, casync_obs *o) {
  casync_obs *head = t->observers;
  if (!head) {
    o->next = o->prev = o;
    t->observers = o;
    return;
  }
  o->next = head;
  o->prev = head->prev;
  head->prev->next = o;
  head->prev = o;
}

void casync__obs_unlink(casync_task *t, casync_obs *o) {
  if (!o->next) return; /* not linked */
  if (o->next == o) t->observers = NULL;
  else {
    o->prev->next = o->next;
    o->next->prev = o->prev;
    if (t->observers == o) t->observers = o->next;
  }
  o->next = o->prev = NULL;
}

/* ----------------------------------------------------------- reporting */

/* Prints the failure of task t (userdata at tidx) to stderr, once. */
void casync__report_unobserved(lua_State *L, casync_task *t, int tidx) {
  const char *err, *tb = NULL;
  int top = lua_gettop(L);
  if (t->flags & (TF_OBSERVED | TF_REPORTED) || t->outcome != OUT_FAILED) return;
  t->flags |= TF_REPORTED;
  tidx = lua_absindex(L, tidx);
  lua_getiuservalue(L, tidx, 1);
  err = casync__tostring(L, -1);
  if (lua_getiuservalue(L, tidx, 2) == LUA_TTABLE &&
      lua_getfield(L, -1, "traceback") == LUA_TSTRING)
    tb = lua_tostring(L, -1);
  casync__task_describe(L, t, tidx);
  fprintf(stderr, "casync: %s failed and nothing waited for it: %s\n%s\n",
          lua_tostring(L, -1), err, tb ? tb : "(no traceback)");
  fflush(stderr);
  lua_settop(L, top);
}

/* ------------------------------------------------------------- ending */

/* Calls the done callbacks of ended task t (userdata at top of L). */
static void run_callbacks(lua_State *L, casync_ctx *lp, casync_task *t) {
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
      const char *err = casync__tostring(L, -1);
      casync__task_describe(L, t, tidx);
      fprintf(stderr, "casync: a done callback of %s failed: %s\n",
              lua_tostring(L, -1), err);
      fflush(stderr);
      lua_pop(L, 3);
    }
    lua_pop(L, 1); /* msgh */
  }
  lua_settop(L, tidx);
  /* the callbacks kept it anchored; it may go now, unless a callback
   * added another one (then it is queued again and stays anchored) */
  if (t->ref != LUA_NOREF && !(t->flags & TF_HAS_CALLBACKS)) {
    casync__loop_push(L);
    lua_getiuservalue(L, -1, 1);
    luaL_unref(L, -1, t->ref);
    t->ref = LUA_NOREF;
    lua_pop(L, 2);
  }
}

/* Ends task t.  Its coroutine returned (status LUA_OK, with task_entry's
 * outcome and nres values on top) or died outside the entry's pcall.  L is
 * the main thread; the stack is left as found. */
static void finish(lua_State *L, casync_ctx *lp, casync_task *t, int status,
                   int nres) {
  lua_State *co = t->co;
  int tidx, i;
  casync_obs *o;
  /* the coroutine may be freed from here on: not while the watchdog
   * thread is setting a hook on it */
  if (lp->wd) casync__watchdog_gate(lp);
  luaL_checkstack(L, nres + 8, NULL);
  casync__push_task(L, lp, t);
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
  if (status == LUA_OK && lp->pool_len < POOL_MAX &&
      lua_resetthread(co) == LUA_OK) {
    casync__loop_push(L);
    lua_getiuservalue(L, -1, 2);
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, ++lp->pool_len);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  t->co = NULL;
  t->state = T_DONE;
  t->wait = NULL;
  t->wait_obj = NULL;
  lp->live--;
  if (t->outcome == OUT_FAILED && !(t->flags & TF_OBSERVED)) {
    casync__loop_push(L); /* remember it until observed or reported */
    lua_getiuservalue(L, -1, 3);
    lua_pushvalue(L, tidx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 2);
  }
  /* wake who waits, first come first served; they only mark tasks ready
   * or cancel them (and may unlink other observers of t) */
  while ((o = t->observers) != NULL) {
    casync__obs_unlink(t, o);
    o->notify(lp, o, t);
  }
  if (t->flags & TF_HAS_CALLBACKS) casync__enqueue(lp, t); /* stays anchored */
  else {
    casync__loop_push(L);
    lua_getiuservalue(L, -1, 1);
    luaL_unref(L, -1, t->ref);
    t->ref = LUA_NOREF;
    lua_pop(L, 2);
  }
  /* main ended: the tasks still ready do not run before run has cancelled
   * them; setting the queue aside ends this drain */
  if ((t->flags & TF_MAIN) && lp->running == 1) {
    lp->held_head = lp->qhead;
    lp->held_tail = lp->qtail;
    lp->qhead = lp->qtail = NULL;
  }
  lua_settop(L, tidx - 1);
}

/* A task cancelled before it ever ran ends without running its body. */
static void finish_unstarted(lua_State *L, casync_ctx *lp, casync_task *t) {
  lua_State *co = t->co;
  int top = lua_gettop(L);
  casync__push_task(L, lp, t);
  lua_getiuservalue(L, -1, 2);
  lua_getfield(L, -1, "cancel_error");
  lua_settop(co, 0);
  lua_xmove(L, co, 1);
  lua_settop(L, top);
  t->outcome = OUT_CANCELLED;
  finish(L, lp, t, LUA_OK, 1);
}

/* The one place a task's coroutine is resumed. */
static void resume(lua_State *L, casync_ctx *lp, casync_task *t) {
  lua_State *co = t->co;
  int nres = 0, status, nargs = 0;
  if (!(t->flags & TF_STARTED)) {
    t->flags |= TF_STARTED;
    if (t->flags & TF_CANCEL_PENDING) {
      finish_unstarted(L, lp, t);
      return;
    }
    nargs = lua_gettop(co) - 1;
  }
  lp->current = t;
  t->state = T_RUNNING;
  CASYNC_RUN_BEGIN(lp, co); /* for the watchdog (watchdog.c) */
  status = lua_resume(co, L, nargs, &nres);
  CASYNC_RUN_END(lp);
  lp->current = NULL;
  if (status == LUA_YIELD) {
    if (t->state == T_RUNNING) { /* a plain coroutine.yield(): requeue */
      lua_pop(co, nres);
      casync__enqueue(lp, t);
    }
    return;
  }
  finish(L, lp, t, status, nres);
}

/* Drains the ready queue (see the file comment).  Runs protected. */
static int drain(lua_State *L) {
  casync_ctx *lp = lua_touserdata(L, 1);
  uint64_t start = uv_hrtime();
  unsigned n = 0;
  casync_task *t;
  lua_settop(L, 0);
  while ((t = lp->qhead) != NULL) {
    lp->qhead = t->qnext;
    if (!lp->qhead) lp->qtail = NULL;
    t->flags &= ~TF_QUEUED;
    if (t->state == T_DONE) {
      casync__push_task(L, lp, t);
      run_callbacks(L, lp, t);
      lua_settop(L, 0);
    } else
      resume(L, lp, t);
    if ((++n & 63) == 0 && uv_hrtime() - start > DRAIN_BUDGET_NS) break;
  }
  return 0;
}

void casync__drain(casync_ctx *lp) {
  lua_State *L = lp->L;
  int top = lua_gettop(L), status;
  if (!lp->qhead) {
    uv_idle_stop(&lp->idle);
    return;
  }
  /* NOTE: only a memory error can escape; it must not unwind libuv. */
  lua_pushcfunction(L, drain);
  lua_pushlightuserdata(L, lp);
  lp->draining = 1;
  status = lua_pcall(L, 1, 0, 0);
  lp->draining = 0;
  if (status != LUA_OK) {
    lp->current = NULL;
    fprintf(stderr, "casync: scheduler error: %s\n", lua_tostring(L, -1));
  }
  lua_settop(L, top);
  if (!lp->qhead) uv_idle_stop(&lp->idle);
}

/* Puts back the tasks set aside when the main task ended, behind any made
 * ready since; run cancels them all next. */
void casync__unhold(casync_ctx *lp) {
  if (!lp->held_head) return;
  if (lp->qtail) lp->qtail->qnext = lp->held_head;
  else {
    lp->qhead = lp->held_head;
    uv_idle_start(&lp->idle, on_idle);
  }
  lp->qtail = lp->held_tail;
  lp->held_head = lp->held_tail = NULL;
}

/* Message handler that adds a traceback to string errors (callbacks). */
int casync__traceback_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg) luaL_traceback(L, L, msg, 1);
  return 1;
}
