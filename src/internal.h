/* internal.h: structures shared by casync's C files and every casync__*
 * declaration.  Nothing here is exported from the module. */
#ifndef CASYNC_INTERNAL_H
#define CASYNC_INTERNAL_H

#include <stdatomic.h>
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
  struct casync_tlist **heap;  /* lists of timers by earliest deadline */
  int heap_len, heap_cap;
  struct casync_tlist **tl_table; /* duration -> list */
  int tl_size, tl_count;
  struct casync_tlist *tl_free;   /* empty lists kept for reuse */
  int tl_nfree;
  int timers;               /* timers armed */
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
  /* published around each lua_resume for the watchdog thread (watchdog.c):
   * odd while a task runs; only this thread writes them */
  atomic_ulong run_seq;
  _Atomic(lua_State *) run_co;
  struct casync_watchdog *wd; /* NULL unless the watchdog is on */
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

/* loop.c */
casync_ctx *casync__loop_get(lua_State *L);
void casync__loop_open(lua_State *L);
int casync__loop_init(lua_State *L);
void casync__loop_push(lua_State *L);
void *casync__loop_luvh(casync_ctx *lp);

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
void casync__timer_free_all(casync_ctx *lp);
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

/* copy.c, thread.c: worker threads (issue 5) */
typedef struct casync_buf { char *data; size_t len, cap; } casync_buf;
void casync__buf_free(casync_buf *b);
int casync__copy_encode(lua_State *L, int idx, int n, casync_buf *b,
                        const char *root, lua_Integer first, int fn_first);
int casync__copy_decode(lua_State *L, const casync_buf *b, size_t from);
void casync__thread_open(lua_State *L);

/* error.c */
int casync__error_push(lua_State *L, const char *kind, const char *code,
                       const char *fmt, ...);
int casync__error_is(lua_State *L, int idx, const char *kind);
const char *casync__tostring(lua_State *L, int idx);
void casync__error_open(lua_State *L);

/* module.c: register functions that take the context as upvalue 1 */
void casync__setfuncs(lua_State *L, const luaL_Reg *l);

/* error.c (libuv errors) */
int casync__error_uv(lua_State *L, const char *op, int uverr);
int casync__error_uv_path(lua_State *L, const char *op, const char *path,
                          const char *path2, int uverr);

/* fs.c, file.c: casync.fs (issue 5) */
#define CASYNC_FILE_MT "casync.File"

/* What a request does; chains go through several steps. */
enum {
  FSOP_SIMPLE = 1, /* one libuv call; results from req (stat, rename, ...) */
  FSOP_READ_FILE,
  FSOP_WRITE_FILE,
  FSOP_MKDIR_P,
  FSOP_REMOVE,
  FSOP_FREAD,  /* file:read */
  FSOP_FWRITE, /* file:write */
  FSOP_FREAD_ALL
};

/* The libuv side of an open file (file.c): freed when Lua let go and no
 * request uses it. */
typedef struct casync_file {
  uv_file fd;     /* -1 once closed */
  int inflight;   /* requests using fd */
  int closing;    /* close() was called (while requests were in flight) */
  int lua_gone;   /* the userdata was collected or closed */
} casync_file;

/* A request: libuv's from uv_fs_* until its callback, then its userdata's
 * (on the waiting task's stack). */
typedef struct casync_fsreq {
  uv_fs_t req;
  casync_ctx *lp;
  casync_task *task; /* the waiting task, NULL once it stopped waiting */
  struct fs_ud *ud;  /* the userdata owning it after the callback */
  int op, step;
  int done;          /* the operation (the whole chain) ended */
  int status;        /* 0 or the first libuv error */
  const char *failed_op; /* the step that failed ("open", "read", ...) */
  int req_dirty;     /* req needs uv_fs_req_cleanup */
  uv_file fd;        /* a chain's own descriptor, -1 when none */
  casync_file *file; /* file methods: the file (its inflight counted) */
  char *buf;         /* data read or to write (owned) */
  size_t len, cap, pos;
  int64_t offset;    /* file offset, -1 for the current position */
  int flags, mode;
  char *path;        /* chains: a copy of the path */
  size_t plen, pdone; /* mkdir -p: the prefix made so far */
  uv_stat_t st;
} casync_fsreq;

void casync__fs_open(lua_State *L);
casync_fsreq *casync__fs_req(lua_State *L, casync_ctx *lp, int op);
casync_task *casync__fs_task(lua_State *L, const char *fname);
int casync__fs_wait(lua_State *L, casync_task *t, casync_fsreq *r, int rc,
                    int ctx, const char *what, lua_KFunction k);
int casync__fs_k(lua_State *L, int status, lua_KContext ctx);
int casync__fs_read_more(casync_fsreq *r);
int casync__fs_write_more(casync_fsreq *r);
void casync__fs_cb(uv_fs_t *req);
void casync__fs_file_release(casync_file *f);
const char *casync__fs_check_path(lua_State *L, int arg);
int casync__fs_opt_perm(lua_State *L, int arg, int def);
void casync__file_open(lua_State *L);
int casync__fs_push_file(lua_State *L, uv_file fd, int pidx);
int casync__fs_fileno(lua_State *L, int idx);

/* signal.c, process.c, watchdog.c (issue 5) */
int casync__signal_number(lua_State *L, int arg);
const char *casync__signal_name(int signum);
void casync__signal_open(lua_State *L);
void casync__process_open(lua_State *L);
void casync__watchdog_gate(casync_ctx *lp);
void casync__watchdog_open(lua_State *L);
void casync__sigint_begin(lua_State *L, casync_ctx *lp, casync_task *main);
int casync__sigint_end(lua_State *L, casync_ctx *lp);

/* ------------------------------------------------ network I/O (issue 4)
 * stream.c, server.c, tcp.c, pipe.c, dns.c.  Their Lua functions have two
 * upvalues: the loop context and the userdata holding the casync_net. */
#define CASYNC_STREAM_MT "casync.Stream"
#define CASYNC_SERVER_MT "casync.Server"
#define CASYNC_NET(L) \
  (*(casync_net **)lua_touserdata((L), lua_upvalueindex(2)))
/* In continuation k(kc): t is the task the scheduler resumed, or k yields
 * again at once (see CASYNC_CHECK_RESUMED). */
#define CASYNC_NET_RESUMED(L, t, kc, k)                                   \
  do {                                                                    \
    (t) = CASYNC_CTX(L)->current;                                         \
    if (!(t) || (t)->co != (L)) return casync__not_resumed((L), (kc), (k)); \
  } while (0)

typedef struct casync_net casync_net;
typedef struct casync_stream casync_stream;
typedef struct casync_server casync_server;
typedef struct casync_conn casync_conn;

enum { CASYNC_TCP = 1, CASYNC_PIPE, CASYNC_TTY }; /* kinds of stream */

/* Per-Lua-state network state, malloc'd: libuv-owned blocks (streams,
 * servers, resolver requests) keep a reference to it, so a callback that
 * comes after the Lua state let go (alive == 0) touches no Lua object. */
struct casync_net {
  lua_State *L;       /* the main thread, NULL once not alive */
  casync_ctx *lp;
  int alive;          /* cleared by the net userdata's __gc */
  unsigned refs;      /* blocks still pointing here */
  char *scratch;      /* read buffer shared by all streams (64 KiB) */
  int streams;        /* stream blocks not yet freed by libuv */
  int open;           /* streams Lua has not closed */
  int servers;        /* server blocks not yet freed */
  int pins;           /* anchors held for libuv (pinned objects, data) */
  int http_blocks;    /* HTTP server and connection blocks not yet freed */
  void *luvh;         /* the luv_handle_t every stream and server handle's
                         data points at (luv reads handle->data as its own:
                         uv.walk); the blocks are found from the handles */
};

/* A C owner of a stream (server.c's handler connections, the HTTP
 * server's connections): told when the stream closes and, when on_data is
 * set, when bytes came or reading ended (s->rerr) instead of a Lua
 * reader; the owner then parses s->rbuf [rhead, rtail) itself and calls
 * casync__stream_consume.  s->owner_data is its own. */
typedef struct casync_stream_owner {
  void (*on_data)(casync_stream *s);
  void (*on_closed)(casync_stream *s);
} casync_stream_owner;

/* The libuv side of a stream: owned by libuv from init until on_close. */
struct casync_stream {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;
  casync_net *net;
  void *ud;                 /* the Lua userdata, NULL once Lua let go */
  int kind;
  unsigned flags;
  char *rbuf;               /* read buffer: bytes [rhead, rtail) of rcap */
  size_t rhead, rtail, rcap;
  size_t rscan;             /* bytes already searched for the delimiter */
  int rerr;                 /* sticky: UV_EOF or the read error, 0 = none */
  int rmode;                /* what the waiting reader needs: */
  size_t rn, rmax, dlen;
  const char *delim;        /* (on the waiting reader's stack) */
  casync_task *reader, *writer, *shutter, *connecter; /* waiting tasks */
  void *wwait;              /* the write request the writer waits on */
  int npins, pin_ref;       /* the userdata, pinned while requests fly */
  uv_connect_t creq;
  uv_shutdown_t sreq;
  const casync_stream_owner *owner; /* its C owner, or NULL */
  void *owner_data;
  int stdio_fd, stdio_flags; /* fd 0-2: file flags to restore at close */
};

/* net.c */
void casync__net_open(lua_State *L);
int casync__net_stats(lua_State *L);
void casync__net_setfuncs(lua_State *L, const luaL_Reg *l);
int casync__net_anchor(lua_State *L, casync_net *net, int idx);
void casync__net_unanchor(casync_net *net, int ref);
void casync__net_push_anchor(lua_State *L, int ref);
void casync__net_unref(casync_net *net);
uint64_t casync__net_deadline(double seconds);
casync_task *casync__net_task(lua_State *L, const char *fname);
int casync__net_suspend(lua_State *L, casync_task *t, const char *what,
                        casync_cancel_fn cancel, void *wait_data,
                        uint64_t deadline, lua_KFunction k, lua_KContext kc);
int casync__net_timeout_err(lua_State *L, const char *op);
double casync__net_opt_seconds(lua_State *L, int arg, const char *field);
lua_Integer casync__net_opt_int(lua_State *L, int arg, const char *field,
                                lua_Integer def);
int casync__net_push_addr(lua_State *L, const struct sockaddr *sa);
int casync__net_parse_ip(const char *host, int port,
                         struct sockaddr_storage *ss);
int casync__net_bind_addr(casync_net *net, const char *host, int port,
                          struct sockaddr_storage *ss);

/* stream.c */
casync_stream *casync__stream_new(lua_State *L, casync_net *net, int kind,
                                  int *uverr);
casync_stream *casync__stream_new_fd(lua_State *L, casync_net *net, int kind,
                                     int fd, int *uverr);
casync_stream *casync__stream_of(lua_State *L, int idx);
void casync__stream_close(casync_stream *s, int wake);
int casync__stream_connect(lua_State *L, casync_task *t, int sidx,
                           const struct sockaddr *addr, const char *path,
                           uint64_t deadline, lua_KFunction k,
                           lua_KContext kc);
int casync__stream_connect_status(lua_State *L, int sidx);
void casync__stream_open(lua_State *L);
void casync__stream_consume(casync_stream *s, size_t n);
int casync__stream_read_start(casync_stream *s);
void casync__stream_read_stop(casync_stream *s);

/* stream_send.c: writes for a C owner.  done(arg, status) runs once libuv
 * has written (or failed: UV_ECANCELED when the stream closed) the part
 * the kernel did not take at once. */
typedef void (*casync_send_cb)(void *arg, int status);
int casync__stream_send(casync_stream *s, const uv_buf_t *bufs, unsigned n,
                        casync_send_cb done, void *arg);
size_t casync__stream_write_queue(casync_stream *s);
int casync__stream_shutdown(casync_stream *s, uv_shutdown_t *req,
                            uv_shutdown_cb cb);

/* stdio.c */
void casync__stdio_open(lua_State *L);

/* server.c */
casync_server *casync__server_new(lua_State *L, casync_net *net, int kind,
                                  int hidx);
uv_stream_t *casync__server_handle(casync_server *srv);
int casync__server_listen(lua_State *L, casync_server *srv, int sidx,
                          int backlog, const char *path);
void casync__server_close(lua_State *L, casync_server *srv, int cancel);
/* Instead of a handler task per connection: hook(L, data, s, sidx) with
 * the new stream's userdata at sidx (protected, on the main thread). */
typedef void (*casync_accept_hook)(lua_State *L, void *data, casync_stream *s,
                                   int sidx);
void casync__server_set_accept(casync_server *srv, casync_accept_hook hook,
                               void *data);
void casync__server_open(lua_State *L);

/* tcp.c, pipe.c, dns.c */
void casync__tcp_open(lua_State *L);
void casync__pipe_open(lua_State *L);
int casync__dns_lookup(lua_State *L, casync_task *t, const char *host,
                       const char *service, int family, uint64_t deadline,
                       lua_KFunction k, lua_KContext kc);
struct addrinfo *casync__dns_result(lua_State *L, int idx, int *status);
void casync__dns_open(lua_State *L);

/* http.c, http_server.c (issue 4; the message layer is http_parse.h) */
void casync__http_open(lua_State *L);
void casync__http_server_open(lua_State *L);
void casync__ws_open(lua_State *L);

#endif
