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
#include "scheduler.h"

#define DRAIN_BUDGET_NS 1000000u /* poll I/O at least every millisecond */

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
  if (t->flags & TF_EXTERNAL) {
    t->flags &= ~TF_EXTERNAL;
    lp->external--;
  }
  if (lp->trace) casync__trace_wake(lp, t);
  t->wake = (unsigned char)wake;
  casync__enqueue(lp, t);
}

/* Pushes the task userdata of a live (anchored) task. */
int casync__push_task(lua_State *L, casync_ctx *lp, casync_task *t) {
  casync__ctx_push_lp(L, lp);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_rawgeti(L, -1, t->ref);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

/* Requests the cancellation of t; the message (a string or nil) is at
 * msgidx, or 0 for the default.  Runs no Lua code of the user. */
void casync__cancel(lua_State *L, casync_ctx *lp, casync_task *t, int msgidx) {
  if (t->state == T_DONE) return;
  if (!(t->flags & TF_CANCEL_PENDING)) {
    int top = lua_gettop(L);
    if (msgidx) msgidx = lua_absindex(L, msgidx);
    luaL_checkstack(L, 6, NULL);
    casync__push_task(L, lp, t);
    casync__extras(L, -1);
    if (msgidx && !lua_isnil(L, msgidx))
      casync__error_push(L, "cancelled", NULL, "%s", lua_tostring(L, msgidx));
    else casync__error_push(L, "cancelled", NULL, "task cancelled");
    lua_setfield(L, -2, "cancel_error");
    lua_settop(L, top);
    t->flags |= TF_CANCEL_PENDING;
  }
  /* A task that waits is woken now (or, in a combinator, once the tasks it
   * cancels in turn have unwound).  A ready or running one raises at its
   * next suspension point, so a value it was already handed is not lost. */
  if (!t->cscope || !casync__cs_shielded(t)) casync__interrupt(lp, t);
}

/* Cuts t's wait short with its cancellation, if it waits in a wait that
 * can be cut short (a combinator's wakes it itself once its tasks have
 * unwound). */
void casync__interrupt(casync_ctx *lp, casync_task *t) {
  if (t->state != T_WAITING || !t->wait->cancel) return;
  if (t->timer.list) casync__timer_remove(lp, &t->timer);
  if (t->wait->cancel(lp, t, WAKE_CANCEL)) casync__wake(lp, t, WAKE_CANCEL);
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

/* Waiting task t's coroutine was closed from outside (coroutine.close):
 * it leaves its wait as a cancelled task does, and ends when resumed. */
void casync__closed_outside(casync_task *t) {
  casync_ctx *lp = t->loop;
  if (t->state != T_WAITING) return;
  if (t->timer.list) casync__timer_remove(lp, &t->timer);
  if (!t->wait->cancel || t->wait->cancel(lp, t, WAKE_CANCEL))
    casync__wake(lp, t, WAKE_CANCEL);
}

/* Ends started task t whose coroutine was closed from outside: cancelled,
 * with an error saying so (its stack is gone). */
static void finish_closed(lua_State *L, casync_ctx *lp, casync_task *t) {
  lua_State *co = t->co;
  lua_settop(co, 0);
  casync__error_push(co, "cancelled", NULL,
                     "the task's coroutine was "
                     "closed from outside (coroutine.close)");
  t->outcome = OUT_CANCELLED;
  casync__finish(L, lp, t, LUA_OK, 1);
}

/* A task that has run longer than the slice without waiting is yielded
 * at its next instruction that can yield (casync.run's preempt option). */
static void preempt_hook(lua_State *co, lua_Debug *ar) {
  casync_ctx *lp = casync__ctx_get(co);
  (void)ar;
  if (lp && lp->preempt_ns &&
      casync__now_ns(lp) - lp->run_start > lp->preempt_ns &&
      lua_isyieldable(co)) {
    lp->slice_over = 1; /* the drain ends: timers and I/O get their turn */
    lua_yield(co, 0);   /* back in resume as a plain yield: requeued */
  }
}

#define PREEMPT_COUNT 1000 /* instructions between looks at the clock */

static void run_begin(casync_ctx *lp, lua_State *co) {
  lp->run_start = casync__now_ns(lp);
  if (lp->preempt_ns && lua_gethook(co) == NULL) /* the program's stays */
    lua_sethook(co, preempt_hook, LUA_MASKCOUNT, PREEMPT_COUNT);
  else if (!lp->preempt_ns && lua_gethook(co) == preempt_hook)
    lua_sethook(co, NULL, 0, 0); /* left on a recycled coroutine */
}

/* The one place a task's coroutine is resumed. */
static inline void resume(lua_State *L, casync_ctx *lp, casync_task *t) {
  lua_State *co = t->co;
  int nres = 0, status, nargs = 0;
  if (!(t->flags & TF_STARTED)) {
    t->flags |= TF_STARTED;
    /* cancelled before it ran: it ends so, unless it was spawned parked
     * (casync__spawn_parked) and its wait already handed it something */
    if ((t->flags & TF_CANCEL_PENDING) &&
        !(t->wake == WAKE_OK && t->wait &&
          (t->wait->flags & CASYNC_WK_KEEPS))) {
      casync__finish_unstarted(L, lp, t);
      return;
    }
    nargs = lua_gettop(co) - 1;
  } else if (lua_status(co) != LUA_YIELD) {
    finish_closed(L, lp, t);
    return;
  }
  lp->current = t;
  t->state = T_RUNNING;
  if (lp->observing) run_begin(lp, co);
  CASYNC_RUN_BEGIN(lp, co); /* for the watchdog (watchdog.c) */
  status = lua_resume(co, L, nargs, &nres);
  CASYNC_RUN_END(lp);
  lp->current = NULL;
  if (lp->observing) {
    if (lp->trace) casync__trace_run(lp, t, lp->run_start);
    if (lp->debug) t->cpu_ns += casync__now_ns(lp) - lp->run_start;
  }
  if (status == LUA_YIELD) {
    if (t->state == T_RUNNING) { /* a plain coroutine.yield(): requeue */
      lua_pop(co, nres);
      casync__enqueue(lp, t);
    }
    return;
  }
  casync__finish(L, lp, t, status, nres);
}

static inline void run_one(lua_State *L, casync_ctx *lp, casync_task *t) {
  t->flags &= ~TF_QUEUED;
  if (t->state == T_DONE) {
    casync__push_task(L, lp, t);
    casync__run_callbacks(L, lp, t);
    lua_settop(L, 0);
  } else resume(L, lp, t);
}

static uint64_t seed_next(casync_ctx *lp) {
  uint64_t x = lp->seed_rng; /* xorshift64*, from the run's seed */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  lp->seed_rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Seeded schedules: the tasks ready at the start of a turn run in an
 * order drawn from the seed (those made ready meanwhile, next turn). */
static void drain_seeded(lua_State *L, casync_ctx *lp) {
  casync_task **batch, *t;
  int n = 0, i;
  for (t = lp->qhead; t; t = t->qnext) n++;
  batch = lua_newuserdatauv(L, (size_t)n * sizeof *batch, 0);
  for (t = lp->qhead, i = 0; t; t = t->qnext) batch[i++] = t;
  lp->qhead = lp->qtail = NULL;
  for (i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int j = (int)(seed_next(lp) % (uint64_t)(i + 1));
    casync_task *tmp = batch[i];
    batch[i] = batch[j];
    batch[j] = tmp;
  }
  for (i = 0; i < n; i++) run_one(L, lp, batch[i]);
  lp->slice_over = 0;
  lua_settop(L, 0);
}

/* Drains the ready queue (see the file comment).  Runs protected. */
static int drain(lua_State *L) {
  casync_ctx *lp = lua_touserdata(L, 1);
  uint64_t start = uv_hrtime();
  unsigned n = 0;
  casync_task *t;
  lua_settop(L, 0);
  if (lp->seeded) {
    while (lp->qhead && uv_hrtime() - start <= DRAIN_BUDGET_NS)
      drain_seeded(L, lp);
    return 0;
  }
  while ((t = lp->qhead) != NULL) {
    lp->qhead = t->qnext;
    if (!lp->qhead) lp->qtail = NULL;
    run_one(L, lp, t);
    if (lp->slice_over) {
      lp->slice_over = 0;
      break;
    }
    if ((++n & 63) == 0 && uv_hrtime() - start > DRAIN_BUDGET_NS) break;
  }
  return 0;
}

void casync__drain(casync_ctx *lp) {
  lua_State *L = lp->L;
  int top = lua_gettop(L), status;
  if (!lp->qhead) {
    uv_idle_stop(&lp->idle);
    casync__clock_jump(lp);
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
  casync__clock_jump(lp); /* a virtual clock: everyone waits on time */
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

static void on_check(uv_check_t *h) {
  casync__drain(container_of(h, casync_ctx, check));
}

/* Starts draining the ready queue at the loop's check phase; the check
 * handle never keeps the loop alive by itself (the idle handle does while
 * tasks are ready). */
void casync__sched_open(lua_State *L, casync_ctx *lp) {
  (void)L;
  uv_check_start(&lp->check, on_check);
  uv_unref((uv_handle_t *)&lp->check);
}
