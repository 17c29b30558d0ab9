/* context.h: the per-state context, the bottom of casync's include graph.
 *
 * One casync_ctx per Lua state holds everything casync keeps per state:
 * the loop and the scheduler's handles and queue, the timers, the network
 * read buffer, the state of signals, threads and the watchdog, and every
 * libuv handle casync has open.  Lua-side state (task anchors, pins, ...)
 * lives in the user values of the context's userdata.  At lua_close one
 * ordered shutdown (context.c) closes it all.
 *
 * Layers, each including only the headers below it:
 *   context.h -> scheduler.h (scheduler, wait protocol, timers) -> prim.h
 *   (wait lists, channels, sync, combinators, threads) -> io.h (streams,
 *   sockets, DNS, files, processes, signals) -> http.h.
 */
#ifndef CASYNC_CONTEXT_H
#define CASYNC_CONTEXT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>
#include <uv.h>
#include <luv/lhandle.h>
#include "casync.h"

#if LUA_VERSION_NUM != 504
#error "casync needs Lua 5.4"
#endif

#define container_of(p, type, field) \
  ((type *)(void *)((char *)(p)-offsetof(type, field)))

typedef struct casync_ctx casync_ctx;
typedef struct casync_handle casync_handle;

/* The context, from upvalue 1 of every casync function. */
#define CASYNC_CTX(L) (*(casync_ctx **)lua_touserdata((L), lua_upvalueindex(1)))

/* User values of the context's userdata. */
enum {
  CTX_TASKS = 1, /* anchors of live tasks: ref -> task */
  CTX_COROS,     /* recycled coroutines */
  CTX_FAILED,    /* failed tasks nobody observed yet (weak keys) */
  CTX_PINS,      /* values kept alive for libuv: ref -> value */
  CTX_STDIO,     /* stdio streams by descriptor (weak values) */
  CTX_HTTP,      /* the HTTP server's hooks from casync.http */
  CTX_WATCHDOG,  /* {on_block, queued reports} */
  CTX_POOL,      /* casync.thread's default pool, made on first use */
  CTX_STANDINS,  /* luv stand-ins by handle class (light userdata) */
  CTX_CONTEXT, /* the root task-local context: {context =, context_shared =} */
  CTX_TASK_MT, /* the metatable casync.Task (set at spawn without a
                  lookup by name) */
  CTX_NUSER = CTX_TASK_MT
};

/* Parts of the state with something to stop at the end, in the order the
 * shutdown stops them (threads before the handles they post to). */
enum {
  CTX_PART_WATCHDOG,
  CTX_PART_THREADS,
  CTX_PART_SIGNALS,
  CTX_PART_TIMERS,
  CTX_NPARTS
};
typedef void (*casync_part_close)(casync_ctx *ctx);

/* ------------------------------------------------------------ handles
 * Every libuv handle casync opens begins with a casync_handle: allocated
 * with its block, linked into the context while open, its Lua userdata
 * pinned only while libuv may call back, freed in its close callback. */

typedef struct casync_hclass {
  const char *name;                /* "stream", "server", ... (reports) */
  void (*close)(casync_handle *h); /* at the end of the state: closes it
                                      touching no Lua (NULL: uv_close) */
  void (*free)(casync_handle *h);  /* libuv closed it: frees the block */
} casync_hclass;

struct casync_handle {
  luv_handle_t luvh; /* what the uv handle's data points at: luv's
                        uv.walk reads it as one of its own (a stand-in
                        that says it is closing) */
  casync_ctx *ctx;
  const casync_hclass *cls;
  casync_handle *next, *prev; /* in ctx->handles until freed */
  uv_handle_t *uvh;
  int npins, pin_ref; /* the userdata, anchored while requests fly */
  unsigned hflags;    /* CASYNC_H_* */
};
#define CASYNC_H_CLOSING 0x1u /* uv_close was called */

/* ------------------------------------------------------------ the context */

struct casync_task;
struct casync_tlist;
struct casync_watchdog;
struct casync_signals;
struct casync_hub;

struct casync_ctx {
  uv_loop_t *loop;
  int owns_loop;
  lua_State *L;           /* the main thread: callbacks run on it */
  int alive;              /* 0 once the state closed: no Lua from then */
  unsigned refs;          /* open handles and requests in flight that
                             point here: freed when 0 and not alive */
  luv_handle_t luvh;      /* the stand-in copied into every handle */
  casync_handle *handles; /* open handles, newest first */
  int nhandles;
  casync_part_close parts[CTX_NPARTS];
  /* the scheduler (sched.c, life.c, timer.c) */
  struct casync_task *current;               /* the task being resumed */
  struct casync_task *qhead, *qtail;         /* ready queue, FIFO */
  struct casync_task *held_head, *held_tail; /* set aside when main ended */
  uv_idle_t idle;             /* active while the queue is not empty */
  uv_check_t check;           /* the one point where the queue is drained */
  uv_timer_t timer;           /* armed for the earliest deadline */
  uv_timer_t grace;           /* bounds the wait for cancelled tasks in run */
  int core_open;              /* those four, not yet closed */
  struct casync_tlist **heap; /* lists of timers by earliest deadline */
  int heap_len, heap_cap;
  struct casync_tlist **tl_table; /* duration -> list */
  int tl_size, tl_count;
  struct casync_tlist *tl_free; /* empty lists kept for reuse */
  int tl_nfree;
  int timers;         /* timers armed */
  uint64_t armed_for; /* deadline the uv timer is armed for, 0 = none */
  int in_timer;       /* inside on_timer: rearm once at the end */
  lua_Integer next_id;
  lua_Integer next_obj_id; /* channel#3, lock#1, ...: ids for dumps */
  int self_ref;            /* the context userdata in the registry's
                              array part (casync__ctx_push_lp) */
  int *free_slots;         /* free slots of CTX_TASKS (a stack) */
  int nfree_slots, cap_free_slots, top_slot;
  /* metatables, for casync__check_class */
  const void *task_mt, *chan_mt, *queue_mt;
  int live;     /* tasks not yet ended */
  int running;  /* inside casync.run: 1, 2 once main ended */
  int draining; /* inside the drain (a libuv callback) */
  int grace_expired;
  uint64_t rng; /* select's random choice */
  int pool_len; /* recycled coroutines available */
  /* testing and seeing what runs (timer.c, sched.c, trace.c, debug.c) */
  uint64_t clock_offset; /* casync.now() = real time + this (ns) */
  int virtual_clock;     /* time jumps when every task waits on time */
  int external;          /* tasks waiting on I/O, threads, processes */
  int seeded;            /* ready tasks run in a seeded random order */
  uint64_t seed, seed_rng;
  uint64_t preempt_ns;        /* opt-in: a task running longer is yielded */
  int preempted;              /* preempt_ns was set once: hooks to mind */
  int slice_over;             /* a task was preempted: the drain ends */
  uint64_t run_start;         /* when the running task was resumed (ns) */
  struct casync_trace *trace; /* the recorder, NULL when off */
  int debug;                  /* debug mode: cycles, leaks, CPU time */
  int observing;              /* trace, preempted or debug: one test at
                                 each resume (casync__observe) */
  int root_context;           /* code outside tasks has context values */
  int trace_sentinel;         /* trace.c's collector sentinel is out there */
  /* makes the context of a TF_LAZY_CONTEXT task (http_scope.c) */
  void (*lazy_context)(lua_State *L, struct casync_task *t);
  /* published around each lua_resume for the watchdog thread: odd while
   * a task runs; only the loop's thread writes them */
  atomic_ulong run_seq;
  _Atomic(lua_State *) run_co;
  struct casync_watchdog *wd; /* NULL unless the watchdog is on */
  /* Ctrl-C during casync.run (interrupt.c) */
  struct casync_task *run_main;
  uv_signal_t *run_sigint;
  int sigint_count, interrupted, sigint_chained;
  int sigint_taken; /* a task waits for SIGINT itself (signal.c) */
  /* primitives and I/O */
  struct casync_hub *hub;     /* thread.c, made on first use */
  struct casync_signals *sig; /* signal.c, made on first use */
  char *scratch;              /* read buffer shared by all streams */
  int streams_open;           /* streams Lua has not closed */
  int pins;                   /* values anchored for libuv */
  int requests;               /* requests in flight (debug counts) */
  int http_blocks;            /* HTTP server and connection blocks */
  int fs_blocks;              /* fs request blocks not yet freed */
};

/* Call when trace, preempted or debug changes. */
#define casync__observe(lp) \
  ((lp)->observing = (lp)->trace != NULL || (lp)->preempted || (lp)->debug)

/* context.c */
casync_ctx *casync__ctx_get(lua_State *L);
void *casync__check_class_slow(lua_State *L, int idx, const char *name);

/* The userdata at idx if its metatable is mt (a metatable's address),
 * else an argument error naming the class: luaL_checkudata without its
 * look-up by name.  The usual case inline. */
static inline void *casync__check_class(lua_State *L, int idx, const void *mt,
                                        const char *name) {
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    int same = lua_topointer(L, -1) == mt;
    lua_pop(L, 1);
    if (same) return p;
  }
  return casync__check_class_slow(L, idx, name);
}
void casync__ctx_push(lua_State *L);
/* The same with the context at hand: an index into the registry's array
 * instead of a hashed look-up by address. */
#define casync__ctx_push_lp(L, lp) \
  ((void)lua_rawgeti((L), LUA_REGISTRYINDEX, (lp)->self_ref))
int casync__slot_new(casync_ctx *ctx);
void casync__slot_free(casync_ctx *ctx, int slot);
int casync__ctx_init(lua_State *L);
void casync__ctx_setfuncs(lua_State *L, const luaL_Reg *l);
void casync__ctx_unref(casync_ctx *ctx);
int casync__pin(lua_State *L, casync_ctx *ctx, int idx);
void casync__unpin(casync_ctx *ctx, int ref);
void casync__push_pinned(lua_State *L, int ref);
void casync__push_pinned_lp(lua_State *L, casync_ctx *ctx, int ref);
void casync__handle_init(casync_ctx *ctx, casync_handle *h,
                         const casync_hclass *cls, uv_handle_t *uvh);
void casync__handle_close(casync_handle *h);
casync_handle *casync__handle_of(uv_handle_t *uvh);
void casync__handle_pin(lua_State *L, casync_handle *h, int idx);
void casync__handle_unpin(casync_handle *h);
int casync__ctx_debug(lua_State *L);

/* signame.c: signals by name ("SIGTERM", "term") and number */
int casync__signal_number(lua_State *L, int arg);
const char *casync__signal_name(int signum);

/* error.c: error values (kind, code, message; tostring "kind: message") */
#define CASYNC_ERROR_MT "casync.Error"
int casync__error_push(lua_State *L, const char *kind, const char *code,
                       const char *fmt, ...);
int casync__error_is(lua_State *L, int idx, const char *kind);
const char *casync__tostring(lua_State *L, int idx);
int casync__error_uv(lua_State *L, const char *op, int uverr);
int casync__error_uv_path(lua_State *L, const char *op, const char *path,
                          const char *path2, int uverr);
void casync__error_open(lua_State *L);

#endif
