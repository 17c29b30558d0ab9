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

casync_wnode *casync__wq_pop(casync_wqueue *q) {
  casync_wnode *w = q->head;
  if (w) casync__wq_remove(w);
  return w;
}
