/* channel.c: Go-style channels and select (casync.channel, casync.select),
 * and asyncio-style queues (casync.queue: FIFO, LIFO or priority, with
 * task_done/join), which share the channel's wait lists and hand-off.
 *
 * A channel has FIFO queues of waiting senders and receivers (nodes in the
 * waiting tasks) and, when buffered, a ring buffer in a Lua table.  Values
 * pass in C at the moment two sides meet: a waiting sender's value is read
 * from its own suspended stack, and a value for a waiting receiver is pushed
 * onto its suspended stack before it is woken.  So a task cancelled while
 * it waits was never handed anything (its node is just unlinked), and a
 * task that was handed a value keeps it: a later cancellation is raised at
 * its next suspension point.
 */
#include <math.h>
#include <string.h>
#include "internal.h"

#define CASYNC_CHANNEL_MT "casync.Channel"
#define CASYNC_QUEUE_MT "casync.Queue"
#define MAX_CAPACITY 0x7fffffff
#define UNBOUNDED ((lua_Integer)1 << 62) /* a queue's "no maxsize" */

enum { OP_SEND = 1, OP_RECV, OP_PUT, OP_GET, OP_JOIN };
enum { ORDER_FIFO, ORDER_LIFO, ORDER_PRIORITY };

/* A channel, or a queue (same struct, metatable casync.Queue).  User value
 * 1 holds the buffered values; a priority queue's user value 2 their keys. */
typedef struct chan {
  casync_wqueue senders, receivers;
  lua_Integer cap, head, count; /* ring buffer in user value 1, 1-based */
  int closed;
  int order;              /* ORDER_*: channels are FIFO */
  lua_Integer unfinished; /* queues: items put and not yet task_done */
  lua_Integer seq;        /* priority queues: arrival numbers */
  casync_wqueue joiners;  /* queues: tasks in join() */
} chan;

typedef struct select_state {
  casync_task *task;
  int n, fired; /* fired: the case index, 0 for none yet / timed out */
  casync_wnode w[];
} select_state;

/* ------------------------------------------------------- waiter queues */

void casync__wq_push(casync_wqueue *q, casync_wnode *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail) q->tail->next = w;
  else q->head = w;
  q->tail = w;
  w->queue = q;
}

void casync__wq_remove(casync_wnode *w) {
  casync_wqueue *q = w->queue;
  if (!q) return;
  if (w->prev) w->prev->next = w->next;
  else q->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else q->tail = w->prev;
  w->next = w->prev = NULL;
  w->queue = NULL;
}

casync_wnode *casync__wq_pop(casync_wqueue *q) {
  casync_wnode *w = q->head;
  if (w) casync__wq_remove(w);
  return w;
}

/* -------------------------------------------------------------- buffer */

/* FIFO and LIFO buffers are a ring of cap slots in user value 1 (head is
 * the oldest).  A priority queue keeps a binary min-heap instead: values at
 * 1..count of user value 1, and in user value 2 each one's key, its
 * priority at 2i-1 and its arrival number at 2i, so that equal priorities
 * come out first-in first-out.  Nothing here allocates once the tables
 * have grown. */

/* Moves heap entry `from` to `to` (values at buf, keys at keys). */
static void heap_move(lua_State *L, int buf, int keys, lua_Integer from,
                      lua_Integer to) {
  lua_rawgeti(L, buf, from);
  lua_rawseti(L, buf, to);
  lua_rawgeti(L, keys, 2 * from - 1);
  lua_rawseti(L, keys, 2 * to - 1);
  lua_rawgeti(L, keys, 2 * from);
  lua_rawseti(L, keys, 2 * to);
}

/* Stores the value on top (popped) at heap entry i with key (p, seq). */
static void heap_set(lua_State *L, int buf, int keys, lua_Integer i,
                     lua_Number p, lua_Integer seq) {
  lua_rawseti(L, buf, i);
  lua_pushnumber(L, p);
  lua_rawseti(L, keys, 2 * i - 1);
  lua_pushinteger(L, seq);
  lua_rawseti(L, keys, 2 * i);
}

static void heap_key(lua_State *L, int keys, lua_Integer i, lua_Number *p,
                     lua_Integer *seq) {
  lua_rawgeti(L, keys, 2 * i - 1);
  lua_rawgeti(L, keys, 2 * i);
  *p = lua_tonumber(L, -2);
  *seq = lua_tointeger(L, -1);
  lua_pop(L, 2);
}

/* Whether heap entry i comes out before key (p, seq). */
static int heap_before(lua_State *L, int keys, lua_Integer i, lua_Number p,
                       lua_Integer seq) {
  lua_Number pi;
  lua_Integer si;
  heap_key(L, keys, i, &pi, &si);
  return pi < p || (pi == p && si < seq);
}

/* Stores the value on top of L (popped) in c's buffer, which has room; c
 * is the userdata at chidx; prio is its priority (priority queues). */
static void buf_push(lua_State *L, chan *c, int chidx, lua_Number prio) {
  int buf;
  lua_getiuservalue(L, chidx, 1);
  lua_insert(L, -2); /* [buf][value] */
  buf = lua_gettop(L) - 1;
  if (c->order != ORDER_PRIORITY)
    lua_rawseti(L, buf, (c->head + c->count - 1) % c->cap + 1);
  else {
    lua_Integer i = c->count + 1, seq = ++c->seq;
    int keys = buf + 1;
    lua_getiuservalue(L, chidx, 2);
    lua_insert(L, -2); /* [buf][keys][value] */
    while (i > 1) {    /* sift up; arrival numbers only grow, so a tie stays */
      lua_Number pp;
      lua_Integer ps;
      heap_key(L, keys, i / 2, &pp, &ps);
      if (!(prio < pp)) break;
      heap_move(L, buf, keys, i / 2, i);
      i /= 2;
    }
    heap_set(L, buf, keys, i, prio, seq);
    lua_pop(L, 1); /* keys */
  }
  c->count++;
  lua_pop(L, 1); /* buf */
}

/* Takes the next value out of c's non-empty buffer and pushes it. */
static void buf_pop(lua_State *L, chan *c, int chidx) {
  int buf;
  lua_Integer slot;
  lua_getiuservalue(L, chidx, 1);
  buf = lua_gettop(L);
  switch (c->order) {
  case ORDER_FIFO:
    lua_rawgeti(L, buf, c->head);
    lua_pushnil(L);
    lua_rawseti(L, buf, c->head);
    /* empty: start again at 1, so an unbounded queue's keys stay small */
    c->head = c->count == 1 ? 1 : c->head % c->cap + 1;
    break;
  case ORDER_LIFO:
    slot = (c->head + c->count - 2) % c->cap + 1;
    lua_rawgeti(L, buf, slot);
    lua_pushnil(L);
    lua_rawseti(L, buf, slot);
    break;
  default: { /* the heap's top; its last entry sifts down from the top */
    lua_Integer n = c->count - 1, i = 1, seq;
    lua_Number p;
    int keys = buf + 2;
    lua_rawgeti(L, buf, 1);
    lua_getiuservalue(L, chidx, 2);
    if (n > 0) {
      heap_key(L, keys, n + 1, &p, &seq);
      for (;;) {
        lua_Integer child = 2 * i;
        lua_Number cp;
        lua_Integer cs;
        if (child > n) break;
        if (child < n) {
          heap_key(L, keys, child, &cp, &cs);
          if (heap_before(L, keys, child + 1, cp, cs)) child++;
        }
        if (!heap_before(L, keys, child, p, seq)) break;
        heap_move(L, buf, keys, child, i);
        i = child;
      }
      lua_rawgeti(L, buf, n + 1);
      heap_set(L, buf, keys, i, p, seq);
    }
    lua_pushnil(L);
    lua_rawseti(L, buf, n + 1);
    lua_pop(L, 1); /* keys */
  }
  }
  c->count--;
  lua_remove(L, buf);
}

/* ------------------------------------------------------------- serving */

static void unlink_select(select_state *s) {
  int i;
  for (i = 0; i < s->n; i++) casync__wq_remove(&s->w[i]);
}

/* w (already off its queue) was served with `status`: wake its task. */
static void serve(casync_ctx *lp, casync_wnode *w, int status) {
  w->status = status;
  if (w->sel) {
    select_state *s = w->sel;
    s->fired = w->idx;
    unlink_select(s);
  }
  casync__wake(lp, w->task, WAKE_OK);
}

/* Pushes the value of waiting sender w onto L. */
static void take_from(lua_State *L, casync_wnode *w) {
  lua_State *co = w->task->co;
  lua_pushvalue(co, w->valslot);
  lua_xmove(co, L, 1);
}

/* Moves the value on top of L onto waiting receiver w's stack. */
static void give_to(lua_State *L, casync_wnode *w) {
  lua_State *co = w->task->co;
  lua_checkstack(co, 4);
  lua_xmove(L, co, 1);
}

static chan *check_chan(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CASYNC_CHANNEL_MT);
}

static chan *check_queue(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CASYNC_QUEUE_MT);
}

static int raise_closed(lua_State *L, const char *fname) {
  casync__error_push(L, "closed", NULL, "%s: %s is closed", fname,
                     strstr(fname, "put") ? "queue" : "channel");
  return lua_error(L);
}

/* Tries to send the value on top of L (popped when sent) into c (userdata
 * at chidx) with priority prio (priority queues).  Returns 1 if sent, 0 if
 * it would have to wait. */
static int try_send_value(lua_State *L, casync_ctx *lp, chan *c, int chidx,
                          lua_Number prio) {
  casync_wnode *r = casync__wq_pop(&c->receivers);
  if (r) {
    give_to(L, r);
    serve(lp, r, WN_OK);
  } else if (c->count < c->cap)
    buf_push(L, c, chidx, prio);
  else
    return 0;
  c->unfinished++;
  return 1;
}

/* Tries to receive from c: pushes the value and returns 1, or returns 0 if
 * it would have to wait (nothing pushed); closed and drained pushes nil and
 * returns 2. */
static int try_recv_value(lua_State *L, casync_ctx *lp, chan *c, int chidx) {
  casync_wnode *s;
  if (c->count > 0) {
    buf_pop(L, c, chidx);
    /* a waiting sender moves into the freed slot, in order */
    if ((s = casync__wq_pop(&c->senders)) != NULL) {
      lua_Number prio = c->order == ORDER_PRIORITY
                            ? lua_tonumber(s->task->co, s->valslot + 1) : 0;
      take_from(L, s);
      buf_push(L, c, chidx, prio);
      c->unfinished++;
      serve(lp, s, WN_OK);
    }
    return 1;
  }
  if ((s = casync__wq_pop(&c->senders)) != NULL) {
    take_from(L, s);
    c->unfinished++;
    serve(lp, s, WN_OK);
    return 1;
  }
  if (c->closed) {
    lua_pushnil(L);
    return 2;
  }
  return 0;
}

/* Closes c: no more sends; wakes every waiter (receivers get nil once
 * drained, senders an error of kind "closed"). */
static void close_chan(casync_ctx *lp, chan *c) {
  casync_wnode *w;
  if (c->closed) return;
  c->closed = 1;
  while ((w = casync__wq_pop(&c->receivers)) != NULL) serve(lp, w, WN_CLOSED);
  while ((w = casync__wq_pop(&c->senders)) != NULL) serve(lp, w, WN_CLOSED);
}

/* ----------------------------------------------------- send and recv */

static int chan_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  casync__wq_remove(&t->u.wn);
  return 1;
}

/* A woken send, put, recv, get or join was served: keep what it got. */
static const casync_wait_kind send_wait = {"send", "channel send",
                                           chan_cancel, CASYNC_WK_KEEPS};
static const casync_wait_kind put_wait = {"put", "queue put", chan_cancel,
                                          CASYNC_WK_KEEPS};
static const casync_wait_kind recv_wait = {"recv", "channel recv",
                                           chan_cancel, CASYNC_WK_KEEPS};
static const casync_wait_kind get_wait = {"get", "queue get", chan_cancel,
                                          CASYNC_WK_KEEPS};
static const casync_wait_kind join_wait = {"join", "queue join", chan_cancel,
                                           CASYNC_WK_KEEPS};

/* Queues t's wait node for op on q. */
static void enlist(casync_task *t, casync_wqueue *q, int op, int valslot) {
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  t->u.wn.op = op;
  t->u.wn.valslot = valslot;
  casync__wq_push(q, &t->u.wn);
}

static int send_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, send_k);
  casync__woken(L, t);
  if (t->u.wn.status == WN_CLOSED)
    return raise_closed(L, t->u.wn.op == OP_PUT ? "put" : "send");
  return 0; /* taken: a later cancellation waits for the next suspension */
}

/* send and put, once their arguments are checked: the value at 2 (and a
 * priority queue's priority at 3) into c at 1. */
static int do_send(lua_State *L, chan *c, int op, lua_Number prio) {
  casync_ctx *lp = CASYNC_CTX(L);
  const char *fname = op == OP_PUT ? "put" : "send";
  casync_task *t = casync__wait_begin(L, fname);
  if (c->closed) return raise_closed(L, fname);
  lua_pushvalue(L, 2);
  if (try_send_value(L, lp, c, 1, prio)) return 0;
  lua_pop(L, 1);
  enlist(t, &c->senders, op, 2);
  return casync__park(L, t, op == OP_PUT ? &put_wait : &send_wait, c, 0,
                      send_k, 0);
}

/* ch:send(v): suspends until v is taken or buffered; an error of kind
 * "closed" if the channel is (or gets) closed first */
static int meth_send(lua_State *L) {
  chan *c = check_chan(L, 1);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2,
                "value expected (nil cannot be sent)");
  lua_settop(L, 2);
  return do_send(L, c, OP_SEND, 0);
}

static int recv_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, recv_k);
  casync__woken(L, t);
  if (t->u.wn.status == WN_CLOSED) {
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
  }
  lua_pushboolean(L, 1); /* the value was pushed under it when served */
  return 2;
}

/* recv and get: c at 1. */
static int do_recv(lua_State *L, chan *c, int op) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = casync__wait_begin(L, op == OP_GET ? "get" : "recv");
  int got;
  lua_settop(L, 1);
  if ((got = try_recv_value(L, lp, c, 1)) != 0) {
    lua_pushboolean(L, got == 1);
    return 2;
  }
  enlist(t, &c->receivers, op, 0);
  return casync__park(L, t, op == OP_GET ? &get_wait : &recv_wait, c, 0,
                      recv_k, 0);
}

/* ch:recv() -> v, true | nil, false: suspends until a value comes; nil,
 * false once the channel is closed and drained */
static int meth_recv(lua_State *L) {
  return do_recv(L, check_chan(L, 1), OP_RECV);
}

/* ch:try_send(v) -> boolean: sends without suspending if a receiver waits
 * or the buffer has room; raises "closed" on a closed channel */
static int meth_try_send(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_chan(L, 1);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2,
                "value expected (nil cannot be sent)");
  lua_settop(L, 2);
  if (c->closed) return raise_closed(L, "try_send");
  lua_pushboolean(L, try_send_value(L, lp, c, 1, 0));
  return 1;
}

/* try_recv and try_get: c at 1. */
static int do_try_recv(lua_State *L, chan *c) {
  int got;
  lua_settop(L, 1);
  got = try_recv_value(L, CASYNC_CTX(L), c, 1);
  if (got == 1) return 1;
  if (got == 0) lua_pushnil(L);
  lua_pushstring(L, got == 2 ? "closed" : "empty");
  return 2;
}

/* ch:try_recv() -> v | nil, "empty" | nil, "closed": receives without
 * suspending */
static int meth_try_recv(lua_State *L) {
  return do_try_recv(L, check_chan(L, 1));
}

/* ch:close(): no more sends; wakes every waiter (receivers get nil once
 * drained, senders an error of kind "closed"); closing twice is harmless */
static int meth_close(lua_State *L) {
  close_chan(CASYNC_CTX(L), check_chan(L, 1));
  return 0;
}

/* ch:iter() -> iterator: for v in ch:iter() do ... end until closed and
 * drained */
static int meth_iter(lua_State *L) {
  check_chan(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, 1, "recv");
  lua_pushvalue(L, 1);
  return 2;
}

static int meth_len(lua_State *L) {
  lua_pushinteger(L, check_chan(L, 1)->count);
  return 1;
}

static int meth_cap(lua_State *L) {
  lua_pushinteger(L, check_chan(L, 1)->cap);
  return 1;
}

static int meth_closed(lua_State *L) {
  lua_pushboolean(L, check_chan(L, 1)->closed);
  return 1;
}

static int meta_tostring(lua_State *L) {
  chan *c = check_chan(L, 1);
  lua_pushfstring(L, "casync.Channel (%I/%I%s)", c->count, c->cap,
                  c->closed ? ", closed" : "");
  return 1;
}

/* Checks a capacity argument: none/nil gives 0; else a whole number in
 * 0..MAX_CAPACITY. */
static lua_Integer check_capacity(lua_State *L, int arg, const char *what) {
  lua_Integer cap;
  int isint;
  if (lua_isnoneornil(L, arg)) return 0;
  cap = lua_tointegerx(L, arg, &isint);
  if (!isint) {
    lua_Number x = lua_tonumber(L, arg);
    if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "integer");
    /* a whole float too large for an integer (2^63, math.huge) */
    if (x == floor(x))
      luaL_argerror(L, arg, lua_pushfstring(L, x < 0 ? "%s must not be "
                    "negative" : "%s is too large", what));
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a whole number",
                                          what));
  }
  if (cap < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must not be negative", what));
  if (cap > MAX_CAPACITY)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s is too large", what));
  return cap;
}

/* Pushes a new channel or queue with its buffer table(s); cap > 0. */
static chan *new_chan(lua_State *L, lua_Integer cap, int order,
                      const char *mt) {
  chan *c = lua_newuserdatauv(L, sizeof *c, order == ORDER_PRIORITY ? 2 : 1);
  memset(c, 0, sizeof *c);
  c->cap = cap;
  c->head = 1;
  c->order = order;
  luaL_setmetatable(L, mt);
  lua_createtable(L, cap < 64 ? (int)cap : 64, 0);
  lua_setiuservalue(L, -2, 1);
  if (order == ORDER_PRIORITY) {
    lua_createtable(L, cap < 32 ? 2 * (int)cap : 64, 0);
    lua_setiuservalue(L, -2, 2);
  }
  return c;
}

/* casync.channel([capacity]) -> ch: 0 (default) is an unbuffered
 * rendezvous; n > 0 buffers n values */
static int fn_channel(lua_State *L) {
  new_chan(L, check_capacity(L, 1, "capacity"), ORDER_FIFO,
           CASYNC_CHANNEL_MT);
  return 1;
}

/* -------------------------------------------------------------- queue */

/* A queue is a buffered channel with asyncio's additions: an unbounded
 * size (maxsize 0), LIFO and priority orders, and a count of unfinished
 * items (put, not yet task_done) that join waits on.  It has no rendezvous
 * mode and is not a select case. */

/* q:put(item [, priority]): suspends while the queue is full; priority (a
 * number, default 0, lower first) only for priority queues; an error of
 * kind "closed" if the queue is (or gets) closed first */
static int meth_put(lua_State *L) {
  chan *c = check_queue(L, 1);
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
  lua_pushnumber(L, prio); /* 3: read from here while the put waits */
  return do_send(L, c, OP_PUT, prio);
}

/* q:get() -> item, true | nil, false: suspends while the queue is empty;
 * nil, false once it is closed and drained */
static int meth_get(lua_State *L) {
  return do_recv(L, check_queue(L, 1), OP_GET);
}

/* q:try_put(item [, priority]) -> boolean: puts without suspending if
 * there is room; raises "closed" on a closed queue */
static int meth_try_put(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_queue(L, 1);
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
  if (c->closed) return raise_closed(L, "try_put");
  lua_pushboolean(L, try_send_value(L, lp, c, 1, prio));
  return 1;
}

/* q:try_get() -> item | nil, "empty" | nil, "closed" */
static int meth_try_get(lua_State *L) {
  return do_try_recv(L, check_queue(L, 1));
}

/* q:task_done(): one item taken with get is finished; join returns once
 * every item put is; raises when called more often than items were put */
static int meth_task_done(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_queue(L, 1);
  casync_wnode *w;
  if (c->unfinished <= 0)
    return luaL_error(L, "task_done: called more times than items were put");
  if (--c->unfinished > 0) return 0;
  while ((w = casync__wq_pop(&c->joiners)) != NULL) serve(lp, w, WN_OK);
  return 0;
}

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
  chan *c = check_queue(L, 1);
  double timeout = casync__check_seconds(L, 2, 1);
  casync_task *t = casync__wait_begin(L, "join");
  if (c->unfinished == 0 || timeout == 0) {
    lua_pushboolean(L, c->unfinished == 0);
    return 1;
  }
  enlist(t, &c->joiners, OP_JOIN, 0);
  return casync__park(L, t, &join_wait, c, casync__deadline(timeout), join_k,
                      0);
}

/* q:close(): no more puts; getters drain it, then get nil, false; waiting
 * putters get an error of kind "closed"; closing twice is harmless.  join
 * still waits for task_done. */
static int meth_q_close(lua_State *L) {
  close_chan(CASYNC_CTX(L), check_queue(L, 1));
  return 0;
}

/* q:iter() -> iterator: for item in q:iter() do ... end until closed and
 * drained */
static int meth_q_iter(lua_State *L) {
  check_queue(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, 1, "get");
  lua_pushvalue(L, 1);
  return 2;
}

/* q:qsize() / q:len() / #q -> items in the queue */
static int meth_qsize(lua_State *L) {
  lua_pushinteger(L, check_queue(L, 1)->count);
  return 1;
}

static int meth_empty(lua_State *L) {
  lua_pushboolean(L, check_queue(L, 1)->count == 0);
  return 1;
}

static int meth_full(lua_State *L) {
  chan *c = check_queue(L, 1);
  lua_pushboolean(L, c->count >= c->cap);
  return 1;
}

/* q:maxsize() -> its bound, 0 for none */
static int meth_maxsize(lua_State *L) {
  chan *c = check_queue(L, 1);
  lua_pushinteger(L, c->cap == UNBOUNDED ? 0 : c->cap);
  return 1;
}

/* q:unfinished() -> items put and not yet marked task_done */
static int meth_unfinished(lua_State *L) {
  lua_pushinteger(L, check_queue(L, 1)->unfinished);
  return 1;
}

static int meth_q_closed(lua_State *L) {
  lua_pushboolean(L, check_queue(L, 1)->closed);
  return 1;
}

static const char *const order_names[] = {"fifo", "lifo", "priority", NULL};

static int meta_q_tostring(lua_State *L) {
  chan *c = check_queue(L, 1);
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
  lua_Integer cap = check_capacity(L, 1, "maxsize");
  int order = luaL_checkoption(L, 2, "fifo", order_names);
  new_chan(L, cap == 0 ? UNBOUNDED : cap, order, CASYNC_QUEUE_MT);
  return 1;
}

/* -------------------------------------------------------------- select */

static uint64_t rng_next(casync_ctx *lp) {
  /* xorshift64*: select's random choice among ready cases */
  uint64_t x = lp->rng ? lp->rng : (uv_hrtime() | 1);
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  lp->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static int select_cancel(casync_ctx *lp, casync_task *t, int why) {
  select_state *s = t->wait_obj;
  (void)lp;
  (void)why;
  unlink_select(s);
  return 1;
}

static const casync_wait_kind select_wait = {"select", "select",
                                             select_cancel, CASYNC_WK_KEEPS};

static int select_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  select_state *s;
  casync_wnode *w;
  (void)status;
  CASYNC_RESUMED(L, t, kc, select_k);
  s = t->wait_obj;
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    return 1;
  }
  w = &s->w[s->fired - 1];
  if (w->op == OP_SEND) {
    if (w->status == WN_CLOSED) return raise_closed(L, "select");
    lua_pushinteger(L, s->fired);
    return 1;
  }
  if (w->status == WN_CLOSED) {
    lua_pushinteger(L, s->fired);
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 3;
  }
  /* the value is on top */
  lua_pushinteger(L, s->fired);
  lua_insert(L, -2);
  lua_pushboolean(L, 1);
  return 3;
}

/* Checks case i of the cases table (at 1); returns its op, pushes nothing. */
static int check_case(lua_State *L, int i) {
  const char *op;
  int r;
  if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
    luaL_argerror(L, 1, lua_pushfstring(L, "case %d is not a table", i));
  lua_rawgeti(L, -1, 1);
  if (!luaL_testudata(L, -1, CASYNC_CHANNEL_MT))
    luaL_argerror(L, 1, lua_pushfstring(L, "case %d: channel expected", i));
  lua_rawgeti(L, -2, 2);
  op = lua_tostring(L, -1);
  if (op && strcmp(op, "recv") == 0) r = OP_RECV;
  else if (op && strcmp(op, "send") == 0) {
    r = OP_SEND;
    if (lua_rawgeti(L, -3, 3) == LUA_TNIL)
      luaL_argerror(L, 1, lua_pushfstring(L, "case %d: nil cannot be sent", i));
    lua_pop(L, 1);
  } else
    luaL_argerror(L, 1, lua_pushfstring(L, "case %d: \"send\" or \"recv\" "
                  "expected", i));
  lua_pop(L, 3);
  return r;
}

/* casync.select(cases [, timeout]) -> i [, v, ok]: waits for the first of
 * several channel operations ({ch, "recv"} or {ch, "send", v}); a random
 * one among those ready; nil after timeout seconds (0: just poll) */
static int fn_select(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t;
  double timeout;
  int n, i, k, order[64], *perm = order;
  select_state *s;
  luaL_checktype(L, 1, LUA_TTABLE);
  timeout = casync__check_seconds(L, 2, 1);
  n = (int)lua_rawlen(L, 1);
  luaL_argcheck(L, n > 0, 1, "no cases");
  for (i = 1; i <= n; i++) check_case(L, i);
  lua_settop(L, 2);
  t = casync__wait_begin(L, "select");
  if (n > 64) perm = lua_newuserdatauv(L, sizeof(int) * (size_t)n, 0);
  for (i = 0; i < n; i++) perm[i] = i + 1;
  for (i = n - 1; i > 0; i--) { /* Fisher-Yates: no case starves */
    int j = (int)(rng_next(lp) % (uint64_t)(i + 1)), tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  for (k = 0; k < n; k++) {
    int c = perm[k], got, chidx;
    chan *ch;
    lua_rawgeti(L, 1, c);
    lua_rawgeti(L, -1, 1);
    ch = lua_touserdata(L, -1);
    chidx = lua_gettop(L);
    lua_rawgeti(L, -2, 2);
    if (lua_tostring(L, -1)[0] == 's') {
      lua_pop(L, 1);
      if (ch->closed) return raise_closed(L, "select");
      lua_rawgeti(L, -2, 3);
      if (try_send_value(L, lp, ch, chidx, 0)) {
        lua_pushinteger(L, c);
        return 1;
      }
      lua_pop(L, 3);
    } else {
      lua_pop(L, 1);
      if ((got = try_recv_value(L, lp, ch, chidx)) != 0) {
        lua_pushinteger(L, c);
        lua_insert(L, -2);
        lua_pushboolean(L, got == 1);
        return 3;
      }
      lua_pop(L, 2);
    }
  }
  if (timeout == 0) { /* a poll: nothing was ready */
    lua_pushnil(L);
    return 1;
  }
  /* wait on every case: [1 cases][2 timeout][3 perm?][state][send values] */
  s = lua_newuserdatauv(L, sizeof *s + (size_t)n * sizeof(casync_wnode), 0);
  s->task = t;
  s->n = n;
  s->fired = 0;
  lua_checkstack(L, n + 4);
  for (i = 0; i < n; i++) {
    casync_wnode *w = &s->w[i];
    chan *ch;
    memset(w, 0, sizeof *w);
    w->task = t;
    w->sel = s;
    w->idx = i + 1;
    lua_rawgeti(L, 1, i + 1);
    lua_rawgeti(L, -1, 1);
    ch = lua_touserdata(L, -1);
    lua_rawgeti(L, -2, 2);
    w->op = lua_tostring(L, -1)[0] == 's' ? OP_SEND : OP_RECV;
    lua_pop(L, 1);
    if (w->op == OP_SEND) {
      lua_rawgeti(L, -2, 3);
      lua_replace(L, -3);
      lua_pop(L, 1);
      w->valslot = lua_gettop(L);
      casync__wq_push(&ch->senders, w);
    } else {
      lua_pop(L, 2);
      casync__wq_push(&ch->receivers, w);
    }
  }
  return casync__park(L, t, &select_wait, s, casync__deadline(timeout),
                      select_k, 0);
}

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction tostring, lua_CFunction len) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  casync__setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  casync__loop_push(L);
  lua_pushcclosure(L, len, 1);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
}

void casync__channel_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"channel", fn_channel}, {"select", fn_select}, {"queue", fn_queue},
    {NULL, NULL}};
  static const luaL_Reg methods[] = {
    {"send", meth_send}, {"recv", meth_recv}, {"try_send", meth_try_send},
    {"try_recv", meth_try_recv}, {"close", meth_close}, {"iter", meth_iter},
    {"len", meth_len}, {"cap", meth_cap}, {"closed", meth_closed},
    {NULL, NULL}};
  static const luaL_Reg queue_methods[] = {
    {"put", meth_put}, {"get", meth_get}, {"try_put", meth_try_put},
    {"try_get", meth_try_get}, {"task_done", meth_task_done},
    {"join", meth_join}, {"close", meth_q_close}, {"iter", meth_q_iter},
    {"qsize", meth_qsize}, {"len", meth_qsize}, {"empty", meth_empty},
    {"full", meth_full}, {"maxsize", meth_maxsize},
    {"unfinished", meth_unfinished}, {"closed", meth_q_closed},
    {NULL, NULL}};
  casync__setfuncs(L, fns);
  new_type(L, CASYNC_CHANNEL_MT, methods, meta_tostring, meth_len);
  new_type(L, CASYNC_QUEUE_MT, queue_methods, meta_q_tostring, meth_qsize);
}
