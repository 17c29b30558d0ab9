/* wait.c: the wait protocol, the one way a task waits (see internal.h).
 *
 * A waiting operation begins with casync__wait_begin (may this caller
 * wait at all?), parks with casync__park (what it waits on, how to undo
 * it, until when, where to continue) and continues in a continuation that
 * starts with CASYNC_RESUMED and casync__woken.  Cancellation and
 * deadlines go through the wait's kind, so every parked task can be
 * cancelled, timed out and described the same way.
 */
#include <string.h>
#include "scheduler.h"

/* The slow path of casync__wait_begin (scheduler.h): raises the error
 * naming fname (outside a task, in a plain coroutine inside one, where it
 * cannot yield) or the cancellation due, checking the task's scopes.
 * Returns the task when it may wait after all. */
casync_task *casync__wait_begin_slow(lua_State *L, const char *fname) {
  casync_task *t = casync__task_begin(L, fname);
  if (CASYNC_CANCELLED(t)) casync__raise_cancel(L, t);
  if (!lua_isyieldable(L))
    luaL_error(L, "%s: cannot suspend across a C call boundary", fname);
  return t;
}

/* The running task, for Lua function fname that needs one (raising, naming
 * fname, outside tasks and in plain coroutines inside them). */
casync_task *casync__task_begin(lua_State *L, const char *fname) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = lp->current;
  if (!t || t->co != L) {
    if (t)
      luaL_error(L,
                 "%s: cannot suspend a coroutine that casync does not "
                 "manage (a plain coroutine inside a task)",
                 fname);
    luaL_error(L,
               "%s: must be called inside a task (from a function run "
               "by casync.run or casync.spawn)",
               fname);
  }
  return t;
}

/* The deadline passed: undo the wait and wake the task with WAKE_TIMEOUT
 * (or let the wait wake it once it has undone itself). */
static void on_deadline(casync_ctx *lp, casync_tnode *n) {
  casync_task *t = container_of(n, casync_task, timer);
  if (t->state != T_WAITING) return;
  if (lp->trace) casync__trace_timer(lp, t->id);
  if (!t->wait->cancel || t->wait->cancel(lp, t, WAKE_TIMEOUT))
    casync__wake(lp, t, WAKE_TIMEOUT);
}

/* The rarer half of casync__park (scheduler.h): a wait that holds a
 * virtual clock still, a recording, a cycle check, a deadline. */
void casync__park_slow(lua_State *L, casync_task *t,
                       const casync_wait_kind *kind, uint64_t deadline) {
  if (kind->flags & CASYNC_WK_EXTERNAL) { /* holds a virtual clock still */
    t->flags |= TF_EXTERNAL;
    t->loop->external++;
  }
  if (t->loop->trace) casync__trace_park(t->loop, t, kind);
  if (t->loop->debug && kind->blockers) casync__check_cycle(L, t);
  if (deadline) {
    t->timer.fire = on_deadline;
    casync__timer_add_ns(t->loop, &t->timer, deadline);
  }
}

/* Puts the running task t at the back of the ready queue and yields; k(kc)
 * continues once every task ready before it has run (sleep(0)). */
int casync__requeue(lua_State *L, casync_task *t, const casync_wait_kind *kind,
                    lua_KFunction k, lua_KContext kc) {
  t->wait = kind;
  t->wait_obj = NULL;
  t->wake = WAKE_OK;
  casync__enqueue(t->loop, t);
  return lua_yieldk(L, 0, kc, k);
}

/* A task's coroutine was resumed by someone other than the scheduler: its
 * continuation k yields again at once, so the wait it is in (whose state
 * may live on the coroutine's stack) stays intact for the scheduler. */
int casync__not_resumed(lua_State *L, lua_KContext kc, lua_KFunction k) {
  lua_pushliteral(L, "casync: this coroutine runs a task; only casync may "
                     "resume it");
  return lua_yieldk(L, 1, kc, k);
}

/* The slow path of casync__woken (scheduler.h). */
int casync__woken_slow(lua_State *L, casync_task *t) {
  if (t->wake == WAKE_CANCEL ||
      (!(t->wait->flags & CASYNC_WK_KEEPS) && CASYNC_CANCELLED(t)))
    return casync__raise_cancel(L, t);
  return t->wake;
}

/* Raises t's cancellation error in t (L is its coroutine): its own (from
 * task:cancel, once), else that of the cancelled scope it is in (again at
 * every wait while it stays inside). */
int casync__raise_cancel(lua_State *L, casync_task *t) {
  t->wake = WAKE_OK;
  if (t->cscope &&
      (!(t->flags & TF_CANCEL_PENDING) || casync__cs_shielded(t)) &&
      casync__cs_cancelled(t)) {
    casync__cs_error(L, t);
    return lua_error(L);
  }
  t->flags &= ~TF_CANCEL_PENDING;
  casync__push_task(L, t->loop, t);
  lua_getiuservalue(L, -1, 2);
  if (lua_istable(L, -1) && lua_getfield(L, -1, "cancel_error") != LUA_TNIL)
    return lua_error(L);
  return casync__error_push(L, "cancelled", NULL, "task cancelled"),
         lua_error(L);
}

/* A deadline `seconds` from now (ns, uv_hrtime clock); 0 (none) for a
 * negative number or one too large to matter. */
uint64_t casync__deadline(double seconds) {
  if (seconds < 0 || seconds >= 1e9) return 0;
  return uv_hrtime() + (uint64_t)(seconds * 1e9) + 1;
}

/* Pushes the one error value of a timed-out wait: kind "timeout", code
 * "ETIMEDOUT", "op: timed out after N s".  Returns 1. */
int casync__timeout_error(lua_State *L, const char *op, double seconds) {
  return casync__error_push(L, "timeout", "ETIMEDOUT",
                            "%s: timed out after %f s", op, seconds);
}

/* What task t waits in (or last waited in), for messages. */
const char *casync__waiting_in(const casync_task *t) {
  return t->wait ? t->wait->what : "?";
}
