/* waitq.c: selects over the FIFO wait lists (scheduler.h) on which tasks
 * wait for a channel, a semaphore, an event, a condition, a process or a
 * signal, each by a node embedded in the task (several, one per case, for
 * select). */
#include "scheduler.h"

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

/* Waiter w of select s fired: the select's other cases let go. */
void casync__select_fire(casync_select *s, casync_wnode *w) {
  s->fired = w->idx;
  s->won = w;
  casync__select_unlink(s);
}

static void watched_ended(casync_ctx *lp, casync_obs *o, casync_task *ended) {
  casync_selcase *c = container_of(o, casync_selcase, obs);
  (void)ended;
  c->watched = NULL; /* the observer list already let go of it */
  casync__wq_serve(lp, &c->w, WN_OK);
}

/* Case c of select s waits for task t to end. */
void casync__select_watch(casync_select *s, casync_selcase *c, casync_task *t) {
  (void)s;
  c->obs.notify = watched_ended;
  c->watched = t;
  casync__obs_link(t, &c->obs);
}
