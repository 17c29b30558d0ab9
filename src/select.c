/* select.c: casync.select, Go's select over channel operations: the
 * ready cases are tried in a random order (no case starves); when none
 * is ready the task waits on every case at once, and the first to be
 * served unlinks the others (chan.h).
 */
#include <string.h>
#include "chan.h"

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
  casync__chan_unlink_select(s);
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
    if (w->status == WN_CLOSED) return casync__chan_raise_closed(L, "select");
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
      if (ch->closed) return casync__chan_raise_closed(L, "select");
      lua_rawgeti(L, -2, 3);
      if (casync__chan_try_send(L, lp, ch, chidx, 0)) {
        lua_pushinteger(L, c);
        return 1;
      }
      lua_pop(L, 3);
    } else {
      lua_pop(L, 1);
      if ((got = casync__chan_try_recv(L, lp, ch, chidx)) != 0) {
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

void casync__select_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"select", fn_select}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
