/* channel.c: Go-style channels (casync.channel): unbuffered rendezvous or
 * buffered, send/recv, try_*, close, iter.  queue.c and select.c build on
 * the same struct and hand-off (chan.h).
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
#include "chan.h"

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

/* Pushes the value of waiting sender w onto L. */
void casync__chan_take_from(lua_State *L, casync_wnode *w) {
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

chan *casync__chan_check(lua_State *L, int idx) {
  return casync__check_class(L, idx, CASYNC_CTX(L)->chan_mt, CASYNC_CHANNEL_MT);
}

chan *casync__queue_check(lua_State *L, int idx) {
  return casync__check_class(L, idx, CASYNC_CTX(L)->queue_mt, CASYNC_QUEUE_MT);
}

int casync__chan_raise_closed(lua_State *L, const char *fname) {
  casync__error_push(L, "closed", NULL, "%s: %s is closed", fname,
                     strstr(fname, "put") ? "queue" : "channel");
  return lua_error(L);
}

/* Tries to send the value on top of L (popped when sent) into c (userdata
 * at chidx) with priority prio (priority queues).  Returns 1 if sent, 0 if
 * it would have to wait. */
int casync__chan_try_send(lua_State *L, casync_ctx *lp, chan *c, int chidx,
                          lua_Number prio) {
  casync_wnode *r = casync__wq_pop(&c->receivers);
  if (r) {
    give_to(L, r);
    casync__wq_serve(lp, r, WN_OK);
  } else if (c->count < c->cap) buf_push(L, c, chidx, prio);
  else return 0;
  c->unfinished++;
  return 1;
}

/* Tries to receive from c: pushes the value and returns 1, or returns 0 if
 * it would have to wait (nothing pushed); closed and drained pushes nil and
 * returns 2. */
int casync__chan_try_recv(lua_State *L, casync_ctx *lp, chan *c, int chidx) {
  casync_wnode *s;
  if (c->count > 0) {
    buf_pop(L, c, chidx);
    /* a waiting sender moves into the freed slot, in order */
    if ((s = casync__wq_pop(&c->senders)) != NULL) {
      lua_Number prio = c->order == ORDER_PRIORITY
                            ? lua_tonumber(s->task->co, s->valslot + 1)
                            : 0;
      casync__chan_take_from(L, s);
      buf_push(L, c, chidx, prio);
      c->unfinished++;
      casync__wq_serve(lp, s, WN_OK);
    }
    return 1;
  }
  if ((s = casync__wq_pop(&c->senders)) != NULL) {
    casync__chan_take_from(L, s);
    c->unfinished++;
    casync__wq_serve(lp, s, WN_OK);
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
void casync__chan_close(casync_ctx *lp, chan *c) {
  casync_wnode *w;
  if (c->closed) return;
  c->closed = 1;
  while ((w = casync__wq_pop(&c->receivers)) != NULL)
    casync__wq_serve(lp, w, WN_CLOSED);
  while ((w = casync__wq_pop(&c->senders)) != NULL)
    casync__wq_serve(lp, w, WN_CLOSED);
}

/* ----------------------------------------------------- send and recv */

int casync__chan_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  casync__wq_remove(&t->u.wn);
  return 1;
}

/* A woken send, put, recv, get or join was served: keep what it got. */
static int count(const casync_wqueue *q) {
  const casync_wnode *w;
  int n = 0;
  for (w = q->head; w; w = w->next) n++;
  return n;
}

/* Pushes "recv on channel#3 (cap 0, 2 senders waiting)" for op on c:
 * the other side's waiters, for a receiving op the senders. */
void casync__chan_describe(lua_State *L, chan *c, const char *op) {
  int recv = op[0] == 'r' || op[0] == 'g';
  int n = count(recv ? &c->senders : &c->receivers);
  const char *other = recv ? "sender" : "receiver";
  if (c->is_queue)
    lua_pushfstring(L, "%s on queue#%I (%I item%s%s, %d %s%s waiting)", op,
                    c->id, c->count, c->count == 1 ? "" : "s",
                    c->closed ? ", closed" : "", n, recv ? "putter" : "getter",
                    n == 1 ? "" : "s");
  else
    lua_pushfstring(L, "%s on channel#%I (cap %I, %d %s%s waiting%s)", op,
                    c->id, c->cap, n, other, n == 1 ? "" : "s",
                    c->closed ? ", closed" : "");
}

static void send_describe(lua_State *L, casync_task *t) {
  casync__chan_describe(L, t->wait_obj, "send");
}
static void put_describe(lua_State *L, casync_task *t) {
  casync__chan_describe(L, t->wait_obj, "put");
}
static void recv_describe(lua_State *L, casync_task *t) {
  casync__chan_describe(L, t->wait_obj, "recv");
}
static void get_describe(lua_State *L, casync_task *t) {
  casync__chan_describe(L, t->wait_obj, "get");
}

static const casync_wait_kind send_wait = {
    "send", "channel send", casync__chan_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS, send_describe};
static const casync_wait_kind put_wait = {
    "put", "queue put", casync__chan_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS, put_describe};
static const casync_wait_kind recv_wait = {
    "recv", "channel recv", casync__chan_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS, recv_describe};
static const casync_wait_kind get_wait = {
    "get", "queue get", casync__chan_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS, get_describe};

/* Queues t's wait node for op on q. */
void casync__chan_enlist(casync_task *t, casync_wqueue *q, int op,
                         int valslot) {
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  t->u.wn.op = op;
  t->u.wn.valslot = valslot;
  casync__wq_push(q, &t->u.wn);
}

static int send_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED_KC(L, t, kc, send_k);
  casync__woken(L, t);
  if (t->u.wn.status == WN_CLOSED)
    return casync__chan_raise_closed(L, t->u.wn.op == OP_PUT ? "put" : "send");
  return 0; /* taken: a later cancellation waits for the next suspension */
}

/* send and put, once their arguments are checked: the value at 2 (and a
 * priority queue's priority at 3) into c at 1. */
static int chan_send(lua_State *L, casync_ctx *lp, chan *c, int op,
                     lua_Number prio) {
  const char *fname = op == OP_PUT ? "put" : "send";
  casync_task *t = casync__wait_begin_ctx(L, lp, fname);
  if (c->closed) return casync__chan_raise_closed(L, fname);
  lua_pushvalue(L, 2);
  if (casync__chan_try_send(L, lp, c, 1, prio)) return 0;
  lua_pop(L, 1);
  casync__chan_enlist(t, &c->senders, op, 2);
  return casync__park(L, t, op == OP_PUT ? &put_wait : &send_wait, c, 0, send_k,
                      (lua_KContext)t);
}

int casync__chan_send(lua_State *L, chan *c, int op, lua_Number prio) {
  return chan_send(L, CASYNC_CTX(L), c, op, prio);
}

/* ch:send(v): suspends until v is taken or buffered; an error of kind
 * "closed" if the channel is (or gets) closed first */
static int meth_send(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L); /* once per call: each look costs */
  chan *c = casync__check_class(L, 1, lp->chan_mt, CASYNC_CHANNEL_MT);
  luaL_argcheck(L, lua_type(L, 2) > LUA_TNIL, 2,
                "value expected (nil cannot be sent)");
  /* values past 2 may stay: the value is read at 2 */
  return chan_send(L, lp, c, OP_SEND, 0);
}

static int recv_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED_KC(L, t, kc, recv_k);
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
static int chan_recv(lua_State *L, casync_ctx *lp, chan *c, int op) {
  casync_task *t = casync__wait_begin_ctx(L, lp, op == OP_GET ? "get" : "recv");
  int got;
  if (lua_gettop(L) != 1) lua_settop(L, 1);
  if ((got = casync__chan_try_recv(L, lp, c, 1)) != 0) {
    lua_pushboolean(L, got == 1);
    return 2;
  }
  casync__chan_enlist(t, &c->receivers, op, 0);
  return casync__park(L, t, op == OP_GET ? &get_wait : &recv_wait, c, 0, recv_k,
                      (lua_KContext)t);
}

/* ch:recv() -> v, true | nil, false: suspends until a value comes; nil,
 * false once the channel is closed and drained */
int casync__chan_recv(lua_State *L, chan *c, int op) {
  return chan_recv(L, CASYNC_CTX(L), c, op);
}

static int meth_recv(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  return chan_recv(L, lp,
                   casync__check_class(L, 1, lp->chan_mt, CASYNC_CHANNEL_MT),
                   OP_RECV);
}

/* ch:try_send(v) -> boolean: sends without suspending if a receiver waits
 * or the buffer has room; raises "closed" on a closed channel */
static int meth_try_send(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = casync__chan_check(L, 1);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2,
                "value expected (nil cannot be sent)");
  lua_settop(L, 2);
  if (c->closed) return casync__chan_raise_closed(L, "try_send");
  lua_pushboolean(L, casync__chan_try_send(L, lp, c, 1, 0));
  return 1;
}

/* try_recv and try_get: c at 1. */
int casync__chan_poll_recv(lua_State *L, chan *c) {
  int got;
  lua_settop(L, 1);
  got = casync__chan_try_recv(L, CASYNC_CTX(L), c, 1);
  if (got == 1) return 1;
  if (got == 0) lua_pushnil(L);
  lua_pushstring(L, got == 2 ? "closed" : "empty");
  return 2;
}

/* ch:try_recv() -> v | nil, "empty" | nil, "closed": receives without
 * suspending */
static int meth_try_recv(lua_State *L) {
  return casync__chan_poll_recv(L, casync__chan_check(L, 1));
}

/* ch:close(): no more sends; wakes every waiter (receivers get nil once
 * drained, senders an error of kind "closed"); closing twice is harmless */
static int meth_close(lua_State *L) {
  casync__chan_close(CASYNC_CTX(L), casync__chan_check(L, 1));
  return 0;
}

/* ch:iter() -> iterator: for v in ch:iter() do ... end until closed and
 * drained */
static int meth_iter(lua_State *L) {
  casync__chan_check(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, 1, "recv");
  lua_pushvalue(L, 1);
  return 2;
}

static int meth_len(lua_State *L) {
  lua_pushinteger(L, casync__chan_check(L, 1)->count);
  return 1;
}

static int meth_cap(lua_State *L) {
  lua_pushinteger(L, casync__chan_check(L, 1)->cap);
  return 1;
}

static int meth_closed(lua_State *L) {
  lua_pushboolean(L, casync__chan_check(L, 1)->closed);
  return 1;
}

static int meta_tostring(lua_State *L) {
  chan *c = casync__chan_check(L, 1);
  lua_pushfstring(L, "casync.Channel (%I/%I%s)", c->count, c->cap,
                  c->closed ? ", closed" : "");
  return 1;
}

/* Checks a capacity argument: none/nil gives 0; else a whole number in
 * 0..MAX_CAPACITY. */
lua_Integer casync__chan_check_capacity(lua_State *L, int arg,
                                        const char *what) {
  lua_Integer cap;
  int isint;
  if (lua_isnoneornil(L, arg)) return 0;
  cap = lua_tointegerx(L, arg, &isint);
  if (!isint) {
    lua_Number x = lua_tonumber(L, arg);
    if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "integer");
    /* a whole float too large for an integer (2^63, math.huge) */
    if (x == floor(x))
      luaL_argerror(L, arg,
                    lua_pushfstring(L,
                                    x < 0 ? "%s must not be "
                                            "negative"
                                          : "%s is too large",
                                    what));
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "%s must be a whole number", what));
  }
  if (cap < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must not be negative", what));
  if (cap > MAX_CAPACITY)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s is too large", what));
  return cap;
}

/* Pushes a new channel or queue with its buffer table(s); cap > 0. */
chan *casync__chan_new(lua_State *L, lua_Integer cap, int order,
                       const char *mt) {
  chan *c = lua_newuserdatauv(L, sizeof *c, order == ORDER_PRIORITY ? 2 : 1);
  memset(c, 0, sizeof *c);
  c->id = ++CASYNC_CTX(L)->next_obj_id;
  c->is_queue = strcmp(mt, CASYNC_QUEUE_MT) == 0;
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
  casync__chan_new(L, casync__chan_check_capacity(L, 1, "capacity"), ORDER_FIFO,
                   CASYNC_CHANNEL_MT);
  return 1;
}

/* Makes the metatable `name` of a channel type; returns its address. */
const void *casync__chan_new_type(lua_State *L, const char *name,
                                  const luaL_Reg *methods,
                                  lua_CFunction tostring, lua_CFunction len) {
  const void *mt;
  luaL_newmetatable(L, name);
  mt = lua_topointer(L, -1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  casync__ctx_push(L);
  lua_pushcclosure(L, tostring, 1);
  lua_setfield(L, -2, "__tostring");
  casync__ctx_push(L);
  lua_pushcclosure(L, len, 1);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
  return mt;
}

void casync__channel_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"channel", fn_channel}, {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"send", meth_send},         {"recv", meth_recv},
      {"try_send", meth_try_send}, {"try_recv", meth_try_recv},
      {"close", meth_close},       {"iter", meth_iter},
      {"len", meth_len},           {"cap", meth_cap},
      {"closed", meth_closed},     {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  casync__ctx_get(L)->chan_mt = casync__chan_new_type(
      L, CASYNC_CHANNEL_MT, methods, meta_tostring, meth_len);
}
