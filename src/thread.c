/* thread.c: casync.thread(fn, ...) and casync.thread_pool{size = n}: Lua
 * functions run in separate Lua states on worker threads, each call a
 * casync task.  This file is the loop's side: the jobs, the hub and the
 * Lua API; worker.c is the workers' side.
 *
 * A job (the function and its arguments, copied by copy.c, with the
 * caller's casync.context values) goes on the pool's queue; its task is
 * spawned parked on it, in the caller's innermost cancel scope.  A worker
 * takes the job, runs it, copies the results or the error into the job
 * and posts the job to the hub, the Lua state's one uv_async_t, whose
 * callback wakes the task (its first run).  A task cancelled (by
 * task:cancel or its scope) while its job is queued drops the job; while
 * it runs, the task ends at once, the job sees casync_worker.cancelled()
 * and its result is dropped when it comes.
 */
#include <stdlib.h>
#include <string.h>
#include "thread.h"

#define POOL_MT "casync.ThreadPool"
#define JOBS_MT "casync.ThreadJobs"
#define MAX_WORKERS 1024
#define MAX_JOBS 1000000 /* per map */
/* A job's items travel on the Lua stacks of the caller (twice: pushed,
 * then copied for copy.c) and of the worker, at most LUAI_MAXSTACK,
 * 1,000,000 slots each: a larger chunk is cut into chunks of this many
 * items, which "at most chunksize items per job" allows. */
#define MAX_CHUNK ((lua_Integer)1 << 18)

typedef struct casync_hub hub;

/* The per-Lua-state meeting point of finished jobs. */
struct casync_hub {
  casync_handle hd;
  uv_async_t async;
  uv_mutex_t mu;
  job *head, *tail; /* posted by workers, not yet seen (mu) */
  job *delivered;   /* results waiting for their task to run */
  int waiting;      /* jobs some task still waits for */
  pool *pools;      /* not yet freed: the end of the state frees
                       those pool_gc had to leave (hnext, hprev) */
  casync_ctx *lp;
};

void casync__job_free(job *j) {
  casync__buf_free(&j->in);
  casync__buf_free(&j->out);
  casync__buf_free(&j->ctx);
  free(j->traceback);
  free(j);
}

/* ----------------------------------------------------------------- hub */

/* The async handle keeps the loop alive only while a task waits for a
 * job, so an abandoned job running on does not stall casync.run. */
static void hub_update_ref(hub *h) {
  if (h->waiting > 0) uv_ref((uv_handle_t *)&h->async);
  else uv_unref((uv_handle_t *)&h->async);
}

static void dl_unlink(hub *h, job *j) {
  if (j->prev) j->prev->next = j->next;
  else h->delivered = j->next;
  if (j->next) j->next->prev = j->prev;
  j->next = j->prev = NULL;
  j->delivered = 0;
}

/* Posted jobs: each goes to its task (woken if it waits), or, abandoned,
 * is freed; a recording notes each on its worker's track.  Runs on the
 * loop thread; no Lua code. */
static void on_async(uv_async_t *a) {
  hub *h = container_of(a, hub, async);
  job *j, *next;
  uv_mutex_lock(&h->mu);
  j = h->head;
  h->head = h->tail = NULL;
  uv_mutex_unlock(&h->mu);
  for (; j; j = next) {
    casync_task *t = j->task;
    next = j->next;
    if (h->lp->trace)
      casync__trace_job(h->lp, j->task_id, j->map ? "map job" : "thread job",
                        j->pool->id, j->worker_id, j->t_start,
                        j->t_end - j->t_start);
    if (!t) { /* its task ended before it did */
      casync__job_free(j);
      continue;
    }
    j->delivered = 1;
    j->prev = NULL;
    j->next = h->delivered;
    if (h->delivered) h->delivered->prev = j;
    h->delivered = j;
    h->waiting--;
    /* not if it was cancelled meanwhile: it ends without them */
    if (t->state == T_WAITING && t->wait_obj == j)
      casync__wake(h->lp, t, WAKE_OK);
  }
  hub_update_ref(h);
}

static void hub_free(casync_handle *hd) {
  hub *h = container_of(hd, hub, hd);
  uv_mutex_destroy(&h->mu);
  free(h);
}

static const casync_hclass hub_class = {"thread hub", NULL, hub_free};

static void pool_unlink(pool *p) {
  hub *h = p->hub;
  if (p->hprev) p->hprev->hnext = p->hnext;
  else if (h->pools == p) h->pools = p->hnext;
  if (p->hnext) p->hnext->hprev = p->hprev;
  p->hnext = p->hprev = NULL;
}

/* The state closes.  Pools are collected before the context, but one
 * whose tasks still waited for jobs then (lua_close ends tasks without
 * finishing them) is left to this: its workers are joined first, as
 * they post to the hub.  Then frees the jobs left and closes the handle. */
static void hub_close(casync_ctx *lp) {
  hub *h = lp->hub;
  job *j, *next;
  if (!h) return;
  while (h->pools) {
    pool *p = h->pools;
    pool_unlink(p);
    casync__pool_free(p);
  }
  lp->hub = NULL;
  for (j = h->head; j; j = next) {
    next = j->next;
    casync__job_free(j);
  }
  for (j = h->delivered; j; j = next) {
    next = j->next;
    casync__job_free(j);
  }
  h->head = h->tail = h->delivered = NULL;
  casync__handle_close(&h->hd);
}

/* The state's hub, made on first use. */
static hub *hub_get(lua_State *L, casync_ctx *lp) {
  hub *h = lp->hub;
  if (h) return h;
  h = calloc(1, sizeof *h);
  if (!h) luaL_error(L, "thread: not enough memory");
  if (uv_mutex_init(&h->mu) != 0) {
    free(h);
    luaL_error(L, "thread: cannot create a mutex");
  }
  uv_async_init(lp->loop, &h->async, on_async);
  casync__handle_init(lp, &h->hd, &hub_class, (uv_handle_t *)&h->async);
  h->lp = lp;
  uv_unref((uv_handle_t *)&h->async);
  lp->hub = h;
  lp->parts[CTX_PART_THREADS] = hub_close;
  return h;
}

/* From a worker thread: job j is done. */
void casync__hub_post(hub *h, job *j) {
  j->next = NULL;
  uv_mutex_lock(&h->mu);
  if (h->tail) h->tail->next = j;
  else h->head = j;
  h->tail = j;
  uv_mutex_unlock(&h->mu);
  uv_async_send(&h->async);
}

/* ---------------------------------------------------------------- pool */

static pool *check_pool(lua_State *L, int idx) {
  pool **ud = luaL_checkudata(L, idx, POOL_MT);
  if (!*ud || (*ud)->closing)
    luaL_error(L, "attempt to use a closed thread pool");
  return *ud;
}

/* The tasks of a pool's jobs anchor it, so the collector never finds one
 * with jobs still waited for, but __gc called by hand can: the pool is
 * then left as it is, to the collector's own call or the end of the state
 * (hub_close), which frees it after the tasks. */
static int pool_gc(lua_State *L) {
  pool **ud = luaL_checkudata(L, 1, POOL_MT), *p = *ud;
  if (!p || p->jobs > 0) return 0;
  *ud = NULL;
  pool_unlink(p);
  casync__pool_free(p);
  return 0;
}

/* Pushes a new pool of `size` workers. */
static pool *pool_new(lua_State *L, casync_ctx *lp, int size) {
  hub *h = hub_get(L, lp);
  pool **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, POOL_MT);
  casync__pool_start(L, ud, h, size); /* an error: __gc frees *ud */
  (*ud)->id = ++lp->next_obj_id;
  (*ud)->hnext = h->pools;
  if (h->pools) h->pools->hprev = *ud;
  h->pools = *ud;
  return *ud;
}

static int default_size(void) {
  unsigned n = uv_available_parallelism();
  return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* Option `field` of the table at arg: an integer from lo to hi, or def
 * when absent.  A float with an integer value is that integer, as in
 * Lua's own libraries; a string is not converted: an option's type is
 * checked. */
static lua_Integer opt_integer(lua_State *L, int arg, const char *field,
                               lua_Integer def, lua_Integer lo, lua_Integer hi,
                               const char *msg) {
  lua_Integer v = def;
  if (lua_getfield(L, arg, field) != LUA_TNIL) {
    int ok = lua_type(L, -1) == LUA_TNUMBER;
    if (ok) v = lua_tointegerx(L, -1, &ok);
    luaL_argcheck(L, ok && v >= lo && v <= hi, arg, msg);
  }
  lua_pop(L, 1);
  return v;
}

/* casync.thread_pool([opts]) -> pool: opts.size workers (default: the
 * number of cores) */
static int fn_thread_pool(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int size = default_size();
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    size = (int)opt_integer(L, 1, "size", size, 1, MAX_WORKERS,
                            "opts.size must be an integer from 1 to 1024");
    lua_settop(L, 1);
  }
  pool_new(L, lp, size);
  return 1;
}

/* pool:close(): takes no more jobs; those queued still run, then the
 * workers end (their threads are joined when the pool is collected or the
 * state closes).  Closing twice is harmless. */
static int meth_close(lua_State *L) {
  pool **ud = luaL_checkudata(L, 1, POOL_MT), *p = *ud;
  if (!p || p->closing) return 0;
  casync__pool_close(p);
  return 0;
}

/* pool:size() -> the number of workers */
static int meth_size(lua_State *L) {
  pool **ud = luaL_checkudata(L, 1, POOL_MT);
  lua_pushinteger(L, *ud ? (*ud)->size : 0);
  return 1;
}

/* pool:stats() -> {size, busy, queued, alive, closed}: busy workers, jobs
 * waiting for one, threads not yet ended */
static int meth_stats(lua_State *L) {
  pool **ud = luaL_checkudata(L, 1, POOL_MT), *p = *ud;
  int busy = 0, queued = 0, alive = 0;
  if (p) casync__pool_stats(p, &busy, &queued, &alive);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, p ? p->size : 0);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, busy);
  lua_setfield(L, -2, "busy");
  lua_pushinteger(L, queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, alive);
  lua_setfield(L, -2, "alive");
  lua_pushboolean(L, !p || p->closing);
  lua_setfield(L, -2, "closed");
  return 1;
}

static int meta_tostring(lua_State *L) {
  pool **ud = luaL_checkudata(L, 1, POOL_MT);
  if (!*ud) lua_pushliteral(L, "casync.ThreadPool (closed)");
  else if ((*ud)->closing)
    lua_pushfstring(L, "casync.ThreadPool (pool#%I, closed)", (*ud)->id);
  else
    lua_pushfstring(L, "casync.ThreadPool (pool#%I, %d workers)", (*ud)->id,
                    (*ud)->size);
  return 1;
}

/* ---------------------------------------------------------------- jobs */

/* A box of jobs being built: frees those not handed over if an error
 * (a bad argument, memory) interrupts. */
typedef struct {
  int n;
  job *jobs[1];
} jobs_box;

static int jobs_gc(lua_State *L) {
  jobs_box *b = lua_touserdata(L, 1);
  int i;
  for (i = 0; i < b->n; i++)
    if (b->jobs[i]) {
      casync__job_free(b->jobs[i]);
      b->jobs[i] = NULL;
    }
  return 0;
}

/* dst (empty) becomes a copy of src's bytes. */
static void buf_copy(lua_State *L, casync_buf *dst, const casync_buf *src) {
  dst->data = malloc(src->len);
  if (!dst->data) luaL_error(L, "thread: not enough memory");
  memcpy(dst->data, src->data, src->len);
  dst->len = dst->cap = src->len;
}

static jobs_box *jobs_new(lua_State *L, int n) {
  jobs_box *b =
      lua_newuserdatauv(L, sizeof *b + (size_t)(n - 1) * sizeof(job *), 0);
  int i;
  b->n = n;
  for (i = 0; i < n; i++) b->jobs[i] = NULL;
  luaL_setmetatable(L, JOBS_MT);
  for (i = 0; i < n; i++) {
    b->jobs[i] = calloc(1, sizeof(job));
    if (!b->jobs[i]) luaL_error(L, "thread: not enough memory");
  }
  return b;
}

/* Its task ended (any way) before taking the results: the job is dropped
 * from the queue, or left to finish and freed when it comes back. */
static void job_task_ended(casync_ctx *lp, casync_obs *o, casync_task *t) {
  job *j = container_of(o, job, obs);
  pool *p = j->pool;
  hub *h = p->hub;
  (void)lp;
  (void)t;
  j->task = NULL;
  p->jobs--;
  if (j->delivered) {
    dl_unlink(h, j);
    casync__job_free(j);
    return;
  }
  if (!j->dropped) j->dropped = casync__pool_unqueue(p, j);
  atomic_store(&j->cancel, 1);
  h->waiting--;
  hub_update_ref(h);
  if (j->dropped) casync__job_free(j);
}

/* Pushes the results of delivered job j (or raises its error) and frees
 * it.  L is its task's coroutine. */
static int take_results(lua_State *L, casync_task *t, job *j) {
  int n, failed = j->failed;
  hub *h = j->pool->hub;
  casync__obs_unlink(t, &j->obs);
  dl_unlink(h, j);
  j->task = NULL;
  j->pool->jobs--;
  lua_settop(L, 0);
  if (failed && j->traceback) {
    casync__push_task(L, t->loop, t);
    casync__extras(L, -1);
    lua_pushstring(L, j->traceback);
    lua_setfield(L, -2, "worker_traceback");
    lua_settop(L, 0);
  }
  /* a box frees it even if decoding raises (memory) */
  {
    jobs_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->n = 1;
    b->jobs[0] = j;
    luaL_setmetatable(L, JOBS_MT);
  }
  if (j->out.len == 0 && failed) {
    lua_pushliteral(L, "thread: the worker ran out of memory");
    n = 1;
  } else n = casync__copy_decode(L, &j->out, 0);
  jobs_gc(L);
  lua_remove(L, 1);
  if (failed) return lua_error(L);
  return n;
}

/* The task will not take the results: a queued job is dropped now, a
 * running one sees casync_worker.cancelled(); the task wakes at once. */
static int thread_cancel(casync_ctx *lp, casync_task *t, int why) {
  job *j = t->wait_obj;
  (void)lp;
  (void)why;
  if (!j->dropped) j->dropped = casync__pool_unqueue(j->pool, j);
  atomic_store(&j->cancel, 1);
  return 1;
}

/* "thread job on pool#1 worker 2", "thread job on pool#1, queued (3
 * ahead)" */
static void thread_describe(lua_State *L, casync_task *t) {
  job *j = t->wait_obj;
  const char *what = j->map ? "map job" : "thread job";
  int ahead, w = casync__pool_where(j->pool, j, &ahead);
  if (w > 0)
    lua_pushfstring(L, "%s on pool#%I worker %d", what, j->pool->id, w);
  else if (w == 0)
    lua_pushfstring(L, "%s on pool#%I, queued (%d ahead)", what, j->pool->id,
                    ahead);
  else
    lua_pushfstring(L, "%s on pool#%I, done (its results on their way)", what,
                    j->pool->id);
}

/* A woken job has its results: kept.  The job runs off the loop, so
 * virtual time must not jump ahead while the task waits for it. */
static const casync_wait_kind thread_wait = {
    "thread",        "casync.thread",
    thread_cancel,   CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL,
    thread_describe, NULL};

/* The body of a thread task, which is spawned parked on its job (it
 * first runs once the job is delivered or it is cancelled):
 * [1 job] -> the job's results. */
static int thread_body(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  casync_task *t = CASYNC_CTX(L)->current;
  casync__woken(L, t); /* raises its cancellation */
  return take_results(L, t, j);
}

/* Copies the casync.context values of the job's caller (`by`; NULL:
 * code outside tasks) into b, when it has any; one that cannot be copied
 * is an error of fname naming its key. */
static void copy_context(lua_State *L, casync_task *by, casync_buf *b,
                         const char *fname) {
  if (!casync__context_of(L, by)) return;
  if (casync__copy_encode(L, -1, 1, b, "context", 0, 0))
    luaL_error(L, "%s: %s (casync.context values go with the job)", fname,
               lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* Spawns the task of job j (built, not yet queued), parked on it, and
 * queues the job; the pool's userdata is at pidx.  The task joins its
 * caller's innermost cancel scope: cancelled with it, and, spawned into
 * a scope already cancelled, it ends so without queueing the job.
 * Pushes the task. */
static void submit(lua_State *L, casync_ctx *lp, pool *p, int pidx, job *j) {
  casync_task *t, *by = lp->current;
  pidx = lua_absindex(L, pidx);
  luaL_checkstack(L, 6, NULL);
  j->pool = p;
  j->clock_offset = lp->clock_offset;
  lua_pushvalue(L, lua_upvalueindex(2)); /* the body */
  lua_pushlightuserdata(L, j);
  t = casync__spawn_parked(L, lp, -2, 1, &thread_wait, j);
  lua_replace(L, -3);
  lua_pop(L, 1);
  /* the task keeps the pool alive until it has ended */
  casync__extras(L, -1);
  lua_pushvalue(L, pidx);
  lua_setfield(L, -2, "pool");
  lua_pop(L, 1);
  j->task = t;
  j->task_id = t->id;
  j->obs.notify = job_task_ended;
  casync__obs_link(t, &j->obs);
  p->jobs++;
  p->hub->waiting++;
  hub_update_ref(p->hub);
  if (by && by->cscope) {
    casync__cs_attach(t, by->cscope);
    if (casync__cs_cancelled(t)) {
      j->dropped = 1;
      casync__wake(lp, t, WAKE_CANCEL);
      return;
    }
  }
  casync__pool_push(p, j);
}

/* Copies fn (at fidx), the n values after it and the caller's context
 * into a new job and runs it on pool p (userdata at pidx); pushes its
 * task.  fname names the Lua function in errors. */
static int run_on(lua_State *L, pool *p, int pidx, int fidx, int nargs,
                  const char *fname) {
  casync_ctx *lp = CASYNC_CTX(L);
  jobs_box *b;
  int bad;
  luaL_checktype(L, fidx, LUA_TFUNCTION);
  b = jobs_new(L, 1);
  bad = casync__copy_encode(L, fidx, nargs + 1, &b->jobs[0]->in, "args", 1, 1);
  if (bad) luaL_argerror(L, fidx + bad - 1, lua_tostring(L, -1));
  copy_context(L, lp->current, &b->jobs[0]->ctx, fname);
  submit(L, lp, p, pidx, b->jobs[0]);
  b->jobs[0] = NULL;
  return 1;
}

/* casync.thread(fn, ...) -> task: fn(...) on the default pool (made on
 * first use, one worker per core) */
static int fn_thread(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int n = lua_gettop(L);
  pool *p;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  casync__ctx_push(L);
  if (lua_getiuservalue(L, -1, CTX_POOL) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    pool_new(L, lp, default_size());
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, -3, CTX_POOL);
  }
  p = *(pool **)lua_touserdata(L, -1);
  return run_on(L, p, n + 2, 1, n - 1, "thread");
}

/* pool:run(fn, ...) -> task: fn(...) on one of the pool's workers */
static int meth_run(lua_State *L) {
  pool *p = check_pool(L, 1);
  return run_on(L, p, 1, 2, lua_gettop(L) - 2, "run");
}

/* [.. gather's list: one table of results per job] -> one list */
static int map_k(lua_State *L, int status, lua_KContext ctx) {
  int chunks = (int)ctx, i, k, n = 0, lists, out;
  (void)status;
  lists = lua_gettop(L);
  lua_createtable(L, 0, 1);
  out = lua_gettop(L);
  for (i = 1; i <= chunks; i++) {
    int m;
    lua_rawgeti(L, lists, i);
    lua_getfield(L, -1, "n");
    m = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    for (k = 1; k <= m; k++) {
      lua_rawgeti(L, -1, k);
      lua_rawseti(L, out, ++n);
    }
    lua_pop(L, 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, out, "n");
  return 1;
}

/* pool:map(fn, list [, opts]) -> results: fn(item) for each item of the
 * list on the pool's workers, at most opts.chunksize items per job
 * (default 1); the first result of each, in order.  Like gather: the first
 * error cancels the rest and is raised.  Waits: call it in a task. */
static int meth_map(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  pool *p = check_pool(L, 1);
  lua_Integer len, chunk = 1, i, chunks;
  jobs_box *b;
  int c, base;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    chunk = opt_integer(L, 4, "chunksize", 1, 1, LUA_MAXINTEGER,
                        "opts.chunksize must be a positive integer");
  }
  len = (lua_Integer)lua_rawlen(L, 3);
  if (chunk > MAX_CHUNK) chunk = MAX_CHUNK;
  /* rounded up without len + chunk - 1, which overflows near
   * math.maxinteger (and lost every item) */
  chunks = len / chunk + (len % chunk != 0);
  if (chunks > MAX_JOBS)
    return luaL_argerror(
        L, 3,
        lua_pushfstring(
            L,
            "too many jobs: %I items in chunks of %I, at most %d jobs; "
            "raise opts.chunksize",
            len, chunk, MAX_JOBS));
  casync__wait_begin(L, "map");
  lua_settop(L, 3);
  lua_createtable(L, (int)chunks, 0); /* 4: the tasks */
  if (chunks == 0) {
    lua_pushinteger(L, 0);
    lua_setfield(L, 4, "n");
    return 1;
  }
  b = jobs_new(L, (int)chunks); /* 5 */
  copy_context(L, lp->current, &b->jobs[0]->ctx, "map");
  for (c = 1; c < chunks && b->jobs[0]->ctx.len; c++)
    buf_copy(L, &b->jobs[c]->ctx, &b->jobs[0]->ctx);
  for (c = 0; c < chunks; c++) {
    lua_Integer first = c * chunk + 1;
    lua_Integer last = len - first < chunk ? len : first + chunk - 1;
    int bad, m;
    m = (int)(last - first + 1);
    base = lua_gettop(L);
    luaL_checkstack(L, m + 4, "too many items in a chunk");
    lua_pushvalue(L, 2);
    for (i = first; i <= last; i++) lua_rawgeti(L, 3, i);
    b->jobs[c]->map = 1;
    bad = casync__copy_encode(L, base + 1, m + 1, &b->jobs[c]->in, "list",
                              first, 1);
    if (bad == 1) luaL_argerror(L, 2, lua_tostring(L, -1));
    if (bad) luaL_argerror(L, 3, lua_tostring(L, -1));
    lua_settop(L, base);
  }
  for (c = 0; c < chunks; c++) {
    submit(L, lp, p, 1, b->jobs[c]);
    b->jobs[c] = NULL;
    lua_rawseti(L, 4, c + 1);
  }
  lua_settop(L, 4);
  lua_pushvalue(L, lua_upvalueindex(3)); /* gather */
  lua_insert(L, 4);
  lua_callk(L, 1, 1, (lua_KContext)chunks, map_k);
  return map_k(L, LUA_OK, (lua_KContext)chunks);
}

/* ---------------------------------------------------------------- open */

/* Registers casync.thread and casync.thread_pool in the module table on
 * top of the stack; gather must already be in it.  The functions and the
 * pool's methods share three upvalues: the context, the body of thread
 * tasks, and gather. */
void casync__thread_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"thread", fn_thread}, {"thread_pool", fn_thread_pool}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"run", meth_run},     {"map", meth_map},
                                     {"close", meth_close}, {"size", meth_size},
                                     {"stats", meth_stats}, {NULL, NULL}};
  int mod = lua_gettop(L);
  luaL_newmetatable(L, JOBS_MT);
  lua_pushcfunction(L, jobs_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  casync__ctx_push(L);
  casync__ctx_push(L);
  lua_pushcclosure(L, thread_body, 1);
  lua_getfield(L, mod, "gather"); /* [mod+1 ctx][mod+2 body][mod+3 gather] */
  lua_pushvalue(L, mod);
  lua_pushvalue(L, mod + 1);
  lua_pushvalue(L, mod + 2);
  lua_pushvalue(L, mod + 3);
  luaL_setfuncs(L, fns, 3);
  lua_pop(L, 1);
  luaL_newmetatable(L, POOL_MT);
  lua_newtable(L);
  lua_pushvalue(L, mod + 1);
  lua_pushvalue(L, mod + 2);
  lua_pushvalue(L, mod + 3);
  luaL_setfuncs(L, methods, 3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, pool_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, meth_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_settop(L, mod);
}
