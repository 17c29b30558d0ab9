/* internal.h: structures shared by casync's C files and every casync__*
 * declaration.  Nothing here is exported from the module. */
#ifndef CASYNC_INTERNAL_H
#define CASYNC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>
#include <uv.h>
#include "casync.h"

#if LUA_VERSION_NUM != 504
#error "casync needs Lua 5.4"
#endif

#define CASYNC_TASK_MT "casync.Task"
#define CASYNC_ERROR_MT "casync.Error"

/* The context, from upvalue 1 of every casync function. */
#define CASYNC_CTX(L) (*(casync_ctx **)lua_touserdata((L), lua_upvalueindex(1)))

/* A continuation k (with context ctx) goes on only when the scheduler
 * resumed task t.  Resumed by anyone else (coroutine.resume on the task's
 * coroutine from Lua), it suspends again at once, its wait untouched, and
 * that resume returns true and a message (see casync__not_resumed). */
#define CASYNC_CHECK_RESUMED(L, t, ctx, k)                               \
  do {                                                                   \
    if ((t)->loop->current != (t)) return casync__not_resumed((L), (ctx), (k)); \
  } while (0)

#define container_of(p, type, field) \
  ((type *)(void *)((char *)(p) - offsetof(type, field)))

typedef struct casync_ctx casync_ctx;
typedef struct casync_task casync_task;
typedef struct casync_tnode casync_tnode;
typedef struct casync_obs casync_obs;

/* A deadline in the loop's timer heap.  Embedded in whatever waits on it. */
struct casync_tnode {
  uint64_t deadline; /* ns on the uv_hrtime clock */
  uint64_t seq;      /* FIFO order among equal deadlines */
  int index;         /* position in the heap, -1 when not armed */
  void (*fire)(casync_ctx *lp, casync_tnode *n);
};

/* An observer of a task's end: a node in the task's observer list. */
struct casync_obs {
  casync_obs *next, *prev;
  void (*notify)(casync_ctx *lp, casync_obs *o, casync_task *ended);
};

/* A task waiting on a channel, semaphore, event or condition: a node in that
 * object's FIFO of waiters (several, one per case, for select). */
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
enum { WN_WAITING, WN_OK, WN_CLOSED, WN_TIMEOUT };

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

/* Undoes a task's current wait when it is cancelled.  Returns 1 when the
 * task may be woken with the cancellation now, 0 when the wait will wake it
 * itself later (a combinator unwinding the tasks it cancelled). */
typedef int (*casync_cancel_fn)(casync_ctx *lp, casync_task *t);

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
  const char *waiting_on;   /* what it waits in, for messages */
  casync_cancel_fn cancel_wait;
  void *wait_data;          /* the current wait's own state */
  casync_tnode timer;       /* its sleep or its timeout */
  union {                   /* never both at once: */
    casync_obs join;        /* in task:wait(), its node in that task's observers */
    casync_wnode wn;        /* in a channel/sync operation, its waiter node */
  } u;
  casync_obs *observers;    /* who waits for this task to end */
};

/* The per-Lua-state context: a userdata in the registry and the first
 * upvalue of every casync function.  User values:
 *   1: task anchors (ref -> task), 2: recycled coroutines,
 *   3: failed tasks not yet observed (weak keys), 4: the message handler. */
struct casync_ctx {
  uv_loop_t *loop;
  int owns_loop;
  lua_State *L;             /* the main thread: callbacks run on it */
  casync_task *current;     /* the task being resumed, or NULL */
  casync_task *qhead, *qtail; /* ready queue, FIFO */
  casync_task *held_head, *held_tail; /* the queue set aside when main ended */
  uv_idle_t idle;           /* active while the queue is not empty */
  uv_check_t check;         /* the one point where the queue is drained */
  uv_timer_t timer;         /* armed for the heap's earliest deadline */
  casync_tnode **heap;
  int heap_len, heap_cap;
  uint64_t timer_seq;
  uint64_t armed_for;       /* deadline the uv timer is armed for, 0 = none */
  lua_Integer next_id;
  int live;                 /* tasks not yet ended */
  int running;              /* inside casync.run: 1, 2 once main ended */
  int draining;             /* inside the drain (a libuv callback) */
  uint64_t rng;             /* select's random choice */
  int closing;
  int pool_len;             /* recycled coroutines available */
  int handles_open;         /* our uv handles not yet closed */
  int in_timer;             /* inside on_timer: rearm once at the end */
  uv_timer_t grace;         /* bounds the wait for cancelled tasks in run */
  int grace_expired;
};

/* loop.c */
casync_ctx *casync__loop_get(lua_State *L);
void casync__loop_open(lua_State *L);
int casync__loop_init(lua_State *L);
void casync__loop_push(lua_State *L);

/* sched.c */
void casync__enqueue(casync_ctx *lp, casync_task *t);
void casync__wake(casync_ctx *lp, casync_task *t, int wake);
casync_task *casync__require_task(lua_State *L, casync_ctx *lp,
                                  const char *fname);
int casync__suspend(lua_State *L, casync_task *t, const char *what,
                    casync_cancel_fn cancel, lua_KFunction k);
int casync__raise_cancel(lua_State *L, casync_task *t);
void casync__drain(casync_ctx *lp);
int casync__not_resumed(lua_State *L, lua_KContext ctx, lua_KFunction k);
void casync__unhold(casync_ctx *lp);
void casync__cancel(lua_State *L, casync_ctx *lp, casync_task *t,
                    int msgidx);
int casync__push_task(lua_State *L, casync_ctx *lp, casync_task *t);
void casync__obs_link(casync_task *t, casync_obs *o);
void casync__obs_unlink(casync_task *t, casync_obs *o);
void casync__report_unobserved(lua_State *L, casync_task *t, int tidx);
int casync__traceback_msgh(lua_State *L);

/* task.c */
casync_task *casync__check_task(lua_State *L, int idx);
casync_task *casync__spawn(lua_State *L, casync_ctx *lp, int fidx,
                           int nargs, int opts_name_idx);
int casync__push_results(lua_State *L, casync_task *t, int tidx, int first);
int casync__push_error_of(lua_State *L, casync_task *t, int tidx);
void casync__extras(lua_State *L, int tidx);
void casync__task_open(lua_State *L);
void casync__task_describe(lua_State *L, casync_task *t, int tidx);
int casync__is_callable(lua_State *L, int idx);
void casync__check_callable(lua_State *L, int arg);

/* timer.c */
void casync__timer_add(casync_ctx *lp, casync_tnode *n, double seconds);
void casync__timer_add_ns(casync_ctx *lp, casync_tnode *n, uint64_t deadline);
void casync__timer_remove(casync_ctx *lp, casync_tnode *n);
double casync__check_seconds(lua_State *L, int arg, int allow_nil);
void casync__timer_open(lua_State *L);

/* channel.c, sync.c */
void casync__wq_push(casync_wqueue *q, casync_wnode *w);
casync_wnode *casync__wq_pop(casync_wqueue *q);
void casync__wq_remove(casync_wnode *w);
void casync__channel_open(lua_State *L);
void casync__sync_open(lua_State *L);

/* combinators.c */
void casync__combinators_open(lua_State *L);

/* error.c */
int casync__error_push(lua_State *L, const char *kind, const char *code,
                       const char *fmt, ...);
int casync__error_is(lua_State *L, int idx, const char *kind);
const char *casync__tostring(lua_State *L, int idx);
void casync__error_open(lua_State *L);

/* module.c: register functions that take the context as upvalue 1 */
void casync__setfuncs(lua_State *L, const luaL_Reg *l);

#endif
