/* trace.c: the recorder of casync.trace: a ring buffer of the last N
 * scheduler events (a task spawned, ran, waited and on what, woke, ended;
 * thread jobs; spans Lua code marks, such as HTTP requests), turned into a
 * recording table when asked (lua/casync/timeline.lua draws it, or writes
 * it as Chrome trace-event JSON).
 *
 * Off, it costs one test of ctx->trace at each resume, park, wake, spawn
 * and end.  On, an event is a few stores into the ring; names, spawn
 * sites and parents of tasks are noted in a Lua table as tasks are
 * spawned, since a task may be long gone when the recording is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include "scheduler.h"

enum {
  EV_SPAWN = 1,
  EV_RUN,
  EV_PARK,
  EV_WAKE,
  EV_END,
  EV_SPAN,
  EV_JOB,
  EV_TIMER,
  EV_GC
};

typedef struct trace_ev {
  uint64_t t, dur;       /* ns on casync.now()'s clock */
  lua_Integer task, aux; /* EV_SPAWN: aux = the parent; EV_END: outcome;
                            EV_JOB: pool id << 16 | worker */
  const char *what;      /* static text (a wait's what, a span's kind) */
  int ref;               /* EV_SPAN: a name in the names table, or 0 */
  unsigned char kind;
} trace_ev;

struct casync_trace {
  trace_ev *ring;
  size_t cap, next, count; /* the last `count` events end before `next` */
  uint64_t t0;
  int file_ref;  /* the file to write when stopped, or LUA_NOREF */
  int tasks_ref; /* {[id] = {name=, parent=, spawned_at=}} */
  int names_ref; /* names of spans: {[ref] = string} */
  int nnames;
  int flight; /* debug mode's flight recorder, not the user's */
  int dumped; /* the flight recording was written this run */
};

#define DEFAULT_LIMIT 1000000
#define FLIGHT_LIMIT 20000 /* debug mode keeps the last so many events */
#define MAX_LIMIT 100000000

static trace_ev *add(casync_trace *tr, int kind, lua_Integer task, uint64_t t) {
  trace_ev *e = &tr->ring[tr->next];
  tr->next = (tr->next + 1) % tr->cap;
  if (tr->count < tr->cap) tr->count++;
  e->kind = (unsigned char)kind;
  e->task = task;
  e->t = t;
  e->dur = 0;
  e->aux = 0;
  e->what = NULL;
  e->ref = 0;
  return e;
}

/* ------------------------------------------------------ the scheduler's */

/* Task t ran from `start` until now. */
void casync__trace_run(casync_ctx *lp, casync_task *t, uint64_t start) {
  trace_ev *e;
  if (start < lp->trace->t0) start = lp->trace->t0; /* began before it */
  e = add(lp->trace, EV_RUN, t->id, start);
  e->dur = casync__now_ns(lp) - start;
}

/* Task t parks in a wait of kind k. */
void casync__trace_park(casync_ctx *lp, casync_task *t,
                        const casync_wait_kind *k) {
  trace_ev *e = add(lp->trace, EV_PARK, t->id, casync__now_ns(lp));
  e->what = k->what;
  e->aux = (k->flags & CASYNC_WK_ON_TASKS) != 0;
}

/* Task t is woken. */
void casync__trace_wake(casync_ctx *lp, casync_task *t) {
  add(lp->trace, EV_WAKE, t->id, casync__now_ns(lp));
}

/* A timer of task `task` fired (a sleep's end, a deadline). */
void casync__trace_timer(casync_ctx *lp, lua_Integer task) {
  add(lp->trace, EV_TIMER, task, casync__now_ns(lp));
}

/* Task t ended. */
void casync__trace_end(casync_ctx *lp, casync_task *t) {
  add(lp->trace, EV_END, t->id, casync__now_ns(lp))->aux = t->outcome;
}

/* A worker of thread pool#pool_id ran a job of task `task` (0: none
 * waits any more) from `start` for `dur` (ns on casync.now()'s clock).
 * No Lua: the hub's callback calls it. */
void casync__trace_job(casync_ctx *lp, lua_Integer task, const char *name,
                       lua_Integer pool_id, int worker, uint64_t start,
                       uint64_t dur) {
  trace_ev *e;
  if (start < lp->trace->t0) { /* began before the recording */
    uint64_t cut = lp->trace->t0 - start;
    dur = dur > cut ? dur - cut : 0;
    start = lp->trace->t0;
  }
  e = add(lp->trace, EV_JOB, task, start);
  e->dur = dur;
  e->what = name;
  e->aux = pool_id * 65536 + worker;
}

/* Notes task t (userdata at tidx) in the recording's tasks: its id, its
 * parent's and its name; leaves the entry on the stack. */
static void note_task(lua_State *L, casync_trace *tr, casync_task *t, int tidx,
                      lua_Integer parent) {
  luaL_checkstack(L, 6, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tr->tasks_ref);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, t->id);
  lua_setfield(L, -2, "id");
  if (parent) {
    lua_pushinteger(L, parent);
    lua_setfield(L, -2, "parent");
  }
  if ((t->flags & TF_NAMED) && lua_getiuservalue(L, tidx, 2) == LUA_TTABLE) {
    lua_getfield(L, -1, "name");
    lua_setfield(L, -3, "name");
    lua_pop(L, 1);
  } else if (t->flags & TF_NAMED) lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, t->id);
  lua_remove(L, -2);
}

/* Task t (userdata at tidx) was spawned by `by` (NULL: from outside):
 * its name, parent and spawn site are noted. */
void casync__trace_spawn(lua_State *L, casync_ctx *lp, casync_task *t, int tidx,
                         casync_task *by) {
  lua_Debug ar;
  int i;
  add(lp->trace, EV_SPAWN, t->id, casync__now_ns(lp))->aux = by ? by->id : 0;
  note_task(L, lp->trace, t, lua_absindex(L, tidx), by ? by->id : 0);
  for (i = 1; i <= 4 && lua_getstack(L, i, &ar); i++)
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      lua_setfield(L, -2, "spawned_at");
      break;
    }
  lua_pop(L, 1);
}

/* The tasks alive when recording starts are noted as if spawned then. */
static void note_live_tasks(lua_State *L, casync_trace *tr) {
  int top = lua_gettop(L);
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    if (t && t->state != T_DONE) {
      note_task(L, tr, t, lua_absindex(L, -1), t->parent_id);
      casync__push_spawned_at(L, t);
      lua_setfield(L, -2, "spawned_at");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/* ---------------------------------------------------------- recording */

static const char *const outcomes[] = {"?", "ok", "failed", "cancelled"};

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static int by_time(lua_State *L) {
  lua_getfield(L, 1, "t");
  lua_getfield(L, 2, "t");
  lua_pushboolean(L, lua_tonumber(L, -2) < lua_tonumber(L, -1));
  return 1;
}

/* Pushes the event table of e, or nothing (returns 0) for a park, kept in
 * `parked` until its wake makes the wait's span. */
static int push_event(lua_State *L, casync_trace *tr, trace_ev *e, double t,
                      int parked) {
  switch (e->kind) {
  case EV_PARK:
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, t);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, e->what);
    lua_rawseti(L, -2, 2);
    lua_pushboolean(L, (int)e->aux);
    lua_rawseti(L, -2, 3);
    lua_rawseti(L, parked, e->task);
    return 0;
  case EV_WAKE:
    if (lua_rawgeti(L, parked, e->task) != LUA_TTABLE) {
      lua_pop(L, 1);
      return 0;
    }
    {
      double start;
      lua_rawgeti(L, -1, 1);
      start = lua_tonumber(L, -1);
      lua_pop(L, 1);
      lua_createtable(L, 0, 5);
      set_str(L, "kind", "wait");
      set_num(L, "t", start);
      set_num(L, "dur", t - start);
      lua_rawgeti(L, -2, 2);
      lua_setfield(L, -2, "what");
      lua_rawgeti(L, -2, 3);
      lua_setfield(L, -2, "on_tasks");
      lua_remove(L, -2);
    }
    lua_pushnil(L);
    lua_rawseti(L, parked, e->task);
    break;
  case EV_RUN:
    lua_createtable(L, 0, 4);
    set_str(L, "kind", "run");
    set_num(L, "t", t);
    set_num(L, "dur", (double)e->dur / 1e9);
    break;
  case EV_SPAWN:
    lua_createtable(L, 0, 4);
    set_str(L, "kind", "spawn");
    set_num(L, "t", t);
    if (e->aux) {
      lua_pushinteger(L, e->aux);
      lua_setfield(L, -2, "parent");
    }
    break;
  case EV_END:
    lua_createtable(L, 0, 4);
    set_str(L, "kind", "end");
    set_num(L, "t", t);
    set_str(L, "outcome", outcomes[e->aux & 3]);
    break;
  case EV_TIMER:
    lua_createtable(L, 0, 3);
    set_str(L, "kind", "timer");
    set_num(L, "t", t);
    break;
  case EV_GC: /* a cycle of the collector ended: an instant */
    lua_createtable(L, 0, 4);
    set_str(L, "kind", "gc");
    set_num(L, "t", t);
    set_num(L, "dur", 0);
    break;
  case EV_JOB: /* on a track of its own: the worker's */
    lua_createtable(L, 0, 6);
    set_str(L, "kind", "job");
    set_num(L, "t", t);
    set_num(L, "dur", (double)e->dur / 1e9);
    set_str(L, "name", e->what);
    lua_pushfstring(L, "pool#%I worker %d", e->aux / 65536,
                    (int)(e->aux % 65536));
    lua_setfield(L, -2, "track");
    break;
  default: /* EV_SPAN: a process pool job, an HTTP request, ... */
    lua_createtable(L, 0, 6);
    set_str(L, "kind", e->what);
    set_num(L, "t", t);
    set_num(L, "dur", (double)e->dur / 1e9);
    if (e->ref) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, tr->names_ref);
      lua_rawgeti(L, -1, e->ref);
      lua_setfield(L, -3, "name");
      lua_rawgeti(L, -1, e->ref + 1);
      if (!lua_isnil(L, -1)) lua_setfield(L, -3, "track");
      else lua_pop(L, 1);
      lua_pop(L, 1);
    }
  }
  if (e->task) {
    lua_pushinteger(L, e->task);
    lua_setfield(L, -2, "task");
  }
  return 1;
}

/* Pushes the recording {t0=, t1=, tasks=, events=} (see
 * lua/casync/timeline.lua): times in seconds from t0, events in the
 * order they started, a wait from its park to its wake. */
static void push_recording(lua_State *L, casync_ctx *lp, casync_trace *tr) {
  size_t i, start = (tr->next + tr->cap - tr->count) % tr->cap;
  lua_Integer n = 0;
  double t0 = (double)tr->t0 / 1e9;
  int events, parked;
  luaL_checkstack(L, 12, NULL);
  lua_createtable(L, 0, 4);
  set_num(L, "t0", t0);
  set_num(L, "t1", (double)casync__now_ns(lp) / 1e9);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tr->tasks_ref);
  lua_setfield(L, -2, "tasks");
  lua_newtable(L);
  parked = lua_gettop(L);
  lua_newtable(L);
  events = lua_gettop(L);
  for (i = 0; i < tr->count; i++) {
    trace_ev *e = &tr->ring[(start + i) % tr->cap];
    if (push_event(L, tr, e, (double)e->t / 1e9 - t0, parked))
      lua_rawseti(L, events, ++n);
  }
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, events);
  lua_pushcfunction(L, by_time);
  lua_call(L, 2, 0);
  lua_pop(L, 1);
  lua_setfield(L, events - 2, "events");
  lua_pop(L, 1); /* parked */
}

/* ------------------------------------------------------------- the API */

static void trace_free(lua_State *L, casync_ctx *lp) {
  casync_trace *tr = lp->trace;
  if (!tr) return;
  lp->trace = NULL;
  casync__observe(lp);
  luaL_unref(L, LUA_REGISTRYINDEX, tr->tasks_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, tr->names_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, tr->file_ref);
  free(tr->ring);
  free(tr);
}

/* ------------------------------------------------------ the collector
 * Lua 5.4 has no hook into its collector: the steps it takes inside
 * allocations cannot be timed from outside the VM.  What can be seen is
 * the end of each cycle: a sentinel userdata that nothing references is
 * finalized once per cycle, notes the time, and makes the next one. */

static void new_sentinel(lua_State *L);

static int sentinel_gc(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  if (!lp->alive || !lp->trace) { /* recording stopped: no more */
    lp->trace_sentinel = 0;
    return 0;
  }
  add(lp->trace, EV_GC, 0, casync__now_ns(lp)); /* (lua_gc is off here) */
  new_sentinel(L);
  return 0;
}

static void new_sentinel(lua_State *L) {
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  casync__ctx_push(L);
  lua_pushcclosure(L, sentinel_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pop(L, 1); /* unreferenced: the next cycle finalizes it */
}

/* Starts recording the last `limit` events (replacing any recording). */
static casync_trace *trace_start(lua_State *L, casync_ctx *lp,
                                 lua_Integer limit) {
  casync_trace *tr;
  trace_free(L, lp);
  tr = calloc(1, sizeof *tr);
  if (!tr || !(tr->ring = malloc((size_t)limit * sizeof *tr->ring))) {
    free(tr);
    luaL_error(L, "trace: not enough memory for %I events", limit);
    return NULL;
  }
  tr->cap = (size_t)limit;
  tr->t0 = casync__now_ns(lp);
  tr->file_ref = LUA_NOREF;
  lua_newtable(L);
  tr->tasks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  tr->names_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  note_live_tasks(L, tr);
  if (!lp->trace_sentinel) { /* one a cycle, whatever the recording */
    lp->trace_sentinel = 1;
    new_sentinel(L);
  }
  lp->trace = tr;
  casync__observe(lp);
  return tr;
}

/* Writes the recording on top as Chrome trace-event JSON to the file at
 * index fidx (casync.timeline does the JSON). */
static void write_file(lua_State *L, int fidx) {
  FILE *f;
  size_t len;
  const char *json;
  fidx = lua_absindex(L, fidx); /* the stack grows below */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "casync.timeline");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "chrome");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 1);
  json = luaL_checklstring(L, -1, &len);
  f = fopen(lua_tostring(L, fidx), "wb");
  if (!f || fwrite(json, 1, len, f) != len || fclose(f) != 0)
    luaL_error(L, "trace: cannot write %s", lua_tostring(L, fidx));
  lua_pop(L, 2);
}

/* casync.trace{file =, limit =} starts recording what the tasks do (the
 * last `limit` events); casync.trace(false) stops and returns the
 * recording (writing it to file as Chrome trace-event JSON, which Perfetto
 * and chrome://tracing open); casync.trace() returns it so far */
static int fn_trace(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_trace *tr;
  lua_Integer limit = DEFAULT_LIMIT;
  if (lua_isnoneornil(L, 1)) {
    if (!lp->trace) return 0;
    push_recording(L, lp, lp->trace);
    return 1;
  }
  if (lua_isboolean(L, 1) && !lua_toboolean(L, 1)) {
    if (!(tr = lp->trace)) return 0;
    push_recording(L, lp, tr);
    if (tr->file_ref != LUA_NOREF) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, tr->file_ref);
      lua_insert(L, -2);
      write_file(L, -2);
      lua_remove(L, -2);
    }
    trace_free(L, lp);
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getfield(L, 1, "limit") != LUA_TNIL) {
    int isint;
    limit = lua_tointegerx(L, -1, &isint);
    luaL_argcheck(L, isint && limit > 0 && limit <= MAX_LIMIT, 1,
                  "opts.limit must be a whole number of events (1..1e8)");
  }
  if (lua_getfield(L, 1, "file") != LUA_TNIL && !lua_isstring(L, -1))
    luaL_argerror(L, 1, "opts.file must be a string");
  tr = trace_start(L, lp, limit);
  tr->file_ref = lua_isnil(L, -1) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 1);
  return 1;
}

/* ------------------------------------------------- the flight recorder */

/* Debug mode keeps the last FLIGHT_LIMIT events (unless the program
 * records on its own) for casync__flight_dump. */
void casync__flight_start(lua_State *L, casync_ctx *lp) {
  if (lp->trace) return;
  trace_start(L, lp, FLIGHT_LIMIT)->flight = 1;
}

/* A run begins: its own dump, if it ends badly. */
void casync__flight_rearm(casync_ctx *lp) {
  if (lp->trace) lp->trace->dumped = 0;
}

void casync__flight_stop(lua_State *L, casync_ctx *lp) {
  if (lp->trace && lp->trace->flight) trace_free(L, lp);
}

/* [1 recording][2 path] -> writes it */
static int flight_write(lua_State *L) {
  lua_pushvalue(L, 1);
  write_file(L, 2);
  return 0;
}

/* Something ended the run badly (why: "a deadlock", ...): the flight
 * recording, the last events before it, is written to
 * $CASYNC_PS_DIR/casync-<pid>-flight.json (/tmp by default), once per
 * run, and stderr says where. */
void casync__flight_dump(lua_State *L, casync_ctx *lp, const char *why) {
  casync_trace *tr = lp->trace;
  const char *dir = getenv("CASYNC_PS_DIR");
  char path[512];
  int top = lua_gettop(L);
  if (!tr || !tr->flight || tr->dumped) return;
  tr->dumped = 1;
  if (lp->current) /* the task running now (the watchdog's): its run so far */
    casync__trace_run(lp, lp->current, lp->run_start);
  snprintf(path, sizeof path, "%s/casync-%d-flight.json",
           dir && *dir ? dir : "/tmp", (int)getpid());
  lua_pushcfunction(L, flight_write);
  push_recording(L, lp, tr);
  lua_pushstring(L, path);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK)
    fprintf(stderr,
            "casync: %s: the last %d scheduler events before it are "
            "in %s (Perfetto and chrome://tracing open it)\n",
            why, (int)tr->count, path);
  else
    fprintf(stderr,
            "casync: %s: the flight recording could not be "
            "written: %s\n",
            why, lua_tostring(L, -1));
  fflush(stderr);
  lua_settop(L, top);
}

/* casync._trace_span(kind, name, t, dur [, track]): records a span Lua
 * code measured (an HTTP request, a pool job), when recording */
static int fn_trace_span(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_trace *tr = lp->trace;
  double t = luaL_checknumber(L, 3), dur = luaL_checknumber(L, 4);
  casync_task *cur = lp->current && lp->current->co == L ? lp->current : NULL;
  trace_ev *e;
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  if (!tr) return 0;
  /* the kind must outlive the recording: intern it among the names */
  lua_rawgeti(L, LUA_REGISTRYINDEX, tr->names_ref);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 1);
    lua_rawset(L, -3);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
  }
  e = add(tr, EV_SPAN, cur ? cur->id : 0, (uint64_t)(t * 1e9));
  e->what = lua_tostring(L, -1); /* kept alive by the names table */
  e->dur = dur > 0 ? (uint64_t)(dur * 1e9) : 0;
  tr->nnames += 2;
  e->ref = tr->nnames - 1;
  lua_pushvalue(L, 2);
  lua_rawseti(L, -3, e->ref);
  lua_pushvalue(L, 5);
  lua_rawseti(L, -3, e->ref + 1);
  return 0;
}

void casync__trace_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"trace", fn_trace}, {"_trace_span", fn_trace_span}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
