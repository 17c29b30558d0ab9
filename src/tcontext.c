/* tcontext.c: task-local context, casync.context.set/get/with (Python's
 * contextvars, Go's context values).
 *
 * A task's values are a table in its extras.  A task spawned from it gets
 * the same table, marked shared, and whichever of them changes it first
 * makes its own copy: a copy at spawn time in effect, for nothing unless
 * someone writes.  Code outside any task has a root context, which the
 * tasks it spawns start from.
 */
#include "scheduler.h"

/* Pushes the extras table that holds the context of the running task t
 * (or, outside tasks, the context's userdata). */
static void push_holder(lua_State *L, casync_task *t) {
  if (t) {
    casync__push_task(L, t->loop, t);
    casync__extras(L, -1);
    lua_remove(L, -2);
  } else {
    casync__ctx_push(L);
    lua_getiuservalue(L, -1, CTX_CONTEXT);
    lua_remove(L, -2);
  }
}

static casync_task *running(lua_State *L) {
  casync_task *t = CASYNC_CTX(L)->current;
  return t && t->co == L ? t : NULL;
}

/* Pushes the context table of t (NULL: the root's), or nil if none. */
static void push_context(lua_State *L, casync_task *t) {
  if (t && (t->flags & TF_LAZY_CONTEXT)) { /* made now, when looked at */
    t->flags &= ~TF_LAZY_CONTEXT;
    t->loop->lazy_context(L, t);
  }
  if (t && !(t->flags & TF_CONTEXT)) {
    lua_pushnil(L);
    return;
  }
  push_holder(L, t);
  lua_getfield(L, -1, "context");
  lua_remove(L, -2);
}

/* Sets table at idx (or nil) as t's context, shared or its own. */
static void set_context(lua_State *L, casync_task *t, int idx, int shared) {
  idx = lua_absindex(L, idx);
  push_holder(L, t);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "context");
  lua_pushboolean(L, shared);
  lua_setfield(L, -2, "context_shared");
  lua_pop(L, 1);
  if (t) {
    t->flags &= ~(TF_CONTEXT | TF_CONTEXT_SHARED);
    if (!lua_isnil(L, idx))
      t->flags |= TF_CONTEXT | (shared ? TF_CONTEXT_SHARED : 0);
  } else CASYNC_CTX(L)->root_context = !lua_isnil(L, idx);
}

static int is_shared(lua_State *L, casync_task *t) {
  int shared;
  if (t) return (t->flags & TF_CONTEXT_SHARED) != 0;
  push_holder(L, NULL);
  lua_getfield(L, -1, "context_shared");
  shared = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return shared;
}

/* Pushes a copy of the table at idx (a new empty one for nil). */
static void push_copy(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  if (lua_isnil(L, idx)) return;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* A task made by spawner (NULL: from outside tasks) starts with its
 * context.  The new task's userdata is at tidx. */
void casync__context_inherit(lua_State *L, casync_task *spawner, casync_task *t,
                             int tidx) {
  int top = lua_gettop(L);
  tidx = lua_absindex(L, tidx);
  push_context(L, spawner);
  if (lua_isnil(L, -1)) {
    lua_settop(L, top);
    return;
  }
  if (!is_shared(L, spawner)) { /* both keep it until one writes */
    int ctable = lua_gettop(L);
    set_context(L, spawner, ctable, 1);
  }
  casync__extras(L, tidx);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "context");
  lua_settop(L, top);
  t->flags |= TF_CONTEXT | TF_CONTEXT_SHARED;
}

/* Pushes the context table the tasks spawned by `by` (NULL: code outside
 * tasks) start from, and returns 1, when it has values; else pushes
 * nothing and returns 0 (one test of a flag when no context was set).
 * The table is the task's own: copy it, never change it. */
int casync__context_of(lua_State *L, casync_task *by) {
  if (by ? !(by->flags & (TF_CONTEXT | TF_LAZY_CONTEXT))
         : !CASYNC_CTX(L)->root_context)
    return 0;
  push_context(L, by);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    if (lua_next(L, -2)) {
      lua_pop(L, 2);
      return 1;
    }
  }
  lua_pop(L, 1);
  return 0;
}

static void check_key(lua_State *L, int arg) {
  luaL_argcheck(L, !lua_isnoneornil(L, arg), arg, "key expected, got nil");
  luaL_argcheck(L,
                !(lua_type(L, arg) == LUA_TNUMBER &&
                  lua_tonumber(L, arg) != lua_tonumber(L, arg)),
                arg, "key expected, got NaN");
}

/* casync.context.get(key) -> the value the running task (or, outside
 * tasks, the root context) has for key, or nil */
static int fn_get(lua_State *L) {
  check_key(L, 1);
  push_context(L, running(L));
  if (lua_isnil(L, -1)) return 1;
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  return 1;
}

/* casync.context.set(key, value): sets key for the running task and the
 * tasks it spawns from now on (nil removes it); others do not see it */
static int fn_set(lua_State *L) {
  check_key(L, 1);
  lua_settop(L, 2);
  casync__context_set(L, running(L), 1, 2);
  return 0;
}

/* Pushes a copy of the context values of task t, whose userdata is at
 * tidx (nil when it has none): for task:info and dumps, which must not let
 * them change.  t may have ended (and lost its anchor). */
void casync__context_copy(lua_State *L, casync_task *t, int tidx) {
  tidx = lua_absindex(L, tidx);
  if ((t->flags & TF_LAZY_CONTEXT) && t->state != T_DONE) {
    push_context(L, t); /* made now */
    lua_pop(L, 1);
  }
  if (!(t->flags & TF_CONTEXT) || lua_getiuservalue(L, tidx, 2) != LUA_TTABLE) {
    if (t->flags & TF_CONTEXT) lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  lua_getfield(L, -1, "context");
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) return;
  push_copy(L, -1);
  lua_remove(L, -2);
}

/* Sets the key at kidx to the value at vidx in the context of task t
 * (NULL: the root context), as casync.context.set does in t. */
void casync__context_set(lua_State *L, casync_task *t, int kidx, int vidx) {
  int top = lua_gettop(L), cidx;
  kidx = lua_absindex(L, kidx);
  vidx = lua_absindex(L, vidx);
  push_context(L, t);
  cidx = lua_gettop(L);
  if (lua_isnil(L, cidx) || is_shared(L, t)) {
    push_copy(L, cidx);
    set_context(L, t, -1, 0);
    lua_replace(L, cidx);
  }
  lua_pushvalue(L, kidx);
  lua_pushvalue(L, vidx);
  lua_rawset(L, cidx);
  lua_settop(L, top);
}

/* casync.context.all() -> a copy of every value of the running task's
 * context */
static int fn_all(lua_State *L) {
  push_context(L, running(L));
  push_copy(L, -1);
  return 1;
}

static int with_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t = running(L);
  (void)kc;
  /* [1 saved context][2 saved shared][3 msgh][results | error] */
  set_context(L, t, 1, lua_toboolean(L, 2));
  if (status != LUA_OK && status != LUA_YIELD) {
    if (t) return casync__reraise(L, t);
    return lua_error(L);
  }
  return lua_gettop(L) - 3;
}

/* casync.context.with(values, fn, ...) -> ...: fn(...) with the context
 * plus the keys of `values` (for fn and the tasks it spawns); the context
 * is as before once fn has returned or raised */
static int fn_with(lua_State *L) {
  casync_task *t = running(L);
  int nargs, status;
  luaL_checktype(L, 1, LUA_TTABLE);
  casync__check_callable(L, 2);
  nargs = lua_gettop(L) - 2;
  luaL_checkstack(L, 6, NULL);
  push_context(L, t); /* the context it had */
  lua_pushboolean(L, lua_isnil(L, -1) ? 0 : is_shared(L, t));
  push_copy(L, -2); /* plus the new values */
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  set_context(L, t, -1, 0);
  lua_pop(L, 1);
  lua_rotate(L, 1, 2); /* [saved][shared][values][fn][args] */
  lua_pushcfunction(L, casync__task_msgh);
  lua_replace(L, 3); /* [1 saved][2 shared][3 msgh][fn][args] */
  status = lua_pcallk(L, nargs, LUA_MULTRET, 3, 0, with_k);
  return with_k(L, status, 0);
}

void casync__tcontext_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"get", fn_get},
                                 {"set", fn_set},
                                 {"with", fn_with},
                                 {"all", fn_all},
                                 {NULL, NULL}};
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "context");
}
