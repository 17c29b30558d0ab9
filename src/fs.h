/* fs.h: what the parts of casync.fs share.  Private to them: fs_req.c (a
 * request, its wait and its results), fs_io.c (descriptors: opening without
 * blocking, reads and writes on the pool or by readiness), fs.c (the
 * casync.fs table and the one-call operations), fs_whole.c (read_file,
 * write_file), fs_tree.c (mkdir -p, remove), file.c (fs.open and the file
 * objects).  Other files use io.h's casync__fs_* functions.
 *
 * A request is a chain of steps: each step starts one libuv call (or one
 * wait for readiness) and names the step that continues with its result;
 * the last one ends the request (casync__fs_finish).
 */
#ifndef CASYNC_FS_H
#define CASYNC_FS_H

#include <sys/types.h>
#include "io.h"

typedef struct casync_fsreq casync_fsreq;
typedef struct casync_fspoll casync_fspoll;
typedef struct fs_ud fs_ud;

/* What a request does when its step ends with res (libuv's convention:
 * >= 0 success, < 0 a UV_E* error). */
typedef void (*casync_fs_next)(casync_fsreq *r, ssize_t res);
/* Pushes the results of a request that succeeded; returns how many. */
typedef int (*casync_fs_push)(lua_State *L, casync_fsreq *r);

/* The libuv side of an open file (file.c): freed when Lua let go and no
 * request uses it. */
typedef struct casync_file {
  uv_file fd;          /* -1 once closed */
  casync_fspoll *poll; /* a FIFO, tty, ...: I/O by readiness (fs_io.c) */
  int inflight;        /* requests using fd */
  int closing;         /* close() was called (while requests were in flight) */
  int lua_gone;        /* the userdata was collected or closed */
} casync_file;

/* A request: libuv's from uv_fs_* until its callback, then its userdata's
 * (on the waiting task's stack).  Abandoned (its task cancelled, or its
 * userdata collected), it goes on only to release what it holds, and is
 * freed as soon as it ends. */
struct casync_fsreq {
  uv_fs_t req;
  uv_work_t work;   /* the open step (fs_io.c) */
  uv_req_t *active; /* req or work while libuv has it */
  int must_run;     /* the step in flight must not be cancelled */
  casync_ctx *lp;
  casync_task *task;     /* the waiting task; NULL once woken or abandoned */
  fs_ud *ud;             /* the userdata, NULL once collected */
  casync_fs_next next;   /* the step that takes the result of this one */
  casync_fs_push push;   /* the results */
  int done;              /* the request (the whole chain) ended */
  int abandoned;         /* nobody will take its results */
  int status;            /* 0 or the first libuv error */
  const char *failed_op; /* the step that failed ("open", "read", ...) */
  int req_dirty;         /* req needs uv_fs_req_cleanup */
  uv_file fd;            /* a chain's own descriptor, -1 when none */
  casync_fspoll *poll;   /* its readiness watcher (fs_io.c), NULL for none */
  casync_file *file;     /* file methods: the file (its inflight counted) */
  char *buf;             /* data read or to write (owned) */
  size_t len, cap, pos;
  int64_t offset;     /* file offset, -1 for the current position */
  int flags, mode;    /* open: flags and permissions; mkdir: mode */
  char *path;         /* chains: a copy of the path */
  size_t plen, pdone; /* mkdir -p: the prefix made so far */
  /* the open step (fs_io.c) */
  unsigned ftype;     /* S_IFMT bits of what was opened */
  int64_t fsize;      /* its size (st_size) */
  int wres;           /* the worker's result: 0, a UV_E* error, ... */
  int retry_ms;       /* waiting for a FIFO's reader: the next pause */
  casync_tnode retry; /* the pause */
  /* waiting for readiness (fs_io.c) */
  casync_fspoll *pollq; /* the watcher whose queue it is in */
  casync_fsreq *pnext;  /* the next in that queue */
  int pwrite;           /* in its queue of writers (else readers) */
  uv_buf_t pbuf;        /* what to read into or write from */
  int64_t poff;         /* where (-1: at the position) */
};

/* fs_req.c */
casync_fsreq *casync__fs_req(lua_State *L, casync_ctx *lp, casync_fs_push push,
                             const char *op);
uv_fs_t *casync__fs_step(casync_fsreq *r, casync_fs_next next);
void casync__fs_started(casync_fsreq *r, int rc);
void casync__fs_cb(uv_fs_t *req);
void casync__fs_fail(casync_fsreq *r, const char *op, int status);
void casync__fs_finish(casync_fsreq *r);
void casync__fs_simple_done(casync_fsreq *r, ssize_t res);
int casync__fs_wait(lua_State *L, casync_task *t, casync_fsreq *r, int ctx,
                    lua_KFunction k);
int casync__fs_k(lua_State *L, int status, lua_KContext ctx);
int casync__fs_results(lua_State *L, int ctx);
int casync__fs_push_true(lua_State *L, casync_fsreq *r);
int casync__fs_push_data(lua_State *L, casync_fsreq *r);
const char *casync__fs_check_path(lua_State *L, int arg);
int casync__fs_check_perm(lua_State *L, int arg, int in_opts, int def);
void casync__fs_req_open(lua_State *L);
#define CASYNC_FS_LOOP(L) (CASYNC_CTX(L)->loop)

/* fs_io.c */
void casync__fs_open_fd(casync_fsreq *r, casync_fs_next next);
void casync__fs_read_more(casync_fsreq *r, casync_fs_next next);
void casync__fs_read_into(casync_fsreq *r, casync_fs_next next);
void casync__fs_write_more(casync_fsreq *r, casync_fs_next next);
void casync__fs_close_fd(casync_fsreq *r, casync_fs_next next);
int casync__fs_abort_wait(casync_fsreq *r);
void casync__fs_poll_close(casync_fspoll *p);
void casync__fs_poll_flush(casync_fspoll *p);

/* fs.c, fs_whole.c, fs_tree.c, file.c: their functions in casync.fs */
void casync__fs_whole_open(lua_State *L);
void casync__fs_tree_open(lua_State *L);
void casync__file_open(lua_State *L);
void casync__fs_file_release(casync_file *f);
int casync__fs_push_stat(lua_State *L, casync_fsreq *r);

#endif
