/* fs_req.c: a casync.fs request (see fs.h): its block and userdata, the
 * steps of its chain, the task's wait on it, its results, and the checks
 * of the arguments every fs function shares.
 *
 * Ownership (STYLE 5): a request block is libuv's from the moment a step
 * hands it to uv_fs_* (or to a readiness watcher) until that step's
 * callback; between steps and after the last one it belongs to a userdata
 * on the waiting task's stack, whose continuation or __gc frees it.
 *
 * A request nobody will take the results of (its task was cancelled, its
 * userdata collected) is abandoned: a wait that can be cut short (for
 * readiness, for a FIFO's reader) ends at once, a step in the thread pool
 * is cancelled if no worker took it yet, and the chain goes on only to
 * close what it opened.  When it ends, the block (its descriptor, its
 * buffers) is freed then and there, not when the GC gets to the userdata:
 * a program that cancels many opens must not run out of descriptors while
 * its heap is large.
 */
#include <stdlib.h>
#include <string.h>
#include "fs.h"

#define FS_REQ_MT "casync.FsRequest"

struct fs_ud {
  casync_fsreq *r; /* NULL once freed */
};

/* ================================================================ blocks */

/* Frees what libuv keeps in r's request after a call (paths, listings). */
static void cleanup(casync_fsreq *r) {
  if (r->req_dirty) {
    uv_fs_req_cleanup(&r->req);
    r->req_dirty = 0;
  }
}

static void free_req(casync_fsreq *r) {
  cleanup(r);
  if (r->poll) casync__fs_poll_close(r->poll);
  if (r->fd >= 0) { /* opened, but nobody took it */
    uv_fs_t req;    /* synchronous: close(2) of a local file does not block */
    uv_fs_close(NULL, &req, r->fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  if (r->file) {
    r->file->inflight--;
    casync__fs_file_release(r->file);
  }
  free(r->buf);
  free(r->path);
  r->lp->fs_blocks--;
  casync__ctx_unref(r->lp);
  free(r);
}

/* Nobody will take r's results: end what can be ended now, let the rest
 * finish on its own (casync__fs_finish frees r then).  r may be freed on
 * return. */
static void abandon(casync_fsreq *r) {
  r->abandoned = 1;
  if (r->task) r->task->wait_obj = NULL; /* r may go before its task */
  r->task = NULL;
  if (r->active) {
    if (!r->must_run) uv_cancel(r->active); /* if no worker took it yet */
  } else if (!casync__fs_abort_wait(r)) {   /* it never started */
    casync__fs_fail(r, r->failed_op, UV_ECANCELED);
    casync__fs_finish(r);
  }
}

static int req_gc(lua_State *L) {
  fs_ud *u = lua_touserdata(L, 1);
  casync_fsreq *r = u->r;
  casync_task *t;
  if (!r) return 0;
  u->r = NULL;
  r->ud = NULL;
  if (r->done) {
    free_req(r);
    return 0;
  }
  t = r->task;
  abandon(r);
  /* The userdata lives on the waiting task's stack: only a coroutine
   * closed from outside (coroutine.close) lets go of it while the task
   * waits.  Nothing will wake that task now, so wake it here: the
   * scheduler ends it as cancelled. */
  if (t && t->state == T_WAITING && lua_status(t->co) != LUA_YIELD)
    casync__wake(t->loop, t, WAKE_CANCEL);
  return 0;
}

/* Pushes a new request userdata and returns its block; op names the
 * function in errors until a step says which call failed.  Raises on
 * memory. */
casync_fsreq *casync__fs_req(lua_State *L, casync_ctx *lp, casync_fs_push push,
                             const char *op) {
  fs_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  casync_fsreq *r;
  u->r = NULL;
  luaL_setmetatable(L, FS_REQ_MT);
  r = calloc(1, sizeof *r);
  if (!r) luaL_error(L, "not enough memory");
  r->lp = lp;
  lp->refs++;     /* until the block is freed */
  lp->requests++; /* until it is done */
  lp->fs_blocks++;
  r->push = push;
  r->failed_op = op;
  r->fd = -1;
  r->offset = -1;
  r->req.data = r;
  r->work.data = r;
  r->ud = u;
  u->r = r;
  return r;
}

/* ================================================================= steps */

/* r's libuv request, made ready for the next uv_fs_* call, whose result
 * goes to next. */
uv_fs_t *casync__fs_step(casync_fsreq *r, casync_fs_next next) {
  cleanup(r);
  r->req_dirty = 1;
  r->next = next;
  r->active = (uv_req_t *)&r->req;
  r->must_run = 0;
  return &r->req;
}

/* After a uv_fs_* call: rc < 0 means it did not start and no callback
 * will come, so the step ends now with that error. */
void casync__fs_started(casync_fsreq *r, int rc) {
  if (rc < 0) {
    r->active = NULL;
    r->next(r, rc);
  }
}

/* The callback of every uv_fs_* call. */
void casync__fs_cb(uv_fs_t *req) {
  casync_fsreq *r = req->data;
  r->active = NULL;
  r->next(r, req->result);
}

/* Records the first failure of a chain. */
void casync__fs_fail(casync_fsreq *r, const char *op, int status) {
  if (r->status == 0) {
    r->status = status;
    r->failed_op = op;
  }
}

/* The request ended (r->status set): wake the task, or free the block when
 * nobody waits for it. */
void casync__fs_finish(casync_fsreq *r) {
  r->done = 1;
  r->active = NULL;
  r->lp->requests--;
  if (r->file) { /* the descriptor is free for close() now */
    r->file->inflight--;
    casync__fs_file_release(r->file);
    r->file = NULL;
  }
  if (r->abandoned) {
    if (r->ud) r->ud->r = NULL;
    free_req(r);
    return;
  }
  if (r->task) {
    casync_task *t = r->task;
    r->task = NULL;
    casync__wake(r->lp, t, WAKE_OK);
  }
}

/* The one step of a one-call request; its results stay in req. */
void casync__fs_simple_done(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, r->failed_op, (int)res);
  casync__fs_finish(r);
}

/* ============================================================== waiting */

static int fs_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  if (t->wait_obj) abandon(t->wait_obj); /* NULL: already abandoned */
  return 1;
}

/* A woken file operation is done: its result is kept. */
static void fs_describe(lua_State *L, casync_task *t) {
  casync_fsreq *r = t->wait_obj;
  const char *op = r && r->failed_op ? r->failed_op : "file operation";
  if (r && r->path) lua_pushfstring(L, "fs %s '%s'", op, r->path);
  else lua_pushfstring(L, "fs %s", op);
}

static const casync_wait_kind fs_wait = {"fs", "file operation", fs_cancel,
                                         CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL,
                                         fs_describe};

/* Suspends the running task t until request r (its userdata at index ctx
 * of L) ends, then continues in k; at once if it already ended (its first
 * step could not start). */
int casync__fs_wait(lua_State *L, casync_task *t, casync_fsreq *r, int ctx,
                    lua_KFunction k) {
  if (r->done) {
    t->wake = WAKE_OK;
    t->wait = &fs_wait;
    return k(L, LUA_OK, (lua_KContext)ctx);
  }
  r->task = t;
  return casync__park(L, t, &fs_wait, r, 0, k, (lua_KContext)ctx);
}

/* Pushes the results of the request whose userdata is at ctx (the call's
 * arguments below it: a path at 1 for path functions, the file at 1 for
 * methods) and frees it; returns how many.  Failures push nil and the
 * error, whose message names the step that failed and the path. */
int casync__fs_results(lua_State *L, int ctx) {
  fs_ud *u = lua_touserdata(L, ctx);
  casync_fsreq *r = u->r;
  int n = 2;
  if (r->status < 0) {
    const char *op = r->failed_op ? r->failed_op : "fs";
    const char *path = NULL, *path2 = NULL;
    if (luaL_testudata(L, 1, CASYNC_FILE_MT)) {
      lua_getiuservalue(L, 1, 1);
      path = lua_tostring(L, -1);
    } else {
      path = lua_tostring(L, 1);
      if (ctx > 2 && lua_type(L, 2) == LUA_TSTRING &&
          (!strcmp(op, "rename") || !strcmp(op, "copyfile") ||
           !strcmp(op, "symlink")))
        path2 = lua_tostring(L, 2);
    }
    lua_pushnil(L);
    casync__error_uv_path(L, op, path, path2, r->status);
  } else n = r->push(L, r);
  u->r = NULL;
  r->ud = NULL;
  free_req(r);
  return n;
}

/* The continuation of every fs call but dir. */
int casync__fs_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, ctx, casync__fs_k);
  casync__woken(L, t);
  return casync__fs_results(L, (int)ctx);
}

/* Results of an operation that only succeeds or fails. */
int casync__fs_push_true(lua_State *L, casync_fsreq *r) {
  (void)r;
  lua_pushboolean(L, 1);
  return 1;
}

/* Results of a read to the end: the bytes read ("" for none). */
int casync__fs_push_data(lua_State *L, casync_fsreq *r) {
  lua_pushlstring(L, r->buf ? r->buf : "", r->len);
  return 1;
}

/* ============================================================ arguments */

/* A path argument: a string, not empty, without zero bytes (the C calls
 * would see only the part before it). */
const char *casync__fs_check_path(lua_State *L, int arg) {
  size_t len;
  const char *p = luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, len > 0, arg, "path must not be empty");
  luaL_argcheck(L, strlen(p) == len, arg, "path contains a zero byte");
  return p;
}

/* Octal digits to permissions: -1 if not digits, -2 above 07777. */
static int parse_octal(const char *s) {
  int m = 0;
  if (!*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '7') return -1;
    m = m * 8 + (*s - '0');
    if (m > 07777) return -2;
  }
  return m;
}

/* A permission argument: an integer (0644 written as 420) or octal digits
 * ("644", "0644"); nil gives def, or raises when def < 0 (required).  With
 * in_opts, the field mode of the table at arg. */
int casync__fs_check_perm(lua_State *L, int arg, int in_opts, int def) {
  const char *name = in_opts ? "opts.mode" : "mode";
  int idx = arg, m = def, isint;
  lua_Integer v;
  if (in_opts) {
    lua_getfield(L, arg, "mode");
    idx = lua_gettop(L);
  }
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL:
    if (def < 0) luaL_typeerror(L, arg, "integer or octal string");
    break;
  case LUA_TSTRING:
    m = parse_octal(lua_tostring(L, idx));
    if (m == -2)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s out of range", name));
    if (m < 0)
      luaL_argerror(
          L, arg,
          lua_pushfstring(L, "%s must be octal digits like \"644\"", name));
    break;
  case LUA_TNUMBER:
    v = lua_tointegerx(L, idx, &isint);
    if (!isint)
      luaL_argerror(
          L, arg, lua_pushfstring(L, "%s has no integer representation", name));
    if (v < 0 || v > 07777)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s out of range", name));
    m = (int)v;
    break;
  default:
    if (!in_opts) luaL_typeerror(L, arg, "integer or octal string");
    luaL_argerror(L, arg,
                  lua_pushfstring(
                      L, "opts.mode: integer or octal string expected, got %s",
                      luaL_typename(L, idx)));
  }
  if (in_opts) lua_pop(L, 1);
  return m;
}

/* Registers the request userdata's metatable (its __gc abandons it). */
void casync__fs_req_open(lua_State *L) {
  luaL_newmetatable(L, FS_REQ_MT);
  lua_pushcfunction(L, req_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
