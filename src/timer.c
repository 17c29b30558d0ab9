/* timer.c: the timer heap (casync.sleep, timeouts, call_later) and the clock.
 *
 * Every deadline in the loop lives in one binary min-heap of nodes embedded
 * in the tasks that wait on them; one libuv timer is armed for the earliest.
 * A sleeping task therefore costs no libuv handle and no allocation.
 * sleep(0) does not touch the heap: it requeues the task behind every other
 * ready task.
 */
#include <math.h>
#include <stdlib.h>
#include "internal.h"

#define NS_PER_S 1e9
#define NS_PER_MS 1000000u

static int earlier(const casync_tnode *a, const casync_tnode *b) {
  return a->deadline < b->deadline ||
         (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(casync_ctx *lp, int i, casync_tnode *n) {
  lp->heap[i] = n;
  n->index = i;
}

static void sift_up(casync_ctx *lp, int i) {
  casync_tnode *n = lp->heap[i];
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (!earlier(n, lp->heap[parent])) break;
    place(lp, i, lp->heap[parent]);
    i = parent;
  }
  place(lp, i, n);
}

static void sift_down(casync_ctx *lp, int i) {
  casync_tnode *n = lp->heap[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= lp->heap_len) break;
    if (c + 1 < lp->heap_len && earlier(lp->heap[c + 1], lp->heap[c])) c++;
    if (!earlier(lp->heap[c], n)) break;
    place(lp, i, lp->heap[c]);
    i = c;
  }
  place(lp, i, n);
}

static void on_timer(uv_timer_t *h);

/* Arms the libuv timer for the earliest deadline (or stops it). */
static void rearm(casync_ctx *lp) {
  uint64_t d, now, ms;
  if (lp->in_timer) return; /* on_timer rearms once when it is done */
  if (lp->heap_len == 0) {
    if (lp->armed_for) uv_timer_stop(&lp->timer);
    lp->armed_for = 0;
    return;
  }
  d = lp->heap[0]->deadline;
  if (d == lp->armed_for) return;
  now = uv_hrtime();
  ms = d > now ? (d - now + NS_PER_MS - 1) / NS_PER_MS : 0;
  /* libuv counts from its cached loop time; refresh it so a long drain of
   * ready tasks does not make the timer fire early. */
  uv_update_time(lp->loop);
  uv_timer_start(&lp->timer, on_timer, ms, 0);
  lp->armed_for = d;
}

static void remove_at(casync_ctx *lp, int i) {
  casync_tnode *n = lp->heap[i], *last = lp->heap[--lp->heap_len];
  n->index = -1;
  if (i < lp->heap_len) {
    place(lp, i, last);
    sift_down(lp, i);
    sift_up(lp, last->index);
  }
}

/* Fires every node whose deadline has passed.  A fire function only marks
 * tasks ready (or cancels them); no Lua code of the user runs here. */
static void on_timer(uv_timer_t *h) {
  casync_ctx *lp = h->data;
  uint64_t now = uv_hrtime();
  lp->armed_for = 0;
  lp->in_timer = 1;
  while (lp->heap_len > 0 && lp->heap[0]->deadline <= now) {
    casync_tnode *n = lp->heap[0];
    remove_at(lp, 0);
    n->fire(lp, n);
  }
  lp->in_timer = 0;
  rearm(lp);
}

/* Adds n to the heap with an absolute deadline (ns, uv_hrtime clock). */
void casync__timer_add_ns(casync_ctx *lp, casync_tnode *n, uint64_t deadline) {
  if (lp->heap_len == lp->heap_cap) {
    int cap = lp->heap_cap ? lp->heap_cap * 2 : 64;
    casync_tnode **heap = realloc(lp->heap, (size_t)cap * sizeof *heap);
    if (!heap) abort(); /* NOTE: no Lua state to raise on from here */
    lp->heap = heap;
    lp->heap_cap = cap;
  }
  n->deadline = deadline;
  n->seq = lp->timer_seq++;
  place(lp, lp->heap_len++, n);
  sift_up(lp, n->index);
  if (n->index == 0) rearm(lp);
}

/* Adds n to fire `seconds` from now; huge values mean "practically never". */
void casync__timer_add(casync_ctx *lp, casync_tnode *n, double seconds) {
  uint64_t now = uv_hrtime(), delta;
  if (seconds <= 0) delta = 0;
  else if (seconds >= 1e9) delta = UINT64_MAX - now - 1; /* ~31 years+ */
  else delta = (uint64_t)(seconds * NS_PER_S);
  casync__timer_add_ns(lp, n, now + delta);
}

/* Removes n from the heap if it is there. */
void casync__timer_remove(casync_ctx *lp, casync_tnode *n) {
  int top;
  if (n->index < 0) return;
  top = n->index == 0;
  remove_at(lp, n->index);
  if (top) rearm(lp);
}

/* Checks a duration argument: a number that is not NaN.  Negative counts as
 * zero.  With allow_nil, nil gives -1 ("no limit"). */
double casync__check_seconds(lua_State *L, int arg, int allow_nil) {
  lua_Number s;
  if (allow_nil && lua_isnoneornil(L, arg)) return -1;
  s = luaL_checknumber(L, arg);
  if (isnan(s)) luaL_argerror(L, arg, "number expected, got NaN");
  return s < 0 ? 0 : s;
}

/* ---------------------------------------------------------------- sleep */

static void sleep_fire(casync_ctx *lp, casync_tnode *n) {
  casync__wake(lp, container_of(n, casync_task, timer), WAKE_OK);
}

static int sleep_cancel(casync_ctx *lp, casync_task *t) {
  casync__timer_remove(lp, &t->timer);
  return 1;
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t = (casync_task *)ctx;
  (void)status;
  CASYNC_CHECK_RESUMED(L, t, ctx, sleep_k);
  if (t->wake == WAKE_CANCEL || (t->flags & TF_CANCEL_PENDING))
    return casync__raise_cancel(L, t);
  return 0;
}

/* casync.sleep(seconds): suspends the calling task for that long; sleep(0)
 * (or a negative time) lets every other ready task run first. */
static int fn_sleep(lua_State *L) {
  casync_ctx *lp = *(casync_ctx **)lua_touserdata(L, lua_upvalueindex(1));
  double s = casync__check_seconds(L, 1, 0);
  casync_task *t = casync__require_task(L, lp, "sleep");
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  if (!lua_isyieldable(L))
    return luaL_error(L, "sleep: cannot suspend across a C call boundary");
  t->waiting_on = "sleep";
  t->wake = WAKE_OK;
  if (s <= 0) {
    t->cancel_wait = NULL;
    casync__enqueue(lp, t);
  } else {
    t->timer.fire = sleep_fire;
    casync__timer_add(lp, &t->timer, s);
    t->cancel_wait = sleep_cancel;
    t->state = T_WAITING;
  }
  return lua_yieldk(L, 0, (lua_KContext)t, sleep_k);
}

/* casync.now() -> seconds on the monotonic clock, read afresh */
static int fn_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / NS_PER_S);
  return 1;
}

void casync__timer_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"sleep", fn_sleep}, {"now", fn_now}, {NULL, NULL}};
  casync__setfuncs(L, fns);
}
