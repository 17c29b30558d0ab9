/* interrupt.c: Ctrl-C during casync.run: the first SIGINT cancels the
 * main task (its <close> variables and pcalls clean up) and run then fails
 * with an error of kind "interrupted"; a second one interrupts the Lua
 * code running at that moment (a task that never suspends), or, if none
 * runs (the cleanup waits), ends the process the default way.  A task
 * waiting for SIGINT itself (casync.signal.wait) takes it instead.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include "scheduler.h"

/* A task that computes without suspending keeps the loop from seeing any
 * signal.  So while casync.run runs, a handler of our own is chained in
 * front of libuv's (which only writes to the loop's signal pipe): from the
 * second SIGINT on it interrupts the Lua code that is running, with a
 * count hook (lua_sethook may be called from a signal handler; lua.c does
 * the same), or, when no task runs, ends the process the default way.
 * One casync.run at a time owns it (another state on another thread runs
 * without it). */
static atomic_int raw_claimed;       /* someone owns the chained handler */
static _Atomic(casync_ctx *) raw_lp; /* its loop context */
static struct sigaction uv_action;   /* libuv's SIGINT action */
static atomic_int raw_count;         /* SIGINTs seen by the handler */

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  casync__error_push(L, "interrupted", "SIGINT",
                     "interrupted by SIGINT "
                     "while running without suspending");
  lua_error(L);
}

static void on_sigint_raw(int signum) {
  int saved = errno;
  casync_ctx *lp = atomic_load(&raw_lp);
  if (uv_action.sa_handler != SIG_DFL && uv_action.sa_handler != SIG_IGN)
    uv_action.sa_handler(signum); /* libuv: tell the loop */
  if (lp && atomic_fetch_add(&raw_count, 1) >= 1) {
    unsigned long seq = atomic_load(&lp->run_seq);
    if (!(seq & 1)) { /* no Lua code runs: as the default would */
      signal(SIGINT, SIG_DFL);
      raise(SIGINT);
    } else {
      lua_State *co = atomic_load(&lp->run_co);
      if (atomic_load(&lp->run_seq) == seq)
        lua_sethook(co, interrupt_hook, LUA_MASKCOUNT, 1);
    }
  }
  errno = saved;
}

static void on_run_sigint(uv_signal_t *h, int signum) {
  casync_ctx *lp = casync__handle_of((uv_handle_t *)h)->ctx;
  lua_State *L = lp->L;
  (void)signum;
  /* a task that waits for SIGINT itself takes it */
  if (lp->sigint_taken) return;
  lp->interrupted = 1;
  if (++lp->sigint_count == 1) {
    if (lp->run_main && lp->run_main->state != T_DONE) {
      int top = lua_gettop(L);
      lua_pushliteral(L, "interrupted (SIGINT)");
      casync__cancel(L, lp, lp->run_main, -1);
      lua_settop(L, top);
    }
    return;
  }
  if (lp->sigint_chained) return; /* on_sigint_raw took care of it */
  /* again, while the cleanup runs: give up on it, as the default would */
  signal(SIGINT, SIG_DFL);
  raise(SIGINT);
}

/* Chains on_sigint_raw in front of libuv's handler, if nobody else has. */
static void chain(casync_ctx *lp) {
  struct sigaction cur, mine;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&raw_claimed, &expected, 1)) return;
  if (sigaction(SIGINT, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) ||
      cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN) {
    atomic_store(&raw_claimed, 0);
    return;
  }
  uv_action = cur;
  atomic_store(&raw_count, 0);
  atomic_store(&raw_lp, lp);
  mine = cur;
  mine.sa_handler = on_sigint_raw;
  sigaction(SIGINT, &mine, NULL);
  lp->sigint_chained = 1;
}

static void unchain(casync_ctx *lp) {
  if (!lp->sigint_chained) return;
  lp->sigint_chained = 0;
  sigaction(SIGINT, &uv_action, NULL); /* libuv's again, until it stops */
  atomic_store(&raw_lp, NULL);
  atomic_store(&raw_claimed, 0);
}

typedef struct run_watcher {
  casync_handle hd;
  uv_signal_t h;
} run_watcher;

static void watcher_free(casync_handle *h) {
  free(container_of(h, run_watcher, hd));
}

static const casync_hclass watcher_class = {"sigint watcher", NULL,
                                            watcher_free};

static void stop_watcher(casync_ctx *lp) {
  if (!lp->run_sigint) return;
  casync__handle_close(casync__handle_of((uv_handle_t *)lp->run_sigint));
  lp->run_sigint = NULL;
}

/* casync.run starts: SIGINT cancels main from now on (unless this process
 * ignores SIGINT, as a background job does). */
void casync__sigint_begin(lua_State *L, casync_ctx *lp, casync_task *main) {
  struct sigaction sa;
  run_watcher *w;
  (void)L;
  lp->run_main = main;
  lp->sigint_count = 0;
  lp->interrupted = 0;
  if (lp->run_sigint || sigaction(SIGINT, NULL, &sa) != 0 ||
      sa.sa_handler == SIG_IGN)
    return;
  if (!(w = malloc(sizeof *w))) return;
  uv_signal_init(lp->loop, &w->h);
  casync__handle_init(lp, &w->hd, &watcher_class, (uv_handle_t *)&w->h);
  lp->run_sigint = &w->h;
  if (uv_signal_start(&w->h, on_run_sigint, SIGINT) < 0) {
    stop_watcher(lp);
    return;
  }
  uv_unref((uv_handle_t *)&w->h); /* it never keeps the loop alive */
  chain(lp);
}

/* casync.run ends: returns whether a SIGINT cancelled the main task. */
int casync__sigint_end(lua_State *L, casync_ctx *lp) {
  int interrupted = lp->interrupted;
  (void)L;
  unchain(lp);
  stop_watcher(lp);
  lp->run_main = NULL;
  lp->interrupted = 0;
  return interrupted;
}
