/* timer.c: the timers (casync.sleep, timeouts, call_later) and the clock.
 *
 * Timers are grouped by duration, in whole milliseconds (libuv's own
 * resolution; a deadline is only ever rounded up), as Node.js does: the
 * timers of one duration expire in the order they were set, so each
 * duration is a FIFO list, and only the heads of the lists sit in a small
 * binary heap.  Setting or firing a timer of a duration already in use is
 * O(1); a new duration costs O(log lists).  Nodes are embedded in the tasks
 * that wait, and one libuv timer is armed for the earliest deadline, so a
 * sleeping task costs no libuv handle and no allocation.  sleep(0) does not
 * touch the timers: it requeues the task behind every other ready task.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "scheduler.h"

#define NS_PER_S 1e9
#define NS_PER_MS 1000000u
#define LIST_CACHE 64 /* empty lists kept for reuse */

/* The timers of one duration, oldest (earliest deadline) first. */
struct casync_tlist {
  uint64_t dur_ms;
  casync_tnode *head, *tail;
  int index;                  /* position in the heap of lists */
  struct casync_tlist *hnext; /* chain in the duration table */
};
typedef struct casync_tlist tlist;

/* ------------------------------------------------------ heap of lists */

static uint64_t key(const tlist *l) { return l->head->deadline; }

static void place(casync_ctx *lp, int i, tlist *l) {
  lp->heap[i] = l;
  l->index = i;
}

static void sift_up(casync_ctx *lp, int i) {
  tlist *l = lp->heap[i];
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (key(lp->heap[parent]) <= key(l)) break;
    place(lp, i, lp->heap[parent]);
    i = parent;
  }
  place(lp, i, l);
}

static void sift_down(casync_ctx *lp, int i) {
  tlist *l = lp->heap[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= lp->heap_len) break;
    if (c + 1 < lp->heap_len && key(lp->heap[c + 1]) < key(lp->heap[c])) c++;
    if (key(lp->heap[c]) >= key(l)) break;
    place(lp, i, lp->heap[c]);
    i = c;
  }
  place(lp, i, l);
}

static void heap_push(casync_ctx *lp, tlist *l) {
  if (lp->heap_len == lp->heap_cap) {
    int cap = lp->heap_cap ? lp->heap_cap * 2 : 16;
    tlist **heap = realloc(lp->heap, (size_t)cap * sizeof *heap);
    if (!heap) abort(); /* NOTE: no Lua state to raise on from here */
    lp->heap = heap;
    lp->heap_cap = cap;
  }
  place(lp, lp->heap_len++, l);
  sift_up(lp, l->index);
}

static void heap_remove(casync_ctx *lp, tlist *l) {
  int i = l->index;
  tlist *last = lp->heap[--lp->heap_len];
  l->index = -1;
  if (i < lp->heap_len) {
    place(lp, i, last);
    sift_down(lp, i);
    sift_up(lp, last->index);
  }
}

/* ------------------------------------------------- table of durations */

static tlist **bucket(casync_ctx *lp, uint64_t dur_ms) {
  uint64_t h = dur_ms * 0x9E3779B97F4A7C15ULL;
  return &lp->tl_table[(h >> 32) & (uint64_t)(lp->tl_size - 1)];
}

static void table_grow(casync_ctx *lp) {
  int old = lp->tl_size, i;
  tlist **ot = lp->tl_table;
  lp->tl_size = old ? old * 2 : 64;
  lp->tl_table = calloc((size_t)lp->tl_size, sizeof *lp->tl_table);
  if (!lp->tl_table) abort();
  for (i = 0; i < old; i++) {
    tlist *l = ot[i], *next;
    for (; l; l = next) {
      tlist **b = bucket(lp, l->dur_ms);
      next = l->hnext;
      l->hnext = *b;
      *b = l;
    }
  }
  free(ot);
}

/* The list of timers of that duration, made if there is none. */
static tlist *list_for(casync_ctx *lp, uint64_t dur_ms) {
  tlist *l, **b;
  if (lp->tl_size) {
    for (l = *bucket(lp, dur_ms); l; l = l->hnext)
      if (l->dur_ms == dur_ms) return l;
  }
  if (lp->tl_count >= lp->tl_size) table_grow(lp);
  if (lp->tl_free) {
    l = lp->tl_free;
    lp->tl_free = l->hnext;
    lp->tl_nfree--;
  } else if (!(l = malloc(sizeof *l))) abort();
  l->dur_ms = dur_ms;
  l->head = l->tail = NULL;
  l->index = -1;
  b = bucket(lp, dur_ms);
  l->hnext = *b;
  *b = l;
  lp->tl_count++;
  return l;
}

/* An empty list leaves the table (and is kept for reuse, up to a few). */
static void list_drop(casync_ctx *lp, tlist *l) {
  tlist **p = bucket(lp, l->dur_ms);
  while (*p != l) p = &(*p)->hnext;
  *p = l->hnext;
  lp->tl_count--;
  if (lp->tl_nfree < LIST_CACHE) {
    l->hnext = lp->tl_free;
    lp->tl_free = l;
    lp->tl_nfree++;
  } else free(l);
}

/* Frees every list (the context is closing). */
static void timer_free_all(casync_ctx *lp) {
  int i;
  tlist *l, *next;
  for (i = 0; i < lp->tl_size; i++)
    for (l = lp->tl_table[i]; l; l = next) {
      next = l->hnext;
      free(l);
    }
  for (l = lp->tl_free; l; l = next) {
    next = l->hnext;
    free(l);
  }
  free(lp->tl_table);
  free(lp->heap);
  lp->tl_table = NULL;
  lp->tl_free = NULL;
  lp->heap = NULL;
  lp->tl_size = lp->tl_count = lp->tl_nfree = 0;
  lp->heap_len = lp->heap_cap = 0;
  lp->timers = 0;
}

/* ------------------------------------------------------------- arming */

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
  d = key(lp->heap[0]);
  if (d == lp->armed_for) return;
  now = casync__now_ns(lp);
  ms = d > now ? (d - now + NS_PER_MS - 1) / NS_PER_MS : 0;
  /* libuv counts from its cached loop time; refresh it so a long drain of
   * ready tasks does not make the timer fire early. */
  uv_update_time(lp->loop);
  uv_timer_start(&lp->timer, on_timer, ms, 0);
  lp->armed_for = d;
}

/* Takes n out of its list; the heap follows when it was the head. */
static void unlink_node(casync_ctx *lp, casync_tnode *n) {
  tlist *l = n->list;
  int was_head = l->head == n;
  if (n->prev) n->prev->next = n->next;
  else l->head = n->next;
  if (n->next) n->next->prev = n->prev;
  else l->tail = n->prev;
  n->next = n->prev = NULL;
  n->list = NULL;
  lp->timers--;
  if (!was_head) return;
  if (l->head) sift_down(lp, l->index);
  else {
    heap_remove(lp, l);
    list_drop(lp, l);
  }
}

/* Fires every node whose deadline has passed.  A fire function only marks
 * tasks ready (or cancels them); no Lua code of the user runs here. */
static void fire_due(casync_ctx *lp) {
  uint64_t now = casync__now_ns(lp);
  lp->armed_for = 0;
  lp->in_timer = 1;
  while (lp->heap_len > 0 && key(lp->heap[0]) <= now) {
    casync_tnode *n = lp->heap[0]->head;
    unlink_node(lp, n);
    n->fire(lp, n);
  }
  lp->in_timer = 0;
  rearm(lp);
}

static void on_timer(uv_timer_t *h) {
  fire_due(container_of(h, casync_ctx, timer));
}

/* casync.now()'s clock (ns): the monotonic clock, plus the jumps of a
 * virtual clock. */
uint64_t casync__now_ns(const casync_ctx *lp) {
  return uv_hrtime() + lp->clock_offset;
}

/* The virtual clock: nothing is ready and no task waits on I/O, a thread,
 * a process or a signal, so every task waits on time (or on other tasks):
 * time jumps to the earliest timer, which fires.  Returns whether it did. */
int casync__clock_jump(casync_ctx *lp) {
  uint64_t now, d;
  if (!lp->virtual_clock || lp->qhead || lp->external || lp->heap_len == 0)
    return 0;
  now = casync__now_ns(lp);
  d = key(lp->heap[0]);
  if (d > now) lp->clock_offset += d - now;
  fire_due(lp);
  return 1;
}

/* casync.advance: moves the clock ns ahead and fires what is due. */
void casync__clock_advance(casync_ctx *lp, uint64_t ns) {
  lp->clock_offset += ns;
  fire_due(lp);
}

/* Sets n to fire after dur_ms milliseconds from now. */
static void add_ms(casync_ctx *lp, casync_tnode *n, uint64_t dur_ms) {
  uint64_t now = casync__now_ns(lp);
  tlist *l = list_for(lp, dur_ms);
  n->deadline = dur_ms >= (UINT64_MAX - now) / NS_PER_MS
                    ? UINT64_MAX - 1
                    : now + dur_ms * NS_PER_MS;
  n->list = l;
  n->next = NULL;
  n->prev = l->tail;
  lp->timers++;
  if (l->tail) {
    l->tail->next = n; /* not the head: the heap does not change */
    l->tail = n;
    return;
  }
  l->head = l->tail = n;
  heap_push(lp, l);
  if (l->index == 0) rearm(lp);
}

/* Sets n to fire at an absolute deadline (ns, uv_hrtime clock), rounded up
 * to a whole millisecond from now. */
void casync__timer_add_ns(casync_ctx *lp, casync_tnode *n, uint64_t deadline) {
  uint64_t now = uv_hrtime();
  uint64_t left = deadline > now ? deadline - now : 0;
  add_ms(lp, n, (left + NS_PER_MS - 1) / NS_PER_MS);
}

/* Sets n to fire `seconds` from now; huge values mean "practically never". */
void casync__timer_add(casync_ctx *lp, casync_tnode *n, double seconds) {
  double ms = ceil(seconds * 1e3);
  add_ms(lp, n, seconds <= 0 ? 0 : ms >= 1e15 ? (uint64_t)1e15 : (uint64_t)ms);
}

/* Removes n from the timers if it is there. */
void casync__timer_remove(casync_ctx *lp, casync_tnode *n) {
  int top;
  if (!n->list) return;
  top = n->list->index == 0 && n->list->head == n;
  unlink_node(lp, n);
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
  casync_task *t = container_of(n, casync_task, timer);
  if (lp->trace) casync__trace_timer(lp, t->id);
  casync__wake(lp, t, WAKE_OK);
}

static int sleep_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)t;
  (void)why;
  return 1; /* the timer was called off with the wait */
}

static void sleep_describe(lua_State *L, casync_task *t) {
  double left =
      t->timer.list
          ? ((double)t->timer.deadline - (double)casync__now_ns(t->loop)) / 1e9
          : 0;
  {
    char num[32]; /* to the hundredth: "sleep, 1.42 s left" */
    snprintf(num, sizeof num, "%.2f", left > 0 ? left : 0.0);
    lua_pushfstring(L, "sleep, %s s left", num);
  }
}

static const casync_wait_kind sleep_wait = {"sleep", "sleep", sleep_cancel, 0,
                                            sleep_describe};

static int sleep_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED_KC(L, t, kc, sleep_k);
  casync__woken(L, t);
  return 0;
}

/* casync.sleep(seconds): suspends the calling task for that long; sleep(0)
 * (or a negative time) lets every other ready task run first. */
static int fn_sleep(lua_State *L) {
  int isnum;
  double s = lua_tonumberx(L, 1, &isnum); /* luaL_checknumber's work, once */
  casync_task *t;
  if (!isnum || isnan(s)) s = casync__check_seconds(L, 1, 0); /* raises */
  t = casync__wait_begin(L, "sleep");
  if (s <= 0)
    return casync__requeue(L, t, &sleep_wait, sleep_k, (lua_KContext)t);
  /* the sleep is the wait itself, not a deadline on one */
  t->timer.fire = sleep_fire;
  casync__timer_add(t->loop, &t->timer, s);
  return casync__park(L, t, &sleep_wait, NULL, 0, sleep_k, (lua_KContext)t);
}

/* casync.now() -> seconds on the monotonic clock, read afresh (on the
 * virtual clock under casync.run(fn, {clock = "virtual"})) */
static int fn_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)casync__now_ns(CASYNC_CTX(L)) / NS_PER_S);
  return 1;
}

/* casync.advance(seconds): moves the clock ahead by hand (the timers due
 * fire); with the virtual clock, or to make time pass in a test */
static int fn_advance(lua_State *L) {
  double s = casync__check_seconds(L, 1, 0);
  luaL_argcheck(L, s < 1e9, 1, "too far");
  casync__clock_advance(CASYNC_CTX(L), (uint64_t)(s * NS_PER_S));
  return 0;
}

void casync__timer_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"sleep", fn_sleep},
                                 {"now", fn_now},
                                 {"advance", fn_advance},
                                 {NULL, NULL}};
  casync__ctx_get(L)->parts[CTX_PART_TIMERS] = timer_free_all;
  casync__ctx_setfuncs(L, fns);
}
