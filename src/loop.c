/* loop.c: casync.run (the main task, driving the loop until it ends, the
 * deadlock report, cancelling and unwinding what is left, unobserved
 * failures) and casync_spawn of the C API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <luv/luv.h>
#include <luv/lhandle.h>
#include "scheduler.h"

#define GRACE_MS 5000 /* how long run waits for cancelled tasks to unwind */

static void on_grace(uv_timer_t *h) {
  container_of(h, casync_ctx, grace)->grace_expired = 1;
}

/* ----------------------------------------------------------------- run */

/* Pushes a description of what the deadlocked main task waits on. */
static void push_deadlock(lua_State *L, casync_ctx *lp, casync_task *main) {
  casync_task *t = main;
  int hops = 0, top = lua_gettop(L);
  lua_pushfstring(L, "the main task waits in %s", casync__waiting_in(main));
  while (t->wait && strcmp(t->wait->what, "task:wait()") == 0 && hops++ < 5) {
    t = t->wait_obj;
    if (t == main) {
      lua_pushstring(L, " for the main task itself");
      break;
    }
    lua_pushfstring(L, " for task #%I, which waits in %s", t->id,
                    casync__waiting_in(t));
  }
  lua_pushstring(L, ", and nothing left in the loop can wake it");
  if (lp->live > 1)
    lua_pushfstring(L, " (%d other task%s waiting too)", lp->live - 1,
                    lp->live > 2 ? "s are" : " is");
  casync__push_blocked(L, main); /* every blocked task, and a cycle */
  lua_concat(L, lua_gettop(L) - top);
  casync__error_push(L, "deadlock", NULL, "%s", lua_tostring(L, -1));
  lua_remove(L, -2);
}

/* Cancels every task still alive (but `keep`). */
static void cancel_all(lua_State *L, casync_ctx *lp, casync_task *keep) {
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    if (t && t != keep && t->state != T_DONE) casync__cancel(L, lp, t, 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* Reports every failure that nobody observed, and forgets them. */
static void report_failures(lua_State *L) {
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_FAILED);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    casync_task *t = luaL_testudata(L, -2, CASYNC_TASK_MT);
    if (t) casync__report_unobserved(L, t, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, -2, CTX_FAILED);
  lua_pop(L, 1);
}

/* Runs the loop until the tasks cancelled at the end have unwound, or the
 * grace time is over. */
static void unwind(casync_ctx *lp) {
  if (lp->live == 0 && !lp->qhead) return;
  lp->grace_expired = 0;
  uv_timer_start(&lp->grace, on_grace, GRACE_MS, 0);
  while ((lp->live > 0 || lp->qhead) && !lp->grace_expired)
    if (!uv_run(lp->loop, UV_RUN_ONCE) && !lp->qhead) break;
  uv_timer_stop(&lp->grace);
  if (lp->live > 0) {
    fprintf(stderr,
            "casync: %d task%s still running after being cancelled "
            "at the end of run\n",
            lp->live, lp->live > 1 ? "s" : "");
    fflush(stderr);
  }
}

/* Is the table at idx casync.run's options ({clock =, seed =, preempt =}
 * and nothing else), rather than an argument for fn? */
static int is_options(lua_State *L, int idx) {
  static const char *const keys[] = {"clock", "seed", "preempt", NULL};
  int n = 0, i;
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (lua_getmetatable(L, idx)) { /* an object, not options */
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    lua_pop(L, 1);
    for (i = 0; keys[i] && strcmp(keys[i], k) != 0; i++) {}
    if (!keys[i]) {
      lua_pop(L, 1);
      return 0;
    }
    n++;
  }
  return n > 0;
}

static uint64_t mix(uint64_t x) { /* splitmix64: a seed to a state */
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return (x ^ (x >> 31)) | 1;
}

/* Reads casync.run's options at 2 (then removed), and CASYNC_SEED. */
static void run_options(lua_State *L, casync_ctx *lp) {
  const char *env = getenv("CASYNC_SEED");
  lp->virtual_clock = 0;
  lp->seeded = 0;
  lp->preempt_ns = 0;
  if (env && *env) {
    lp->seeded = 1;
    lp->seed = (uint64_t)strtoull(env, NULL, 10);
  }
  if (!is_options(L, 2)) return;
  if (lua_getfield(L, 2, "clock") != LUA_TNIL) {
    const char *c = lua_tostring(L, -1);
    if (!c || (strcmp(c, "virtual") && strcmp(c, "real")))
      luaL_argerror(L, 2, "opts.clock must be \"virtual\" or \"real\"");
    lp->virtual_clock = strcmp(c, "virtual") == 0;
  }
  if (lua_getfield(L, 2, "seed") != LUA_TNIL) {
    int isint;
    lua_Integer n = lua_tointegerx(L, -1, &isint);
    if (!isint) luaL_argerror(L, 2, "opts.seed must be an integer");
    lp->seeded = 1;
    lp->seed = (uint64_t)n;
  }
  if (lua_getfield(L, 2, "preempt") != LUA_TNIL) {
    int isnum;
    double s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s > 0 && s < 1e6))
      luaL_argerror(L, 2, "opts.preempt must be a positive number of seconds");
    lp->preempt_ns = (uint64_t)(s * 1e9);
    if (lp->preempt_ns == 0) lp->preempt_ns = 1;
    lp->preempted = 1;
    casync__observe(lp);
  }
  lua_pop(L, 3);
  lua_remove(L, 2);
}

/* Runs fn (at 1) with the arguments after it as the main task (a host's
 * main task when host is set).  On success leaves true and its results; on
 * failure false, the error, its traceback. */
static int run_main(lua_State *L, casync_ctx *lp, int host) {
  casync_task *main;
  int midx, deadlock = 0, base, interrupted;
  casync__check_callable(L, 1);
  if (lp->current)
    return luaL_error(L, "run: cannot be called inside a task (nested run)");
  if (lp->running || lp->draining)
    return luaL_error(L, "run: the loop is already running (nested run)");
  if (luv_context(L)->mode != -1) /* libuv's uv_run is not reentrant */
    return luaL_error(L, "run: the loop is already running (inside uv.run)");
  run_options(L, lp);
  casync__flight_rearm(lp);
  if (lp->seeded) /* the same order of ready tasks and of select's ties */
    lp->seed_rng = lp->rng = mix(lp->seed);
  main = casync__spawn(L, lp, 1, lua_gettop(L) - 1, 0);
  main->flags |= TF_MAIN | TF_OBSERVED | (host ? TF_HOST_MAIN : 0u);
  midx = lua_gettop(L);
  lp->running = 1;
  casync__sigint_begin(L, lp, main); /* Ctrl-C cancels main (signal.c) */
  while (main->state != T_DONE) {
    int alive = uv_run(lp->loop, UV_RUN_ONCE);
    if (main->state == T_DONE) break;
    if (!alive && !lp->qhead && !uv_loop_alive(lp->loop)) {
      deadlock = 1;
      push_deadlock(L, lp, main);
      lua_replace(L, 1); /* fn is not needed any more */
      break;
    }
  }
  lp->running = 2;
  if (deadlock) casync__flight_dump(L, lp, "a deadlock ended the run");
  else if (main->outcome == OUT_FAILED)
    casync__flight_dump(L, lp, "an error ended the run");
  if (!deadlock) casync__report_leaks(L, lp); /* debug mode */
  casync__unhold(lp); /* what was ready when main ended: cancelled now */
  cancel_all(L, lp, NULL);
  unwind(lp);
  interrupted = casync__sigint_end(L, lp);
  report_failures(L);
  lp->running = 0;
  lp->virtual_clock = 0;
  lp->clock_offset = 0; /* virtual time lasts for its run */
  lp->preempt_ns = 0;
  if (lp->seeded && (deadlock || main->outcome != OUT_OK)) {
    fprintf(stderr,
            "casync: the run failed under seed %llu "
            "(CASYNC_SEED=%llu replays it)\n",
            (unsigned long long)lp->seed, (unsigned long long)lp->seed);
    fflush(stderr);
  }
  lp->seeded = 0;
  base = lua_gettop(L);
  if (interrupted) { /* whatever main did with the cancellation */
    lua_pushboolean(L, 0);
    casync__error_push(L, "interrupted", "SIGINT",
                       "the main task was cancelled by SIGINT");
    lua_pushnil(L);
    return lua_gettop(L) - base;
  }
  if (deadlock) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return lua_gettop(L) - base;
  }
  if (main->outcome == OUT_OK) {
    lua_pushboolean(L, 1);
    casync__push_results(L, main, midx, 0);
    return lua_gettop(L) - base;
  }
  lua_pushboolean(L, 0);
  lua_getiuservalue(L, midx, 1);
  if (lua_getiuservalue(L, midx, 2) == LUA_TTABLE)
    lua_getfield(L, -1, "traceback");
  else lua_pushnil(L);
  lua_remove(L, -2);
  return lua_gettop(L) - base;
}

/* After fn ran in place: its results are the whole stack. */
static int run_in_place_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L);
}

/* casync.run(fn, ...) -> ...: runs fn(...) as the main task until it ends;
 * its results, or its error re-raised (a string gets the traceback
 * appended).  Tasks still alive then are cancelled and waited for.
 * Called directly in the main task of a host (the casync runner), it runs
 * fn(...) in that task and returns its results, so a script ending with
 * casync.run(main) runs under lua5.4 and under the runner alike (options
 * raise there: they cannot change a loop already running). */
static int fn_run(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = lp->current;
  int n, first;
  if (t && (t->flags & TF_HOST_MAIN) && t->co == L) {
    casync__check_callable(L, 1);
    if (is_options(L, 2)) /* the runner's loop already runs, as it was set */
      return luaL_error(L, "run: options (clock, seed, preempt) cannot apply "
                           "in the casync runner's main task, where the loop "
                           "already runs; run the script with lua5.4");
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, run_in_place_k);
    return run_in_place_k(L, LUA_OK, 0);
  }
  n = run_main(L, lp, 0);
  first = lua_gettop(L) - n + 1;
  if (lua_toboolean(L, first)) return n - 1;
  /* error at first+1, traceback at first+2 */
  if (lua_type(L, first + 1) == LUA_TSTRING && lua_isstring(L, first + 2)) {
    lua_pushvalue(L, first + 1);
    lua_pushliteral(L, "\n");
    lua_pushvalue(L, first + 2);
    lua_concat(L, 3);
    return lua_error(L);
  }
  if (casync__error_is(L, first + 1, NULL) && lua_isstring(L, first + 2)) {
    lua_getfield(L, first + 1, "traceback");
    if (lua_isnil(L, -1)) {
      lua_pushvalue(L, first + 2);
      lua_setfield(L, first + 1, "traceback");
    }
    lua_pop(L, 1);
  }
  lua_settop(L, first + 1);
  return lua_error(L);
}

/* casync._run_report(fn, ...) -> true, ... | false, err, traceback: run for
 * hosts (the casync runner) that print the failure themselves; casync.run
 * called directly in this main task runs in place */
static int fn_run_report(lua_State *L) { return run_main(L, CASYNC_CTX(L), 1); }

/* casync._stats() -> counts for tests: live tasks, ready, timers, pool */
static int fn_stats(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int ready = 0;
  casync_task *t;
  for (t = lp->qhead; t; t = t->qnext) ready++;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, lp->live);
  lua_setfield(L, -2, "live");
  lua_pushinteger(L, ready);
  lua_setfield(L, -2, "ready");
  lua_pushinteger(L, lp->timers);
  lua_setfield(L, -2, "timers");
  lua_pushinteger(L, lp->pool_len);
  lua_setfield(L, -2, "pool");
  return 1;
}

void casync__loop_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"run", fn_run},
                                 {"_run_report", fn_run_report},
                                 {"_stats", fn_stats},
                                 {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}

/* ---------------------------------------------------------------- C API */

CASYNC_API int casync_spawn(lua_State *L, int nargs) {
  casync_ctx *lp = casync__ctx_get(L);
  int fidx = lua_gettop(L) - nargs;
  if (!lp) return luaL_error(L, "casync_spawn: casync is not open");
  casync__check_callable(L, fidx);
  casync__spawn(L, lp, fidx, nargs, 0);
  lua_replace(L, fidx);
  lua_settop(L, fidx);
  return 1;
}
