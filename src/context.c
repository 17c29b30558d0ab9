/* context.c: the per-state context (see context.h): made when casync
 * opens in a Lua state, found from any function (upvalue 1) or callback,
 * and shut down in one place when the state closes.
 *
 * casync uses, in order: a loop a C host installed with casync_set_loop,
 * the loop luv already runs in this Lua state, or a loop of its own that it
 * also hands to luv, so casync and luv always share one loop.
 *
 * The shutdown (the context userdata's __gc, the last finalizer to run at
 * lua_close since the context is made first) stops the parts in their
 * order (the watchdog's thread, the worker threads, the signal watchers,
 * the scheduler's timers), closes every handle still open, runs an own
 * loop until they are closed (at most SHUTDOWN_MS), and reports on stderr
 * whatever was still open then.  Blocks libuv still holds keep the context
 * (not the Lua state) alive until their callbacks have run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <luv/luv.h>
#include "context.h"

#define SHUTDOWN_MS 2000 /* how long the shutdown waits for handles */

static char ctx_key, extloop_key;

/* The userdata at idx if its metatable is mt (compared by address: a
 * cheaper check than luaL_checkudata's look-up of the name, made on every
 * send, recv and wait), else luaL_checkudata's error naming the class. */
void *casync__check_class_slow(lua_State *L, int idx, const char *name) {
  return luaL_checkudata(L, idx, name);
}

/* The context of L's state, or NULL before the module is opened. */
casync_ctx *casync__ctx_get(lua_State *L) {
  casync_ctx *ctx = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key) == LUA_TUSERDATA)
    ctx = *(casync_ctx **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ctx;
}

/* Pushes the context userdata (its user values hold the Lua-side state). */
void casync__ctx_push(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key);
}

/* luaL_setfuncs with the context as the single upvalue. */
void casync__ctx_setfuncs(lua_State *L, const luaL_Reg *l) {
  casync__ctx_push(L);
  luaL_setfuncs(L, l, 1);
}

/* One block less points at ctx; frees it once nothing does and the state
 * has let go. */
void casync__ctx_unref(casync_ctx *ctx) {
  if (--ctx->refs == 0 && !ctx->alive) free(ctx);
}

/* ---------------------------------------------------------------- pins */

/* Keeps the value at idx alive for libuv; returns the reference. */
int casync__pin(lua_State *L, casync_ctx *ctx, int idx) {
  int ref;
  idx = lua_absindex(L, idx);
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_PINS);
  lua_pushvalue(L, idx);
  ref = luaL_ref(L, -2);
  lua_pop(L, 2);
  ctx->pins++;
  return ref;
}

/* Lets a pinned value go (from a libuv callback too: on the main thread). */
void casync__unpin(casync_ctx *ctx, int ref) {
  lua_State *L = ctx->L;
  if (!ctx->alive || ref == LUA_NOREF) return;
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_PINS);
  luaL_unref(L, -1, ref);
  lua_pop(L, 2);
  ctx->pins--;
}

/* Pushes a pinned value. */
/* The same with the context at hand (no look-up of it by address). */
void casync__push_pinned_lp(lua_State *L, casync_ctx *ctx, int ref) {
  casync__ctx_push_lp(L, ctx);
  lua_getiuservalue(L, -1, CTX_PINS);
  lua_rawgeti(L, -1, ref);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

void casync__push_pinned(lua_State *L, int ref) {
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_PINS);
  lua_rawgeti(L, -1, ref);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* ------------------------------------------------------------- handles */

/* The casync_handle of a uv handle casync opened. */
casync_handle *casync__handle_of(uv_handle_t *uvh) {
  return container_of(uvh->data, casync_handle, luvh);
}

static int make_stand_in(lua_State *L, const char *name);

/* The registry reference of the stand-in of class cls (made once). */
static int stand_in_of(casync_ctx *ctx, const casync_hclass *cls) {
  lua_State *L = ctx->L;
  int ref;
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_STANDINS);
  if (lua_rawgetp(L, -1, cls) == LUA_TNUMBER) ref = (int)lua_tointeger(L, -1);
  else {
    lua_pushfstring(L, "casync %s handle", cls->name);
    ref = make_stand_in(L, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushinteger(L, ref);
    lua_rawsetp(L, -3, cls);
  }
  lua_pop(L, 3);
  return ref;
}

/* Registers uvh (initialized with uv_*_init) as a handle of ctx of class
 * cls, embedded as h in its block. */
void casync__handle_init(casync_ctx *ctx, casync_handle *h,
                         const casync_hclass *cls, uv_handle_t *uvh) {
  h->luvh = ctx->luvh;
  h->luvh.ref = stand_in_of(ctx, cls);
  h->ctx = ctx;
  h->cls = cls;
  h->uvh = uvh;
  h->npins = 0;
  h->pin_ref = LUA_NOREF;
  h->hflags = 0;
  uvh->data = &h->luvh;
  h->prev = NULL;
  h->next = ctx->handles;
  if (ctx->handles) ctx->handles->prev = h;
  ctx->handles = h;
  ctx->nhandles++;
  ctx->refs++;
}

static void on_handle_closed(uv_handle_t *uvh) {
  casync_handle *h = casync__handle_of(uvh);
  casync_ctx *ctx = h->ctx;
  if (h->prev) h->prev->next = h->next;
  else ctx->handles = h->next;
  if (h->next) h->next->prev = h->prev;
  ctx->nhandles--;
  if (h->npins) casync__unpin(ctx, h->pin_ref);
  h->cls->free(h);
  casync__ctx_unref(ctx);
}

/* Closes h (once; later calls do nothing); its block is freed by its
 * class once libuv is done with it. */
void casync__handle_close(casync_handle *h) {
  if (h->hflags & CASYNC_H_CLOSING) return;
  h->hflags |= CASYNC_H_CLOSING;
  uv_close(h->uvh, on_handle_closed);
}

/* Keeps the userdata at idx alive while h has requests in flight (one pin
 * per request; the first one anchors it). */
void casync__handle_pin(lua_State *L, casync_handle *h, int idx) {
  if (h->npins++ == 0) h->pin_ref = casync__pin(L, h->ctx, idx);
}

void casync__handle_unpin(casync_handle *h) {
  if (h->npins > 0 && --h->npins == 0) {
    casync__unpin(h->ctx, h->pin_ref);
    h->pin_ref = LUA_NOREF;
  }
}

/* ----------------------------------------------------------- the stand-in
 * luv (1.44) takes every handle on the loop for one of its own, reading
 * handle->data as a luv_handle_t (uv.walk, the __gc of a loop luv made).
 * Ours names a placeholder object whose is_closing() is true, so code that
 * walks the loop to close every handle leaves casync's alone. */

static int placeholder_true(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

static int placeholder_false(lua_State *L) {
  lua_pushboolean(L, 0);
  return 1;
}

static int placeholder_none(lua_State *L) {
  (void)L;
  return 0;
}

static int placeholder_type(lua_State *L) {
  lua_pushliteral(L, "casync");
  return 1;
}

static int placeholder_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (!strcmp(k, "is_closing") || !strcmp(k, "is_active"))
    lua_pushcfunction(L, placeholder_true);
  else if (!strcmp(k, "has_ref")) lua_pushcfunction(L, placeholder_false);
  else if (!strcmp(k, "get_type")) lua_pushcfunction(L, placeholder_type);
  else /* close, ref, unref, ...: nothing to do */
    lua_pushcfunction(L, placeholder_none);
  return 1;
}

/* Makes a placeholder named `name`; returns its registry reference. */
static int make_stand_in(lua_State *L, const char *name) {
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, placeholder_index);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ------------------------------------------------------------ shutdown */

static void on_core_closed(uv_handle_t *h) {
  casync_ctx *ctx = container_of(h->data, casync_ctx, luvh);
  ctx->core_open--;
  casync__ctx_unref(ctx);
}

/* Prints what the shutdown could not close. */
static void report_open(casync_ctx *ctx) {
  casync_handle *h;
  fprintf(stderr,
          "casync: %d handle%s still open when the Lua state "
          "closed:",
          ctx->nhandles, ctx->nhandles > 1 ? "s" : "");
  for (h = ctx->handles; h; h = h->next) fprintf(stderr, " %s", h->cls->name);
  fprintf(stderr, "\n");
  fflush(stderr);
}

/* The context userdata's __gc: the one ordered shutdown. */
static int ctx_gc(lua_State *L) {
  casync_ctx **ud = lua_touserdata(L, 1), *ctx = *ud;
  casync_handle *h, *next;
  int i;
  if (!ctx) return 0;
  *ud = NULL;
  for (i = 0; i < CTX_NPARTS; i++)
    if (ctx->parts[i]) ctx->parts[i](ctx);
  ctx->qhead = ctx->qtail = ctx->held_head = ctx->held_tail = NULL;
  for (h = ctx->handles; h; h = next) {
    next = h->next; /* a close may unlink h (not free it: libuv does) */
    if (h->cls->close) h->cls->close(h);
    else casync__handle_close(h);
  }
  uv_close((uv_handle_t *)&ctx->idle, on_core_closed);
  uv_close((uv_handle_t *)&ctx->check, on_core_closed);
  uv_close((uv_handle_t *)&ctx->timer, on_core_closed);
  uv_close((uv_handle_t *)&ctx->grace, on_core_closed);
  ctx->alive = 0; /* no Lua from here on: late callbacks only free */
  free(ctx->scratch);
  ctx->scratch = NULL;
  free(ctx->free_slots);
  ctx->free_slots = NULL;
  ctx->nfree_slots = ctx->cap_free_slots = 0;
  if (ctx->owns_loop) {
    uv_loop_t *loop = ctx->loop;
    uint64_t until = uv_hrtime() + (uint64_t)SHUTDOWN_MS * 1000000u;
    ctx->refs++; /* this function's own hold */
    while ((ctx->nhandles > 0 || ctx->core_open > 0) && uv_hrtime() < until)
      if (!uv_run(loop, UV_RUN_NOWAIT) && ctx->nhandles > 0) uv_sleep(1);
    if (ctx->nhandles > 0) report_open(ctx);
    if (uv_loop_close(loop) == 0) free(loop);
    /* NOTE: a loop still busy (luv handles nobody closed, a request
     * stuck in the thread pool) is left open */
    casync__ctx_unref(ctx);
  }
  return 0;
}

/* Creates the context of this state (once) and pushes its userdata. */
int casync__ctx_init(lua_State *L) {
  casync_ctx **ud, *ctx;
  lua_State *mainL;
  luv_ctx_t *luv;
  int i;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  ud = lua_newuserdatauv(L, sizeof *ud, CTX_NUSER);
  *ud = NULL; /* harmless until complete */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  for (i = 1; i <= CTX_NUSER; i++) {
    lua_newtable(L);
    if (i == CTX_FAILED || i == CTX_STDIO) { /* weak */
      lua_createtable(L, 0, 1);
      lua_pushstring(L, i == CTX_FAILED ? "k" : "v");
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
    }
    lua_setiuservalue(L, -2, i);
  }
  ctx = calloc(1, sizeof *ctx);
  if (!ctx) return luaL_error(L, "casync: not enough memory");
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  mainL = lua_tothread(L, -1);
  lua_pop(L, 1);
  ctx->L = mainL;
  ctx->alive = 1;
  luv = luv_context(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &extloop_key) == LUA_TLIGHTUSERDATA)
    ctx->loop = lua_touserdata(L, -1);
  else if (luv->loop) ctx->loop = luv->loop;
  lua_pop(L, 1);
  if (!ctx->loop) {
    ctx->loop = malloc(sizeof *ctx->loop);
    if (!ctx->loop || uv_loop_init(ctx->loop) != 0) {
      free(ctx->loop);
      free(ctx);
      return luaL_error(L, "casync: cannot create a libuv loop");
    }
    ctx->owns_loop = 1;
  }
  if (!luv->loop) luv_set_loop(mainL, ctx->loop); /* luv will share it */
  ctx->luvh.ref = make_stand_in(L, "casync scheduler handle");
  ctx->luvh.callbacks[0] = ctx->luvh.callbacks[1] = LUA_NOREF;
  ctx->luvh.ctx = luv_context(L);
  uv_idle_init(ctx->loop, &ctx->idle);
  uv_check_init(ctx->loop, &ctx->check);
  uv_timer_init(ctx->loop, &ctx->timer);
  uv_timer_init(ctx->loop, &ctx->grace);
  ctx->idle.data = ctx->check.data = &ctx->luvh;
  ctx->timer.data = ctx->grace.data = &ctx->luvh;
  ctx->core_open = 4;
  ctx->refs = 4;
  *ud = ctx;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_key);
  lua_pushvalue(L, -1);
  ctx->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* A free slot of CTX_TASKS, where a live task is anchored.  The free slots
 * are kept here, in C, rather than in the table as luaL_ref keeps them
 * (two table reads and writes less per task).  Never fails: a slot that
 * cannot be remembered as free is just not used again. */
int casync__slot_new(casync_ctx *ctx) {
  if (ctx->nfree_slots > 0) return ctx->free_slots[--ctx->nfree_slots];
  return ++ctx->top_slot;
}

void casync__slot_free(casync_ctx *ctx, int slot) {
  if (ctx->nfree_slots == ctx->cap_free_slots) {
    int cap = ctx->cap_free_slots ? 2 * ctx->cap_free_slots : 256;
    int *a = realloc(ctx->free_slots, (size_t)cap * sizeof *a);
    if (!a) return;
    ctx->free_slots = a;
    ctx->cap_free_slots = cap;
  }
  ctx->free_slots[ctx->nfree_slots++] = slot;
}

/* casync._debug() -> {open = {[class] = n}, closing = n, pins = n,
 * requests = n, streams = n}: what the state holds (handles open by class,
 * handles closing, values pinned for libuv, requests in flight, streams
 * Lua has not closed), for the specs' after-each check (test builds) */
int casync__ctx_debug(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  casync_handle *h;
  int closing = 0;
  lua_createtable(L, 0, 5);
  lua_newtable(L);
  for (h = ctx->handles; h; h = h->next) {
    if (h->hflags & CASYNC_H_CLOSING) {
      closing++;
      continue;
    }
    lua_getfield(L, -1, h->cls->name);
    lua_pushinteger(L, lua_tointeger(L, -1) + 1);
    lua_setfield(L, -3, h->cls->name);
    lua_pop(L, 1);
  }
  lua_setfield(L, -2, "open");
  lua_pushinteger(L, closing);
  lua_setfield(L, -2, "closing");
  lua_pushinteger(L, ctx->pins);
  lua_setfield(L, -2, "pins");
  lua_pushinteger(L, ctx->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, ctx->streams_open);
  lua_setfield(L, -2, "streams");
  return 1;
}

/* ---------------------------------------------------------------- C API */

CASYNC_API int casync_set_loop(lua_State *L, uv_loop_t *loop) {
  if (casync__ctx_get(L)) return -1;
  lua_pushlightuserdata(L, loop);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &extloop_key);
  return 0;
}

CASYNC_API uv_loop_t *casync_loop(lua_State *L) {
  casync_ctx *ctx = casync__ctx_get(L);
  return ctx ? ctx->loop : NULL;
}
