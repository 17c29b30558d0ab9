/* wrap.c: casync.wrap(fn [, nargs [, opts]]): a callback-last function
 * (luv's uv.fs_stat(path, cb), uv.getaddrinfo(host, service, hints, cb), a
 * game engine's API) becomes one that suspends the calling task until the
 * callback comes and returns the callback's values.
 *
 * Each call makes a `call` block (a userdata) shared by the waiting task
 * and the callback, a C closure whose only upvalue is that block.  The
 * callback stores its arguments in the block and wakes the task; a callback
 * that comes after the task stopped waiting (cancelled) finds the block
 * abandoned and drops its values (or hands them to opts.on_drop, so a
 * descriptor opened too late can be closed).  When fn returned a luv request
 * or handle, a cancelled wait cancels the request (uv.cancel) or closes the
 * handle.
 *
 * The wait is the wait protocol's (ARCHITECTURE.md): casync__wait_begin,
 * casync__park with a kind of its own per wrapped function (named after
 * it, with a cancel hook that abandons the call), CASYNC_RESUMED and
 * casync__woken in the continuation; the callback calls casync__wake.
 */
#include <stdio.h>
#include <string.h>
#include "prim.h"

#define CALL_MT "casync.WrapCall"
#define MAX_NARGS 200

enum { C_CALLING, C_WAITING, C_DONE, C_ABANDONED };

/* user values: 1 the callback's arguments (a packed table), 2 the request
 * or handle fn returned (while waiting), 3 opts.on_drop or nil */
typedef struct call {
  casync_ctx *lp;
  casync_task *task; /* the waiting task, NULL once it stopped waiting */
  int state;
} call;

/* The callback handed to fn: keeps its arguments for the task, or drops
 * them when the task no longer waits. */
static int call_callback(lua_State *L) {
  call *c = lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L), i;
  if (c->state == C_DONE) return 0; /* called again: ignored */
  if (c->state == C_ABANDONED) {
    c->state = C_DONE;
    if (lua_getiuservalue(L, lua_upvalueindex(1), 3) != LUA_TNIL) {
      lua_insert(L, 1);
      if (lua_pcall(L, n, 0, 0) != LUA_OK) {
        fprintf(stderr, "casync: wrap's on_drop failed: %s\n",
                casync__tostring(L, -1));
        fflush(stderr);
      }
    }
    return 0;
  }
  lua_createtable(L, n, 1);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  lua_setiuservalue(L, lua_upvalueindex(1), 1);
  lua_pushnil(L);
  lua_setiuservalue(L, lua_upvalueindex(1), 2);
  if (c->state == C_WAITING) casync__wake(c->lp, c->task, WAKE_OK);
  c->state = C_DONE;
  c->task = NULL;
  return 0;
}

/* Pushes the callback's arguments (the call block at idx). */
static int push_results(lua_State *L, int idx) {
  lua_Integer n, i;
  lua_getiuservalue(L, idx, 1);
  lua_getfield(L, -1, "n");
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, (int)n, "too many results");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -(int)i, i);
  return (int)n;
}

/* The task was cancelled (or its scope's deadline passed) while it
 * waited: the callback will be dropped. */
static int call_cancel(casync_ctx *lp, casync_task *t, int why) {
  call *c = t->wait_obj;
  (void)lp;
  (void)why;
  c->state = C_ABANDONED;
  c->task = NULL;
  return 1;
}

/* For task dumps: what t waits on, in words. */
static void call_describe(lua_State *L, casync_task *t) {
  lua_pushfstring(L, "%s: waiting for its callback", t->wait->op);
}

/* After a cancelled wait: cancels the luv request or closes the luv handle
 * fn returned (the call block at idx), ignoring errors. */
static void abort_operation(lua_State *L, int idx) {
  const char *name;
  int top = lua_gettop(L);
  if (lua_getiuservalue(L, idx, 2) != LUA_TUSERDATA ||
      luaL_getmetafield(L, -1, "__name") != LUA_TSTRING) {
    lua_settop(L, top);
    return;
  }
  name = lua_tostring(L, -1);
  if (strncmp(name, "uv_", 3) == 0) {
    int is_req = strcmp(name, "uv_req") == 0;
    lua_getfield(L, top + 1, is_req ? "cancel" : "is_closing");
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, top + 1);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK && !is_req && !lua_toboolean(L, -1)) {
        lua_getfield(L, top + 1, "close");
        lua_pushvalue(L, top + 1);
        lua_pcall(L, 1, 0, 0);
      }
    }
  }
  lua_settop(L, top);
  lua_pushnil(L);
  lua_setiuservalue(L, idx, 2);
}

static int wrapped_wait_k(lua_State *L, int status, lua_KContext kc) {
  call *c = lua_touserdata(L, 1);
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, wrapped_wait_k);
  if (c->state == C_ABANDONED) { /* cancelled: undo the operation first */
    abort_operation(L, 1);
    if (casync__woken(L, t) == WAKE_TIMEOUT) /* raises a cancellation */
      return casync__timeout_error(L, lua_tostring(L, lua_upvalueindex(4)), 0),
             lua_error(L);
  }
  casync__woken(L, t); /* the values are kept (CASYNC_WK_KEEPS) */
  return push_results(L, 1);
}

/* fn has returned (its results above `base`): return the callback's values
 * if it came already, raise if fn could not start the operation, or wait. */
static int wrapped_called_k(lua_State *L, int status, lua_KContext ctx) {
  call *c = lua_touserdata(L, 1);
  int base = (int)ctx, nres = lua_gettop(L) - base;
  casync_task *t;
  (void)status;
  if (c->state == C_DONE) return push_results(L, 1);
  /* nil (or false) and an error: the operation did not start, and no
   * callback will come (luv returns nil, message, name) */
  if (nres >= 2 && !lua_toboolean(L, base + 1) && !lua_isnil(L, base + 2)) {
    c->state = C_ABANDONED;
    lua_pushnil(L); /* and no on_drop for it */
    lua_setiuservalue(L, 1, 3);
    casync__error_push(
        L, "io",
        lua_type(L, base + 3) == LUA_TSTRING ? lua_tostring(L, base + 3) : NULL,
        "%s: %s", lua_tostring(L, lua_upvalueindex(4)),
        casync__tostring(L, base + 2));
    return lua_error(L);
  }
  t = casync__resumed(L);
  if (!t) /* fn suspended and came back elsewhere?  never */
    return luaL_error(L, "wrap: lost its task");
  if (nres >= 1) { /* a luv request or handle: for cancellation */
    lua_pushvalue(L, base + 1);
    lua_setiuservalue(L, 1, 2);
  }
  lua_settop(L, 1);
  c->state = C_WAITING;
  c->task = t;
  return casync__park(L, t, lua_touserdata(L, lua_upvalueindex(6)), c, 0,
                      wrapped_wait_k, 0);
}

/* The wrapped function: fn(args..., callback), then waits for the callback.
 * Upvalues: 1 context, 2 fn, 3 nargs (-1: all the arguments), 4 name,
 * 5 on_drop or nil, 6 its wait kind (a userdata). */
static int wrapped(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  lua_Integer nargs = lua_tointeger(L, lua_upvalueindex(3));
  int n = lua_gettop(L), i, base;
  call *c;
  /* in a task, able to yield, no cancellation pending (raised here) */
  (void)casync__wait_begin(L, lua_tostring(L, lua_upvalueindex(4)));
  if (nargs >= 0) n = (int)nargs; /* the callback goes at nargs + 1 */
  lua_settop(L, n);
  luaL_checkstack(L, n + 8, "too many arguments");
  c = lua_newuserdatauv(L, sizeof *c, 3);
  c->lp = lp;
  c->task = NULL;
  c->state = C_CALLING;
  luaL_setmetatable(L, CALL_MT);
  lua_pushvalue(L, lua_upvalueindex(5));
  lua_setiuservalue(L, -2, 3);
  lua_insert(L, 1); /* the block at 1, the arguments at 2 .. n + 1 */
  base = n + 1;
  lua_pushvalue(L, lua_upvalueindex(2));
  for (i = 2; i <= n + 1; i++) lua_pushvalue(L, i);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, call_callback, 1);
  lua_callk(L, n + 1, LUA_MULTRET, base, wrapped_called_k);
  return wrapped_called_k(L, LUA_OK, base);
}

/* casync.wrap(fn [, nargs [, opts]]) -> function: a function that calls
 * fn(args..., callback) and suspends the calling task until callback is
 * called, then returns the callback's arguments.  With nargs, the callback
 * goes in position nargs + 1 (missing arguments are nil, extra ones
 * dropped).  opts.name names it in messages; opts.on_drop(...) gets the
 * values of a callback that came after the task was cancelled. */
static int fn_wrap(lua_State *L) {
  lua_Integer nargs = -1;
  casync_wait_kind *kind;
  casync__check_callable(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    int isnum;
    nargs = lua_tointegerx(L, 2, &isnum);
    if (!isnum) {
      if (lua_type(L, 2) == LUA_TNUMBER)
        return luaL_argerror(L, 2, "number has no integer representation");
      return luaL_typeerror(L, 2, "integer");
    }
    luaL_argcheck(L, nargs >= 0 && nargs <= MAX_NARGS, 2,
                  "nargs must be between 0 and 200");
  }
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  casync__ctx_push(L);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, nargs);
  if (lua_istable(L, 3) && lua_getfield(L, 3, "name") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_argerror(L, 3, "opts.name must be a string");
  } else {
    lua_pop(L, lua_istable(L, 3) ? 1 : 0);
    lua_pushliteral(L, "wrapped function");
  }
  if (lua_istable(L, 3) && lua_getfield(L, 3, "on_drop") != LUA_TNIL) {
    if (!casync__is_callable(L, -1))
      return luaL_argerror(L, 3, "opts.on_drop must be a function");
  } else {
    lua_pop(L, lua_istable(L, 3) ? 1 : 0);
    lua_pushnil(L);
  }
  /* its wait kind: named after it (the name lives in upvalue 4); a wake
   * hands over the callback's values, kept from a later cancellation */
  kind = lua_newuserdatauv(L, sizeof *kind, 0);
  memset(kind, 0, sizeof *kind); /* optional hooks left out are NULL */
  kind->op = kind->what = lua_tostring(L, -3);
  kind->cancel = call_cancel;
  kind->describe = call_describe;
  /* the callback comes from outside the tasks (I/O, luv): the virtual
   * clock does not jump while a task waits for one */
  kind->flags = CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL;
  lua_pushcclosure(L, wrapped, 6);
  return 1;
}

/* casync._require_task(fname) -> the running task, or raises what a waiting
 * C function raises when it is not called from a task's own coroutine
 * ("fname: must be called inside a task ...", or "fname: cannot suspend a
 * coroutine that casync does not manage ...").  For the Lua modules. */
static int fn_require_task(lua_State *L) {
  casync_task *t = casync__task_begin(L, luaL_checkstring(L, 1));
  return casync__push_task(L, CASYNC_CTX(L), t);
}

void casync__wrap_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"wrap", fn_wrap}, {"_require_task", fn_require_task}, {NULL, NULL}};
  luaL_newmetatable(L, CALL_MT);
  lua_pop(L, 1);
  casync__ctx_setfuncs(L, fns);
}
