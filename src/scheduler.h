/* scheduler.h: the scheduler (tasks, the ready queue, a task's life, the
 * wait protocol, timers) and the wait lists every primitive queues tasks
 * on.  Layer 1: includes only context.h. */
#ifndef CASYNC_SCHEDULER_H
#define CASYNC_SCHEDULER_H

#include "context.h"

#define CASYNC_TASK_MT "casync.Task"

typedef struct casync_task casync_task;
typedef struct casync_tnode casync_tnode;
typedef struct casync_obs casync_obs;

/* A deadline among the loop's timers (timer.c).  Embedded in whatever
 * waits on it. */
struct casync_tnode {
  uint64_t deadline;            /* ns on the uv_hrtime clock */
  casync_tnode *next, *prev;    /* in the list of its duration */
  struct casync_tlist *list;    /* that list; NULL when not armed */
  void (*fire)(casync_ctx *lp, casync_tnode *n);
};

/* An observer of a task's end: a node in the task's observer list. */
struct casync_obs {
  casync_obs *next, *prev;
  void (*notify)(casync_ctx *lp, casync_obs *o, casync_task *ended);
};

/* A task waiting on a channel, semaphore, event, condition, process or
 * signal: a node in that object's FIFO of waiters (waitq.c; several, one
 * per case, for select). */
typedef struct casync_wnode casync_wnode;
typedef struct casync_wqueue { casync_wnode *head, *tail; } casync_wqueue;
struct casync_wnode {
  casync_wnode *next, *prev;
  casync_wqueue *queue;   /* the queue it is in, NULL when not queued */
  casync_task *task;
  void *sel;              /* its select, NULL for a single operation */
  int idx;                /* its case in select (1-based) */
  int op;                 /* what it waits to do (channel.c, sync.c) */
  int valslot;            /* a send's value: index on the task's stack */
  int status;             /* how it was served (W_*) */
};
enum { WN_WAITING, WN_OK, WN_CLOSED };

enum { T_READY, T_RUNNING, T_WAITING, T_DONE };     /* task->state */
enum { OUT_NONE, OUT_OK, OUT_FAILED, OUT_CANCELLED };       /* task->outcome */
enum { WAKE_OK, WAKE_CANCEL, WAKE_TIMEOUT };        /* task->wake */

/* task->flags */
#define TF_STARTED 0x01u        /* its coroutine has been resumed once */
#define TF_CANCEL_PENDING 0x02u /* cancel requested, not yet raised */
#define TF_OBSERVED 0x04u       /* its failure was handed out */
#define TF_REPORTED 0x08u       /* its unobserved failure was printed */
#define TF_QUEUED 0x10u         /* in the ready queue */
#define TF_HAS_CALLBACKS 0x20u  /* done callbacks registered */
#define TF_MAIN 0x40u           /* the main task of casync.run */
#define TF_NAMED 0x80u          /* extras.name is set */

/* ------------------------------------------------- the wait protocol
 * Every waiting operation is a begin, a park and a continuation:
 *
 *   t = casync__wait_begin(L, "recv");       -- may this caller wait?
 *   ...fast path: return at once if nothing to wait for...
 *   ...register t where it will be woken (a wait list, a request)...
 *   return casync__park(L, t, &recv_wait, obj, deadline, recv_k, kc);
 *
 *   static int recv_k(lua_State *L, int status, lua_KContext kc) {
 *     casync_task *t;
 *     CASYNC_RESUMED(L, t, kc, recv_k);       -- resumed by the scheduler?
 *     if (casync__woken(L, t) == WAKE_TIMEOUT) -- raises a cancellation
 *       ...casync__timeout_error(L, "recv", seconds)...
 *     ...the result...
 *   }
 *
 * Whoever completes the wait calls casync__wake(lp, t, WAKE_OK). */

/* Undoes the wait of task t (take it off whatever it waits on) because it
 * was cancelled (why == WAKE_CANCEL) or its deadline passed (WAKE_TIMEOUT).
 * Returns 1 when the task may be woken now, 0 when the wait wakes it
 * itself later (a combinator unwinding the tasks it cancelled). */
typedef int (*casync_cancel_fn)(casync_ctx *lp, casync_task *t, int why);

/* A kind of wait: one static descriptor per waiting operation. */
typedef struct casync_wait_kind {
  const char *op;          /* the Lua function, for errors: "recv" */
  const char *what;        /* what the task waits in: "channel recv" */
  casync_cancel_fn cancel; /* NULL: the wait cannot be cut short; a
                              cancellation is raised once it ends */
  unsigned flags;          /* CASYNC_WK_* */
} casync_wait_kind;

/* A wake hands the task something (a value, a permit, the fate of its
 * write): a cancellation requested after the wake is raised at the next
 * suspension point instead, so nothing handed over is lost. */
#define CASYNC_WK_KEEPS 0x1u

/* A task: a Lua coroutine the scheduler resumes.  Lives in a full userdata
 * (metatable casync.Task) with two user values:
 *   1: the coroutine while it runs; afterwards its result (one value), a
 *      table of results (several), or its error value;
 *   2: a table of extras created on demand (name, traceback, callbacks,
 *      cancel message, cause of a re-raised error). */
struct casync_task {
  casync_task *qnext;  /* ready-queue link (also the callback queue) */
  lua_State *co;       /* NULL once the task ended */
  casync_ctx *loop;
  unsigned char state, outcome, wake;
  unsigned flags;
  int ref;             /* anchor in the loop's task table while alive */
  int nres;            /* number of results once ended */
  int spawn_line;      /* line that spawned it (0 if unknown) */
  lua_Integer id;
  const casync_wait_kind *wait; /* its current (or last) wait */
  void *wait_obj;           /* what it waits on (the wait's own state) */
  casync_tnode timer;       /* its wait's deadline (or its sleep) */
  union {                   /* never both at once: */
    casync_obs join;        /* in task:wait(), its node in that task's observers */
    casync_wnode wn;        /* in a channel/sync operation, its waiter node */
  } u;
  casync_obs *observers;    /* who waits for this task to end */
};

/* Around the one lua_resume (sched.c): two plain stores each way on x86
 * (release stores), so the watchdog thread can tell a task that has run
 * too long without suspending. */
#define CASYNC_RUN_BEGIN(lp, co)                                              \
  do {                                                                        \
    atomic_store_explicit(&(lp)->run_co, (co), memory_order_relaxed);         \
    atomic_store_explicit(&(lp)->run_seq,                                     \
        atomic_load_explicit(&(lp)->run_seq, memory_order_relaxed) + 1,       \
        memory_order_release);                                                \
  } while (0)
#define CASYNC_RUN_END(lp)                                                    \
  atomic_store_explicit(&(lp)->run_seq,                                       \
      atomic_load_explicit(&(lp)->run_seq, memory_order_relaxed) + 1,         \
      memory_order_release)

/* sched.c: the ready queue, resuming, waking, cancelling, observers */
void casync__enqueue(casync_ctx *lp, casync_task *t);
void casync__wake(casync_ctx *lp, casync_task *t, int wake);
void casync__drain(casync_ctx *lp);
void casync__unhold(casync_ctx *lp);
void casync__cancel(lua_State *L, casync_ctx *lp, casync_task *t,
                    int msgidx);
int casync__push_task(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__obs_link(casync_task *t, casync_obs *o);
void casync__obs_unlink(casync_task *t, casync_obs *o);
void casync__sched_open(lua_State *L, casync_ctx *lp);

/* life.c: a task's life: spawning, its body, its end, done callbacks */
casync_task *casync__spawn(lua_State *L, casync_ctx *lp, int fidx,
                           int nargs, int opts_name_idx);
casync_task *casync__spawn_later(lua_State *L, casync_ctx *lp, int fidx,
                                 int nargs, double seconds);
void casync__finish(lua_State *L, casync_ctx *lp, casync_task *t, int status,
                    int nres);
void casync__finish_unstarted(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__run_callbacks(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__report_unobserved(lua_State *L, casync_task *t, int tidx);
int casync__traceback_msgh(lua_State *L);
void casync__extras(lua_State *L, int tidx);
void casync__task_describe(lua_State *L, casync_task *t, int tidx);
int casync__is_callable(lua_State *L, int idx);
void casync__check_callable(lua_State *L, int arg);

/* wait.c: the wait protocol (see above) */
casync_task *casync__wait_begin(lua_State *L, const char *fname);
int casync__park(lua_State *L, casync_task *t, const casync_wait_kind *kind,
                 void *obj, uint64_t deadline, lua_KFunction k,
                 lua_KContext kc);
int casync__requeue(lua_State *L, casync_task *t, const casync_wait_kind *kind,
                    lua_KFunction k, lua_KContext kc);
casync_task *casync__resumed(lua_State *L);
int casync__not_resumed(lua_State *L, lua_KContext kc, lua_KFunction k);
int casync__woken(lua_State *L, casync_task *t);
int casync__raise_cancel(lua_State *L, casync_task *t);
uint64_t casync__deadline(double seconds);
int casync__timeout_error(lua_State *L, const char *op, double seconds);
const char *casync__waiting_in(const casync_task *t);

/* At the top of every continuation k(kc): t is the task the scheduler
 * resumed.  Resumed by anyone else (coroutine.resume on the task's
 * coroutine), k yields again at once with its wait untouched. */
#define CASYNC_RESUMED(L, t, kc, k)                                     \
  do {                                                                  \
    if (!((t) = casync__resumed(L))) return casync__not_resumed((L), (kc), (k)); \
  } while (0)

/* task.c: the methods of a task, spawn, current, call_later */
casync_task *casync__check_task(lua_State *L, int idx);
int casync__push_results(lua_State *L, casync_task *t, int tidx, int first);
int casync__push_error_of(lua_State *L, casync_task *t, int tidx);
void casync__task_open(lua_State *L);

/* timer.c: timers, sleep, now */
void casync__timer_add(casync_ctx *lp, casync_tnode *n, double seconds);
void casync__timer_add_ns(casync_ctx *lp, casync_tnode *n, uint64_t deadline);
void casync__timer_remove(casync_ctx *lp, casync_tnode *n);
double casync__check_seconds(lua_State *L, int arg, int allow_nil);
void casync__timer_open(lua_State *L);

/* waitq.c: FIFO wait lists of tasks */
void casync__wq_push(casync_wqueue *q, casync_wnode *w);
casync_wnode *casync__wq_pop(casync_wqueue *q);
void casync__wq_remove(casync_wnode *w);

/* loop.c: casync.run */
void casync__loop_open(lua_State *L);

/* interrupt.c: Ctrl-C during casync.run cancels the main task */
void casync__sigint_begin(lua_State *L, casync_ctx *lp, casync_task *main);
int casync__sigint_end(lua_State *L, casync_ctx *lp);

/* watchdog.c: tasks that block the loop */
void casync__watchdog_gate(casync_ctx *lp);
void casync__watchdog_open(lua_State *L);

#endif
