/* signal.c: casync.signal.wait (a task waits for a signal), reset, raise
 * and name.  (Ctrl-C during casync.run is interrupt.c's; signal names,
 * signame.c's.)
 *
 * Each signal a task has waited for gets one uv_signal_t, kept until the
 * Lua state closes (or casync.signal.reset): once a program handles a
 * signal, a delivery between two waits must not fall back to the default
 * action (which would often kill the process), so it is remembered and
 * the next wait returns at once.  A watcher keeps the loop alive only
 * while a task waits on it.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io.h"

#define MAX_SIG 65

/* ============================================================== watchers */

/* One signal's watcher: a handle block (context.h). */
typedef struct sigw {
  casync_handle hd;
  uv_signal_t h;
  casync_wqueue waiters; /* tasks in casync.signal.wait */
  int signum;
  int pending; /* came while nobody waited */
  int refd;    /* uv_ref'd: a task waits */
  int gone;    /* stopped: no more waiters */
} sigw;

/* The state's watchers, by signal (ctx->sig, made on first use). */
struct casync_signals {
  sigw *w[MAX_SIG];
};

static void sigw_free(casync_handle *h) { free(container_of(h, sigw, hd)); }

static const casync_hclass sigw_class = {"signal", NULL, sigw_free};

static void set_ref(sigw *w, int on) {
  if (on && !w->refd) uv_ref((uv_handle_t *)&w->h);
  else if (!on && w->refd) uv_unref((uv_handle_t *)&w->h);
  w->refd = on;
}

static void on_signal(uv_signal_t *h, int signum) {
  sigw *w = container_of(h, sigw, h);
  casync_wnode *n;
  (void)signum;
  if (w->gone) return;
  if (!w->waiters.head) {
    w->pending = 1;
    return;
  }
  while ((n = casync__wq_pop(&w->waiters)) != NULL) { /* every waiter */
    n->status = WN_OK;
    casync__wake(w->hd.ctx, n->task, WAKE_OK);
  }
  set_ref(w, 0);
}

static void close_watcher(casync_ctx *lp, int signum) {
  sigw *w = lp->sig->w[signum];
  if (!w) return;
  lp->sig->w[signum] = NULL;
  if (signum == SIGINT) lp->sigint_taken = 0;
  w->gone = 1;
  w->waiters.head = w->waiters.tail = NULL;
  casync__handle_close(&w->hd);
}

/* The state closes: every watcher goes. */
static void signals_close(casync_ctx *lp) {
  int i;
  if (!lp->sig) return;
  for (i = 1; i < MAX_SIG; i++) close_watcher(lp, i);
  free(lp->sig);
  lp->sig = NULL;
}

static struct casync_signals *get_state(lua_State *L, casync_ctx *lp) {
  if (!lp->sig && !(lp->sig = calloc(1, sizeof *lp->sig)))
    luaL_error(L, "not enough memory");
  lp->parts[CTX_PART_SIGNALS] = signals_close;
  return lp->sig;
}

/* ================================================================= wait */

static int wait_cancel(casync_ctx *lp, casync_task *t, int why) {
  sigw *w = t->wait_obj;
  (void)lp;
  (void)why;
  casync__wq_remove(&t->u.wn);
  if (!w->gone && !w->waiters.head) set_ref(w, 0);
  return 1;
}

/* A woken wait has its signal: kept. */
static void signal_describe(lua_State *L, casync_task *t) {
  int signum = ((sigw *)t->wait_obj)->signum;
  const char *name = casync__signal_name(signum);
  if (name) lua_pushfstring(L, "wait for %s", name);
  else lua_pushfstring(L, "wait for signal %d", signum);
}

static const casync_wait_kind signal_wait = {
    "wait", "signal wait", wait_cancel, CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL,
    signal_describe};

static int wait_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, wait_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    casync__timeout_error(L, "wait", lua_tonumber(L, 2));
    return 2;
  }
  if (t->u.wn.status == WN_CLOSED) {
    lua_pushnil(L);
    casync__error_push(L, "closed", NULL,
                       "signal wait: casync.signal.reset "
                       "stopped handling the signal");
    return 2;
  }
  lua_pushvalue(L, 3); /* the name */
  return 1;
}

/* casync.signal.wait(sig [, timeout]) -> name | nil, err: suspends until
 * signal sig (a number or a name: "SIGUSR1", "usr1") arrives; its name.
 * From the first wait on, casync handles that signal: one that comes while
 * no task waits is kept for the next wait (which returns at once), and
 * its default action (often: end the process) no longer applies until
 * casync.signal.reset(sig).  An error of kind "timeout" after timeout
 * seconds. */
static int fn_wait(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int signum = casync__signal_number(L, 1);
  double timeout = lua_isnoneornil(L, 2) ? -1 : casync__check_seconds(L, 2, 0);
  casync_task *t = casync__wait_begin(L, "wait");
  struct casync_signals *st = get_state(L, lp);
  const char *name = casync__signal_name(signum);
  sigw *w;
  luaL_argcheck(L, signum != SIGKILL && signum != SIGSTOP, 1,
                "SIGKILL and SIGSTOP cannot be caught");
  lua_settop(L, 2);
  if (name) lua_pushstring(L, name);
  else lua_pushinteger(L, signum);
  if (!(w = st->w[signum])) {
    int rc;
    w = calloc(1, sizeof *w);
    if (!w) return luaL_error(L, "not enough memory");
    uv_signal_init(lp->loop, &w->h);
    casync__handle_init(lp, &w->hd, &sigw_class, (uv_handle_t *)&w->h);
    w->signum = signum;
    w->refd = 1;
    rc = uv_signal_start(&w->h, on_signal, signum);
    if (rc < 0) {
      w->gone = 1;
      casync__handle_close(&w->hd);
      lua_pushnil(L);
      casync__error_uv(L, "signal wait", rc);
      return 2;
    }
    set_ref(w, 0);
    st->w[signum] = w;
    if (signum == SIGINT) lp->sigint_taken = 1;
  }
  if (w->pending) {
    w->pending = 0;
    return 1;
  }
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  casync__wq_push(&w->waiters, &t->u.wn);
  set_ref(w, 1);
  return casync__park(L, t, &signal_wait, w, casync__deadline(timeout), wait_k,
                      0);
}

/* casync.signal.reset(sig): stops handling sig (its default action
 * applies again); tasks waiting for it get nil and an error of kind
 * "closed" */
static int fn_reset(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int signum = casync__signal_number(L, 1);
  sigw *w = get_state(L, lp)->w[signum];
  casync_wnode *n;
  if (!w) return 0;
  while ((n = casync__wq_pop(&w->waiters)) != NULL) {
    n->status = WN_CLOSED;
    casync__wake(lp, n->task, WAKE_OK);
  }
  close_watcher(lp, signum);
  return 0;
}

/* casync.signal.raise(sig): sends sig to this process */
static int fn_raise(lua_State *L) {
  int signum = casync__signal_number(L, 1);
  int rc = uv_kill(uv_os_getpid(), signum);
  if (rc < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "raise", rc);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* casync.signal.name(sig) -> "SIGTERM" (or nil for a number without one) */
static int fn_name(lua_State *L) {
  const char *name = casync__signal_name(casync__signal_number(L, 1));
  if (name) lua_pushstring(L, name);
  else lua_pushnil(L);
  return 1;
}

void casync__signal_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"wait", fn_wait},
                                 {"reset", fn_reset},
                                 {"raise", fn_raise},
                                 {"name", fn_name},
                                 {NULL, NULL}};
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "signal");
}
