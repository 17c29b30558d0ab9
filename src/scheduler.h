/* scheduler.h: the scheduler (tasks, the ready queue, a task's life, the
 * wait protocol, timers) and the wait lists every primitive queues tasks
 * on.  Layer 1: includes only context.h. */
#ifndef CASYNC_SCHEDULER_H
#define CASYNC_SCHEDULER_H

#include "context.h"

#define CASYNC_TASK_MT "casync.Task"
#define CASYNC_FAILURE_MT "casync.TaskFailure" /* a failed task's sentinel */

typedef struct casync_task casync_task;
typedef struct casync_tnode casync_tnode;
typedef struct casync_obs casync_obs;

/* A deadline among the loop's timers (timer.c).  Embedded in whatever
 * waits on it. */
struct casync_tnode {
  uint64_t deadline;         /* ns on the uv_hrtime clock */
  casync_tnode *next, *prev; /* in the list of its duration */
  struct casync_tlist *list; /* that list; NULL when not armed */
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
typedef struct casync_wqueue {
  casync_wnode *head, *tail;
} casync_wqueue;
struct casync_wnode {
  casync_wnode *next, *prev;
  casync_wqueue *queue; /* the queue it is in, NULL when not queued */
  casync_task *task;
  void *sel;   /* its select, NULL for a single operation */
  int idx;     /* its case in select (1-based) */
  int op;      /* what it waits to do (channel.c, sync.c) */
  int valslot; /* a send's value: index on the task's stack */
  int status;  /* how it was served (W_*) */
};
enum { WN_WAITING, WN_OK, WN_CLOSED };

enum { T_READY, T_RUNNING, T_WAITING, T_DONE };       /* task->state */
enum { OUT_NONE, OUT_OK, OUT_FAILED, OUT_CANCELLED }; /* task->outcome */
enum { WAKE_OK, WAKE_CANCEL, WAKE_TIMEOUT };          /* task->wake */

/* task->flags */
#define TF_STARTED 0x01u        /* its coroutine has been resumed once */
#define TF_CANCEL_PENDING 0x02u /* cancel requested, not yet raised */
#define TF_OBSERVED 0x04u       /* its failure was handed out */
#define TF_REPORTED 0x08u       /* its unobserved failure was printed */
#define TF_QUEUED 0x10u         /* in the ready queue */
#define TF_HAS_CALLBACKS 0x20u  /* done callbacks registered */
#define TF_MAIN 0x40u           /* the main task of casync.run */
#define TF_NAMED 0x80u          /* extras.name is set */
#define TF_CONTEXT 0x100u       /* extras.context is set (task-local values) */
#define TF_SCOPE_CHILD 0x800u   /* spawned into a casync.scope */
#define TF_EXTERNAL 0x1000u     /* waits in a CASYNC_WK_EXTERNAL wait */
/* its context is made when first looked at (ctx->lazy_context: an HTTP
   request's) */
#define TF_LAZY_CONTEXT 0x2000u
#define TF_CONTEXT_SHARED 0x200u /* ... and shared: copied before a change */
/* main task of a host's _run_report (the casync runner): casync.run called
   in it runs its function in place */
#define TF_HOST_MAIN 0x400u

/* ------------------------------------------------------ cancel scopes
 * A cancel scope (Trio's) is a block of a task, or a scope's children,
 * that can be cancelled as a whole: by s:cancel(), by its deadline, or
 * because a child of a scope failed.  Scopes nest in a tree: each task
 * sits in its innermost scope (t->cscope; NULL: in none), and a task is
 * cancelled while any scope from there up to the first shield is.  That
 * is a state, not an event: every wait inside a cancelled scope raises
 * (cscope.c), until the task leaves the scope. */
typedef struct casync_cscope casync_cscope;
struct casync_cscope {
  casync_cscope *parent;      /* the enclosing scope; NULL: none */
  casync_cscope *children;    /* scopes opened inside, newest first */
  casync_cscope *next, *prev; /* among the parent's children */
  casync_task *tasks;         /* tasks whose innermost scope it is */
  casync_task *owner;         /* the task that opened it */
  casync_tnode timer;         /* its deadline, when it has one */
  double seconds;             /* that deadline's length, for messages */
  unsigned flags;             /* CS_* */
  int ref;                    /* its userdata, pinned while open */
  int nchildren;              /* tasks spawned into it still running */
  int nfailed;                /* of them, failed (not cancelled) */
  casync_task *closer;        /* the owner, waiting for the children */
};
#define CS_CANCELLED 0x01u   /* cancelled (by cancel or its deadline) */
#define CS_SHIELD 0x02u      /* outer cancellations do not reach in */
#define CS_BY_DEADLINE 0x04u /* its deadline cancelled it */
#define CS_CLOSED 0x08u
#define CS_NURSERY 0x10u /* a casync.scope: owns the tasks spawned in it */
#define CS_TIMEOUT 0x20u /* casync.timeout / fail_after: raises "timeout" */
#define CS_MOVE_ON 0x40u /* move_on_after: its own expiry is no error */

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
  /* optional, for task dumps: pushes what t waits on in words a person
   * reads ("recv on channel#3 (cap 0, 2 senders waiting)") */
  void (*describe)(lua_State *L, casync_task *t);
  /* optional, for stuck tasks: the tasks that must act before t can go on
   * (a lock's holder, the task waited for); returns how many (<= max) */
  int (*blockers)(lua_State *L, casync_task *t, casync_task **out, int max);
} casync_wait_kind;

/* A wake hands the task something (a value, a permit, the fate of its
 * write): a cancellation requested after the wake is raised at the next
 * suspension point instead, so nothing handed over is lost. */
#define CASYNC_WK_KEEPS 0x1u

/* The wait is on something outside the tasks (I/O, a thread, a process, a
 * signal): the virtual clock does not jump while a task waits so. */
#define CASYNC_WK_EXTERNAL 0x2u

/* The wait is on other tasks of the program (a join, a channel, a lock):
 * time the program spends on the world is counted where they wait, so a
 * recording's timeline draws this apart (trace.c). */
#define CASYNC_WK_ON_TASKS 0x4u

/* A task: a Lua coroutine the scheduler resumes.  Lives in a full userdata
 * (metatable casync.Task) with two user values:
 *   1: the coroutine while it runs; afterwards its result (one value), a
 *      table of results (several), or its error value;
 *   2: a table of extras created on demand (name, traceback, callbacks,
 *      cancel message, cause of a re-raised error). */
struct casync_task {
  casync_task *qnext; /* ready-queue link (also the callback queue) */
  lua_State *co;      /* NULL once the task ended */
  casync_ctx *loop;
  unsigned char state, outcome, wake;
  unsigned flags;
  int ref;        /* anchor in the loop's task table while alive */
  int nres;       /* number of results once ended */
  int spawn_line; /* line that spawned it (0 if unknown) */
  lua_Integer id;
  lua_Integer parent_id;        /* the task that spawned it, 0: none */
  uint64_t cpu_ns;              /* time it ran (measured in debug mode) */
  const casync_wait_kind *wait; /* its current (or last) wait */
  void *wait_obj;               /* what it waits on (the wait's own state) */
  casync_tnode timer;           /* its wait's deadline (or its sleep) */
  union {                       /* never both at once: */
    casync_obs join; /* in task:wait(), its node in that task's observers */
    casync_wnode wn; /* in a channel/sync operation, its waiter node */
  } u;
  casync_obs *observers;          /* who waits for this task to end */
  casync_cscope *cscope;          /* its innermost cancel scope, NULL if none */
  casync_task *cs_next, *cs_prev; /* among that scope's tasks */
};

/* Around the one lua_resume (sched.c): two plain stores each way on x86
 * (release stores), so the watchdog thread can tell a task that has run
 * too long without suspending. */
#define CASYNC_RUN_BEGIN(lp, co)                                        \
  do {                                                                  \
    atomic_store_explicit(&(lp)->run_co, (co), memory_order_relaxed);   \
    atomic_store_explicit(                                              \
        &(lp)->run_seq,                                                 \
        atomic_load_explicit(&(lp)->run_seq, memory_order_relaxed) + 1, \
        memory_order_release);                                          \
  } while (0)
#define CASYNC_RUN_END(lp)                                            \
  atomic_store_explicit(                                              \
      &(lp)->run_seq,                                                 \
      atomic_load_explicit(&(lp)->run_seq, memory_order_relaxed) + 1, \
      memory_order_release)

/* sched.c: the ready queue, resuming, waking, cancelling, observers */
void casync__enqueue(casync_ctx *lp, casync_task *t);
void casync__wake(casync_ctx *lp, casync_task *t, int wake);
void casync__drain(casync_ctx *lp);
void casync__unhold(casync_ctx *lp);
void casync__cancel(lua_State *L, casync_ctx *lp, casync_task *t, int msgidx);
int casync__push_task(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__obs_link(casync_task *t, casync_obs *o);
void casync__obs_unlink(casync_task *t, casync_obs *o);
void casync__closed_outside(casync_task *t);
void casync__interrupt(casync_ctx *lp, casync_task *t);
void casync__sched_open(lua_State *L, casync_ctx *lp);

/* life.c: a task's life: spawning, its body, its end, done callbacks */
casync_task *casync__spawn(lua_State *L, casync_ctx *lp, int fidx, int nargs,
                           int opts_name_idx);
casync_task *casync__spawn_c(lua_State *L, casync_ctx *lp, int fidx, int nargs);
casync_task *casync__spawn_later(lua_State *L, casync_ctx *lp, int fidx,
                                 int nargs, double seconds);
casync_task *casync__spawn_parked(lua_State *L, casync_ctx *lp, int fidx,
                                  int nargs, const casync_wait_kind *kind,
                                  void *obj);
void casync__finish(lua_State *L, casync_ctx *lp, casync_task *t, int status,
                    int nres);
void casync__task_anchor(lua_State *L, casync_ctx *lp, int cidx, casync_task *t,
                         int tidx);
void casync__task_unanchor(lua_State *L, casync_ctx *lp, int cidx,
                           casync_task *t);
void casync__finish_unstarted(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__run_callbacks(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__report_unobserved(lua_State *L, casync_task *t, int tidx);
void casync__report_failure(lua_State *L, casync_task *t, int eidx,
                            const char *what);
int casync__fn_on_unobserved(lua_State *L);
int casync__traceback_msgh(lua_State *L);
void casync__extras(lua_State *L, int tidx);
void casync__task_describe(lua_State *L, casync_task *t, int tidx);
int casync__is_callable(lua_State *L, int idx);
void casync__check_callable(lua_State *L, int arg);

/* wait.c: the wait protocol (see above); the fast paths inline below */
casync_task *casync__wait_begin_slow(lua_State *L, const char *fname);
int casync__woken_slow(lua_State *L, casync_task *t);
void casync__park_slow(lua_State *L, casync_task *t,
                       const casync_wait_kind *kind, uint64_t deadline);
int casync__requeue(lua_State *L, casync_task *t, const casync_wait_kind *kind,
                    lua_KFunction k, lua_KContext kc);
int casync__not_resumed(lua_State *L, lua_KContext kc, lua_KFunction k);
int casync__raise_cancel(lua_State *L, casync_task *t);
uint64_t casync__deadline(double seconds);
int casync__timeout_error(lua_State *L, const char *op, double seconds);
const char *casync__waiting_in(const casync_task *t);

/* Checks that the caller may wait, in Lua function fname: it must run in
 * a task (not in a plain coroutine inside one), be able to yield, and have
 * no cancellation pending (raised here).  Returns the task. */
static inline casync_task *casync__wait_begin_ctx(lua_State *L, casync_ctx *lp,
                                                  const char *fname) {
  casync_task *t = lp->current;
  if (t && t->co == L && !(t->flags & TF_CANCEL_PENDING) && !t->cscope &&
      lua_isyieldable(L))
    return t;
  return casync__wait_begin_slow(L, fname); /* an error, or scopes */
}
#define casync__wait_begin(L, fname) \
  casync__wait_begin_ctx((L), CASYNC_CTX(L), (fname))

/* The task the scheduler is resuming on coroutine L, or NULL when L was
 * resumed by someone else. */
static inline casync_task *casync__resumed(lua_State *L) {
  casync_task *t = CASYNC_CTX(L)->current;
  return t && t->co == L ? t : NULL;
}

/* How the resumed task t was woken: WAKE_OK or WAKE_TIMEOUT.  Raises its
 * cancellation instead when the wait was cancelled, or when one is pending
 * and the wait handed over nothing that would be lost. */
static inline int casync__woken(lua_State *L, casync_task *t) {
  if (t->wake == WAKE_OK && !(t->flags & TF_CANCEL_PENDING) && !t->cscope)
    return WAKE_OK;
  return casync__woken_slow(L, t);
}

/* Parks the running task t in a wait of `kind` on obj until something
 * wakes it (casync__wake), it is cancelled, or `deadline` (ns on
 * uv_hrtime's clock; 0: none) passes; then k(kc) continues.  Returned by
 * the waiting function: it does not return. */
static inline int casync__park(lua_State *L, casync_task *t,
                               const casync_wait_kind *kind, void *obj,
                               uint64_t deadline, lua_KFunction k,
                               lua_KContext kc) {
  t->state = T_WAITING;
  t->wait = kind;
  t->wait_obj = obj;
  t->wake = WAKE_OK;
  if ((kind->flags & CASYNC_WK_EXTERNAL) || t->loop->trace || t->loop->debug ||
      deadline)
    casync__park_slow(L, t, kind, deadline);
  return lua_yieldk(L, 0, kc, k);
}

/* At the top of every continuation k(kc): t is the task the scheduler
 * resumed.  Resumed by anyone else (coroutine.resume on the task's
 * coroutine), k yields again at once with its wait untouched. */
#define CASYNC_RESUMED(L, t, kc, k)               \
  do {                                            \
    if (!((t) = casync__resumed(L)))              \
      return casync__not_resumed((L), (kc), (k)); \
  } while (0)

/* The same for a continuation whose kc is the task itself (the hot waits:
 * no look-up of the context). */
#define CASYNC_RESUMED_KC(L, t, kc, k)                                         \
  do {                                                                         \
    (t) = (casync_task *)(kc);                                                 \
    if ((t)->loop->current != (t)) return casync__not_resumed((L), (kc), (k)); \
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
uint64_t casync__now_ns(const casync_ctx *lp);
int casync__clock_jump(casync_ctx *lp);
void casync__clock_advance(casync_ctx *lp, uint64_t ns);
double casync__check_seconds(lua_State *L, int arg, int allow_nil);
void casync__timer_open(lua_State *L);

/* sleep_until.c: casync.sleep_until, ARCHITECTURE.md's worked example */
void casync__sleep_until_open(lua_State *L);

/* A task waiting on several things at once (casync.select): one case per
 * thing, in its wait list (w) or, for a task, among its observers (obs).
 * The first case served fires: the others are unlinked at that moment, so
 * a losing case takes nothing. */
typedef struct casync_selcase {
  casync_wnode w;
  casync_obs obs;
  casync_task *watched; /* {task, "wait"}: that task */
} casync_selcase;
typedef struct casync_select {
  casync_task *task;
  int n, fired;      /* fired: the case's index, 0 until one fires */
  casync_wnode *won; /* its node */
  casync_selcase c[];
} casync_select;

/* waitq.c: FIFO wait lists of tasks (first come, first served; the list
 * operations inline: they run on every channel and lock hand-over), and
 * selects over them */
static inline void casync__wq_push(casync_wqueue *q, casync_wnode *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail) q->tail->next = w;
  else q->head = w;
  q->tail = w;
  w->queue = q;
}

static inline void casync__wq_remove(casync_wnode *w) {
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
static inline casync_wnode *casync__wq_pop(casync_wqueue *q) {
  casync_wnode *w;
  while ((w = q->head) != NULL) {
    casync__wq_remove(w);
    if (lua_status(w->task->co) == LUA_YIELD) return w;
    casync__closed_outside(w->task);
  }
  return NULL;
}

/* waitq.c: selects over wait lists */
void casync__select_fire(casync_select *s, casync_wnode *w);

/* Waiter w (already off its list) is served with `status`: its task wakes;
 * for a select, w's case is the one that fired and the others let go. */
static inline void casync__wq_serve(casync_ctx *lp, casync_wnode *w,
                                    int status) {
  w->status = status;
  if (w->sel) casync__select_fire(w->sel, w);
  casync__wake(lp, w->task, WAKE_OK);
}
void casync__select_unlink(casync_select *s);
void casync__select_watch(casync_select *s, casync_selcase *c, casync_task *t);

/* loop.c: casync.run */
void casync__loop_open(lua_State *L);

/* cscope.c: cancel scopes and deadlines */
int casync__cs_cancelled(const casync_task *t);
int casync__cs_shielded(const casync_task *t);

/* Must t's next wait raise a cancellation?  Its own (task:cancel, unless it
 * is inside a shield) or that of a scope it is in. */
#define CASYNC_CANCELLED(t)                                                 \
  (((t)->flags & TF_CANCEL_PENDING)                                         \
       ? !(t)->cscope || !casync__cs_shielded(t) || casync__cs_cancelled(t) \
       : (t)->cscope && casync__cs_cancelled(t))
void casync__cs_attach(casync_task *t, casync_cscope *s);
void casync__cs_detach(casync_task *t);
void casync__cs_open(casync_task *t, casync_cscope *s);
void casync__cs_close(casync_ctx *lp, casync_cscope *s);
void casync__cs_close_owned(casync_task *t, casync_cscope *s);
void casync__cs_cancel(casync_ctx *lp, casync_cscope *s, int by_deadline);
void casync__cs_set_deadline(casync_ctx *lp, casync_cscope *s, double seconds);
int casync__cs_error(lua_State *L, const casync_task *t);
int casync__cs_catches(lua_State *L, const casync_task *t,
                       const casync_cscope *s, int idx);
uint64_t casync__cs_deadline(const casync_task *t);
casync_task *casync__task_begin(lua_State *L, const char *fname);
int casync__task_msgh(lua_State *co);
int casync__reraise(lua_State *L, casync_task *t);
void casync__cscope_open(lua_State *L);

/* trace.c: the recorder of casync.trace (off: ctx->trace is NULL) */
typedef struct casync_trace casync_trace;
void casync__trace_run(casync_ctx *lp, casync_task *t, uint64_t start);
void casync__trace_park(casync_ctx *lp, casync_task *t,
                        const casync_wait_kind *k);
void casync__trace_wake(casync_ctx *lp, casync_task *t);
void casync__trace_end(casync_ctx *lp, casync_task *t);
void casync__trace_timer(casync_ctx *lp, lua_Integer task);
void casync__trace_spawn(lua_State *L, casync_ctx *lp, casync_task *t, int tidx,
                         casync_task *by);
void casync__trace_job(casync_ctx *lp, lua_Integer task, const char *name,
                       lua_Integer pool_id, int worker, uint64_t start,
                       uint64_t dur);
void casync__trace_open(lua_State *L);
void casync__flight_start(lua_State *L, casync_ctx *lp);
void casync__flight_stop(lua_State *L, casync_ctx *lp);
void casync__flight_rearm(casync_ctx *lp);
void casync__flight_dump(lua_State *L, casync_ctx *lp, const char *why);

/* debug.c: task dumps, debug mode, stuck tasks */
void casync__push_task_label(lua_State *L, casync_task *t);
casync_task *casync__live_task(lua_State *L, lua_Integer id);
void casync__push_waiting_on(lua_State *L, casync_task *t);
void casync__push_spawned_at(lua_State *L, casync_task *t);
void casync__push_dump(lua_State *L);
void casync__check_cycle(lua_State *L, casync_task *t);
void casync__push_blocked(lua_State *L, casync_task *main);
void casync__report_leaks(lua_State *L, casync_ctx *lp);
void casync__ps_path(char *buf, size_t size, int pid);
void casync__debug_open(lua_State *L);

/* tcontext.c: task-local context */
void casync__context_inherit(lua_State *L, casync_task *spawner, casync_task *t,
                             int tidx);
void casync__context_set(lua_State *L, casync_task *t, int kidx, int vidx);
void casync__context_copy(lua_State *L, casync_task *t, int tidx);
int casync__context_of(lua_State *L, casync_task *by);
void casync__tcontext_open(lua_State *L);

/* scope.c: casync.scope (a scope that owns its tasks) */
void casync__scope_task_ended(lua_State *L, casync_ctx *lp, casync_task *t,
                              int tidx);
void casync__scope_open(lua_State *L);

/* interrupt.c: Ctrl-C during casync.run cancels the main task */
void casync__sigint_begin(lua_State *L, casync_ctx *lp, casync_task *main);
int casync__sigint_end(lua_State *L, casync_ctx *lp);

/* watchdog.c: tasks that block the loop */
void casync__watchdog_gate(casync_ctx *lp);
void casync__watchdog_open(lua_State *L);

#endif
