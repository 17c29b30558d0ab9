/* deadline.c: the Lua API of cancel scopes (cscope.c): casync.timeout (a
 * <close> value), fail_after, move_on_after, shield, deadline, checkpoint,
 * and the methods of a casync.CancelScope.
 *
 * The function forms run fn under a yieldable pcall with the task's
 * message handler, so an error they pass on keeps the traceback of where
 * it was raised; the scope closes before anything is returned or raised.
 */
#include <math.h>
#include <string.h>
#include "scheduler.h"

#define CSCOPE_MT "casync.CancelScope"

enum { F_FAIL_AFTER, F_MOVE_ON, F_SHIELD }; /* what a function form is */
static const char *const form_names[] = {"fail_after", "move_on_after",
                                         "shield"};

/* Checks a deadline argument: seconds (not NaN; negative: already past),
 * or nil / math.huge for none (-1). */
static double check_seconds(lua_State *L, int arg) {
  double s;
  if (lua_isnoneornil(L, arg)) return -1;
  s = casync__check_seconds(L, arg, 0);
  return s >= 1e9 ? -1 : s;
}

/* Pushes a new scope userdata, opened in the running task t, with a
 * deadline `seconds` from now (-1: none); pinned while open. */
static casync_cscope *open_scope(lua_State *L, casync_task *t, double seconds,
                                 unsigned flags) {
  casync_ctx *lp = t->loop;
  casync_cscope *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->flags = flags;
  luaL_setmetatable(L, CSCOPE_MT);
  casync__cs_open(t, s);
  s->ref = casync__pin(L, lp, -1);
  if (seconds >= 0) casync__cs_set_deadline(lp, s, seconds);
  return s;
}

/* Closes s (owned by t) and the scopes t opened inside it and left open. */

/* ------------------------------------------------------ casync.timeout */

static casync_cscope *check_cscope(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CSCOPE_MT);
}

/* casync.timeout(seconds) -> scope: `local d <close> = casync.timeout(2)`
 * cancels the rest of the block after that long; the block then ends with
 * an error of kind "timeout" (nil seconds: no deadline, only d:cancel()) */
static int fn_timeout(lua_State *L) {
  double seconds = check_seconds(L, 1);
  casync_task *t = casync__task_begin(L, "timeout");
  open_scope(L, t, seconds, CS_TIMEOUT);
  return 1;
}

/* scope:__close(err) / scope:close(): leaves the block; its own expiry
 * on its way out becomes an error of kind "timeout" */
static int meth_close(lua_State *L) {
  casync_cscope *s = check_cscope(L, 1);
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = lp->current;
  int catches;
  if (s->flags & CS_CLOSED) return 0;
  if (!t || t->co != L || s->owner != t)
    return luaL_error(L, "close: the scope belongs to another task");
  catches = !lua_isnoneornil(L, 2) && casync__cs_catches(L, t, s, 2);
  casync__cs_close_owned(t, s);
  if (!catches) return 0;
  casync__timeout_error(L, "scope", s->seconds);
  return lua_error(L);
}

/* scope:cancel(): cancels the block now (every wait in it raises) */
static int meth_cancel(lua_State *L) {
  casync_cscope *s = check_cscope(L, 1);
  casync__cs_cancel(CASYNC_CTX(L), s, 0);
  return 0;
}

/* scope:cancelled() -> whether it was cancelled (or its deadline passed) */
static int meth_cancelled(lua_State *L) {
  lua_pushboolean(L, (check_cscope(L, 1)->flags & CS_CANCELLED) != 0);
  return 1;
}

/* scope:expired() -> whether its deadline cancelled it */
static int meth_expired(lua_State *L) {
  lua_pushboolean(L, (check_cscope(L, 1)->flags & CS_BY_DEADLINE) != 0);
  return 1;
}

/* scope:deadline() -> its deadline on casync.now()'s clock, or nil */
static int meth_deadline(lua_State *L) {
  casync_cscope *s = check_cscope(L, 1);
  if (!s->timer.list) return 0;
  lua_pushnumber(L, (lua_Number)s->timer.deadline / 1e9);
  return 1;
}

static int meta_tostring(lua_State *L) {
  casync_cscope *s = check_cscope(L, 1);
  lua_pushfstring(L, "casync.CancelScope (%s)",
                  s->flags & CS_CLOSED      ? "closed"
                  : s->flags & CS_CANCELLED ? "cancelled"
                                            : "open");
  return 1;
}

/* ----------------------------------------------------- function forms */

/* After fn: [1 scope][2 msgh][results... | error]. */
static int form_k(lua_State *L, int status, lua_KContext kc) {
  casync_cscope *s = lua_touserdata(L, 1);
  casync_task *t = casync__resumed(L);
  int form = (int)kc, catches = 0, n;
  if (!t) return casync__not_resumed(L, kc, form_k);
  if (status != LUA_OK && status != LUA_YIELD)
    catches = casync__cs_catches(L, t, s, -1);
  casync__cs_close_owned(t, s);
  if (status != LUA_OK && status != LUA_YIELD) {
    if (!catches) return casync__reraise(L, t);
    if (form == F_MOVE_ON) {
      lua_pushboolean(L, 0);
      return 1;
    }
    casync__timeout_error(L, form_names[form], s->seconds);
    return lua_error(L);
  }
  n = lua_gettop(L) - 2;
  if (form != F_MOVE_ON) return n;
  lua_pushboolean(L, 1);
  lua_insert(L, 3);
  return n + 1;
}

/* Runs the callable at fidx (with the values after it) in a new scope. */
static int run_form(lua_State *L, int form, int fidx, double seconds,
                    unsigned flags) {
  casync_task *t;
  int nargs = lua_gettop(L) - fidx, status;
  casync__check_callable(L, fidx);
  t = casync__task_begin(L, form_names[form]);
  luaL_checkstack(L, 4, NULL);
  lua_rotate(L, 1, -(fidx - 1)); /* [fn][args][what came before fn] */
  lua_pop(L, fidx - 1);
  open_scope(L, t, seconds, flags);
  lua_insert(L, 1);
  lua_pushcfunction(L, casync__task_msgh);
  lua_insert(L, 2); /* [1 scope][2 msgh][fn][args] */
  status = lua_pcallk(L, nargs, LUA_MULTRET, 2, (lua_KContext)form, form_k);
  return form_k(L, status, (lua_KContext)form);
}

/* casync.fail_after(seconds, fn, ...) -> ...: fn's results; when the
 * deadline cuts it short, an error of kind "timeout" */
static int fn_fail_after(lua_State *L) {
  double seconds = check_seconds(L, 1);
  return run_form(L, F_FAIL_AFTER, 2, seconds, CS_TIMEOUT);
}

/* casync.move_on_after(seconds, fn, ...) -> true, ... | false: fn's
 * results after true; false when the deadline cut it short */
static int fn_move_on_after(lua_State *L) {
  double seconds = check_seconds(L, 1);
  return run_form(L, F_MOVE_ON, 2, seconds, CS_MOVE_ON);
}

/* casync.shield([opts,] fn, ...) -> ...: fn runs to its end even if the
 * caller is cancelled meanwhile (the cancellation is raised at the
 * caller's next wait); opts.timeout: a deadline of its own, after which
 * fn is cancelled and shield raises kind "timeout" */
static int fn_shield(lua_State *L) {
  double seconds = -1;
  int fidx = 1;
  if (lua_type(L, 1) == LUA_TTABLE && !casync__is_callable(L, 1)) {
    lua_getfield(L, 1, "timeout");
    if (!lua_isnil(L, -1)) {
      if (!lua_isnumber(L, -1) || isnan(lua_tonumber(L, -1)))
        luaL_argerror(L, 1, "opts.timeout must be a number");
      seconds = lua_tonumber(L, -1);
      if (seconds < 0) seconds = 0;
    }
    lua_pop(L, 1);
    fidx = 2;
  }
  return run_form(L, F_SHIELD, fidx, seconds, CS_SHIELD);
}

/* casync.deadline() -> the innermost deadline the running task is under
 * (casync.now()'s clock), or nil */
static int fn_deadline(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = lp->current;
  uint64_t d;
  if (!t || t->co != L || !t->cscope || !(d = casync__cs_deadline(t))) return 0;
  lua_pushnumber(L, (lua_Number)d / 1e9);
  return 1;
}

static const casync_wait_kind checkpoint_wait = {"checkpoint", "checkpoint",
                                                 NULL, CASYNC_WK_ON_TASKS};

static int checkpoint_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, checkpoint_k);
  casync__woken(L, t);
  return 0;
}

/* casync.checkpoint(): raises a pending cancellation, then lets every
 * other ready task run */
static int fn_checkpoint(lua_State *L) {
  casync_task *t = casync__wait_begin(L, "checkpoint");
  return casync__requeue(L, t, &checkpoint_wait, checkpoint_k, 0);
}

/* casync._join_scope(task): task, just spawned and in no scope, joins the
 * innermost cancel scope of the task running (whose job it does: a
 * process pool call), so it is cancelled with that scope; outside scopes
 * it stays as it is */
static int fn_join_scope(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = casync__check_task(L, 1), *by = lp->current;
  luaL_argcheck(L, !t->cscope && !(t->flags & TF_STARTED) && t->state != T_DONE,
                1,
                "a task not started and in no "
                "scope expected");
  if (by && by->cscope) casync__cs_attach(t, by->cscope);
  return 0;
}

void casync__cscope_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"timeout", fn_timeout},
                                 {"fail_after", fn_fail_after},
                                 {"move_on_after", fn_move_on_after},
                                 {"shield", fn_shield},
                                 {"deadline", fn_deadline},
                                 {"checkpoint", fn_checkpoint},
                                 {"_join_scope", fn_join_scope},
                                 {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"close", meth_close},         {"cancel", meth_cancel},
      {"cancelled", meth_cancelled}, {"expired", meth_expired},
      {"deadline", meth_deadline},   {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  luaL_newmetatable(L, CSCOPE_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_push(L);
  lua_pushcclosure(L, meth_close, 1);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
