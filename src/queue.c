/* queue.c: asyncio-style queues (casync.queue): a buffered channel with
 * an unbounded size (maxsize 0), LIFO and priority orders, and a count of
 * unfinished items (put, not yet task_done) that join waits on.  Shares
 * the channel's struct, buffer and hand-off (chan.h).
 */
#include <string.h>
#include "chan.h"

/* The item (at 2) and priority (at 3) of put and try_put on c: returns
 * the priority (0 but in a priority queue); the stack is left at 2. */
static lua_Number check_put(lua_State *L, chan *c) {
  lua_Number prio = 0;
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2,
                "value expected (nil cannot be put)");
  if (c->order == ORDER_PRIORITY) {
    prio = luaL_optnumber(L, 3, 0);
    luaL_argcheck(L, prio == prio, 3, "number expected, got NaN");
  } else
    luaL_argcheck(L, lua_isnoneornil(L, 3), 3,
                  "a priority is only for priority queues");
  lua_settop(L, 2);
  return prio;
}

/* q:put(item [, priority]): suspends while the queue is full; priority (a
 * number, default 0, lower first) only for priority queues; an error of
 * kind "closed" if the queue is (or gets) closed first */
static int meth_put(lua_State *L) {
  chan *c = casync__queue_check(L, 1);
  lua_Number prio = check_put(L, c);
  lua_pushnumber(L, prio); /* 3: read from here while the put waits */
  return casync__chan_send(L, c, OP_PUT, prio);
}

/* q:get() -> item, true | nil, false: suspends while the queue is empty;
 * nil, false once it is closed and drained */
static int meth_get(lua_State *L) {
  return casync__chan_recv(L, casync__queue_check(L, 1), OP_GET);
}

/* q:try_put(item [, priority]) -> boolean: puts without suspending if
 * there is room; raises "closed" on a closed queue */
static int meth_try_put(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = casync__queue_check(L, 1);
  lua_Number prio = check_put(L, c);
  if (c->closed) return casync__chan_raise_closed(L, "try_put");
  lua_pushboolean(L, casync__chan_try_send(L, lp, c, 1, prio));
  return 1;
}

/* q:try_get() -> item | nil, "empty" | nil, "closed" */
static int meth_try_get(lua_State *L) {
  return casync__chan_poll_recv(L, casync__queue_check(L, 1));
}

/* q:task_done(): one item taken with get is finished; join returns once
 * every item put is; raises when called more often than items were put */
static int meth_task_done(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = casync__queue_check(L, 1);
  casync_wnode *w;
  if (c->unfinished <= 0)
    return luaL_error(L, "task_done: called more times than items were put");
  if (--c->unfinished > 0) return 0;
  while ((w = casync__wq_pop(&c->joiners)) != NULL)
    casync__wq_serve(lp, w, WN_OK);
  return 0;
}

/* A woken join is done: kept. */
static void join_describe(lua_State *L, casync_task *t) {
  chan *c = t->wait_obj;
  lua_pushfstring(L, "join on queue#%I (%I unfinished)", c->id, c->unfinished);
}

static const casync_wait_kind join_wait = {
    "join", "queue join", casync__chan_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS, join_describe};

static int join_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, join_k);
  lua_pushboolean(L, casync__woken(L, t) != WAKE_TIMEOUT);
  return 1;
}

/* q:join([timeout]) -> boolean: suspends until every item put has been
 * marked task_done (true at once if so); false after timeout seconds */
static int meth_join(lua_State *L) {
  chan *c = casync__queue_check(L, 1);
  double timeout = casync__check_seconds(L, 2, 1);
  casync_task *t = casync__wait_begin(L, "join");
  if (c->unfinished == 0 || timeout == 0) {
    lua_pushboolean(L, c->unfinished == 0);
    return 1;
  }
  casync__chan_enlist(t, &c->joiners, OP_JOIN, 0);
  return casync__park(L, t, &join_wait, c, casync__deadline(timeout), join_k,
                      0);
}

/* q:close(): no more puts; getters drain it, then get nil, false; waiting
 * putters get an error of kind "closed"; closing twice is harmless.  join
 * still waits for task_done. */
static int meth_q_close(lua_State *L) {
  casync__chan_close(CASYNC_CTX(L), casync__queue_check(L, 1));
  return 0;
}

/* q:iter() -> iterator: for item in q:iter() do ... end until closed and
 * drained */
static int meth_q_iter(lua_State *L) {
  casync__queue_check(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, 1, "get");
  lua_pushvalue(L, 1);
  return 2;
}

/* q:qsize() / q:len() / #q -> items in the queue */
static int meth_qsize(lua_State *L) {
  lua_pushinteger(L, casync__queue_check(L, 1)->count);
  return 1;
}

static int meth_empty(lua_State *L) {
  lua_pushboolean(L, casync__queue_check(L, 1)->count == 0);
  return 1;
}

static int meth_full(lua_State *L) {
  chan *c = casync__queue_check(L, 1);
  lua_pushboolean(L, c->count >= c->cap);
  return 1;
}

/* q:maxsize() -> its bound, 0 for none */
static int meth_maxsize(lua_State *L) {
  chan *c = casync__queue_check(L, 1);
  lua_pushinteger(L, c->cap == UNBOUNDED ? 0 : c->cap);
  return 1;
}

/* q:unfinished() -> items put and not yet marked task_done */
static int meth_unfinished(lua_State *L) {
  lua_pushinteger(L, casync__queue_check(L, 1)->unfinished);
  return 1;
}

static int meth_q_closed(lua_State *L) {
  lua_pushboolean(L, casync__queue_check(L, 1)->closed);
  return 1;
}

static const char *const order_names[] = {"fifo", "lifo", "priority", NULL};

static int meta_q_tostring(lua_State *L) {
  chan *c = casync__queue_check(L, 1);
  if (c->cap == UNBOUNDED)
    lua_pushfstring(L, "casync.Queue (%s, %I%s)", order_names[c->order],
                    c->count, c->closed ? ", closed" : "");
  else
    lua_pushfstring(L, "casync.Queue (%s, %I/%I%s)", order_names[c->order],
                    c->count, c->cap, c->closed ? ", closed" : "");
  return 1;
}

/* casync.queue([maxsize [, order]]) -> q: maxsize 0 (default) is
 * unbounded; order "fifo" (default), "lifo" or "priority" */
static int fn_queue(lua_State *L) {
  lua_Integer cap = casync__chan_check_capacity(L, 1, "maxsize");
  int order = luaL_checkoption(L, 2, "fifo", order_names);
  casync__chan_new(L, cap == 0 ? UNBOUNDED : cap, order, CASYNC_QUEUE_MT);
  return 1;
}

void casync__queue_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"queue", fn_queue}, {NULL, NULL}};
  static const luaL_Reg queue_methods[] = {{"put", meth_put},
                                           {"get", meth_get},
                                           {"try_put", meth_try_put},
                                           {"try_get", meth_try_get},
                                           {"task_done", meth_task_done},
                                           {"join", meth_join},
                                           {"close", meth_q_close},
                                           {"iter", meth_q_iter},
                                           {"qsize", meth_qsize},
                                           {"len", meth_qsize},
                                           {"empty", meth_empty},
                                           {"full", meth_full},
                                           {"maxsize", meth_maxsize},
                                           {"unfinished", meth_unfinished},
                                           {"closed", meth_q_closed},
                                           {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  casync__ctx_get(L)->queue_mt = casync__chan_new_type(
      L, CASYNC_QUEUE_MT, queue_methods, meta_q_tostring, meth_qsize);
}
