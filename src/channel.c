/* channel.c: Go-style channels and select (casync.channel, casync.select).
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
#define MAX_CAPACITY 0x7fffffff

enum { OP_SEND = 1, OP_RECV };

typedef struct chan {
  casync_wqueue senders, receivers;
  lua_Integer cap, head, count; /* ring buffer in user value 1, 1-based */
  int closed;
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
    casync__timer_remove(lp, &s->task->timer);
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

static int raise_closed(lua_State *L, const char *fname) {
  casync__error_push(L, "closed", NULL, "%s: channel is closed", fname);
  return lua_error(L);
}

/* Tries to send the value on top of L (popped when sent) into ch (userdata
 * at chidx).  Returns 1 if sent, 0 if it would have to wait. */
static int try_send_value(lua_State *L, casync_ctx *lp, chan *c, int chidx) {
  casync_wnode *r = casync__wq_pop(&c->receivers);
  if (r) {
    give_to(L, r);
    serve(lp, r, WN_OK);
    return 1;
  }
  if (c->count < c->cap) {
    lua_getiuservalue(L, chidx, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (c->head + c->count - 1) % c->cap + 1);
    lua_pop(L, 1);
    c->count++;
    return 1;
  }
  return 0;
}

/* Tries to receive from ch: pushes the value and returns 1, or returns 0 if
 * it would have to wait (nothing pushed); closed and drained pushes nil and
 * returns 2. */
static int try_recv_value(lua_State *L, casync_ctx *lp, chan *c, int chidx) {
  casync_wnode *s;
  if (c->count > 0) {
    lua_getiuservalue(L, chidx, 1);
    lua_rawgeti(L, -1, c->head);
    lua_pushnil(L);
    lua_rawseti(L, -3, c->head);
    c->head = c->head % c->cap + 1;
    c->count--;
    /* a waiting sender moves into the freed slot, in order */
    if ((s = casync__wq_pop(&c->senders)) != NULL) {
      take_from(L, s);
      lua_rawseti(L, -3, (c->head + c->count - 1) % c->cap + 1);
      c->count++;
      serve(lp, s, WN_OK);
    }
    lua_remove(L, -2);
    return 1;
  }
  if ((s = casync__wq_pop(&c->senders)) != NULL) {
    take_from(L, s);
    serve(lp, s, WN_OK);
    return 1;
  }
  if (c->closed) {
    lua_pushnil(L);
    return 2;
  }
  return 0;
}

/* ----------------------------------------------------- send and recv */

static int chan_cancel(casync_ctx *lp, casync_task *t) {
  (void)lp;
  casync__wq_remove(&t->u.wn);
  return 1;
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t = (casync_task *)ctx;
  (void)status;
  CASYNC_CHECK_RESUMED(L, t);
  if (t->wake == WAKE_CANCEL) return casync__raise_cancel(L, t);
  if (t->u.wn.status == WN_CLOSED) return raise_closed(L, "send");
  return 0; /* taken: a later cancellation waits for the next suspension */
}

/* ch:send(v): suspends until v is taken or buffered; an error of kind
 * "closed" if the channel is (or gets) closed first */
static int meth_send(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_chan(L, 1);
  casync_task *t;
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "value expected (nil cannot be sent)");
  lua_settop(L, 2);
  t = casync__require_task(L, lp, "send");
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  if (c->closed) return raise_closed(L, "send");
  lua_pushvalue(L, 2);
  if (try_send_value(L, lp, c, 1)) return 0;
  lua_pop(L, 1);
  if (!lua_isyieldable(L))
    return luaL_error(L, "send: cannot suspend across a C call boundary");
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  t->u.wn.op = OP_SEND;
  t->u.wn.valslot = 2;
  casync__wq_push(&c->senders, &t->u.wn);
  return casync__suspend(L, t, "channel send", chan_cancel, send_k);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t = (casync_task *)ctx;
  (void)status;
  CASYNC_CHECK_RESUMED(L, t);
  if (t->wake == WAKE_CANCEL) return casync__raise_cancel(L, t);
  if (t->u.wn.status == WN_CLOSED) {
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
  }
  lua_pushboolean(L, 1); /* the value was pushed under it when served */
  return 2;
}

/* ch:recv() -> v, true | nil, false: suspends until a value comes; nil,
 * false once the channel is closed and drained */
static int meth_recv(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_chan(L, 1);
  casync_task *t = casync__require_task(L, lp, "recv");
  int got;
  lua_settop(L, 1);
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  if ((got = try_recv_value(L, lp, c, 1)) != 0) {
    lua_pushboolean(L, got == 1);
    return 2;
  }
  if (!lua_isyieldable(L))
    return luaL_error(L, "recv: cannot suspend across a C call boundary");
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  t->u.wn.op = OP_RECV;
  casync__wq_push(&c->receivers, &t->u.wn);
  return casync__suspend(L, t, "channel recv", chan_cancel, recv_k);
}

/* ch:try_send(v) -> boolean: sends without suspending if a receiver waits
 * or the buffer has room; raises "closed" on a closed channel */
static int meth_try_send(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_chan(L, 1);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "value expected (nil cannot be sent)");
  lua_settop(L, 2);
  if (c->closed) return raise_closed(L, "try_send");
  lua_pushboolean(L, try_send_value(L, lp, c, 1));
  return 1;
}

/* ch:try_recv() -> v | nil, "empty" | nil, "closed": receives without
 * suspending */
static int meth_try_recv(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_chan(L, 1);
  int got;
  lua_settop(L, 1);
  got = try_recv_value(L, lp, c, 1);
  if (got == 1) return 1;
  if (got == 0) lua_pushnil(L);
  lua_pushstring(L, got == 2 ? "closed" : "empty");
  return 2;
}

/* ch:close(): no more sends; wakes every waiter (receivers get nil once
 * drained, senders an error of kind "closed"); closing twice is harmless */
static int meth_close(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  chan *c = check_chan(L, 1);
  casync_wnode *w;
  if (c->closed) return 0;
  c->closed = 1;
  while ((w = casync__wq_pop(&c->receivers)) != NULL) serve(lp, w, WN_CLOSED);
  while ((w = casync__wq_pop(&c->senders)) != NULL) serve(lp, w, WN_CLOSED);
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

/* casync.channel([capacity]) -> ch: 0 (default) is an unbuffered
 * rendezvous; n > 0 buffers n values */
static int fn_channel(lua_State *L) {
  lua_Integer cap = 0;
  chan *c;
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    cap = lua_tointegerx(L, 1, &isint);
    if (!isint) {
      lua_Number x = lua_tonumber(L, 1);
      if (lua_type(L, 1) != LUA_TNUMBER) luaL_typeerror(L, 1, "integer");
      /* a whole float too large for an integer (2^63, math.huge) */
      luaL_argcheck(L, x != x || x != floor(x), 1,
                    x < 0 ? "capacity must not be negative"
                          : "capacity is too large");
      luaL_argerror(L, 1, "capacity must be a whole number");
    }
    luaL_argcheck(L, cap >= 0, 1, "capacity must not be negative");
    luaL_argcheck(L, cap <= MAX_CAPACITY, 1, "capacity is too large");
  }
  c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  c->cap = cap;
  c->head = 1;
  luaL_setmetatable(L, CASYNC_CHANNEL_MT);
  lua_createtable(L, cap < 64 ? (int)cap : 64, 0);
  lua_setiuservalue(L, -2, 1);
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

static int select_cancel(casync_ctx *lp, casync_task *t) {
  select_state *s = t->wait_data;
  unlink_select(s);
  casync__timer_remove(lp, &t->timer);
  return 1;
}

static void select_timeout(casync_ctx *lp, casync_tnode *n) {
  casync_task *t = container_of(n, casync_task, timer);
  select_state *s = t->wait_data;
  unlink_select(s);
  s->fired = 0;
  casync__wake(lp, t, WAKE_OK);
}

static int select_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t = (casync_task *)ctx;
  select_state *s = t->wait_data;
  casync_wnode *w;
  (void)status;
  CASYNC_CHECK_RESUMED(L, t);
  if (t->wake == WAKE_CANCEL) return casync__raise_cancel(L, t);
  if (s->fired == 0) { /* timed out */
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
  t = casync__require_task(L, lp, "select");
  n = (int)lua_rawlen(L, 1);
  luaL_argcheck(L, n > 0, 1, "no cases");
  for (i = 1; i <= n; i++) check_case(L, i);
  lua_settop(L, 2);
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
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
      if (try_send_value(L, lp, ch, chidx)) {
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
  if (!lua_isyieldable(L))
    return luaL_error(L, "select: cannot suspend across a C call boundary");
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
  t->wait_data = s;
  if (timeout > 0) {
    t->timer.fire = select_timeout;
    casync__timer_add(lp, &t->timer, timeout);
  }
  return casync__suspend(L, t, "select", select_cancel, select_k);
}

void casync__channel_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"channel", fn_channel}, {"select", fn_select}, {NULL, NULL}};
  static const luaL_Reg methods[] = {
    {"send", meth_send}, {"recv", meth_recv}, {"try_send", meth_try_send},
    {"try_recv", meth_try_recv}, {"close", meth_close}, {"iter", meth_iter},
    {"len", meth_len}, {"cap", meth_cap}, {"closed", meth_closed},
    {NULL, NULL}};
  casync__setfuncs(L, fns);
  luaL_newmetatable(L, CASYNC_CHANNEL_MT);
  lua_newtable(L);
  casync__setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  casync__loop_push(L);
  lua_pushcclosure(L, meth_len, 1);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
}
