/* debug.c: seeing what runs: casync.tasks, task:info, casync.dump (the
 * task tree, with what each task waits on in words), casync.debug (debug
 * mode: CPU time per task, a dump on a signal, a socket `casync ps PID`
 * reads the dump from, wait-for cycles reported as they form, tasks still
 * blocked when run returns), and the deadlock report of casync.run.
 *
 * What a task waits on comes from its wait's kind (scheduler.h): its
 * describe hook, or its name.  Who must act before it can go on (a lock's
 * holder, the task it waits for) comes from the kind's blockers hook;
 * following those edges from a task back to itself is a cycle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include "scheduler.h"

#define MAX_BLOCKERS 64
#define SOCK_MAX 108

/* ------------------------------------------------------------- words */

/* The live task of that id, or NULL (a scan: for dumps and debug mode). */
casync_task *casync__live_task(lua_State *L, lua_Integer id) {
  casync_task *found = NULL;
  int top = lua_gettop(L);
  if (id <= 0) return NULL;
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    lua_pop(L, 1);
    if (t && t->id == id && t->state != T_DONE) {
      found = t;
      break;
    }
  }
  lua_settop(L, top);
  return found;
}

/* Pushes "task #id 'name'" (or "task #id") for live task t. */
void casync__push_task_label(lua_State *L, casync_task *t) {
  casync__push_task(L, t->loop, t);
  casync__task_describe(L, t, -1);
  lua_remove(L, -2);
}

/* Pushes what t waits on, in words, or nil when it does not wait. */
void casync__push_waiting_on(lua_State *L, casync_task *t) {
  int top = lua_gettop(L);
  if (t->state != T_WAITING || !t->wait) {
    lua_pushnil(L);
    return;
  }
  if (t->wait->describe) t->wait->describe(L, t);
  else lua_pushstring(L, t->wait->what);
  /* what the task said it does (an HTTP request, ...) comes first */
  casync__push_task(L, t->loop, t);
  if (lua_getiuservalue(L, -1, 2) == LUA_TTABLE &&
      lua_getfield(L, -1, "doing") == LUA_TSTRING) {
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), lua_tostring(L, top + 1));
    lua_replace(L, top + 1);
  }
  lua_settop(L, top + 1);
}

static const char *state_name(const casync_task *t) {
  static const char *const names[] = {"ready", "running", "waiting", "done"};
  return names[t->state & 3];
}

/* Pushes where task t was spawned, "file:line", or nil when that is no
 * longer known. */
void casync__push_spawned_at(lua_State *L, casync_task *t) {
  lua_Debug ar;
  int level = 0;
  if (!t->co || t->spawn_line <= 0 ||
      (t->co != L && lua_status(t->co) != LUA_YIELD &&
       lua_status(t->co) != LUA_OK)) {
    lua_pushnil(L);
    return;
  }
  if (t->co != L && lua_status(t->co) == LUA_OK &&
      !lua_getstack(t->co, 0, &ar)) {
    /* not started: [1 task_entry][2 task][3 spawner] ... */
    if (lua_gettop(t->co) < 3) {
      lua_pushnil(L);
      return;
    }
    lua_pushvalue(t->co, 3);
  } else {
    /* the spawning function is in slot 2 of the bottom frame (task_entry) */
    while (lua_getstack(t->co, level + 1, &ar)) level++;
    if (!lua_getstack(t->co, level, &ar) || !lua_getlocal(t->co, &ar, 2)) {
      lua_pushnil(L);
      return;
    }
  }
  if (lua_isfunction(t->co, -1)) {
    lua_xmove(t->co, L, 1);
    lua_getinfo(L, ">S", &ar);
    lua_pushfstring(L, "%s:%d", ar.short_src, t->spawn_line);
  } else {
    lua_pop(t->co, 1);
    lua_pushnil(L);
  }
}

/* casync.tasks() -> every live task (a list) */
static int fn_tasks(lua_State *L) {
  lua_Integer n = 0;
  lua_newtable(L);
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    if (t && t->state != T_DONE) lua_rawseti(L, -5, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return 1;
}

/* task:info() -> {id=, name=, state=, parent= (an id), children= (tasks),
 * spawned_at=, waiting_on=, traceback=, context=, cpu= (seconds, debug
 * mode)}: what the task is and does now */
static int meth_info(lua_State *L) {
  casync_task *t = luaL_checkudata(L, 1, CASYNC_TASK_MT);
  casync_ctx *lp = CASYNC_CTX(L);
  lua_Integer n = 0;
  lua_settop(L, 1);
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, t->id);
  lua_setfield(L, 2, "id");
  if (lua_getiuservalue(L, 1, 2) == LUA_TTABLE) {
    lua_getfield(L, -1, "name");
    lua_setfield(L, 2, "name");
  }
  lua_pop(L, 1);
  casync__context_copy(L, t, 1);
  lua_setfield(L, 2, "context");
  lua_pushstring(L, state_name(t));
  lua_setfield(L, 2, "state");
  if (t->parent_id) {
    lua_pushinteger(L, t->parent_id);
    lua_setfield(L, 2, "parent");
  }
  casync__push_spawned_at(L, t);
  lua_setfield(L, 2, "spawned_at");
  if (t->state != T_DONE) {
    casync__push_waiting_on(L, t);
    lua_setfield(L, 2, "waiting_on");
    if (t->state != T_RUNNING && t->co && lua_status(t->co) == LUA_YIELD) {
      luaL_traceback(L, t->co, NULL, 0);
      lua_setfield(L, 2, "traceback");
    }
  }
  if (lp->debug) {
    lua_pushnumber(L, (lua_Number)t->cpu_ns / 1e9);
    lua_setfield(L, 2, "cpu");
  }
  lua_newtable(L); /* children: live tasks it spawned */
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    casync_task *c = luaL_testudata(L, -1, CASYNC_TASK_MT);
    if (c && c->state != T_DONE && c->parent_id == t->id)
      lua_rawseti(L, -5, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 2);
  lua_setfield(L, 2, "children");
  return 1;
}

/* ------------------------------------------------------------- dumps */

typedef struct out {
  int tbl;
  lua_Integer n;
} out; /* pieces, concatenated */

static void put(lua_State *L, out *o) { /* the string on top */
  lua_rawseti(L, o->tbl, ++o->n);
}

static void indent(lua_State *L, out *o, int depth) {
  lua_pushlstring(L, "                                                   ",
                  (size_t)(depth > 24 ? 48 : 2 * depth));
  put(L, o);
}

/* Adds the lines of task t and, indented, of its children (`kids`:
 * parent id -> list of live tasks). */
static void dump_task(lua_State *L, out *o, int kids, casync_task *t,
                      int depth) {
  int i, n;
  indent(L, o, depth);
  casync__push_task_label(L, t);
  put(L, o);
  lua_pushfstring(L, " %s", state_name(t));
  put(L, o);
  if (t->state == T_WAITING) {
    casync__push_waiting_on(L, t);
    lua_pushfstring(L, ": %s", lua_tostring(L, -1));
    lua_remove(L, -2);
    put(L, o);
  }
  casync__push_spawned_at(L, t);
  if (lua_isstring(L, -1)) {
    lua_pushfstring(L, " (spawned at %s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    put(L, o);
  } else lua_pop(L, 1);
  if (t->loop->debug) {
    char num[32];
    snprintf(num, sizeof num, "%.3f", (double)t->cpu_ns / 1e6);
    lua_pushfstring(L, " [cpu %s ms]", num);
    put(L, o);
  }
  lua_pushliteral(L, "\n");
  put(L, o);
  if (t->state != T_RUNNING && t->co && lua_status(t->co) == LUA_YIELD) {
    const char *tb, *nl;
    luaL_traceback(L, t->co, NULL, 0);
    for (tb = lua_tostring(L, -1); *tb; tb = nl + 1) {
      nl = strchr(tb, '\n');
      indent(L, o, depth + 2);
      if (!nl) {
        lua_pushfstring(L, "%s\n", tb);
        put(L, o);
        break;
      }
      lua_pushlstring(L, tb, (size_t)(nl - tb + 1));
      put(L, o);
    }
    lua_pop(L, 1);
  }
  if (depth >= 32) return;
  if (lua_rawgeti(L, kids, t->id) == LUA_TTABLE) {
    n = (int)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      dump_task(L, o, kids, lua_touserdata(L, -1), depth + 1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Pushes the dump of every live task, as a tree by who spawned whom. */
void casync__push_dump(lua_State *L) {
  int tasks, kids, ids, live = 0, i, n, top = lua_gettop(L);
  out o;
  luaL_checkstack(L, 24, NULL);
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_remove(L, -2);
  tasks = lua_gettop(L);
  lua_newtable(L); /* parent id -> its live children */
  kids = lua_gettop(L);
  lua_newtable(L); /* the ids of the live tasks */
  ids = lua_gettop(L);
  lua_newtable(L);
  o.tbl = lua_gettop(L);
  o.n = 0;
  lua_pushnil(L);
  while (lua_next(L, tasks)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    if (!t || t->state == T_DONE) {
      lua_pop(L, 1);
      continue;
    }
    live++;
    lua_pushboolean(L, 1);
    lua_rawseti(L, ids, t->id);
    if (lua_rawgeti(L, kids, t->parent_id) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawseti(L, kids, t->parent_id);
    }
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  /* the roots: children of none, or of a parent no longer alive */
  lua_pushnil(L);
  while (lua_next(L, kids)) {
    lua_Integer pid = lua_tointeger(L, -2);
    int orphan = pid == 0 || lua_rawgeti(L, ids, pid) == LUA_TNIL;
    if (pid) lua_pop(L, 1);
    if (orphan) {
      n = (int)lua_rawlen(L, -1);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        dump_task(L, &o, kids, lua_touserdata(L, -1), 0);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pushfstring(L, "(%d task%s)\n", live, live == 1 ? "" : "s");
  put(L, &o);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "concat");
  lua_pushvalue(L, o.tbl);
  lua_call(L, 1, 1);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* casync.dump([file]) -> text: the task tree (what each task waits on,
 * where it was spawned, its traceback) written to file (a file handle or
 * a path; io.stderr by default), and returned */
static int fn_dump(lua_State *L) {
  lua_settop(L, 1);
  casync__push_dump(L);
  if (lua_type(L, 1) == LUA_TSTRING) {
    FILE *f = fopen(lua_tostring(L, 1), "w");
    if (!f) /* an error value as casync's I/O gives (kind "io", code) */
      return casync__error_uv_path(L, "dump", lua_tostring(L, 1), NULL,
                                   uv_translate_sys_error(errno)),
             lua_error(L);
    fputs(lua_tostring(L, 2), f);
    fclose(f);
  } else if (lua_isnoneornil(L, 1)) {
    fputs(lua_tostring(L, 2), stderr);
    fflush(stderr);
  } else {
    luaL_checkudata(L, 1, LUA_FILEHANDLE);
    lua_getfield(L, 1, "write");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 0);
  }
  return 1;
}

/* -------------------------------------------------------- stuck tasks */

/* Follows the blockers of t (depth first) looking for `start`; on the way
 * back fills the cycle's tasks into path[].  Returns its length, 0. */
static int find_cycle(casync_task *start, casync_task *t, casync_task **path,
                      int depth) {
  casync_task *b[MAX_BLOCKERS];
  int n, i, len;
  if (depth >= MAX_BLOCKERS || t->state != T_WAITING || !t->wait ||
      !t->wait->blockers)
    return 0;
  n = t->wait->blockers(t->loop->L, t, b, MAX_BLOCKERS);
  for (i = 0; i < n; i++) {
    if (b[i] == start) {
      path[depth] = t;
      return depth + 1;
    }
    if ((len = find_cycle(start, b[i], path, depth + 1)) > 0) {
      path[depth] = t;
      return len;
    }
  }
  return 0;
}

/* Pushes the text of the cycle t is in (each task, what it waits on, its
 * traceback), or returns 0 (nothing pushed) when there is none. */
static int push_cycle(lua_State *L, casync_task *t, int tracebacks) {
  casync_task *path[MAX_BLOCKERS];
  int n = find_cycle(t, t, path, 0), i, top = lua_gettop(L);
  if (n == 0) return 0;
  luaL_checkstack(L, 4 * n + 8, NULL);
  lua_pushliteral(L, "a wait-for cycle:");
  for (i = 0; i < n; i++) {
    casync__push_task_label(L, path[i]);
    casync__push_waiting_on(L, path[i]);
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushstring(L, casync__waiting_in(path[i]));
    }
    lua_pushfstring(L, "\n  %s waits: %s", lua_tostring(L, -2),
                    lua_tostring(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
  }
  if (tracebacks)
    for (i = 0; i < n; i++) {
      lua_State *co = path[i]->co;
      casync__push_task_label(L, path[i]);
      if (co == L || lua_status(co) == LUA_YIELD)
        luaL_traceback(L, co, NULL, 0);
      else lua_pushliteral(L, "(no traceback)");
      lua_pushfstring(L, "\n%s:\n%s", lua_tostring(L, -2), lua_tostring(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
    }
  lua_concat(L, lua_gettop(L) - top);
  return 1;
}

/* Debug mode, at each park: a wait-for cycle that task t closes is
 * reported at once, with every task's traceback. */
void casync__check_cycle(lua_State *L, casync_task *t) {
  if (!push_cycle(L, t, 1)) return;
  fprintf(stderr, "casync: deadlock: %s\n", lua_tostring(L, -1));
  fflush(stderr);
  lua_pop(L, 1);
}

/* Pushes, for the deadlock report of run, a line per blocked task and the
 * cycle main is in, if any. */
void casync__push_blocked(lua_State *L, casync_task *main) {
  int top = lua_gettop(L);
  luaL_checkstack(L, 12, NULL);
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_remove(L, -2);
  lua_pushliteral(L, "");
  lua_pushnil(L);
  while (lua_next(L, top + 1)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    lua_pop(L, 1);
    if (!t || t->state != T_WAITING) continue;
    casync__push_task_label(L, t);
    casync__push_waiting_on(L, t);
    lua_pushfstring(L, "%s\n  %s waits: %s", lua_tostring(L, top + 2),
                    lua_tostring(L, -2), lua_tostring(L, -1));
    lua_replace(L, top + 2);
    lua_pop(L, 2);
  }
  { /* a wait-for cycle: through main, or among the others */
    int found = push_cycle(L, main, 0);
    lua_pushnil(L);
    while (!found && lua_next(L, top + 1)) {
      casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
      lua_pop(L, 1);
      if (t && t->state == T_WAITING && (found = push_cycle(L, t, 0)))
        lua_remove(L, -2); /* the key: the walk is over */
    }
    if (found) {
      lua_pushfstring(L, "%s\n%s", lua_tostring(L, top + 2),
                      lua_tostring(L, -1));
      lua_replace(L, top + 2);
      lua_pop(L, 1);
    }
  }
  (void)main;
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* Debug mode, when run returns: the tasks still blocked then (they are
 * cancelled next), as Go's goroutine leak report. */
void casync__report_leaks(lua_State *L, casync_ctx *lp) {
  int top = lua_gettop(L), n = 0;
  if (!lp->debug) return;
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_TASKS);
  lua_pushnil(L);
  while (lua_next(L, top + 2)) {
    casync_task *t = luaL_testudata(L, -1, CASYNC_TASK_MT);
    lua_pop(L, 1);
    if (!t || t->state != T_WAITING || (t->flags & TF_MAIN)) continue;
    if (n++ == 0)
      fprintf(stderr, "casync: tasks still blocked when run returned "
                      "(cancelled now):\n");
    casync__push_task_label(L, t);
    casync__push_waiting_on(L, t);
    casync__push_spawned_at(L, t);
    fprintf(stderr, "  %s waits: %s%s%s\n", lua_tostring(L, -3),
            lua_tostring(L, -2), lua_isstring(L, -1) ? ", spawned at " : "",
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 3);
  }
  fflush(stderr);
  lua_settop(L, top);
}

/* ------------------------------------------- a dump on a signal, ps */

typedef struct dbg_handle {
  casync_handle hd;
  union {
    uv_handle_t h;
    uv_signal_t sig;
    uv_pipe_t pipe;
  } u;
  char *out; /* a client: the dump being written */
  uv_write_t wreq;
  char path[SOCK_MAX]; /* the listener: its socket file, removed at close */
} dbg_handle;

static void dbg_free(casync_handle *h) {
  dbg_handle *d = container_of(h, dbg_handle, hd);
  if (d->path[0]) unlink(d->path);
  free(d->out);
  free(d);
}

static const casync_hclass dbg_class = {"debug", NULL, dbg_free};

static dbg_handle *dbg_new(casync_ctx *lp) {
  dbg_handle *d = calloc(1, sizeof *d);
  (void)lp;
  return d;
}

static void on_dump_signal(uv_signal_t *h, int signum) {
  casync_ctx *lp = casync__handle_of((uv_handle_t *)h)->ctx;
  lua_State *L = lp->L;
  (void)signum;
  if (!lp->alive) return;
  casync__push_dump(L);
  fprintf(stderr, "casync: the tasks of process %d:\n%s", (int)getpid(),
          lua_tostring(L, -1));
  fflush(stderr);
  lua_pop(L, 1);
}

static void on_written(uv_write_t *req, int status) {
  dbg_handle *d = req->data;
  (void)status;
  casync__handle_close(&d->hd);
}

static void on_ps(uv_stream_t *server, int status) {
  casync_ctx *lp = casync__handle_of((uv_handle_t *)server)->ctx;
  dbg_handle *d;
  size_t len;
  const char *s;
  uv_buf_t buf;
  if (status < 0 || !lp->alive || !(d = dbg_new(lp))) return;
  uv_pipe_init(lp->loop, &d->u.pipe, 0);
  casync__handle_init(lp, &d->hd, &dbg_class, &d->u.h);
  if (uv_accept(server, (uv_stream_t *)&d->u.pipe) < 0) {
    casync__handle_close(&d->hd);
    return;
  }
  casync__push_dump(lp->L);
  s = lua_tolstring(lp->L, -1, &len);
  d->out = malloc(len);
  if (d->out) memcpy(d->out, s, len);
  lua_pop(lp->L, 1);
  buf = uv_buf_init(d->out, d->out ? (unsigned)len : 0);
  d->wreq.data = d;
  if (uv_write(&d->wreq, (uv_stream_t *)&d->u.pipe, &buf, 1, on_written) < 0)
    casync__handle_close(&d->hd);
}

/* The socket `casync ps PID` reads the dump from. */
void casync__ps_path(char *buf, size_t size, int pid) {
  const char *dir = getenv("CASYNC_PS_DIR");
  snprintf(buf, size, "%s/casync-%d.sock", dir && *dir ? dir : "/tmp", pid);
}

static int start_signal(lua_State *L, casync_ctx *lp, int signum) {
  dbg_handle *d = dbg_new(lp);
  if (!d) return luaL_error(L, "not enough memory");
  uv_signal_init(lp->loop, &d->u.sig);
  casync__handle_init(lp, &d->hd, &dbg_class, &d->u.h);
  if (uv_signal_start(&d->u.sig, on_dump_signal, signum) < 0) {
    casync__handle_close(&d->hd);
    return 0;
  }
  uv_unref(&d->u.h); /* it keeps nothing alive */
  return 1;
}

static int start_socket(lua_State *L, casync_ctx *lp) {
  dbg_handle *d = dbg_new(lp);
  if (!d) return luaL_error(L, "not enough memory");
  casync__ps_path(d->path, sizeof d->path, (int)getpid());
  unlink(d->path); /* left by an earlier process of the same pid */
  uv_pipe_init(lp->loop, &d->u.pipe, 0);
  casync__handle_init(lp, &d->hd, &dbg_class, &d->u.h);
  if (uv_pipe_bind(&d->u.pipe, d->path) < 0 ||
      uv_listen((uv_stream_t *)&d->u.pipe, 8, on_ps) < 0) {
    d->path[0] = 0;
    casync__handle_close(&d->hd);
    return 0;
  }
  uv_unref(&d->u.h);
  return 1;
}

/* casync.debug([opts]) -> true: debug mode (tasks' CPU time, wait-for
 * cycles reported as they form, the tasks still blocked when run returns);
 * opts.signal ("SIGUSR1" by default with CASYNC_DEBUG=1): a dump of the
 * task tree on stderr when it arrives; opts.socket = true: `casync ps PID`
 * reads the dump.  casync.debug(false) turns debug mode off. */
static int fn_debug(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  if (lua_isboolean(L, 1) && !lua_toboolean(L, 1)) {
    lp->debug = 0;
    casync__flight_stop(L, lp);
    casync__observe(lp);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  lp->debug = 1;
  casync__flight_start(L, lp);
  casync__observe(lp); /* run_begin measures the CPU time */
  if (lua_istable(L, 1)) {
    if (lua_getfield(L, 1, "signal") != LUA_TNIL && lua_toboolean(L, -1)) {
      int signum = casync__signal_number(L, lua_gettop(L));
      if (!start_signal(L, lp, signum))
        return luaL_error(L, "debug: cannot watch that signal");
    }
    if (lua_getfield(L, 1, "socket") != LUA_TNIL && lua_toboolean(L, -1) &&
        !start_socket(L, lp))
      return luaL_error(L, "debug: cannot listen for casync ps");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* casync._doing(text | nil) -> the previous text: what the running task
 * says it is doing (an HTTP request), put before what it waits on in
 * dumps and task:info().waiting_on; nothing outside tasks */
static int fn_doing(lua_State *L) {
  casync_ctx *lp = CASYNC_CTX(L);
  casync_task *t = lp->current && lp->current->co == L ? lp->current : NULL;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TSTRING);
  lua_settop(L, 1);
  if (!t) {
    lua_pushnil(L);
    return 1;
  }
  casync__push_task(L, lp, t);
  casync__extras(L, -1); /* 3 */
  lua_getfield(L, 3, "doing");
  lua_pushvalue(L, 1);
  lua_setfield(L, 3, "doing");
  return 1;
}

void casync__debug_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"tasks", fn_tasks},
                                 {"dump", fn_dump},
                                 {"debug", fn_debug},
                                 {"_doing", fn_doing},
                                 {NULL, NULL}};
  casync_ctx *lp = casync__ctx_get(L);
  const char *env = getenv("CASYNC_DEBUG");
  casync__ctx_setfuncs(L, fns);
  /* task:info */
  luaL_getmetatable(L, CASYNC_TASK_MT);
  lua_getfield(L, -1, "__index");
  casync__ctx_push(L);
  lua_pushcclosure(L, meth_info, 1);
  lua_setfield(L, -2, "info");
  lua_pop(L, 2);
  if (env && *env && strcmp(env, "0") != 0 && !lp->debug) {
    lp->debug = 1;
    casync__flight_start(L, lp);
    casync__observe(lp);
    start_signal(L, lp, SIGUSR1);
    start_socket(L, lp);
  }
}
