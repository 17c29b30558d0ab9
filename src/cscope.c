/* cscope.c: cancel scopes (scheduler.h) and the deadlines built on them:
 * casync.timeout, fail_after, move_on_after, deadline, shield, checkpoint.
 *
 * A scope is cancelled by its deadline, by cancel(), or (a casync.scope) by
 * a failing child; cancelling it wakes every task inside that waits, and
 * every later wait inside raises too (wait.c asks casync__cs_cancelled at
 * each begin), until the task has left the scope: cancellation is a state
 * of the scope, as in Trio, so a body that swallows it with pcall and waits
 * again is cancelled again.  When the cancellation error reaches the scope
 * that caused it, the scope takes it back: a timeout raises kind
 * "timeout", move_on_after returns false.  A cancellation from outside (an
 * enclosing scope, task:cancel) passes through unchanged: Trio's rule, not
 * asyncio's, where a swallowed cancellation is gone.
 */
#include <math.h>
#include <string.h>
#include "scheduler.h"

#define CSCOPE_MT "casync.CancelScope"

/* ------------------------------------------------------------- the tree */

/* Is t inside a cancelled scope (one not hidden behind a shield)? */
int casync__cs_cancelled(const casync_task *t) {
  const casync_cscope *s;
  for (s = t->cscope; s; s = s->parent) {
    if (s->flags & CS_CANCELLED) return 1;
    if (s->flags & CS_SHIELD) return 0;
  }
  return 0;
}

/* Is t inside a shield?  Then its own cancellation (task:cancel) waits
 * until it has left it. */
int casync__cs_shielded(const casync_task *t) {
  const casync_cscope *s;
  for (s = t->cscope; s; s = s->parent)
    if (s->flags & CS_SHIELD) return 1;
  return 0;
}

/* The outermost cancelled scope t is in (below any shield), or NULL. */
static const casync_cscope *cause(const casync_task *t) {
  const casync_cscope *s, *c = NULL;
  for (s = t->cscope; s; s = s->parent) {
    if (s->flags & CS_CANCELLED) c = s;
    if (s->flags & CS_SHIELD) break;
  }
  return c;
}

/* Makes s the innermost scope of t. */
void casync__cs_attach(casync_task *t, casync_cscope *s) {
  casync__cs_detach(t);
  t->cscope = s;
  t->cs_prev = NULL;
  t->cs_next = s->tasks;
  if (s->tasks) s->tasks->cs_prev = t;
  s->tasks = t;
}

/* Takes t out of its innermost scope's list (t->cscope stays). */
void casync__cs_detach(casync_task *t) {
  casync_cscope *s = t->cscope;
  if (!s) return;
  if (t->cs_prev) t->cs_prev->cs_next = t->cs_next;
  else if (s->tasks == t) s->tasks = t->cs_next;
  if (t->cs_next) t->cs_next->cs_prev = t->cs_prev;
  t->cs_next = t->cs_prev = NULL;
}

/* Opens s (zeroed by the caller but for its flags) inside task t's
 * innermost scope, and moves t into it. */
void casync__cs_open(casync_task *t, casync_cscope *s) {
  casync_cscope *parent = t->cscope;
  s->parent = parent;
  s->owner = t;
  s->ref = LUA_NOREF;
  if (parent) {
    s->prev = NULL;
    s->next = parent->children;
    if (parent->children) parent->children->prev = s;
    parent->children = s;
  }
  casync__cs_attach(t, s);
}

/* Task t, in cancelled scope s that closes, has not run yet: it would
 * never see the cancellation at a wait inside s, so it takes it along. */
static void cancel_unstarted(casync_ctx *lp, casync_cscope *s, casync_task *t) {
  lua_State *L = lp->L;
  if (s->flags & CS_BY_DEADLINE)
    lua_pushfstring(L, "cancelled: the deadline of %f s passed", s->seconds);
  else lua_pushliteral(L, "cancelled: its scope was cancelled");
  casync__cancel(L, lp, t, -1);
  lua_pop(L, 1);
}

/* Closes s: its deadline goes, it leaves the tree, and its tasks (its
 * owner, tasks still attached to a scope closed early, thread and process
 * pool jobs started inside it) go back to the enclosing scope; those of a
 * cancelled s that have not run yet stay cancelled.  The caller has closed
 * the scopes opened inside it. */
void casync__cs_close(casync_ctx *lp, casync_cscope *s) {
  casync_cscope *parent = s->parent, *c;
  if (s->flags & CS_CLOSED) return;
  s->flags |= CS_CLOSED;
  if (s->timer.list) casync__timer_remove(lp, &s->timer);
  while (s->tasks) {
    casync_task *t = s->tasks;
    casync__cs_detach(t);
    t->cscope = NULL;
    if (s->flags & CS_NURSERY) t->flags &= ~TF_SCOPE_CHILD; /* orphaned */
    if (parent) casync__cs_attach(t, parent);
    if ((s->flags & CS_CANCELLED) && !(t->flags & TF_STARTED) &&
        t->state != T_DONE && lp->alive)
      cancel_unstarted(lp, s, t);
  }
  while ((c = s->children) != NULL) { /* left open inside: re-parented */
    s->children = c->next;
    c->parent = parent;
    c->prev = NULL;
    c->next = parent ? parent->children : NULL;
    if (parent) {
      if (parent->children) parent->children->prev = c;
      parent->children = c;
    }
  }
  if (parent) {
    if (s->prev) s->prev->next = s->next;
    else parent->children = s->next;
    if (s->next) s->next->prev = s->prev;
  }
  s->next = s->prev = NULL;
  s->parent = NULL;
  if (s->ref != LUA_NOREF) {
    casync__unpin(lp, s->ref);
    s->ref = LUA_NOREF;
  }
}

/* Closes s, owned by t, with the scopes t opened inside it and left open
 * (an error that unwound past their __close). */
void casync__cs_close_owned(casync_task *t, casync_cscope *s) {
  while (t->cscope && t->cscope != s && t->cscope->owner == t &&
         !(s->flags & CS_CLOSED))
    casync__cs_close(t->loop, t->cscope);
  casync__cs_close(t->loop, s);
}

/* Wakes (with the cancellation) every task inside s that waits. */
static void cancel_inside(casync_ctx *lp, casync_cscope *s) {
  casync_task *t, *next;
  casync_cscope *c;
  for (t = s->tasks; t; t = next) {
    next = t->cs_next;
    casync__interrupt(lp, t);
  }
  for (c = s->children; c; c = c->next)
    if (!(c->flags & (CS_SHIELD | CS_CANCELLED))) cancel_inside(lp, c);
}

/* Cancels s (once): every task inside is cancelled at its wait, now and
 * at each wait until it leaves s. */
void casync__cs_cancel(casync_ctx *lp, casync_cscope *s, int by_deadline) {
  if (s->flags & (CS_CANCELLED | CS_CLOSED)) return;
  s->flags |= CS_CANCELLED;
  if (by_deadline) s->flags |= CS_BY_DEADLINE;
  if (s->timer.list) casync__timer_remove(lp, &s->timer);
  cancel_inside(lp, s);
}

static void on_deadline(casync_ctx *lp, casync_tnode *n) {
  casync_cscope *s = container_of(n, casync_cscope, timer);
  if (lp->trace) casync__trace_timer(lp, s->owner ? s->owner->id : 0);
  casync__cs_cancel(lp, s, 1);
}

/* Gives s a deadline `seconds` from now (or cancels it at once). */
void casync__cs_set_deadline(casync_ctx *lp, casync_cscope *s, double seconds) {
  s->seconds = seconds;
  s->timer.fire = on_deadline;
  if (seconds <= 0) casync__cs_cancel(lp, s, 1);
  else casync__timer_add(lp, &s->timer, seconds);
}

/* Pushes the error a task inside a cancelled scope raises. */
int casync__cs_error(lua_State *L, const casync_task *t) {
  const casync_cscope *s = cause(t);
  if (s && (s->flags & CS_BY_DEADLINE))
    return casync__error_push(L, "cancelled", NULL,
                              "cancelled: the deadline "
                              "of %f s passed",
                              s->seconds);
  return casync__error_push(L, "cancelled", NULL,
                            "cancelled: its scope "
                            "was cancelled");
}

/* At the close of s, owned by t, with the error `err` (at idx) on its
 * way out: does s take it back?  Only its own cancellation: a
 * cancellation error while s is cancelled, no enclosing scope is (below a
 * shield), and t was not cancelled from outside. */
int casync__cs_catches(lua_State *L, const casync_task *t,
                       const casync_cscope *s, int idx) {
  const casync_cscope *p;
  if (!(s->flags & CS_CANCELLED) || (t->flags & TF_CANCEL_PENDING) ||
      !casync__error_is(L, idx, "cancelled"))
    return 0;
  if (!(s->flags & CS_SHIELD))
    for (p = s->parent; p; p = p->parent) {
      if (p->flags & CS_CANCELLED) return 0;
      if (p->flags & CS_SHIELD) break;
    }
  { /* the task's own cancel_error is an outside cancellation */
    int top = lua_gettop(L), outside;
    idx = lua_absindex(L, idx);
    casync__push_task(L, t->loop, (casync_task *)t);
    outside = lua_getiuservalue(L, -1, 2) == LUA_TTABLE &&
              lua_getfield(L, -1, "cancel_error") != LUA_TNIL &&
              lua_rawequal(L, -1, idx);
    lua_settop(L, top);
    return !outside;
  }
}

/* The innermost deadline t is under (ns, uv_hrtime clock), 0 if none. */
uint64_t casync__cs_deadline(const casync_task *t) {
  const casync_cscope *s;
  uint64_t d = 0;
  for (s = t->cscope; s; s = s->parent) {
    if (s->timer.list && (d == 0 || s->timer.deadline < d))
      d = s->timer.deadline;
    if (s->flags & CS_SHIELD) break;
  }
  return d;
}
