/* signal.c: casync.signal.wait (a task waits for a signal), signal names
 * for process.c, and Ctrl-C during casync.run: the first SIGINT cancels
 * the main task (its <close> variables and pcalls clean up) and run then
 * fails with an error of kind "interrupted"; a second one interrupts the
 * Lua code running at that moment (a task that never suspends), or, if
 * none runs (the cleanup waits), ends the process the default way.
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

#include "internal.h"

#define MAX_SIG 65

static const struct { const char *name; int num; } sig_names[] = {
  {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT},
  {"SIGILL", SIGILL}, {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},
  {"SIGBUS", SIGBUS}, {"SIGFPE", SIGFPE}, {"SIGKILL", SIGKILL},
  {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
  {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},
  {"SIGCHLD", SIGCHLD}, {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},
  {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU},
  {"SIGURG", SIGURG}, {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
  {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
  {"SIGIO", SIGIO}, {"SIGSYS", SIGSYS},
  {NULL, 0}};

/* The name of signal signum ("SIGTERM"), NULL if it has none here. */
const char *casync__signal_name(int signum) {
  int i;
  for (i = 0; sig_names[i].name; i++)
    if (sig_names[i].num == signum) return sig_names[i].name;
  return NULL;
}

/* The signal at arg: a number (1-64) or a name, with or without "SIG",
 * in any case ("SIGTERM", "term"); raises otherwise. */
int casync__signal_number(lua_State *L, int arg) {
  int i;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, arg);
    luaL_argcheck(L, n > 0 && n < MAX_SIG, arg, "no such signal");
    return (int)n;
  }
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *s = lua_tostring(L, arg);
    for (i = 0; sig_names[i].name; i++)
      if (!strcasecmp(s, sig_names[i].name) ||
          !strcasecmp(s, sig_names[i].name + 3))
        return sig_names[i].num;
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown signal '%s'", s));
  }
  return luaL_typeerror(L, arg, "signal number or name");
}

/* ============================================================== watchers */

typedef struct sig_state sig_state;

/* One signal's watcher: libuv's from uv_signal_init until on_close. */
typedef struct sigw {
  uv_signal_t h;         /* first (its data is the loop's luv stand-in) */
  casync_ctx *lp;
  sig_state *st;         /* NULL once the Lua state let go */
  casync_wqueue waiters; /* tasks in casync.signal.wait */
  int signum;
  int pending;           /* came while nobody waited */
  int refd;              /* uv_ref'd: a task waits */
} sigw;

/* Per-Lua-state signal state: a userdata in the registry. */
struct sig_state {
  casync_ctx *lp;
  sigw *w[MAX_SIG];
  struct run_watcher *run_h; /* casync.run's SIGINT watcher, while it runs */
  casync_task *main;    /* the main task of that run */
  int sigint_count;     /* SIGINTs during that run */
  int interrupted;      /* one came */
  int chained;          /* on_sigint_raw is installed for this run */
};

static char state_key;

/* casync.run's SIGINT watcher (libuv's until its close callback). */
typedef struct run_watcher {
  uv_signal_t h;        /* first (its data is the loop's luv stand-in) */
  sig_state *st;
} run_watcher;

static void free_on_close(uv_handle_t *h) {
  free(h);
}

static void set_ref(sigw *w, int on) {
  if (on && !w->refd) uv_ref((uv_handle_t *)&w->h);
  else if (!on && w->refd) uv_unref((uv_handle_t *)&w->h);
  w->refd = on;
}

static void on_signal(uv_signal_t *h, int signum) {
  sigw *w = (sigw *)h;
  casync_wnode *n;
  (void)signum;
  if (!w->st) return;
  if (!w->waiters.head) {
    w->pending = 1;
    return;
  }
  while ((n = casync__wq_pop(&w->waiters)) != NULL) { /* every waiter */
    n->status = WN_OK;
    casync__wake(w->lp, n->task, WAKE_OK);
  }
  set_ref(w, 0);
}

static void close_watcher(sig_state *st, int signum) {
  sigw *w = st->w[signum];
  if (!w) return;
  st->w[signum] = NULL;
  w->st = NULL;
  w->waiters.head = w->waiters.tail = NULL;
  uv_close((uv_handle_t *)&w->h, free_on_close);
}

/* Closes every watcher when the Lua state closes. */
static int state_gc(lua_State *L) {
  sig_state *st = lua_touserdata(L, 1);
  int i;
  for (i = 1; i < MAX_SIG; i++) close_watcher(st, i);
  if (st->run_h) {
    uv_close((uv_handle_t *)st->run_h, free_on_close);
    st->run_h = NULL;
  }
  return 0;
}

static sig_state *get_state(lua_State *L) {
  sig_state *st;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return st;
}

/* ================================================================= wait */

static int wait_cancel(casync_ctx *lp, casync_task *t, int why) {
  sigw *w = t->wait_obj;
  (void)lp;
  (void)why;
  casync__wq_remove(&t->u.wn);
  if (w->st && !w->waiters.head) set_ref(w, 0);
  return 1;
}

/* A woken wait has its signal: kept. */
static const casync_wait_kind signal_wait = {"wait", "signal wait",
                                             wait_cancel, CASYNC_WK_KEEPS};

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
    casync__error_push(L, "closed", NULL, "signal wait: casync.signal.reset "
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
  sig_state *st = get_state(L);
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
    w->h.data = casync__loop_luvh(lp);
    w->lp = lp;
    w->st = st;
    w->signum = signum;
    w->refd = 1;
    rc = uv_signal_start(&w->h, on_signal, signum);
    if (rc < 0) {
      uv_close((uv_handle_t *)&w->h, free_on_close);
      lua_pushnil(L);
      casync__error_uv(L, "signal wait", rc);
      return 2;
    }
    set_ref(w, 0);
    st->w[signum] = w;
  }
  if (w->pending) {
    w->pending = 0;
    return 1;
  }
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  casync__wq_push(&w->waiters, &t->u.wn);
  set_ref(w, 1);
  return casync__park(L, t, &signal_wait, w, casync__deadline(timeout),
                      wait_k, 0);
}

/* casync.signal.reset(sig): stops handling sig (its default action
 * applies again); tasks waiting for it get nil and an error of kind
 * "closed" */
static int fn_reset(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  int signum = casync__signal_number(L, 1);
  sig_state *st = get_state(L);
  sigw *w = st->w[signum];
  casync_wnode *n;
  if (!w) return 0;
  while ((n = casync__wq_pop(&w->waiters)) != NULL) {
    n->status = WN_CLOSED;
    casync__wake(lp, n->task, WAKE_OK);
  }
  close_watcher(st, signum);
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

/* =================================================== Ctrl-C during run */

/* A task that computes without suspending keeps the loop from seeing any
 * signal.  So while casync.run runs, a handler of our own is chained in
 * front of libuv's (which only writes to the loop's signal pipe): from the
 * second SIGINT on it interrupts the Lua code that is running, with a
 * count hook (lua_sethook may be called from a signal handler; lua.c does
 * the same), or, when no task runs, ends the process the default way.
 * One casync.run at a time owns it (another state on another thread runs
 * without it). */
static atomic_int raw_claimed;         /* someone owns the chained handler */
static _Atomic(casync_ctx *) raw_lp;   /* its loop context */
static struct sigaction uv_action;     /* libuv's SIGINT action */
static atomic_int raw_count;           /* SIGINTs seen by the handler */

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  casync__error_push(L, "interrupted", "SIGINT", "interrupted by SIGINT "
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
  sig_state *st = ((run_watcher *)h)->st;
  casync_ctx *lp = st->lp;
  lua_State *L = lp->L;
  (void)signum;
  /* a task that waits for SIGINT itself takes it */
  if (st->w[SIGINT]) return;
  st->interrupted = 1;
  if (++st->sigint_count == 1) {
    if (st->main && st->main->state != T_DONE) {
      int top = lua_gettop(L);
      lua_pushliteral(L, "interrupted (SIGINT)");
      casync__cancel(L, lp, st->main, -1);
      lua_settop(L, top);
    }
    return;
  }
  if (st->chained) return; /* on_sigint_raw took care of it */
  /* again, while the cleanup runs: give up on it, as the default would */
  signal(SIGINT, SIG_DFL);
  raise(SIGINT);
}

/* Chains on_sigint_raw in front of libuv's handler, if nobody else has. */
static void chain(sig_state *st) {
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
  atomic_store(&raw_lp, st->lp);
  mine = cur;
  mine.sa_handler = on_sigint_raw;
  sigaction(SIGINT, &mine, NULL);
  st->chained = 1;
}

static void unchain(sig_state *st) {
  if (!st->chained) return;
  st->chained = 0;
  sigaction(SIGINT, &uv_action, NULL); /* libuv's again, until it stops */
  atomic_store(&raw_lp, NULL);
  atomic_store(&raw_claimed, 0);
}

/* casync.run starts: SIGINT cancels main from now on (unless this process
 * ignores SIGINT, as a background job does). */
void casync__sigint_begin(lua_State *L, casync_ctx *lp, casync_task *main) {
  sig_state *st = get_state(L);
  struct sigaction sa;
  st->main = main;
  st->sigint_count = 0;
  st->interrupted = 0;
  if (st->run_h || sigaction(SIGINT, NULL, &sa) != 0 ||
      sa.sa_handler == SIG_IGN)
    return;
  st->run_h = malloc(sizeof *st->run_h);
  if (!st->run_h) return;
  uv_signal_init(lp->loop, &st->run_h->h);
  st->run_h->h.data = casync__loop_luvh(lp);
  st->run_h->st = st;
  if (uv_signal_start(&st->run_h->h, on_run_sigint, SIGINT) < 0) {
    uv_close((uv_handle_t *)st->run_h, free_on_close);
    st->run_h = NULL;
    return;
  }
  uv_unref((uv_handle_t *)st->run_h); /* it never keeps the loop alive */
  chain(st);
}

/* casync.run ends: returns whether a SIGINT cancelled the main task. */
int casync__sigint_end(lua_State *L, casync_ctx *lp) {
  sig_state *st = get_state(L);
  int interrupted = st->interrupted;
  (void)lp;
  unchain(st);
  if (st->run_h) {
    uv_close((uv_handle_t *)st->run_h, free_on_close);
    st->run_h = NULL;
  }
  st->main = NULL;
  st->interrupted = 0;
  return interrupted;
}

void casync__signal_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"wait", fn_wait}, {"reset", fn_reset}, {"raise", fn_raise},
    {"name", fn_name}, {NULL, NULL}};
  sig_state *st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  st->lp = casync__loop_get(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  lua_newtable(L);
  casync__setfuncs(L, fns);
  lua_setfield(L, -2, "signal");
}
