/* watchdog.c: casync.watchdog, a detector of tasks that block the loop: a
 * task that runs longer than a threshold without suspending is reported
 * with where it is, its traceback taken while it is still running (as
 * asyncio's debug mode reports slow callbacks, but live).  Off by default;
 * on with CASYNC_DEBUG=1 in the environment.
 *
 * The scheduler publishes a sequence number (odd while a task runs) and
 * the running coroutine around its one lua_resume (CASYNC_RUN_BEGIN/END in
 * internal.h: plain stores on the hot path).  A watchdog thread samples
 * the number; when it has stayed the same odd value for the threshold, the
 * thread sets a count hook on that coroutine (lua_sethook may be called
 * asynchronously: it only sets fields the interpreter polls).  The hook
 * runs in the blocked task itself at its next instruction, clears itself,
 * takes the traceback and prints the report to stderr, or queues it for
 * on_block, called from the loop once the task has let go.
 *
 * NOTE: the thread must not set a hook on a coroutine that is being freed:
 * finish() in sched.c passes through `gate` (casync__watchdog_gate) before
 * a task's coroutine can go, and the thread checks the sequence number
 * again inside the gate.  A task blocked inside a C function (os.execute,
 * a blocking read) is reported when that function returns to Lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scheduler.h"

#define DEFAULT_THRESHOLD 0.1 /* seconds */

typedef struct casync_watchdog {
  casync_ctx *lp;
  uv_thread_t thread;
  uv_mutex_t mu; /* guards stop, with cv */
  uv_cond_t cv;
  uv_mutex_t gate; /* held while the thread sets a hook */
  int stop;
  uint64_t threshold_ns, interval_ns;
  atomic_ulong target;  /* the run (sequence number) being reported */
  atomic_ullong since;  /* when the thread first saw that run (ns) */
  atomic_int reports;   /* reports made (for tests) */
  int has_callback;     /* on_block set: queue reports for it */
  struct wd_idle *idle; /* delivers queued reports (libuv's block) */
} casync_watchdog;

/* The idle handle that calls on_block: a handle block (context.h). */
typedef struct wd_idle {
  casync_handle hd;
  uv_idle_t h;
  casync_watchdog *wd;
} wd_idle;

static void idle_free(casync_handle *h) { free(container_of(h, wd_idle, hd)); }

static const casync_hclass idle_class = {"watchdog idle", NULL, idle_free};

/* Pushes the watchdog's table in the context: [1] on_block, [2] the
 * reports queued for it. */
static void push_wd(lua_State *L) {
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_WATCHDOG);
  lua_remove(L, -2);
}

/* ========================================================= the thread */

static void wd_hook(lua_State *L, lua_Debug *ar);
static void on_idle(uv_idle_t *h);

static void wd_thread(void *arg) {
  casync_watchdog *wd = arg;
  casync_ctx *lp = wd->lp;
  unsigned long last = 0, reported = 0;
  uint64_t first_seen = uv_hrtime();
  for (;;) {
    unsigned long s;
    uint64_t now;
    uv_mutex_lock(&wd->mu);
    if (!wd->stop) uv_cond_timedwait(&wd->cv, &wd->mu, wd->interval_ns);
    if (wd->stop) {
      uv_mutex_unlock(&wd->mu);
      return;
    }
    uv_mutex_unlock(&wd->mu);
    s = atomic_load_explicit(&lp->run_seq, memory_order_acquire);
    now = uv_hrtime();
    if (s != last) { /* another run since the last look */
      last = s;
      first_seen = now;
      continue;
    }
    if (!(s & 1) || s == reported || now - first_seen < wd->threshold_ns)
      continue;
    reported = s;
    uv_mutex_lock(&wd->gate);
    if (atomic_load_explicit(&lp->run_seq, memory_order_acquire) == s) {
      lua_State *co = atomic_load_explicit(&lp->run_co, memory_order_relaxed);
      atomic_store(&wd->since, first_seen);
      atomic_store(&wd->target, s);
      /* a hook the program set on that coroutine (a debugger, coverage)
       * is left alone: no report then */
      if (lua_gethook(co) == NULL || lua_gethook(co) == wd_hook)
        lua_sethook(co, wd_hook, LUA_MASKCOUNT, 1);
    }
    uv_mutex_unlock(&wd->gate);
  }
}

/* sched.c's finish() calls this before a task's coroutine may be freed:
 * it waits for the thread to leave the gate if it is in it. */
void casync__watchdog_gate(casync_ctx *lp) {
  uv_mutex_lock(&lp->wd->gate);
  uv_mutex_unlock(&lp->wd->gate);
}

/* ============================================================ the hook */

/* Runs in the blocked task at its next instruction. */
static void wd_hook(lua_State *L, lua_Debug *ar) {
  casync_ctx *lp = casync__ctx_get(L);
  casync_watchdog *wd = lp ? lp->wd : NULL;
  casync_task *t = lp ? lp->current : NULL;
  double ms;
  int top = lua_gettop(L);
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (!wd || !t || t->co != L ||
      atomic_load(&lp->run_seq) != atomic_load(&wd->target))
    return; /* the run it was meant for is over: nothing to say */
  ms = (double)(uv_hrtime() - atomic_load(&wd->since)) / 1e6;
  atomic_fetch_add(&wd->reports, 1);
  luaL_checkstack(L, 10, NULL);
  casync__push_task(L, lp, t);     /* top+1: task */
  casync__task_describe(L, t, -1); /* top+2 */
  luaL_traceback(L, L, NULL, 0);   /* top+3 */
  lua_pushfstring(L,
                  "casync: %s has run %d ms without suspending "
                  "(it blocks every other task)\n%s",
                  lua_tostring(L, top + 2), (int)(ms + 0.5),
                  lua_tostring(L, top + 3)); /* top+4 */
  if (!wd->has_callback) {
    fprintf(stderr, "%s\n", lua_tostring(L, top + 4));
    fflush(stderr);
    casync__flight_dump(L, lp, "the watchdog saw a task block the loop");
    lua_settop(L, top);
    return;
  }
  /* queue {task=, elapsed=, traceback=, message=} for on_block */
  push_wd(L);            /* top+5 */
  lua_rawgeti(L, -1, 2); /* top+6 */
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, top + 1);
  lua_setfield(L, -2, "task");
  lua_pushnumber(L, ms / 1000);
  lua_setfield(L, -2, "elapsed");
  lua_pushvalue(L, top + 3);
  lua_setfield(L, -2, "traceback");
  lua_pushvalue(L, top + 4);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, top + 6, (lua_Integer)lua_rawlen(L, top + 6) + 1);
  if (wd->idle) uv_idle_start(&wd->idle->h, on_idle);
  lua_settop(L, top);
}

/* ==================================================== on_block delivery */

static int call_on_block(lua_State *L) {
  /* [1 on_block] [2 report] */
  lua_call(L, 1, 0);
  return 0;
}

static void on_idle(uv_idle_t *h) {
  casync_watchdog *wd = container_of(h, wd_idle, h)->wd;
  lua_State *L = wd->lp->L;
  int top = lua_gettop(L), i, n;
  uv_idle_stop(h);
  if (!wd->lp->alive) return;
  push_wd(L);
  lua_rawgeti(L, top + 1, 2); /* the queue: taken, a new one left */
  lua_newtable(L);
  lua_rawseti(L, top + 1, 2);
  n = (int)lua_rawlen(L, top + 2);
  for (i = 1; i <= n; i++) {
    lua_pushcfunction(L, call_on_block);
    lua_rawgeti(L, top + 1, 1);
    lua_rawgeti(L, top + 2, i);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
      fprintf(stderr, "casync: the watchdog's on_block failed: %s\n",
              casync__tostring(L, -1));
      fflush(stderr);
      lua_settop(L, top + 2);
    }
  }
  lua_settop(L, top);
}

/* ============================================================ on / off */

static void stop(casync_ctx *lp) {
  casync_watchdog *wd = lp->wd;
  if (!wd) return;
  uv_mutex_lock(&wd->mu);
  wd->stop = 1;
  uv_cond_signal(&wd->cv);
  uv_mutex_unlock(&wd->mu);
  uv_thread_join(&wd->thread);
  /* a hook it set and that has not fired yet finds lp->wd NULL */
  lp->wd = NULL;
  if (wd->idle) casync__handle_close(&wd->idle->hd);
  uv_mutex_destroy(&wd->mu);
  uv_mutex_destroy(&wd->gate);
  uv_cond_destroy(&wd->cv);
  free(wd);
}

/* Starts the watchdog of lp with threshold seconds; 0 or a libuv error. */
static int start(casync_ctx *lp, double threshold, int has_callback) {
  casync_watchdog *wd = calloc(1, sizeof *wd);
  int rc;
  if (!wd) return UV_ENOMEM;
  if (has_callback && !(wd->idle = malloc(sizeof *wd->idle))) {
    free(wd);
    return UV_ENOMEM;
  }
  wd->lp = lp;
  wd->threshold_ns = (uint64_t)(threshold * 1e9);
  /* sample ten times per threshold, between 1 ms and 50 ms */
  wd->interval_ns = wd->threshold_ns / 10;
  if (wd->interval_ns < 1000000) wd->interval_ns = 1000000;
  if (wd->interval_ns > 50000000) wd->interval_ns = 50000000;
  wd->has_callback = has_callback;
  uv_mutex_init(&wd->mu);
  uv_mutex_init(&wd->gate);
  uv_cond_init(&wd->cv);
  if (wd->idle) {
    uv_idle_init(lp->loop, &wd->idle->h);
    casync__handle_init(lp, &wd->idle->hd, &idle_class,
                        (uv_handle_t *)&wd->idle->h);
    wd->idle->wd = wd;
  }
  lp->wd = wd; /* before the thread starts: finish() must see it */
  rc = uv_thread_create(&wd->thread, wd_thread, wd);
  if (rc < 0) {
    lp->wd = NULL;
    if (wd->idle) casync__handle_close(&wd->idle->hd);
    uv_mutex_destroy(&wd->mu);
    uv_mutex_destroy(&wd->gate);
    uv_cond_destroy(&wd->cv);
    free(wd);
  }
  return rc;
}

/* casync.watchdog([opts | false]) -> true: with a table, turns the
 * watchdog on (again, with these settings): opts.threshold (seconds,
 * default 0.1) is how long a task may run without suspending before it is
 * reported; opts.on_block(report) is called from the loop, once the task
 * has let go, with {task=, elapsed= (seconds when reported),
 * traceback=, message=} instead of printing the message to stderr.  With
 * false, turns it off.  Without arguments, reports whether it is on, and
 * how many reports it made. */
static int fn_watchdog(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  double threshold = DEFAULT_THRESHOLD;
  int has_cb = 0, rc;
  if (lua_isnone(L, 1)) {
    lua_pushboolean(L, lp->wd != NULL);
    lua_pushinteger(L, lp->wd ? atomic_load(&lp->wd->reports) : 0);
    return 2;
  }
  if (lua_isboolean(L, 1) && !lua_toboolean(L, 1)) {
    stop(lp);
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getfield(L, 1, "threshold") != LUA_TNIL) {
    int isnum;
    threshold = lua_tonumberx(L, -1, &isnum);
    luaL_argcheck(L, isnum && threshold > 0 && threshold < 1e6, 1,
                  "opts.threshold must be a positive number of seconds");
    if (threshold < 0.001) threshold = 0.001;
  }
  if (lua_getfield(L, 1, "on_block") != LUA_TNIL) {
    casync__check_callable(L, lua_gettop(L));
    has_cb = 1;
  }
  stop(lp);
  push_wd(L);
  lua_pushvalue(L, 3); /* on_block or nil */
  lua_rawseti(L, -2, 1);
  lua_newtable(L);
  lua_rawseti(L, -2, 2);
  rc = start(lp, threshold, has_cb);
  if (rc < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "watchdog", rc);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void casync__watchdog_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"watchdog", fn_watchdog}, {NULL, NULL}};
  casync_ctx *lp = casync__ctx_get(L);
  const char *debug = getenv("CASYNC_DEBUG");
  lp->parts[CTX_PART_WATCHDOG] = stop; /* the thread stops first */
  push_wd(L);
  lua_newtable(L);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 1);
  casync__ctx_setfuncs(L, fns);
  /* debug mode: on by default, reporting to stderr */
  if (debug && *debug && strcmp(debug, "0") != 0 && !lp->wd)
    start(lp, DEFAULT_THRESHOLD, 0);
}
