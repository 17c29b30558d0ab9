/* select.c: casync.select, Go's select over every kind of wait: channel
 * recv and send, queue get and put, a task's end, an event, a semaphore's
 * or a lock's permit.  The cases are tried in a random order (no case
 * starves); when none is ready the task waits on every case at once, in
 * that order too, and the first one served fires: the others are unlinked
 * in the same step (waitq.c), so a losing case takes nothing: no value, no
 * item, no permit.
 */
#include <string.h>
#include "chan.h"
#include "sync.h"

enum { K_RECV = 1, K_SEND, K_GET, K_PUT, K_TASK, K_EVENT, K_ACQUIRE };

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
  (void)lp;
  (void)why;
  casync__select_unlink(t->wait_obj);
  return 1;
}

static void select_describe(lua_State *L, casync_task *t) {
  casync_select *s = t->wait_obj;
  int i, top = lua_gettop(L);
  lua_pushfstring(L, "select on %d case%s", s->n, s->n == 1 ? "" : "s");
  for (i = 0; i < s->n && i < 8; i++) {
    casync_selcase *c = &s->c[i];
    lua_pushstring(L, i ? "; " : ": ");
    if (c->watched) {
      casync__push_task_label(L, c->watched);
      lua_pushfstring(L, "task:wait() for %s", lua_tostring(L, -1));
      lua_remove(L, -2);
    } else if (c->w.op == K_ACQUIRE)
      casync__sync_describe(L, container_of(c->w.queue, sem, waiters));
    else if (c->w.op == K_EVENT)
      lua_pushfstring(L, "wait on event#%I",
                      container_of(c->w.queue, event, waiters)->id);
    else if (c->w.op == K_SEND || c->w.op == K_PUT)
      casync__chan_describe(L, container_of(c->w.queue, chan, senders),
                            c->w.op == K_PUT ? "put" : "send");
    else if (c->w.queue)
      casync__chan_describe(L, container_of(c->w.queue, chan, receivers),
                            c->w.op == K_GET ? "get" : "recv");
    else lua_pushliteral(L, "?");
  }
  lua_concat(L, lua_gettop(L) - top);
}

static int select_blockers(lua_State *L, casync_task *t, casync_task **out,
                           int max) {
  casync_select *s = t->wait_obj;
  int i, n = 0;
  for (i = 0; i < s->n && n < max; i++) {
    casync_selcase *c = &s->c[i];
    if (c->watched) out[n++] = c->watched;
    else if (c->w.op == K_ACQUIRE && c->w.queue)
      n += casync__sync_blockers(L, container_of(c->w.queue, sem, waiters),
                                 out + n, max - n);
  }
  return n;
}

static const casync_wait_kind select_wait = {
    "select",        "select",
    select_cancel,   CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS,
    select_describe, select_blockers};

/* Pushes the object of case i (cases at 1). */
static void *case_obj(lua_State *L, int i) {
  lua_rawgeti(L, 1, i);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
  return lua_touserdata(L, -1);
}

/* What select returns for case i, whose object is on top (replaced):
 * i [, values].  For a task: its results, or its error raised. */
static int case_result(lua_State *L, casync_task *self, int i, int kind) {
  int obj = lua_gettop(L), n;
  switch (kind) {
  case K_TASK: {
    casync_task *t = lua_touserdata(L, obj);
    if (t->outcome != OUT_OK) {
      casync__push_error_of(L, t, obj);
      return lua_error(L);
    }
    lua_pushinteger(L, i);
    n = casync__push_results(L, t, obj, 0);
    lua_remove(L, obj);
    return n + 1;
  }
  case K_EVENT:
    lua_pop(L, 1);
    lua_pushinteger(L, i);
    lua_pushboolean(L, 1);
    return 2;
  case K_ACQUIRE: /* the permit, handed over */
    lua_pushinteger(L, i);
    casync__sync_push_permit(L, lua_touserdata(L, obj), obj, self);
    lua_remove(L, obj);
    return 2;
  default:
    lua_pop(L, 1);
    lua_pushinteger(L, i);
    return 1;
  }
}

static int select_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  casync_select *s;
  casync_wnode *w;
  (void)status;
  CASYNC_RESUMED(L, t, kc, select_k);
  s = t->wait_obj;
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    return 1;
  }
  w = s->won;
  switch (w->op) {
  case K_RECV:
  case K_GET:
    if (w->status == WN_CLOSED) {
      lua_pushinteger(L, s->fired);
      lua_pushnil(L);
      lua_pushboolean(L, 0);
      return 3;
    }
    lua_pushinteger(L, s->fired); /* the value is on top */
    lua_insert(L, -2);
    lua_pushboolean(L, 1);
    return 3;
  case K_SEND:
  case K_PUT:
    if (w->status == WN_CLOSED)
      return casync__chan_raise_closed(L, w->op == K_PUT ? "put" : "select");
    lua_pushinteger(L, s->fired);
    return 1;
  default: case_obj(L, s->fired); return case_result(L, t, s->fired, w->op);
  }
}

/* Checks case i of the cases table (at 1); returns its kind. */
static int check_case(lua_State *L, int i, casync_task *self) {
  const char *op;
  int kind = 0, top = lua_gettop(L);
  if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
    luaL_argerror(L, 1, lua_pushfstring(L, "case %d is not a table", i));
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  op = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
#define OP(s) (strcmp(op, s) == 0)
#define WANT(msg) \
  luaL_argerror(L, 1, lua_pushfstring(L, "case %d: %s expected", i, msg))
  if (luaL_testudata(L, top + 2, CASYNC_CHANNEL_MT)) {
    if (OP("recv")) kind = K_RECV;
    else if (OP("send")) kind = K_SEND;
    else WANT("\"send\" or \"recv\"");
  } else if (luaL_testudata(L, top + 2, CASYNC_QUEUE_MT)) {
    if (OP("get")) kind = K_GET;
    else if (OP("put")) kind = K_PUT;
    else WANT("\"put\" or \"get\"");
  } else if (luaL_testudata(L, top + 2, CASYNC_TASK_MT)) {
    if (!OP("wait")) WANT("\"wait\"");
    if (lua_touserdata(L, top + 2) == self)
      luaL_argerror(L, 1,
                    lua_pushfstring(L,
                                    "case %d: a task cannot wait "
                                    "for itself",
                                    i));
    kind = K_TASK;
  } else if (luaL_testudata(L, top + 2, EVENT_MT)) {
    if (!OP("wait")) WANT("\"wait\"");
    kind = K_EVENT;
  } else if (luaL_testudata(L, top + 2, SEM_MT) ||
             luaL_testudata(L, top + 2, LOCK_MT)) {
    sem *m = lua_touserdata(L, top + 2);
    if (!OP("acquire")) WANT("\"acquire\"");
    if (m->is_lock && m->owner == self && m->count == 0)
      luaL_argerror(L, 1,
                    lua_pushfstring(L,
                                    "case %d: the lock is already "
                                    "held by this task",
                                    i));
    kind = K_ACQUIRE;
  } else WANT("channel, queue, task, event, semaphore or lock");
  if (kind == K_SEND || kind == K_PUT) {
    if (lua_rawgeti(L, top + 1, 3) == LUA_TNIL)
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "case %d: nil cannot be %s", i,
                                    kind == K_PUT ? "put" : "sent"));
    lua_rawgeti(L, top + 1, 4);
    if (!lua_isnil(L, -1)) {
      chan *c = lua_touserdata(L, top + 2);
      if (kind != K_PUT || c->order != ORDER_PRIORITY || !lua_isnumber(L, -1) ||
          lua_tonumber(L, -1) != lua_tonumber(L, -1))
        luaL_argerror(L, 1,
                      lua_pushfstring(L,
                                      "case %d: a priority (a "
                                      "number) is only for priority queues",
                                      i));
    }
  }
#undef OP
#undef WANT
  lua_settop(L, top);
  return kind;
}

/* Tries case c (1-based) of kind k at once: pushes what select returns
 * and returns how many, or 0 if it would have to wait. */
static int try_case(lua_State *L, casync_ctx *lp, casync_task *self, int c,
                    int k) {
  int top = lua_gettop(L), obj, got;
  void *o = case_obj(L, c);
  obj = lua_gettop(L);
  switch (k) {
  case K_RECV:
  case K_GET:
    if ((got = casync__chan_try_recv(L, lp, o, obj)) == 0) break;
    lua_pushinteger(L, c);
    lua_insert(L, -2);
    lua_pushboolean(L, got == 1);
    lua_remove(L, obj);
    return 3;
  case K_SEND:
  case K_PUT: {
    chan *ch = o;
    lua_Number prio = 0;
    if (ch->closed)
      return casync__chan_raise_closed(L, k == K_PUT ? "put" : "select");
    lua_rawgeti(L, 1, c);
    lua_rawgeti(L, -1, 4);
    prio = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_rawgeti(L, -1, 3);
    lua_remove(L, -2);
    if (!casync__chan_try_send(L, lp, ch, obj, prio)) break;
    lua_settop(L, top);
    lua_pushinteger(L, c);
    return 1;
  }
  case K_TASK:
    if (((casync_task *)o)->state != T_DONE) break;
    return case_result(L, self, c, k);
  case K_EVENT:
    if (!((event *)o)->set) break;
    return case_result(L, self, c, k);
  case K_ACQUIRE: {
    sem *m = o;
    if (m->count <= 0 || m->waiters.head) break;
    m->count--;
    return case_result(L, self, c, k);
  }
  }
  lua_settop(L, top);
  return 0;
}

/* Enlists case c (kind k) as node sc of select s (userdata at sidx). */
static void enlist(lua_State *L, casync_select *s, casync_selcase *sc, int c,
                   int k) {
  void *o = case_obj(L, c);
  memset(sc, 0, sizeof *sc);
  sc->w.task = s->task;
  sc->w.sel = s;
  sc->w.idx = c;
  sc->w.op = k;
  switch (k) {
  case K_RECV:
  case K_GET: casync__wq_push(&((chan *)o)->receivers, &sc->w); break;
  case K_SEND:
  case K_PUT: /* its value (and priority) stay on this stack, where
                 * receivers take them */
    lua_rawgeti(L, 1, c);
    lua_rawgeti(L, -1, 3);
    sc->w.valslot = lua_gettop(L);
    lua_rawgeti(L, -2, 4);
    lua_pushnumber(L, lua_tonumber(L, -1));
    lua_replace(L, -2);
    lua_remove(L, -3); /* the case table */
    lua_remove(L, -3); /* the object */
    sc->w.valslot -= 2;
    casync__wq_push(&((chan *)o)->senders, &sc->w);
    return;
  case K_TASK: casync__select_watch(s, sc, o); break;
  case K_EVENT: casync__wq_push(&((event *)o)->waiters, &sc->w); break;
  case K_ACQUIRE:
    sc->w.op = K_ACQUIRE;
    casync__wq_push(&((sem *)o)->waiters, &sc->w);
    break;
  }
  lua_pop(L, 1);
}

/* casync.select(cases [, timeout]) -> i [, ...]: waits for the first of
 * several operations: {ch, "recv"} (-> i, v, true | i, nil, false once
 * closed), {ch, "send", v} (-> i), {q, "get"} (like recv), {q, "put", v
 * [, priority]} (-> i), {task, "wait"} (-> i, its results; its error is
 * raised), {event, "wait"} (-> i, true), {sem_or_lock, "acquire"} (-> i,
 * the permit).  A random one among those ready; nil after timeout seconds
 * (0: just poll), or when the enclosing scope's deadline passes. */
static int fn_select(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t, *self;
  double timeout;
  int n, i, k, order[64], kinds_s[64], *perm = order, *kinds = kinds_s;
  casync_select *s;
  luaL_checktype(L, 1, LUA_TTABLE);
  timeout = casync__check_seconds(L, 2, 1);
  n = (int)lua_rawlen(L, 1);
  /* Go's `select { default: }` is a poll of nothing; with no timeout at
   * all it would wait until cancelled, which is surely a mistake here */
  luaL_argcheck(L, n > 0 || timeout >= 0, 1, "no cases");
  lua_settop(L, 2);
  self = lp->current && lp->current->co == L ? lp->current : NULL;
  if (n > 64) {
    perm = lua_newuserdatauv(L, sizeof(int) * 2 * (size_t)n, 0);
    kinds = perm + n;
  }
  for (i = 1; i <= n; i++) kinds[i - 1] = check_case(L, i, self);
  t = casync__wait_begin(L, "select");
  for (i = 0; i < n; i++) perm[i] = i + 1;
  for (i = n - 1; i > 0; i--) { /* Fisher-Yates: no case starves */
    int j = (int)(rng_next(lp) % (uint64_t)(i + 1)), tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  for (k = 0; k < n; k++) {
    int got = try_case(L, lp, t, perm[k], kinds[perm[k] - 1]);
    if (got) return got;
  }
  if (timeout == 0) { /* a poll: nothing was ready */
    lua_pushnil(L);
    return 1;
  }
  /* wait on every case: [1 cases][2 timeout][3 perm?][select][values] */
  if (!lua_checkstack(L, 2 * n + 8))
    return luaL_error(L, "select: too many cases (%d)", n);
  s = lua_newuserdatauv(L, sizeof *s + (size_t)n * sizeof(casync_selcase), 0);
  s->task = t;
  s->n = n;
  s->fired = 0;
  s->won = NULL;
  /* in the random order too: of two cases on one channel, the one that
   * queued first is served first, and that must not always be the same */
  for (k = 0; k < n; k++) enlist(L, s, &s->c[k], perm[k], kinds[perm[k] - 1]);
  return casync__park(L, t, &select_wait, s, casync__deadline(timeout),
                      select_k, 0);
}

void casync__select_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"select", fn_select}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
