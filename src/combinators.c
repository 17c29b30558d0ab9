/* combinators.c: gather, all_settled, race, wait and wait_for.
 *
 * Each is one "group": a userdata kept on the waiting task's stack with one
 * observer node per member task, linked into that task's observer list.
 * Member ends are counted in C; the waiter is woken once, when the group's
 * rule is met, and builds its results in its continuation.  Groups that
 * cancel (gather on error, race, wait_for on timeout, and all of them when
 * the waiter itself is cancelled) wake only after the tasks they cancelled
 * have ended, so nothing outlives the call that started it.
 */
#include <string.h>
#include "prim.h"

enum {
  M_GATHER,
  M_SETTLED,
  M_RACE,
  M_WAIT_ALL,
  M_WAIT_FIRST,
  M_WAIT_ERROR,
  M_WAIT_FOR
};

static const char *const mode_names[] = {
    "gather", "all_settled", "race", "wait", "wait", "wait", "wait_for"};

typedef struct group group;

typedef struct member {
  casync_obs obs;
  casync_task *task;
  group *g;
  int linked;
} member;

struct group {
  casync_ctx *lp;
  casync_task *waiter;
  int n, pending, mode;
  int first;        /* index of the member that decided (0-based), or -1 */
  int suspended;    /* the waiter has yielded */
  int woke;         /* the waiter was woken (or need not yield) */
  int outer_cancel; /* the waiter was cancelled */
  int first_ok;     /* the first member that ended with results, or -1 */
  int timed_out;
  double timeout;
  member m[];
};

/* Cancels every member that has not ended, for the group's own reasons. */
static void cancel_members(group *g) {
  int i;
  for (i = 0; i < g->n; i++)
    if (g->m[i].linked) casync__cancel(g->lp->L, g->lp, g->m[i].task, 0);
}

static void unlink_all(group *g) {
  int i;
  for (i = 0; i < g->n; i++)
    if (g->m[i].linked) {
      casync__obs_unlink(g->m[i].task, &g->m[i].obs);
      g->m[i].linked = 0;
    }
}

static int rule_met(group *g) {
  if (g->pending == 0) return 1;
  if (g->outer_cancel || g->timed_out)
    return g->mode < M_WAIT_ALL || g->mode == M_WAIT_FOR ? 0 : 1;
  return (g->mode == M_WAIT_FIRST || g->mode == M_WAIT_ERROR) && g->first >= 0;
}

static void maybe_wake(group *g) {
  if (g->woke || !rule_met(g)) return;
  g->woke = 1;
  if (!g->suspended) return; /* decided while registering: no yield */
  unlink_all(g);
  casync__timer_remove(g->lp, &g->waiter->timer);
  casync__wake(g->lp, g->waiter, g->outer_cancel ? WAKE_CANCEL : WAKE_OK);
}

/* A member ended (or had ended when the group started). */
static void member_ended(group *g, int idx) {
  casync_task *t = g->m[idx].task;
  g->pending--;
  if (g->first_ok < 0 && t->outcome == OUT_OK) g->first_ok = idx;
  if (g->first < 0 && !g->outer_cancel) switch (g->mode) {
    case M_GATHER:
      if (t->outcome != OUT_OK) {
        g->first = idx;
        cancel_members(g);
      }
      break;
    case M_RACE:
      g->first = idx;
      cancel_members(g);
      break;
    case M_WAIT_FIRST: g->first = idx; break;
    case M_WAIT_ERROR:
      if (t->outcome != OUT_OK) g->first = idx;
      break;
    default: break;
    }
  maybe_wake(g);
}

static void member_notify(casync_ctx *lp, casync_obs *o, casync_task *t) {
  member *m = container_of(o, member, obs);
  (void)lp;
  (void)t;
  m->linked = 0;
  member_ended(m->g, (int)(m - m->g->m));
}

/* The waiter was cancelled or its timeout passed.  Wait-style groups
 * wake at once; the others cancel their members first (wait_for on its
 * timeout too) and wake when those have unwound. */
static int group_cancel(casync_ctx *lp, casync_task *w, int why) {
  group *g = w->wait_obj;
  (void)lp;
  if (why == WAKE_TIMEOUT) {
    g->timed_out = 1;
    if (g->mode == M_WAIT_FOR) cancel_members(g);
    maybe_wake(g);
    return 0; /* maybe_wake has woken it, or will */
  }
  g->outer_cancel = 1;
  if (g->mode >= M_WAIT_ALL && g->mode <= M_WAIT_ERROR) {
    unlink_all(g);
    g->woke = 1;
    return 1;
  }
  cancel_members(g);
  if (g->pending == 0) {
    g->woke = 1;
    return 1;
  }
  return 0;
}

/* The continuation decides what a cancellation does to the results. */
static void group_describe(lua_State *L, casync_task *t) {
  group *g = t->wait_obj;
  lua_pushfstring(L, "%s of %d task%s (%d still running)", mode_names[g->mode],
                  g->n, g->n == 1 ? "" : "s", g->pending);
}

static int group_blockers(lua_State *L, casync_task *t, casync_task **out,
                          int max) {
  group *g = t->wait_obj;
  int i, n = 0;
  (void)L;
  for (i = 0; i < g->n && n < max; i++)
    if (g->m[i].task->state != T_DONE) out[n++] = g->m[i].task;
  return n;
}

#define GROUP(name)                                                 \
  {                                                                 \
    name, name, group_cancel, CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS, \
        group_describe, group_blockers                              \
  }
static const casync_wait_kind group_waits[] = {
    GROUP("gather"), GROUP("all_settled"), GROUP("race"),    GROUP("wait"),
    GROUP("wait"),   GROUP("wait"),        GROUP("wait_for")};
#undef GROUP

/* ------------------------------------------------------------- results */

/* The members' failures that the group itself caused count as observed. */
static void observe_cancelled(group *g) {
  int i;
  for (i = 0; i < g->n; i++)
    if (g->m[i].task->outcome == OUT_CANCELLED)
      g->m[i].task->flags |= TF_OBSERVED;
}

static int raise_member_error(lua_State *L, int tasks, int idx) {
  lua_rawgeti(L, tasks, idx + 1);
  casync__push_error_of(L, lua_touserdata(L, -1), -1);
  return lua_error(L);
}

static int push_task_list(lua_State *L, group *g, int tasks, int done) {
  int i, k = 0;
  lua_createtable(L, g->n, 0);
  for (i = 0; i < g->n; i++)
    if ((g->m[i].task->state == T_DONE) == done) {
      lua_rawgeti(L, tasks, i + 1);
      lua_rawseti(L, -2, ++k);
    }
  return 1;
}

/* Builds what the call returns.  Stack: ... [tasks] [group] [varargs?] */
static int outcome_kept(group *g) {
  int i;
  switch (g->mode) {
  case M_GATHER:
  case M_SETTLED:
    for (i = 0; i < g->n; i++)
      if (g->m[i].task->outcome != OUT_OK) return 0;
    return 1;
  case M_RACE:
  case M_WAIT_FOR: return g->first_ok >= 0;
  default: return 0;
  }
}

static int group_results(lua_State *L, group *g, int tasks, int varargs) {
  int i;
  casync_task *t;
  /* Cancelled while it waited: the members it cancelled have unwound.  If
   * what the call returns was produced anyway (every member of a gather
   * ended with results, a race or wait_for member did), it is returned and
   * the cancellation stays pending for the next suspension point, as for a
   * value handed over by a channel: nothing is lost.  A cancellation that
   * came after the group was decided is likewise left pending. */
  if (g->outer_cancel && !outcome_kept(g)) {
    observe_cancelled(g);
    return casync__raise_cancel(L, g->waiter);
  }
  if (g->outer_cancel && g->mode == M_RACE) g->first = g->first_ok;
  switch (g->mode) {
  case M_GATHER:
    observe_cancelled(g);
    if (g->first >= 0) return raise_member_error(L, tasks, g->first);
    if (varargs) {
      luaL_checkstack(L, g->n, "too many results");
      for (i = 0; i < g->n; i++) {
        lua_rawgeti(L, tasks, i + 1);
        casync__push_results(L, g->m[i].task, -1, 1);
        lua_remove(L, -2);
      }
      return g->n;
    }
    lua_createtable(L, g->n, 1);
    for (i = 0; i < g->n; i++) {
      lua_rawgeti(L, tasks, i + 1);
      casync__push_results(L, g->m[i].task, -1, 1);
      lua_rawseti(L, -3, i + 1);
      lua_pop(L, 1);
    }
    lua_pushinteger(L, g->n);
    lua_setfield(L, -2, "n");
    return 1;
  case M_SETTLED:
    lua_createtable(L, g->n, 1);
    for (i = 0; i < g->n; i++) {
      t = g->m[i].task;
      lua_rawgeti(L, tasks, i + 1);
      lua_createtable(L, 0, 2);
      lua_pushboolean(L, t->outcome == OUT_OK);
      lua_setfield(L, -2, "ok");
      if (t->outcome == OUT_OK) casync__push_results(L, t, -2, 1);
      else casync__push_error_of(L, t, -2);
      lua_setfield(L, -2, t->outcome == OUT_OK ? "value" : "error");
      lua_rawseti(L, -3, i + 1);
      lua_pop(L, 1);
    }
    lua_pushinteger(L, g->n);
    lua_setfield(L, -2, "n");
    return 1;
  case M_RACE:
    observe_cancelled(g);
    t = g->m[g->first].task;
    lua_rawgeti(L, tasks, g->first + 1);
    if (t->outcome != OUT_OK) return raise_member_error(L, tasks, g->first);
    return casync__push_results(L, t, -1, 0);
  case M_WAIT_FOR:
    t = g->m[0].task;
    lua_rawgeti(L, tasks, 1);
    if (t->outcome == OUT_OK) return casync__push_results(L, t, -1, 0);
    if (g->timed_out && t->outcome == OUT_CANCELLED) {
      t->flags |= TF_OBSERVED;
      casync__timeout_error(L, "wait_for", g->timeout);
      return lua_error(L);
    }
    return raise_member_error(L, tasks, 0);
  default: /* wait */
    push_task_list(L, g, tasks, 1);
    push_task_list(L, g, tasks, 0);
    return 2;
  }
}

static int group_k(lua_State *L, int status, lua_KContext kc) {
  int gidx = (int)kc;
  group *g = lua_touserdata(L, gidx);
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, group_k);
  return group_results(L, g, gidx - 1, lua_toboolean(L, gidx + 1));
}

/* ---------------------------------------------------------------- start */

/* Checks entries and spawns the callables: at `list` a table of tasks or
 * callables (n of them); pushes the table of tasks.  `what` is the argument
 * description for errors. */
static void collect(lua_State *L, casync_ctx *lp, casync_task *self,
                    const char *fname, int list, int n, int arg,
                    int is_varargs) {
  int i;
  for (i = 1; i <= n; i++) { /* check everything before spawning anything */
    int ok;
    if (is_varargs) lua_pushvalue(L, i);
    else lua_rawgeti(L, list, i);
    ok = luaL_testudata(L, -1, CASYNC_TASK_MT) || casync__is_callable(L, -1);
    if (!ok) {
      if (is_varargs) luaL_typeerror(L, i, "task or function");
      else
        luaL_argerror(L, arg,
                      lua_pushfstring(L,
                                      "entry %d is not a task or "
                                      "function (%s)",
                                      i, luaL_typename(L, -1)));
    }
    if (lua_touserdata(L, -1) == self)
      luaL_error(L, "%s: a task cannot wait for itself", fname);
    lua_pop(L, 1);
  }
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    if (is_varargs) lua_pushvalue(L, i);
    else lua_rawgeti(L, list, i);
    if (!luaL_testudata(L, -1, CASYNC_TASK_MT)) {
      casync__spawn(L, lp, -1, 0, 0);
      lua_remove(L, -2);
    }
    lua_rawseti(L, -2, i);
  }
}

/* Starts a group over the tasks table on top of the stack; returns what the
 * call returns (at once, or after the waiter is woken). */
static int start(lua_State *L, casync_ctx *lp, casync_task *self, int mode,
                 double timeout, int varargs) {
  int tasks = lua_gettop(L), n = (int)lua_rawlen(L, tasks), i, gidx;
  group *g =
      lua_newuserdatauv(L, sizeof(group) + (size_t)n * sizeof(member), 0);
  memset(g, 0, sizeof(group));
  g->lp = lp;
  g->waiter = self;
  g->n = n;
  g->mode = mode;
  g->first = -1;
  g->first_ok = -1;
  g->timeout = timeout;
  gidx = lua_gettop(L);
  lua_pushboolean(L, varargs);
  for (i = 0; i < n; i++) {
    member *m = &g->m[i];
    lua_rawgeti(L, tasks, i + 1);
    m->task = lua_touserdata(L, -1);
    lua_pop(L, 1);
    m->g = g;
    m->linked = 0;
    m->obs.next = m->obs.prev = NULL;
  }
  /* link every member that runs first, so a decision taken on one that
   * has already ended (a failure in gather) reaches all the others */
  g->pending = n;
  for (i = 0; i < n; i++) {
    member *m = &g->m[i];
    if (m->task->state == T_DONE) continue;
    m->obs.notify = member_notify;
    casync__obs_link(m->task, &m->obs);
    m->linked = 1;
  }
  for (i = 0; i < n && !g->woke; i++)
    if (g->m[i].task->state == T_DONE) member_ended(g, i);
  if (n == 0) maybe_wake(g); /* an empty list is decided at once */
  if (!g->woke && timeout == 0 && (mode == M_WAIT_FOR || mode >= M_WAIT_ALL)) {
    g->timed_out = 1;
    if (mode == M_WAIT_FOR) cancel_members(g);
    maybe_wake(g);
  }
  if (g->woke) {
    unlink_all(g);
    return group_results(L, g, tasks, varargs);
  }
  g->suspended = 1;
  return casync__park(L, self, &group_waits[mode], g,
                      timeout > 0 ? casync__deadline(timeout) : 0, group_k,
                      (lua_KContext)gidx);
}

/* Common front: checks the caller, then the list argument at 1 (or the
 * varargs when allowed), spawns, and starts. */
static int front(lua_State *L, int mode, int allow_varargs, int nargs_keep,
                 double timeout) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *self;
  const char *name = mode_names[mode];
  int varargs =
      allow_varargs && !(lua_gettop(L) == 1 && lua_type(L, 1) == LUA_TTABLE &&
                         !casync__is_callable(L, 1));
  int n;
  if (varargs) n = lua_gettop(L);
  else {
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)lua_rawlen(L, 1);
    lua_settop(L, nargs_keep);
  }
  if (mode == M_RACE && n == 0) luaL_argerror(L, 1, "list is empty");
  self = casync__wait_begin(L, name); /* before spawning anything */
  collect(L, lp, self, name, 1, n, 1, varargs);
  return start(L, lp, self, mode, timeout, varargs);
}

/* casync.gather(...) / gather(list): waits for all; their first results in
 * order (an array with n for the list form); on the first error cancels
 * the others, waits for them to unwind, and raises it */
static int fn_gather(lua_State *L) { return front(L, M_GATHER, 1, 1, -1); }

/* casync.all_settled(list) -> array of {ok=true, value=v} / {ok=false,
 * error=e}, with n; waits for all, cancels nothing */
static int fn_all_settled(lua_State *L) {
  return front(L, M_SETTLED, 0, 1, -1);
}

/* casync.race(list) -> ...: the first to end wins (its results or its
 * error); the others are cancelled and waited for */
static int fn_race(lua_State *L) { return front(L, M_RACE, 0, 1, -1); }

/* casync.wait(list [, opts]) -> done, pending: waits per opts.return_when
 * ("all_completed" default, "first_completed", "first_error") and
 * opts.timeout; cancels nothing */
static int fn_wait(lua_State *L) {
  static const char *const whens[] = {"all_completed", "first_completed",
                                      "first_error", NULL};
  int mode = M_WAIT_ALL;
  double timeout = -1;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "return_when") != LUA_TNIL) {
      int i;
      const char *w = lua_tostring(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, 2, "opts.return_when must be a string");
      for (i = 0; whens[i] && strcmp(whens[i], w) != 0; i++) {}
      if (!whens[i])
        luaL_argerror(L, 2, lua_pushfstring(L, "invalid return_when '%s'", w));
      mode = M_WAIT_ALL + i;
    }
    lua_getfield(L, 2, "timeout");
    if (!lua_isnil(L, -1)) {
      if (!lua_isnumber(L, -1))
        luaL_argerror(L, 2, "opts.timeout must be a number");
      timeout = lua_tonumber(L, -1);
      if (timeout != timeout) luaL_argerror(L, 2, "opts.timeout is NaN");
      if (timeout < 0) timeout = 0;
    }
  }
  return front(L, mode, 0, 1, timeout);
}

/* casync.wait_for(task_or_fn, seconds) -> ...: its results; after `seconds`
 * cancels it, waits for it to unwind, and raises an error of kind
 * "timeout" (nil seconds: no limit). Cancelling the caller cancels it too. */
static int fn_wait_for(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *self;
  double timeout;
  if (!luaL_testudata(L, 1, CASYNC_TASK_MT) && !casync__is_callable(L, 1))
    luaL_typeerror(L, 1, "task or function");
  timeout = casync__check_seconds(L, 2, 1);
  lua_settop(L, 1);
  self = casync__wait_begin(L, "wait_for"); /* before spawning anything */
  lua_createtable(L, 1, 0);
  lua_insert(L, 1);
  lua_rawseti(L, 1, 1);
  collect(L, lp, self, "wait_for", 1, 1, 1, 0);
  return start(L, lp, self, M_WAIT_FOR, timeout, 0);
}

void casync__combinators_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"gather", fn_gather}, {"all_settled", fn_all_settled}, {"race", fn_race},
      {"wait", fn_wait},     {"wait_for", fn_wait_for},       {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
