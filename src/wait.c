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

/* Checks that the caller may wait, in Lua function fname: it must run in
 * a task (not in a plain coroutine inside one), be able to yield, and have
 * no cancellation pending (raised here).  Returns the task. */
casync_task *casync__wait_begin(lua_State *L, const char *fname) {
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
      luaL_error(L, "%s: cannot suspend a coroutine that casync does not "
                 "manage (a plain coroutine inside a task)", fname);
    luaL_error(L, "%s: must be called inside a task (from a function run "
               "by casync.run or casync.spawn)", fname);
  }
  return t;
}

/* The deadline passed: undo the wait and wake the task with WAKE_TIMEOUT
 * (or let the wait wake it once it has undone itself). */
static void on_deadline(casync_ctx *lp, casync_tnode *n) {
  casync_task *t = container_of(n, casync_task, timer);
  if (t->state != T_WAITING) return;
  if (!t->wait->cancel || t->wait->cancel(lp, t, WAKE_TIMEOUT))
    casync__wake(lp, t, WAKE_TIMEOUT);
}

/* Parks the running task t in a wait of `kind` on obj until something
 * wakes it (casync__wake), it is cancelled, or `deadline` (ns on
 * uv_hrtime's clock; 0: none) passes; then k(kc) continues.  Returned by
 * the waiting function: it does not return. */
int casync__park(lua_State *L, casync_task *t, const casync_wait_kind *kind,
                 void *obj, uint64_t deadline, lua_KFunction k,
                 lua_KContext kc) {
  t->state = T_WAITING;
  t->wait = kind;
  t->wait_obj = obj;
  t->wake = WAKE_OK;
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
  return lua_yieldk(L, 0, kc, k);
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

casync_task *casync__resumed_any(lua_State *L) {
  casync_task *t = CASYNC_CTX(L)->current;
  return t && t->co == L ? t : NULL;
}

/* A task's coroutine was resumed by someone other than the scheduler: its
 * continuation k yields again at once, so the wait it is in (whose state
 * may live on the coroutine's stack) stays intact for the scheduler. */
int casync__not_resumed(lua_State *L, lua_KContext kc, lua_KFunction k) {
  lua_pushliteral(L, "casync: this coroutine runs a task; only casync may "
                     "resume it");
  return lua_yieldk(L, 1, kc, k);
}

/* Raises t's cancellation error in t (L is its coroutine): its own (from
 * task:cancel, once), else that of the cancelled scope it is in (again at
 * every wait while it stays inside). */
int casync__raise_cancel(lua_State *L, casync_task *t) {
  t->wake = WAKE_OK;
  if (t->cscope && (!(t->flags & TF_CANCEL_PENDING) ||
                    casync__cs_shielded(t)) &&
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
