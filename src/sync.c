/* sync.c: semaphores, locks, events and condition variables
 * (casync.semaphore, casync.lock, casync.event, casync.condition).
 *
 * Waiters queue first-come first-served; a release hands the permit
 * straight to the first waiter, so a newcomer never takes it from a task
 * already waiting.  acquire returns a permit usable as a to-be-closed
 * variable; a permit releases at most once, whether by permit:release(),
 * sem:release() or <close>.
 */
#include <string.h>
#include "sync.h"

sem *casync__sync_check_sem(lua_State *L, int idx) {
  sem *s = luaL_testudata(L, idx, SEM_MT);
  if (!s && !(s = luaL_testudata(L, idx, LOCK_MT)))
    luaL_typeerror(L, idx, "casync.Semaphore or casync.Lock");
  return s;
}

/* ------------------------------------------------------------ permits */

static void held_unlink(sem *s, permit *p) {
  if (p->prev) p->prev->next = p->next;
  else s->held = p->next;
  if (p->next) p->next->prev = p->prev;
  p->next = p->prev = NULL;
}

/* Pushes a new permit of s (userdata at sidx) held by t. */
int casync__sync_push_permit(lua_State *L, sem *s, int sidx, casync_task *t) {
  permit *p = lua_newuserdatauv(L, sizeof *p, 1);
  p->s = s;
  p->owner = t;
  p->owner_id = t ? t->id : 0;
  p->prev = NULL;
  p->next = s->held;
  if (s->held) s->held->prev = p;
  s->held = p;
  if (s->is_lock) {
    s->owner = t;
    s->owner_id = t ? t->id : 0;
  }
  lua_pushvalue(L, sidx);
  lua_setiuservalue(L, -2, 1); /* keeps the semaphore alive */
  luaL_setmetatable(L, PERMIT_MT);
  return 1;
}

/* One permit goes back: to the first waiter, or to the count. */
static void give_back(casync_ctx *lp, sem *s) {
  casync_wnode *w = casync__wq_pop(&s->waiters);
  s->owner = NULL;
  s->owner_id = 0;
  if (w) {
    if (s->is_lock) {
      s->owner = w->task;
      s->owner_id = w->task->id;
    }
    casync__wq_serve(lp, w, WN_OK); /* its permit, straight away */
  } else s->count++;
}

static void release_permit(casync_ctx *lp, permit *p) {
  sem *s = p->s;
  if (!s) return;
  p->s = NULL;
  held_unlink(s, p);
  give_back(lp, s);
}

/* permit:release(): gives the permit back (only the first call counts) */
static int meth_permit_release(lua_State *L) {
  permit *p = luaL_checkudata(L, 1, PERMIT_MT);
  release_permit(CASYNC_CTX(L), p);
  return 0;
}

/* A permit collected unreleased stays taken (asyncio's `acquire() ...
 * release()` never keeps it): sem:release() can still give it back. */
typedef struct cond {
  casync_wqueue waiters;
} cond;

static int meta_permit_gc(lua_State *L) {
  permit *p = luaL_checkudata(L, 1, PERMIT_MT);
  if (p->s) {
    held_unlink(p->s, p);
    p->s->dropped++;
  }
  p->s = NULL;
  return 0;
}

/* ---------------------------------------------------- acquire/release */

static int sync_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  casync__wq_remove(&t->u.wn);
  return 1;
}

/* A woken acquire holds its permit, a woken event or condition wait its
 * notification: kept even if a cancellation comes after. */
/* Pushes "acquire lock#1 held by task #12 'writer'" or "acquire
 * semaphore#2 (0 of 3 free, 1 more waiting)". */
void casync__sync_describe(lua_State *L, sem *s) {
  casync_task *holder;
  if (s->is_lock && (holder = casync__live_task(L, s->owner_id)) != NULL) {
    casync__push_task_label(L, holder);
    lua_pushfstring(L, "acquire lock#%I held by %s", s->id,
                    lua_tostring(L, -1));
    lua_remove(L, -2);
  } else if (s->is_lock)
    lua_pushfstring(L, "acquire lock#%I (%s)", s->id,
                    s->count ? "free" : "held outside any task");
  else {
    const casync_wnode *w;
    int n = 0;
    for (w = s->waiters.head; w; w = w->next) n++;
    lua_pushfstring(L, "acquire semaphore#%I (%I of %I free, %d waiting)",
                    s->id, s->count, s->initial, n);
  }
}

/* Who holds what s's waiter waits for: the lock's holder, the tasks that
 * hold permits of the semaphore. */
int casync__sync_blockers(lua_State *L, sem *s, casync_task **out, int max) {
  permit *p;
  int n = 0;
  if (s->is_lock) {
    casync_task *h = casync__live_task(L, s->owner_id);
    if (h && max > 0) out[n++] = h;
    return n;
  }
  for (p = s->held; p && n < max; p = p->next) {
    casync_task *h = casync__live_task(L, p->owner_id);
    if (h) out[n++] = h;
  }
  return n;
}

static void acquire_describe(lua_State *L, casync_task *t) {
  casync__sync_describe(L, t->wait_obj);
}

static int acquire_blockers(lua_State *L, casync_task *t, casync_task **out,
                            int max) {
  return casync__sync_blockers(L, t->wait_obj, out, max);
}

static void event_describe(lua_State *L, casync_task *t) {
  lua_pushfstring(L, "wait on event#%I", ((event *)t->wait_obj)->id);
}

static const casync_wait_kind sem_acquire_wait = {
    "acquire",        "semaphore acquire",
    sync_cancel,      CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS,
    acquire_describe, acquire_blockers};
static const casync_wait_kind lock_wait = {
    "acquire",        "lock acquire",
    sync_cancel,      CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS,
    acquire_describe, acquire_blockers};
static const casync_wait_kind event_wait = {
    "wait", "event wait", sync_cancel, CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS,
    event_describe};
static const casync_wait_kind cond_wait = {
    "wait", "condition wait", sync_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS};
/* not cancellable: a cancellation is raised once the lock is back */
static const casync_wait_kind reacquire_wait = {
    "wait", "condition wait (taking the lock back)", NULL,
    CASYNC_WK_KEEPS | CASYNC_WK_ON_TASKS};

/* Queues t on q for op and parks it in a wait of `kind` on obj. */
static int wait_on(lua_State *L, casync_task *t, casync_wqueue *q, int op,
                   const casync_wait_kind *kind, void *obj, double timeout,
                   lua_KFunction k) {
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  t->u.wn.op = op;
  casync__wq_push(q, &t->u.wn);
  return casync__park(L, t, kind, obj, casync__deadline(timeout), k, 0);
}

static int push_timeout(lua_State *L, const char *op, double timeout) {
  lua_pushnil(L);
  casync__timeout_error(L, op, timeout);
  return 2;
}

static int acquire_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, acquire_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT)
    return push_timeout(L, "acquire", lua_tonumber(L, 2));
  /* the permit was handed over: keep it even if a cancel comes now */
  return casync__sync_push_permit(L, casync__sync_check_sem(L, 1), 1, t);
}

/* sem:acquire([timeout]) -> permit | nil, err: suspends until a permit is
 * free (first come, first served); nil and an error of kind "timeout"
 * after timeout seconds.  Use as `local p <close> = sem:acquire()`. */
static int meth_acquire(lua_State *L) {
  sem *s = casync__sync_check_sem(L, 1);
  double timeout = casync__check_seconds(L, 2, 1);
  casync_task *t = casync__wait_begin(L, "acquire");
  lua_settop(L, 2);
  if (s->is_lock && s->owner == t)
    return luaL_error(L, "acquire: the lock is already held by this task");
  if (s->count > 0 && !s->waiters.head) {
    s->count--;
    return casync__sync_push_permit(L, s, 1, t);
  }
  if (timeout == 0) return push_timeout(L, "acquire", 0);
  lua_pushnumber(L, timeout);
  lua_replace(L, 2);
  return wait_on(L, t, &s->waiters, OP_ACQUIRE,
                 s->is_lock ? &lock_wait : &sem_acquire_wait, s, timeout,
                 acquire_k);
}

/* sem:try_acquire() -> permit | nil: takes a free permit without waiting */
static int meth_try_acquire(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  sem *s = casync__sync_check_sem(L, 1);
  casync_task *t = lp->current && lp->current->co == L ? lp->current : NULL;
  if (s->count > 0 && !s->waiters.head) {
    s->count--;
    return casync__sync_push_permit(L, s, 1, t);
  }
  return 0;
}

/* sem:release(): gives back a permit: the caller's newest, else one whose
 * permit object was collected, else the newest; raises when none is out.
 * lock:release() raises unless the caller holds the lock (code outside any
 * task counts as one holder). */
static int meth_release(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  sem *s = casync__sync_check_sem(L, 1);
  casync_task *t = lp->current && lp->current->co == L ? lp->current : NULL;
  permit *p;
  if (s->is_lock && (s->count > 0 || s->owner != t))
    return luaL_error(L, "release: the lock is not held by the calling task");
  for (p = s->held; p && p->owner != t; p = p->next) {}
  if (!p && s->dropped > 0) {
    s->dropped--;
    give_back(lp, s);
    return 0;
  }
  if (!p) p = s->held;
  if (!p)
    return luaL_error(L, "release: the semaphore was released more times "
                         "than it was acquired");
  release_permit(lp, p);
  return 0;
}

/* sem:value() -> permits free now; lock:locked() -> whether it is held */
static int meth_value(lua_State *L) {
  lua_pushinteger(L, casync__sync_check_sem(L, 1)->count);
  return 1;
}

static int meth_locked(lua_State *L) {
  sem *s = casync__sync_check_sem(L, 1);
  lua_pushboolean(L, s->count == 0);
  return 1;
}

static int meta_sem_tostring(lua_State *L) {
  sem *s = casync__sync_check_sem(L, 1);
  if (s->is_lock)
    lua_pushstring(L, s->count ? "casync.Lock (free)" : "casync.Lock (held)");
  else
    lua_pushfstring(L, "casync.Semaphore (%I of %I free)", s->count,
                    s->initial);
  return 1;
}

static sem *new_sem(lua_State *L, lua_Integer n, int is_lock) {
  sem *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->id = ++CASYNC_CTX(L)->next_obj_id;
  s->count = s->initial = n;
  s->is_lock = is_lock;
  luaL_setmetatable(L, is_lock ? LOCK_MT : SEM_MT);
  return s;
}

/* casync.semaphore(n) -> sem: n permits (a whole number >= 0) */
static int fn_semaphore(lua_State *L) {
  int isint;
  lua_Integer n = lua_tointegerx(L, 1, &isint);
  if (!isint) {
    if (lua_type(L, 1) == LUA_TNUMBER)
      luaL_argerror(L, 1, "permits must be a whole number");
    luaL_typeerror(L, 1, "integer");
  }
  luaL_argcheck(L, n >= 0, 1, "permits must not be negative");
  new_sem(L, n, 0);
  return 1;
}

/* casync.lock() -> lock: a semaphore of 1 that only its holder releases */
static int fn_lock(lua_State *L) {
  new_sem(L, 1, 1);
  return 1;
}

/* -------------------------------------------------------------- event */

static int event_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, event_k);
  lua_pushboolean(L, casync__woken(L, t) != WAKE_TIMEOUT);
  return 1;
}

/* ev:wait([timeout]) -> boolean: suspends until the event is set (true at
 * once if it is); false after timeout seconds */
static int meth_ev_wait(lua_State *L) {
  event *e = luaL_checkudata(L, 1, EVENT_MT);
  double timeout = casync__check_seconds(L, 2, 1);
  casync_task *t = casync__wait_begin(L, "wait");
  if (e->set || timeout == 0) {
    lua_pushboolean(L, e->set);
    return 1;
  }
  return wait_on(L, t, &e->waiters, OP_EVENT, &event_wait, e, timeout, event_k);
}

/* ev:set(): sets it and wakes every waiter */
static int meth_ev_set(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  event *e = luaL_checkudata(L, 1, EVENT_MT);
  casync_wnode *w;
  e->set = 1;
  while ((w = casync__wq_pop(&e->waiters)) != NULL)
    casync__wq_serve(lp, w, WN_OK);
  return 0;
}

/* ev:clear(): unsets it */
static int meth_ev_clear(lua_State *L) {
  ((event *)luaL_checkudata(L, 1, EVENT_MT))->set = 0;
  return 0;
}

/* ev:is_set() -> boolean */
static int meth_ev_is_set(lua_State *L) {
  lua_pushboolean(L, ((event *)luaL_checkudata(L, 1, EVENT_MT))->set);
  return 1;
}

/* casync.event() -> ev: unset */
static int fn_event(lua_State *L) {
  event *e = lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  e->id = ++CASYNC_CTX(L)->next_obj_id;
  luaL_setmetatable(L, EVENT_MT);
  return 1;
}

/* ----------------------------------------------------------- condition */

/* Condition userdata: user value 1 is its lock. */
static sem *cond_lock(lua_State *L, int cidx) {
  sem *s;
  lua_getiuservalue(L, cidx, 1);
  s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

static permit *holder_permit(sem *s, casync_task *t) {
  permit *p;
  for (p = s->held; p && p->owner != t; p = p->next) {}
  return p;
}

static int reacquire_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  sem *s = cond_lock(L, 1);
  (void)status;
  CASYNC_RESUMED(L, t, kc, reacquire_k);
  s->owner = t;
  s->owner_id = t->id;
  /* cancelled while it waited on the condition: raised now that the lock
   * is back.  Cancelled after notify woke it: the notification is kept
   * (wait returns true), and the cancellation waits for the next
   * suspension point, as for a channel value or a permit. */
  if (lua_toboolean(L, 4)) return casync__raise_cancel(L, t);
  lua_pushboolean(L, !lua_toboolean(L, 3)); /* 3: timed out */
  return 1;
}

/* After the wait on the condition: takes the lock back before returning
 * or raising, so the caller's permit stays valid.
 * Stack: [1 cond][2 timeout][3 timed out][4 cancelled in the wait] */
static int cond_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  sem *s = cond_lock(L, 1);
  (void)status;
  CASYNC_RESUMED(L, t, kc, cond_k);
  lua_settop(L, 2);
  lua_pushboolean(L, t->wake == WAKE_TIMEOUT); /* 3 */
  lua_pushboolean(L, t->wake == WAKE_CANCEL);  /* 4 */
  if (s->count > 0 && !s->waiters.head) {
    s->count--;
    return reacquire_k(L, LUA_OK, kc);
  }
  return wait_on(L, t, &s->waiters, OP_REACQUIRE, &reacquire_wait, s, -1,
                 reacquire_k);
}

/* cond:wait([timeout]) -> boolean: releases the lock (which the caller
 * must hold), waits for notify, takes the lock back; false on timeout */
static int meth_cond_wait(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  double timeout;
  casync_task *t;
  sem *s;
  permit *p;
  luaL_checkudata(L, 1, COND_MT);
  timeout = casync__check_seconds(L, 2, 1);
  t = casync__wait_begin(L, "wait");
  s = cond_lock(L, 1);
  lua_settop(L, 2);
  if (s->owner != t || s->count > 0 ||
      (!(p = holder_permit(s, t)) && s->dropped == 0))
    return luaL_error(L, "wait: the condition's lock is not held by the "
                         "calling task");
  if (timeout == 0) { /* a poll: nothing was notified */
    lua_pushboolean(L, 0);
    return 1;
  }
  give_back(lp, s); /* the permit object stays the caller's */
  {
    cond *c = lua_touserdata(L, 1);
    return wait_on(L, t, &c->waiters, OP_COND, &cond_wait, c, timeout, cond_k);
  }
}

static int notify(lua_State *L, lua_Integer n) {
  casync_ctx *lp = CASYNC_CTX(L);
  cond *c = luaL_checkudata(L, 1, COND_MT);
  sem *s = cond_lock(L, 1);
  casync_task *t = lp->current && lp->current->co == L ? lp->current : NULL;
  casync_wnode *w;
  if (s->count > 0 || s->owner != t)
    return luaL_error(L, "notify: the condition's lock is not held by the "
                         "calling task");
  while (n-- > 0 && (w = casync__wq_pop(&c->waiters)) != NULL)
    casync__wq_serve(lp, w, WN_OK);
  return 0;
}

/* cond:notify([n]): wakes up to n (default 1) waiters; lock must be held */
static int meth_cond_notify(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n >= 0, 2, "count must not be negative");
  return notify(L, n);
}

/* cond:notify_all(): wakes every waiter; lock must be held */
static int meth_cond_notify_all(lua_State *L) {
  return notify(L, LUA_MAXINTEGER);
}

static int pass_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

/* cond:acquire([timeout]) / cond:release() / cond:lock(): its lock */
static int meth_cond_acquire(lua_State *L) {
  luaL_checkudata(L, 1, COND_MT);
  casync__check_seconds(L, 2, 1); /* here: the lock's would be '?' */
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  lua_replace(L, 1); /* [lock, timeout] */
  lua_getfield(L, 1, "acquire");
  lua_insert(L, 1); /* [acquire, lock, timeout] */
  lua_callk(L, 2, LUA_MULTRET, 0, pass_k);
  return pass_k(L, LUA_OK, 0);
}

static int meth_cond_release(lua_State *L) {
  luaL_checkudata(L, 1, COND_MT);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, "release");
  lua_insert(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

static int meth_cond_lock(lua_State *L) {
  luaL_checkudata(L, 1, COND_MT);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* casync.condition([lock]) -> cond: a condition variable over lock (a new
 * one by default) */
static int fn_condition(lua_State *L) {
  cond *c;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    new_sem(L, 1, 1);
  } else luaL_checkudata(L, 1, LOCK_MT);
  c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, COND_MT);
  return 1;
}

/* ---------------------------------------------------------------- open */

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction tostring, lua_CFunction close) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  if (close) {
    casync__ctx_push(L);
    lua_pushcclosure(L, close, 1);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
}

void casync__sync_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"semaphore", fn_semaphore},
                                 {"lock", fn_lock},
                                 {"event", fn_event},
                                 {"condition", fn_condition},
                                 {NULL, NULL}};
  static const luaL_Reg sem_methods[] = {
      {"acquire", meth_acquire}, {"try_acquire", meth_try_acquire},
      {"release", meth_release}, {"value", meth_value},
      {"locked", meth_locked},   {NULL, NULL}};
  static const luaL_Reg permit_methods[] = {{"release", meth_permit_release},
                                            {NULL, NULL}};
  static const luaL_Reg event_methods[] = {{"wait", meth_ev_wait},
                                           {"set", meth_ev_set},
                                           {"clear", meth_ev_clear},
                                           {"is_set", meth_ev_is_set},
                                           {NULL, NULL}};
  static const luaL_Reg cond_methods[] = {{"wait", meth_cond_wait},
                                          {"notify", meth_cond_notify},
                                          {"notify_all", meth_cond_notify_all},
                                          {"acquire", meth_cond_acquire},
                                          {"release", meth_cond_release},
                                          {"lock", meth_cond_lock},
                                          {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  new_type(L, SEM_MT, sem_methods, meta_sem_tostring, NULL);
  new_type(L, LOCK_MT, sem_methods, meta_sem_tostring, NULL);
  new_type(L, PERMIT_MT, permit_methods, NULL, meth_permit_release);
  luaL_getmetatable(L, PERMIT_MT);
  lua_pushcfunction(L, meta_permit_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  new_type(L, EVENT_MT, event_methods, NULL, NULL);
  new_type(L, COND_MT, cond_methods, NULL, NULL);
}
