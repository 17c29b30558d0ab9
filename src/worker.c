/* worker.c: the worker side of casync.thread and thread pools: the pools'
 * threads, each with a Lua state that lives as long as the thread, running
 * a job in it, and when an idle worker spins and when it sleeps.
 *
 * A pool owns n threads of its own (uv_thread_create, not libuv's thread
 * pool, so long jobs never delay file or DNS requests).  A worker takes
 * the next job from the pool's queue, runs it, copies the results or the
 * error into the job and hands it to the hub (thread.c), which wakes the
 * task waiting for it.  Running Lua code is never interrupted: the job can
 * poll casync_worker.cancelled().
 */
#include <stdio.h>
#ifndef _WIN32
#include <sched.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "thread.h"

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

static char tb_key;
static char worker_key; /* the registry's casync_worker table */

/* casync_worker.cancelled() -> true once the task of the running job has
 * ended (cancelled, or the pool is being shut down) */
static int worker_cancelled(lua_State *L) {
  worker *w = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushboolean(L, w->job && atomic_load(&w->job->cancel));
  return 1;
}

/* casync_worker.now() -> seconds on casync.now()'s clock (monotonic, the
 * same in every thread; under casync.run's virtual clock, its time as it
 * was when the job was submitted, plus the real time since) */
static int worker_now(lua_State *L) {
  worker *w = lua_touserdata(L, lua_upvalueindex(1));
  uint64_t offset = w->job ? w->job->clock_offset : 0;
  lua_pushnumber(L, (lua_Number)(uv_hrtime() + offset) / 1e9);
  return 1;
}

/* Message handler of a job: keeps the traceback aside, the error as is. */
static int worker_msgh(lua_State *L) {
  luaL_traceback(L, L, NULL, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tb_key);
  return 1;
}

/* Sets casync_worker.context for job j: its copy of the caller's
 * casync.context values, or, with none, an empty table (the last job's
 * when still empty: nothing to make). */
static void set_context(lua_State *L, job *j) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
  if (j->ctx.len) {
    casync__copy_decode(L, &j->ctx, 0);
    casync__buf_free(&j->ctx);
  } else {
    int keep = 0;
    if (lua_getfield(L, -1, "context") == LUA_TTABLE) {
      if (lua_getmetatable(L, -1)) lua_pop(L, 1);
      else {
        lua_pushnil(L);
        if (lua_next(L, -2)) lua_pop(L, 2);
        else keep = 1;
      }
    }
    lua_pop(L, 1);
    if (keep) {
      lua_pop(L, 1);
      return;
    }
    lua_newtable(L);
  }
  lua_setfield(L, -2, "context");
  lua_pop(L, 1);
}

/* Protected, in the worker: [1 job] -> decodes fn and its arguments,
 * calls it and encodes its results into job->out. */
static int job_call(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int n;
  set_context(L, j);
  n = casync__copy_decode(L, &j->in, 0);
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
  else snprintf(s, n + 64, "%.*s", (int)n, tb);
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
  j->worker_id = w->id;
  j->t_start = uv_hrtime() + j->clock_offset;
  status = lua_pcall(L, 1, 0, 1);
  if (status == LUA_OK) {
    lua_settop(L, 0);
    j->t_end = uv_hrtime() + j->clock_offset;
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
  casync__buf_free(&j->ctx);
  j->t_end = uv_hrtime() + j->clock_offset;
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
    casync__hub_post(p->hub, j);
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
  lua_createtable(L, 0, 5);
  lua_pushlightuserdata(L, w);
  lua_pushcclosure(L, worker_cancelled, 1);
  lua_setfield(L, -2, "cancelled");
  lua_pushlightuserdata(L, w);
  lua_pushcclosure(L, worker_now, 1);
  lua_setfield(L, -2, "now");
  lua_newtable(L);
  lua_setfield(L, -2, "context");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &worker_key);
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
    } else lua_pop(W, n);
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

/* Makes a pool of `size` workers for hub h, each with its Lua state made
 * from L's, and starts their threads.  *slot holds the pool as soon as
 * casync__pool_free can undo it, so an error raised after that (in L)
 * leaves the pool to whoever owns the slot. */
void casync__pool_start(lua_State *L, pool **slot, struct casync_hub *h,
                        int size) {
  pool *p;
  int i, err;
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
  *slot = p;
  for (i = 0; i < size; i++) {
    worker *w = &p->w[i];
    w->pool = p;
    w->id = i + 1;
    w->L = worker_state(L, w);
  }
  for (i = 0; i < size; i++) {
    worker *w = &p->w[i];
    if ((err = uv_thread_create(&w->tid, worker_main, w)) != 0)
      luaL_error(L, "thread_pool: cannot start a thread: %s", uv_strerror(err));
    w->started = 1;
    uv_mutex_lock(&p->mu);
    p->alive++;
    uv_mutex_unlock(&p->mu);
  }
}

/* Stops pool p's workers after their current job, joins them and frees
 * the pool; the jobs still queued are freed (nobody can wait for them:
 * their tasks, which anchor the pool, are gone, or the state is
 * closing). */
void casync__pool_free(pool *p) {
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
    casync__job_free(j);
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
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
  free(p);
}

/* Queues job j on pool p and wakes a sleeping worker for it, unless the
 * spinning one will see it soon enough. */
void casync__pool_push(pool *p, job *j) {
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

/* Takes job j off p's queue if no worker has taken it yet: 1 if it did. */
int casync__pool_unqueue(pool *p, job *j) {
  int removed = 0;
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
  return removed;
}

/* No more jobs: the queued ones still run, then the workers end. */
void casync__pool_close(pool *p) {
  uv_mutex_lock(&p->mu);
  p->closing = 1;
  uv_cond_broadcast(&p->cv);
  uv_mutex_unlock(&p->mu);
}

/* Where job j is at this instant: the id of the worker running it, or 0
 * while queued (*ahead: the jobs before it), or -1 (done, on its way
 * back). */
int casync__pool_where(pool *p, job *j, int *ahead) {
  job *q;
  int i, where = -1;
  *ahead = 0;
  uv_mutex_lock(&p->mu);
  if (j->queued) {
    where = 0;
    for (q = p->qhead; q && q != j; q = q->next) (*ahead)++;
  } else
    for (i = 0; i < p->size; i++)
      if (p->w[i].job == j) {
        where = p->w[i].id;
        break;
      }
  uv_mutex_unlock(&p->mu);
  return where;
}

/* The counts at one instant: the workers change them under mu. */
void casync__pool_stats(pool *p, int *busy, int *queued, int *alive) {
  uv_mutex_lock(&p->mu);
  *busy = p->busy;
  *queued = p->queued;
  *alive = p->alive;
  uv_mutex_unlock(&p->mu);
}
