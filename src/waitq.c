/* waitq.c: FIFO wait lists: tasks waiting on a channel, a semaphore, an
 * event, a condition, a process or a signal, each by a node embedded in
 * the task (several, one per case, for select).  First come, first served.
 */
#include "scheduler.h"

void casync__wq_push(casync_wqueue *q, casync_wnode *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail) q->tail->next = w;
  else q->head = w;
  q->tail = w;
  w->queue = q;
}

void casync__wq_remove(casync_wnode *w) {
  casync_wqueue *q = w->queue;
  if (!q) return;
  if (w->prev) w->prev->next = w->next;
  else q->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else q->tail = w->prev;
  w->next = w->prev = NULL;
  w->queue = NULL;
}

/* Takes the first waiter off q (NULL if none).  A waiter whose coroutine
 * was closed from outside (coroutine.close) is not served: nothing handed
 * to it could arrive, and a sender's value went with its stack.  It leaves
 * its wait as a cancelled task does, and the next one is taken. */
casync_wnode *casync__wq_pop(casync_wqueue *q) {
  casync_wnode *w;
  while ((w = q->head) != NULL) {
    casync__wq_remove(w);
    if (lua_status(w->task->co) == LUA_YIELD) return w;
    casync__closed_outside(w->task);
  }
  return NULL;
}

/* Unlinks every case of select s from what it waits on. */
void casync__select_unlink(casync_select *s) {
  int i;
  for (i = 0; i < s->n; i++) {
    casync_selcase *c = &s->c[i];
    casync__wq_remove(&c->w);
    if (c->watched) {
      casync__obs_unlink(c->watched, &c->obs);
      c->watched = NULL;
    }
  }
}

/* Waiter w (already off its list) is served with `status`: its task wakes;
 * for a select, w's case is the one that fired and the others let go. */
void casync__wq_serve(casync_ctx *lp, casync_wnode *w, int status) {
  w->status = status;
  if (w->sel) {
    casync_select *s = w->sel;
    s->fired = w->idx;
    s->won = w;
    casync__select_unlink(s);
  }
  casync__wake(lp, w->task, WAKE_OK);
}

static void watched_ended(casync_ctx *lp, casync_obs *o, casync_task *ended) {
  casync_selcase *c = container_of(o, casync_selcase, obs);
  (void)ended;
  c->watched = NULL; /* the observer list already let go of it */
  casync__wq_serve(lp, &c->w, WN_OK);
}

/* Case c of select s waits for task t to end. */
void casync__select_watch(casync_select *s, casync_selcase *c,
                          casync_task *t) {
  (void)s;
  c->obs.notify = watched_ended;
  c->watched = t;
  casync__obs_link(t, &c->obs);
}
