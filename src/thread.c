/* thread.c: casync.thread(fn, ...) and casync.thread_pool{size = n}: Lua
 * functions run in separate Lua states on worker threads, each call a
 * casync task.
 *
 * A pool owns n threads of its own (uv_thread_create, not libuv's thread
 * pool, so long jobs never delay file or DNS requests), each with a Lua
 * state that lives as long as the thread.  A job (the function and its
 * arguments, copied by copy.c) goes on the pool's queue; a worker takes
 * it, runs it, copies the results or the error into the job and posts the
 * job to the hub, the Lua state's one uv_async_t, whose callback wakes the
 * task waiting for it.  Running Lua code is never interrupted: a task
 * cancelled while its job runs ends at once and the result is dropped when
 * it comes (the worker can poll casync_worker.cancelled()).
 */
#include <stdatomic.h>
#include <stdio.h>
#ifndef _WIN32
#include <sched.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "prim.h"

#define POOL_MT "casync.ThreadPool"
#define JOBS_MT "casync.ThreadJobs"
#define MAX_WORKERS 1024
/* A worker that ran out of jobs polls the queue this long before it
 * sleeps (one worker at a time, yielding the CPU to any thread that wants
 * it): a task that sends job after job (a loop of casync.thread calls)
 * then does not pay for waking a thread each time (about 5 of the 18
 * microseconds of a round trip here). */
#define SPIN_NS 50000u
/* A spinner that has not looked at the queue for this long has lost its
 * CPU (sched_yield on a busy machine can give it away for milliseconds):
 * a new job wakes a sleeping worker instead of waiting for it. */
#define SPIN_STALE_NS 5000u
/* After a spin that found nothing, this many idle turns sleep at once:
 * rare jobs cost little spinning.  After a spin that lost its CPU for
 * SPIN_LOST_NS (the machine is busy), SPIN_SKIP_BUSY turns. */
#define SPIN_SKIP 4
#define SPIN_LOST_NS 100000u
#define SPIN_SKIP_BUSY 64

typedef struct job job;
typedef struct pool pool;
typedef struct casync_hub hub;

/* A call to run on a worker.  Owned by whoever holds it: the caller while
 * it is built (in a jobs box), then the pool's queue, the worker running
 * it, the hub's queue of posted jobs, the hub's list of delivered jobs,
 * and last the task that takes its results (or the hub, which frees it
 * when nobody waits for it any more). */
struct job {
  job *next, *prev;     /* in the pool's queue, the hub's queue or list */
  pool *pool;
  casync_task *task;    /* who waits for it; NULL once abandoned */
  casync_obs obs;       /* in the task's observers: tells when it ended */
  int queued;           /* in the pool's queue (pool->mu) */
  int delivered;        /* in the hub's delivered list (loop thread) */
  atomic_int cancel;    /* its task ended: the worker may stop early */
  int map;              /* fn over the items: results in one table */
  int failed;           /* set by the worker: `out` holds the error */
  int worker_id;
  casync_buf in, out;   /* fn and its arguments; results or the error */
  char *traceback;      /* where it failed in the worker */
};

typedef struct worker {
  uv_thread_t tid;
  pool *pool;
  lua_State *L;         /* its own Lua state, closed by the thread */
  job *job;             /* the one it runs (pool->mu) */
  int id;               /* 1-based */
  int started;
} worker;

struct pool {
  uv_mutex_t mu;
  uv_cond_t cv;
  job *qhead, *qtail;   /* waiting jobs, first come first served */
  atomic_int queued;    /* their number (changed under mu, read by spinners) */
  atomic_int closing;   /* 1: closed, drain the queue; 2: stop now */
  int busy, alive;
  int sleeping;         /* workers waiting on cv */
  int spinning;         /* a worker polling the queue before it sleeps */
  _Atomic uint64_t polled; /* when the spinning worker last looked (ns) */
  int spin_skip;        /* idle turns left without spinning */
  int size;
  hub *hub;
  worker w[1];          /* size of them */
};

/* The per-Lua-state meeting point of finished jobs. */
struct casync_hub {
  casync_handle hd;
  uv_async_t async;
  uv_mutex_t mu;
  job *head, *tail;     /* posted by workers, not yet seen (mu) */
  job *delivered;       /* results waiting for their task to run */
  int waiting;          /* jobs some task still waits for */
  casync_ctx *lp;
};


static void job_free(job *j) {
  casync__buf_free(&j->in);
  casync__buf_free(&j->out);
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
 * is freed.  Runs on the loop thread; no Lua code. */
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
    if (!t) { /* its task ended before it did */
      job_free(j);
      continue;
    }
    j->delivered = 1;
    j->prev = NULL;
    j->next = h->delivered;
    if (h->delivered) h->delivered->prev = j;
    h->delivered = j;
    h->waiting--;
    /* a task that has not started yet finds the results when it does */
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

/* The state closes (every pool has been joined: pools are collected
 * before the context).  Frees the jobs left and closes the handle. */
static void hub_close(casync_ctx *lp) {
  hub *h = lp->hub;
  job *j, *next;
  if (!h) return;
  lp->hub = NULL;
  for (j = h->head; j; j = next) {
    next = j->next;
    job_free(j);
  }
  for (j = h->delivered; j; j = next) {
    next = j->next;
    job_free(j);
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

/* -------------------------------------------------------------- worker */

static char tb_key;

/* casync_worker.cancelled() -> true once the task of the running job has
 * ended (cancelled, or the pool is being shut down) */
static int worker_cancelled(lua_State *L) {
  worker *w = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushboolean(L, w->job && atomic_load(&w->job->cancel));
  return 1;
}

/* casync_worker.now() -> seconds on casync.now()'s clock (monotonic, the
 * same in every thread) */
static int worker_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

/* Message handler of a job: keeps the traceback aside, the error as is. */
static int worker_msgh(lua_State *L) {
  luaL_traceback(L, L, NULL, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tb_key);
  return 1;
}

/* Protected, in the worker: [1 job] -> decodes fn and its arguments,
 * calls it and encodes its results into job->out. */
static int job_call(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int n = casync__copy_decode(L, &j->in, 0);
  casync__buf_free(&j->in);
  if (!j->map) {
    lua_call(L, n - 1, LUA_MULTRET);
    n = lua_gettop(L) - 1;
  } else { /* [2 fn][3..] the items -> [2 their first results] */
    int k, items = n - 1, t;
    lua_createtable(L, items, 1);
    t = lua_gettop(L);
    for (k = 0; k < items; k++) {
      lua_pushvalue(L, 2);
      lua_pushvalue(L, 3 + k);
      lua_call(L, 1, 1);
      lua_rawseti(L, t, k + 1);
    }
    lua_pushinteger(L, items);
    lua_setfield(L, t, "n");
    lua_replace(L, 2);
    lua_settop(L, 2);
    n = 1;
  }
  if (casync__copy_encode(L, 2, n, &j->out, "results", 1, 0))
    return lua_error(L);
  return 0;
}

/* Protected, in the worker: [1 error] -> the error encoded, or its
 * tostring when it cannot be copied. */
static int job_error(lua_State *L) {
  job *j = lua_touserdata(L, lua_upvalueindex(1));
  if (casync__copy_encode(L, 1, 1, &j->out, "error", 0, 0) == 0) return 0;
  luaL_tolstring(L, 1, NULL);
  casync__copy_encode(L, -1, 1, &j->out, "error", 0, 0);
  return 0;
}

/* The last lines of a job's traceback are the worker's own C frames. */
static char *keep_traceback(const char *tb, int id) {
  const char *end, *frame = "\n\t[C]: in ?";
  size_t n, fl = strlen(frame);
  char *s;
  if (!tb) return NULL;
  n = strlen(tb);
  while (n >= fl && memcmp(tb + n - fl, frame, fl) == 0) n -= fl;
  end = "stack traceback (worker thread ";
  s = malloc(n + 64);
  if (!s) return NULL;
  if (strncmp(tb, "stack traceback:", 16) == 0)
    snprintf(s, n + 64, "%s%d):%.*s", end, id, (int)(n - 16), tb + 16);
  else
    snprintf(s, n + 64, "%.*s", (int)n, tb);
  return s;
}

/* Runs job j in worker w's state: results or error into j->out. */
static void run_job(worker *w, job *j) {
  lua_State *L = w->L;
  int status;
  lua_settop(L, 0);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tb_key);
  lua_pushcfunction(L, worker_msgh);
  lua_pushcfunction(L, job_call);
  lua_pushlightuserdata(L, j);
  status = lua_pcall(L, 1, 0, 1);
  j->worker_id = w->id;
  if (status == LUA_OK) {
    lua_settop(L, 0);
    return;
  }
  j->failed = 1;
  casync__buf_free(&j->out);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tb_key);
  j->traceback = keep_traceback(lua_tostring(L, -1), w->id);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, j);
  lua_pushcclosure(L, job_error, 1);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) casync__buf_free(&j->out);
  lua_settop(L, 0);
  casync__buf_free(&j->in);
}

/* One turn of a spinning worker: it lets any other thread that wants this
 * CPU run (the loop's own thread, on a busy machine), else it polls on. */
static void spin_pause(void) {
#ifdef _WIN32
  SwitchToThread();
#else
  sched_yield();
#endif
}

static void post(hub *h, job *j) {
  j->next = NULL;
  uv_mutex_lock(&h->mu);
  if (h->tail) h->tail->next = j;
  else h->head = j;
  h->tail = j;
  uv_mutex_unlock(&h->mu);
  uv_async_send(&h->async);
}

/* A worker thread: takes jobs until the pool closes. */
static void worker_main(void *arg) {
  worker *w = arg;
  pool *p = w->pool;
  job *j;
  uv_mutex_lock(&p->mu);
  for (;;) {
    if (!p->qhead && !p->closing && !p->spinning && p->spin_skip > 0)
      p->spin_skip--;
    else if (!p->qhead && !p->closing && !p->spinning) {
      uint64_t now = uv_hrtime(), until = now + SPIN_NS, prev;
      int lost = 0;
      p->spinning = 1;
      uv_mutex_unlock(&p->mu);
      atomic_store_explicit(&p->polled, now, memory_order_relaxed);
      while (!atomic_load_explicit(&p->queued, memory_order_relaxed) &&
             !p->closing && now < until) {
        spin_pause();
        prev = now;
        now = uv_hrtime();
        if (now - prev > SPIN_LOST_NS) lost = 1;
        atomic_store_explicit(&p->polled, now, memory_order_relaxed);
      }
      uv_mutex_lock(&p->mu);
      p->spinning = 0;
      /* no job came (or a woken sleeper took it): spinning does not pay
       * now, so the next few idle turns sleep at once; many if the CPU was
       * taken away meanwhile (other programs want it) */
      if (lost) p->spin_skip = SPIN_SKIP_BUSY;
      else if (!p->qhead) p->spin_skip = SPIN_SKIP;
    }
    while (!p->qhead && !p->closing) {
      p->sleeping++;
      uv_cond_wait(&p->cv, &p->mu);
      p->sleeping--;
    }
    if (p->closing == 2 || !p->qhead) break;
    j = p->qhead;
    p->qhead = j->next;
    if (p->qhead) p->qhead->prev = NULL;
    else p->qtail = NULL;
    j->next = j->prev = NULL;
    j->queued = 0;
    p->queued--;
    p->busy++;
    w->job = j;
    uv_mutex_unlock(&p->mu);
    run_job(w, j);
    /* once posted the job may be freed at any moment: forget it first */
    uv_mutex_lock(&p->mu);
    w->job = NULL;
    p->busy--;
    uv_mutex_unlock(&p->mu);
    post(p->hub, j);
    uv_mutex_lock(&p->mu);
  }
  p->alive--;
  uv_mutex_unlock(&p->mu);
  lua_close(w->L);
  w->L = NULL;
}

/* Protected, in a new worker state: [1 worker][2 path][3 cpath]. */
static int worker_setup(lua_State *L) {
  worker *w = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    if (lua_isstring(L, 2)) {
      lua_pushvalue(L, 2);
      lua_setfield(L, -2, "path");
    }
    if (lua_isstring(L, 3)) {
      lua_pushvalue(L, 3);
      lua_setfield(L, -2, "cpath");
    }
  }
  lua_createtable(L, 0, 4);
  lua_pushlightuserdata(L, w);
  lua_pushcclosure(L, worker_cancelled, 1);
  lua_setfield(L, -2, "cancelled");
  lua_pushcfunction(L, worker_now);
  lua_setfield(L, -2, "now");
  lua_pushinteger(L, w->id);
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, w->pool->size);
  lua_setfield(L, -2, "pool_size");
  lua_setglobal(L, "casync_worker");
  return 0;
}

/* Protected, in a new worker state: [1 parent state] -> the parent's
 * package.preload entries that are C functions with plain upvalues (the
 * casync runner preloads casync that way) are preloaded here too. */
static int worker_preload(lua_State *W) {
  lua_State *L = lua_touserdata(W, 1);
  luaL_getsubtable(W, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE) != LUA_TTABLE)
    return 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_CFunction f = lua_tocfunction(L, -1);
    int n = 0, ok = f && lua_type(L, -2) == LUA_TSTRING;
    while (ok && lua_getupvalue(L, -1, n + 1)) {
      int t = lua_type(L, -1);
      ok = t == LUA_TLIGHTUSERDATA || t == LUA_TNUMBER || t == LUA_TSTRING ||
           t == LUA_TBOOLEAN;
      if (ok) {
        luaL_checkstack(W, 2, NULL);
        if (t == LUA_TLIGHTUSERDATA)
          lua_pushlightuserdata(W, lua_touserdata(L, -1));
        else if (t == LUA_TNUMBER && lua_isinteger(L, -1))
          lua_pushinteger(W, lua_tointeger(L, -1));
        else if (t == LUA_TNUMBER) lua_pushnumber(W, lua_tonumber(L, -1));
        else if (t == LUA_TSTRING) lua_pushstring(W, lua_tostring(L, -1));
        else lua_pushboolean(W, lua_toboolean(L, -1));
        n++;
      }
      lua_pop(L, 1);
    }
    if (ok) {
      lua_pushcclosure(W, f, n);
      lua_setfield(W, -2, lua_tostring(L, -2));
    } else
      lua_pop(W, n);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* A new Lua state for worker w, with the standard libraries and the
 * package paths of L's state.  Raises in L on failure. */
static lua_State *worker_state(lua_State *L, worker *w) {
  int top = lua_gettop(L);
  lua_State *W = luaL_newstate();
  if (!W) luaL_error(L, "thread_pool: not enough memory");
  lua_pushcfunction(W, worker_setup);
  lua_pushlightuserdata(W, w);
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "path");
    lua_pushstring(W, lua_tostring(L, -1));
    lua_getfield(L, -2, "cpath");
    lua_pushstring(W, lua_tostring(L, -1));
    lua_pop(L, 2);
  } else {
    lua_pushnil(W);
    lua_pushnil(W);
  }
  lua_pop(L, 1);
  if (lua_pcall(W, 3, 0, 0) != LUA_OK ||
      (lua_pushcfunction(W, worker_preload), lua_pushlightuserdata(W, L),
       lua_settop(L, top), lua_pcall(W, 1, 0, 0) != LUA_OK)) {
    lua_settop(L, top);
    lua_pushstring(L, lua_tostring(W, -1));
    lua_close(W);
    lua_error(L);
  }
  return W;
}

/* ---------------------------------------------------------------- pool */

static pool *check_pool(lua_State *L, int idx) {
  pool **ud = luaL_checkudata(L, idx, POOL_MT);
  if (!*ud || (*ud)->closing)
    luaL_error(L, "attempt to use a closed thread pool");
  return *ud;
}

/* Stops pool p's workers after their current job and joins them; the
 * jobs still queued are freed (nobody can wait for them: their tasks,
 * which anchor the pool, are gone, or the state is closing). */
static void pool_shutdown(pool *p) {
  job *j, *next;
  int i;
  uv_mutex_lock(&p->mu);
  p->closing = 2;
  j = p->qhead;
  p->qhead = p->qtail = NULL;
  p->queued = 0;
  for (i = 0; i < p->size; i++)
    if (p->w[i].job) atomic_store(&p->w[i].job->cancel, 1);
  uv_cond_broadcast(&p->cv);
  uv_mutex_unlock(&p->mu);
  for (; j; j = next) {
    next = j->next;
    job_free(j);
  }
  for (i = 0; i < p->size; i++)
    if (p->w[i].started) {
      uv_thread_join(&p->w[i].tid);
      p->w[i].started = 0;
    }
  for (i = 0; i < p->size; i++)
    if (p->w[i].L) { /* made, but its thread never started */
      lua_close(p->w[i].L);
      p->w[i].L = NULL;
    }
}

static int pool_gc(lua_State *L) {
  pool **ud = luaL_checkudata(L, 1, POOL_MT), *p = *ud;
  if (!p) return 0;
  *ud = NULL;
  pool_shutdown(p);
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
  free(p);
  return 0;
}

/* Pushes a new pool of `size` workers. */
static pool *pool_new(lua_State *L, casync_ctx *lp, int size) {
  pool **ud, *p;
  hub *h = hub_get(L, lp);
  int i, err;
  ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, POOL_MT);
  p = calloc(1, sizeof *p + (size_t)(size - 1) * sizeof(worker));
  if (!p) luaL_error(L, "thread_pool: not enough memory");
  if (uv_mutex_init(&p->mu) != 0) {
    free(p);
    luaL_error(L, "thread_pool: cannot create a mutex");
  }
  if (uv_cond_init(&p->cv) != 0) {
    uv_mutex_destroy(&p->mu);
    free(p);
    luaL_error(L, "thread_pool: cannot create a condition variable");
  }
  p->size = size;
  p->hub = h;
  *ud = p; /* from here on its __gc cleans up */
  for (i = 0; i < size; i++) {
    worker *w = &p->w[i];
    w->pool = p;
    w->id = i + 1;
    w->L = worker_state(L, w);
  }
  for (i = 0; i < size; i++) {
    worker *w = &p->w[i];
    if ((err = uv_thread_create(&w->tid, worker_main, w)) != 0)
      luaL_error(L, "thread_pool: cannot start a thread: %s",
                 uv_strerror(err));
    w->started = 1;
    uv_mutex_lock(&p->mu);
    p->alive++;
    uv_mutex_unlock(&p->mu);
  }
  return p;
}

static int default_size(void) {
  unsigned n = uv_available_parallelism();
  return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* casync.thread_pool([opts]) -> pool: opts.size workers (default: the
 * number of cores) */
static int fn_thread_pool(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int size = default_size();
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "size") != LUA_TNIL) {
      int isint = lua_isinteger(L, -1);
      lua_Integer n = lua_tointeger(L, -1);
      luaL_argcheck(L, isint && n >= 1 && n <= MAX_WORKERS, 1,
                    "opts.size must be an integer from 1 to 1024");
      size = (int)n;
    }
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
  uv_mutex_lock(&p->mu);
  p->closing = 1;
  uv_cond_broadcast(&p->cv);
  uv_mutex_unlock(&p->mu);
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
  if (p) {
    uv_mutex_lock(&p->mu);
    busy = p->busy;
    queued = p->queued;
    alive = p->alive;
    uv_mutex_unlock(&p->mu);
  }
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
  if (!*ud || (*ud)->closing)
    lua_pushliteral(L, "casync.ThreadPool (closed)");
  else
    lua_pushfstring(L, "casync.ThreadPool (%d workers)", (*ud)->size);
  return 1;
}

/* ---------------------------------------------------------------- jobs */

/* A box of jobs being built: frees those not handed over if an error
 * (a bad argument, memory) interrupts. */
typedef struct { int n; job *jobs[1]; } jobs_box;

static int jobs_gc(lua_State *L) {
  jobs_box *b = lua_touserdata(L, 1);
  int i;
  for (i = 0; i < b->n; i++)
    if (b->jobs[i]) {
      job_free(b->jobs[i]);
      b->jobs[i] = NULL;
    }
  return 0;
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
  int removed = 0;
  (void)lp;
  (void)t;
  j->task = NULL;
  if (j->delivered) {
    dl_unlink(h, j);
    job_free(j);
    return;
  }
  uv_mutex_lock(&p->mu);
  if (j->queued) {
    if (j->prev) j->prev->next = j->next;
    else p->qhead = j->next;
    if (j->next) j->next->prev = j->prev;
    else p->qtail = j->prev;
    p->queued--;
    j->queued = 0;
    removed = 1;
  }
  uv_mutex_unlock(&p->mu);
  atomic_store(&j->cancel, 1);
  h->waiting--;
  hub_update_ref(h);
  if (removed) job_free(j);
}

/* Pushes the results of delivered job j (or raises its error) and frees
 * it.  L is its task's coroutine. */
static int take_results(lua_State *L, casync_task *t, job *j) {
  int n, failed = j->failed;
  hub *h = j->pool->hub;
  casync__obs_unlink(t, &j->obs);
  dl_unlink(h, j);
  j->task = NULL;
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
  } else
    n = casync__copy_decode(L, &j->out, 0);
  jobs_gc(L);
  lua_remove(L, 1);
  if (failed) return lua_error(L);
  return n;
}

static int thread_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)t;
  (void)why;
  return 1; /* at once; the job is dropped when the task has ended */
}

/* A woken job has its results: kept. */
static const casync_wait_kind thread_wait = {"thread", "casync.thread",
                                             thread_cancel, CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL};

static int thread_body_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, thread_body_k);
  casync__woken(L, t);
  return take_results(L, t, t->wait_obj);
}

/* The body of a thread task: [1 job] -> its results once delivered. */
static int thread_body(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  job *j = lua_touserdata(L, 1);
  casync_task *t = lp->current;
  if (j->delivered) return take_results(L, t, j);
  return casync__park(L, t, &thread_wait, j, 0, thread_body_k, 0);
}

/* Spawns the task of job j (built, not yet queued) and queues the job;
 * the pool's userdata is at pidx.  Pushes the task. */
static void submit(lua_State *L, casync_ctx *lp, pool *p, int pidx, job *j) {
  casync_task *t;
  pidx = lua_absindex(L, pidx);
  luaL_checkstack(L, 6, NULL);
  lua_pushvalue(L, lua_upvalueindex(2)); /* the body */
  lua_pushlightuserdata(L, j);
  t = casync__spawn(L, lp, -2, 1, 0);
  lua_replace(L, -3);
  lua_pop(L, 1);
  /* the task keeps the pool alive until it has ended */
  casync__extras(L, -1);
  lua_pushvalue(L, pidx);
  lua_setfield(L, -2, "pool");
  lua_pop(L, 1);
  j->pool = p;
  j->task = t;
  j->obs.notify = job_task_ended;
  casync__obs_link(t, &j->obs);
  p->hub->waiting++;
  hub_update_ref(p->hub);
  uv_mutex_lock(&p->mu);
  j->queued = 1;
  j->next = NULL;
  j->prev = p->qtail;
  if (p->qtail) p->qtail->next = j;
  else p->qhead = j;
  p->qtail = j;
  p->queued++;
  /* a spinning worker takes one job without being woken, if it still runs */
  if (p->sleeping &&
      (p->queued > p->spinning ||
       uv_hrtime() - atomic_load_explicit(&p->polled, memory_order_relaxed) >
         SPIN_STALE_NS))
    uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
}

/* Copies fn (at fidx) and the n values after it into a new job and runs
 * it on pool p (userdata at pidx); pushes its task. */
static int run_on(lua_State *L, pool *p, int pidx, int fidx, int nargs) {
  casync_ctx *lp = CASYNC_CTX(L);
  jobs_box *b;
  int bad;
  luaL_checktype(L, fidx, LUA_TFUNCTION);
  b = jobs_new(L, 1);
  bad = casync__copy_encode(L, fidx, nargs + 1, &b->jobs[0]->in, "args", 1, 1);
  if (bad) luaL_argerror(L, fidx + bad - 1, lua_tostring(L, -1));
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
  return run_on(L, p, n + 2, 1, n - 1);
}

/* pool:run(fn, ...) -> task: fn(...) on one of the pool's workers */
static int meth_run(lua_State *L) {
  pool *p = check_pool(L, 1);
  return run_on(L, p, 1, 2, lua_gettop(L) - 2);
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
    if (lua_getfield(L, 4, "chunksize") != LUA_TNIL) {
      int isint = lua_isinteger(L, -1);
      chunk = lua_tointeger(L, -1);
      luaL_argcheck(L, isint && chunk >= 1, 4,
                    "opts.chunksize must be a positive integer");
    }
    lua_pop(L, 1);
  }
  casync__wait_begin(L, "map");
  lua_settop(L, 3);
  len = (lua_Integer)lua_rawlen(L, 3);
  chunks = (len + chunk - 1) / chunk;
  if (chunks > 1000000) return luaL_error(L, "map: too many jobs");
  lua_createtable(L, (int)chunks, 0); /* 4: the tasks */
  if (chunks == 0) {
    lua_pushinteger(L, 0);
    lua_setfield(L, 4, "n");
    return 1;
  }
  b = jobs_new(L, (int)chunks); /* 5 */
  for (c = 0; c < chunks; c++) {
    lua_Integer first = c * chunk + 1, last = first + chunk - 1;
    int bad, m;
    if (last > len) last = len;
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
  static const luaL_Reg methods[] = {
    {"run", meth_run}, {"map", meth_map}, {"close", meth_close},
    {"size", meth_size}, {"stats", meth_stats}, {NULL, NULL}};
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
