/* thread.h: what thread.c (the hub, jobs, the Lua API) and worker.c (the
 * pools' threads and Lua states, running a job, the spin/sleep policy)
 * share: the job and the pool.
 *
 * A pool's fields under `mu` are worker.c's business: thread.c reaches
 * its queue only through casync__pool_push and casync__pool_unqueue, so
 * the locking and the wake-up policy live in one file. */
#ifndef CASYNC_THREAD_H
#define CASYNC_THREAD_H

#include <stdatomic.h>
#include "prim.h"

typedef struct job job;
typedef struct pool pool;

/* A call to run on a worker.  Owned by whoever holds it: the caller while
 * it is built (in a jobs box), then the pool's queue, the worker running
 * it, the hub's queue of posted jobs, the hub's list of delivered jobs,
 * and last the task that takes its results (or the hub, which frees it
 * when nobody waits for it any more). */
struct job {
  job *next, *prev; /* in the pool's queue, the hub's queue or list */
  pool *pool;
  casync_task *task;       /* who waits for it; NULL once abandoned */
  casync_obs obs;          /* in the task's observers: tells when it ended */
  int queued;              /* in the pool's queue (pool->mu) */
  int delivered;           /* in the hub's delivered list (loop thread) */
  atomic_int cancel;       /* its task ended: the worker may stop early */
  int map;                 /* fn over the items: results in one table */
  int failed;              /* set by the worker: `out` holds the error */
  int worker_id;           /* set by the worker that ran it */
  int dropped;             /* taken off the queue (or never queued) because
                              its task will not take the results (loop) */
  casync_buf in, out;      /* fn and its arguments; results or the error */
  casync_buf ctx;          /* the caller's casync.context values (empty:
                              none), casync_worker.context in the job */
  char *traceback;         /* where it failed in the worker */
  uint64_t clock_offset;   /* casync.now() less uv_hrtime() when submitted:
                              casync_worker.now() adds it */
  uint64_t t_start, t_end; /* when the worker ran it, on casync.now()'s
                              clock (set by the worker; for casync.trace) */
  lua_Integer task_id;     /* its task's id (for casync.trace) */
};

typedef struct worker {
  uv_thread_t tid;
  pool *pool;
  lua_State *L; /* its own Lua state, closed by the thread */
  job *job;     /* the one it runs (pool->mu) */
  int id;       /* 1-based */
  int started;
} worker;

struct pool {
  uv_mutex_t mu;
  uv_cond_t cv;
  job *qhead, *qtail; /* waiting jobs, first come first served */
  atomic_int queued;  /* their number (changed under mu, read by spinners) */
  atomic_int closing; /* 1: closed, drain the queue; 2: stop now */
  int busy, alive;
  int sleeping;            /* workers waiting on cv */
  int spinning;            /* a worker polling the queue before it sleeps */
  _Atomic uint64_t polled; /* when the spinning worker last looked (ns) */
  int spin_skip;           /* idle turns left without spinning */
  int size;
  lua_Integer id; /* pool#3 in dumps and recordings */
  struct casync_hub *hub;
  pool *hnext, *hprev; /* in the hub's list of pools (loop thread) */
  int jobs;            /* jobs whose task waits for them (loop thread) */
  worker w[1];         /* size of them */
};

/* thread.c */
void casync__job_free(job *j);
void casync__hub_post(struct casync_hub *h, job *j);

/* worker.c */
void casync__pool_start(lua_State *L, pool **slot, struct casync_hub *h,
                        int size);
void casync__pool_free(pool *p);
void casync__pool_push(pool *p, job *j);
int casync__pool_unqueue(pool *p, job *j);
void casync__pool_close(pool *p);
void casync__pool_stats(pool *p, int *busy, int *queued, int *alive);
int casync__pool_where(pool *p, job *j, int *ahead);

#endif
