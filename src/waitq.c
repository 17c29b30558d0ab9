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
