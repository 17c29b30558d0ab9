/* process.c: casync.process.spawn, child processes on libuv's uv_process_t:
 * argument vectors (no shell unless asked), environment, working
 * directory, stdio as casync streams (stream.c) or inherited, files or
 * other streams; proc:wait, poll, kill, close; and cpu_count and exepath
 * for the process pool.  run() and the pool are Lua (lua/casync/process.lua).
 *
 * Ownership: the block holding the uv_process_t is a handle block
 * (context.h), libuv's from uv_spawn until its close callback, which comes
 * right after the exit callback (the exit status is copied into the Lua
 * userdata first).  Nothing is pinned: the exit callback touches only the
 * block, the userdata if it is still there and the tasks waiting in
 * proc:wait(), which the scheduler anchors anyway.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "io.h"

#define CASYNC_PROCESS_MT "casync.Process"
#define MAX_FDS 16 /* stdio slots a child may get (0 .. MAX_FDS-1) */

extern char **environ;

typedef struct proc_ud proc_ud;
typedef struct proc_blk {
  casync_handle hd;
  uv_process_t h;
  proc_ud *ud;           /* the Lua side, NULL once collected */
  casync_wqueue waiters; /* tasks in proc:wait() */
} proc_blk;

struct proc_ud {
  proc_blk *b; /* NULL once the child exited (or never ran) */
  int pid;
  int exited; /* the exit status is here */
  int64_t status;
  int term_signal;
};

/* ============================================================== the block */

static void proc_free(casync_handle *h) { free(container_of(h, proc_blk, hd)); }

static const casync_hclass proc_class = {"process", NULL, proc_free};

static void on_exit_cb(uv_process_t *h, int64_t status, int term_signal) {
  proc_blk *b = container_of(h, proc_blk, h);
  casync_wnode *w;
  if (b->ud) {
    b->ud->exited = 1;
    b->ud->status = status;
    b->ud->term_signal = term_signal;
    b->ud->b = NULL;
    b->ud = NULL;
  }
  while ((w = casync__wq_pop(&b->waiters)) != NULL) {
    w->status = WN_OK;
    casync__wake(b->hd.ctx, w->task, WAKE_OK);
  }
  casync__handle_close(&b->hd);
}

/* Collected while the child runs: the block stays with libuv until the
 * child exits (or the state closes). */
static int meta_gc(lua_State *L) {
  proc_ud *u = lua_touserdata(L, 1);
  proc_blk *b = u->b;
  if (!b) return 0;
  u->b = NULL;
  b->ud = NULL;
  /* nothing can wait on an unreachable process (and during lua_close the
   * waiting tasks go too): forget them */
  b->waiters.head = b->waiters.tail = NULL;
  return 0;
}

static proc_ud *check_proc(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CASYNC_PROCESS_MT);
}

/* Pushes the exit code and the signal name (or nil) of exited block b:
 * code is the exit status, or 128 + the signal number when a signal
 * ended the process (as shells report it). */
static int push_exit(lua_State *L, proc_ud *b) {
  if (b->term_signal) {
    const char *name = casync__signal_name(b->term_signal);
    lua_pushinteger(L, 128 + b->term_signal);
    if (name) lua_pushstring(L, name);
    else lua_pushinteger(L, b->term_signal);
  } else {
    lua_pushinteger(L, (lua_Integer)b->status);
    lua_pushnil(L);
  }
  return 2;
}

/* ================================================================ spawn */

/* Checks the value at vidx for a stdio slot (`what` names it in errors):
 * "pipe", "inherit", "ignore", nil, a descriptor, a casync file or an
 * open casync stream. */
static void check_stdio(lua_State *L, int vidx, const char *what) {
  if (lua_isnil(L, vidx)) return;
  if (lua_type(L, vidx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, vidx);
    if (!strcmp(s, "inherit") || !strcmp(s, "ignore") || !strcmp(s, "pipe"))
      return;
  } else if (lua_isinteger(L, vidx)) {
    lua_Integer v = lua_tointeger(L, vidx);
    if (v >= 0 && v <= 0x7fffffff) return;
  } else if (casync__fs_fileno(L, vidx) >= 0) return;
  else if (luaL_testudata(L, vidx, CASYNC_STREAM_MT)) {
    if (casync__stream_of(L, vidx)) return;
    luaL_argerror(L, 2, lua_pushfstring(L, "%s is a closed stream", what));
  }
  luaL_argerror(L, 2,
                lua_pushfstring(L,
                                "%s must be \"pipe\", \"inherit\", "
                                "\"ignore\", a descriptor, a file or a stream",
                                what));
}

/* Fills slot c (descriptor fd of the child) from the checked value at
 * vidx.  Returns 1 with a new stream pushed for "pipe", 0 otherwise, -1
 * (and *uverr) when the pipe cannot be made. */
static int set_stdio(lua_State *L, casync_ctx *ctx, uv_stdio_container_t *c,
                     int fd, int vidx, int *uverr) {
  const char *s = lua_tostring(L, vidx);
  if (lua_isnil(L, vidx) ||
      (lua_type(L, vidx) == LUA_TSTRING && !strcmp(s, "inherit"))) {
    c->flags = UV_INHERIT_FD;
    c->data.fd = fd;
  } else if (lua_type(L, vidx) == LUA_TSTRING && !strcmp(s, "ignore"))
    c->flags = UV_IGNORE;
  else if (lua_type(L, vidx) == LUA_TSTRING) { /* "pipe" */
    casync_stream *st = casync__stream_new(L, ctx, CASYNC_PIPE, uverr);
    if (!st) return -1;
    c->flags =
        UV_CREATE_PIPE | (fd == 0   ? UV_READABLE_PIPE
                          : fd <= 2 ? UV_WRITABLE_PIPE
                                    : UV_READABLE_PIPE | UV_WRITABLE_PIPE);
    c->data.stream = &st->u.s;
    return 1;
  } else if (lua_isinteger(L, vidx)) {
    c->flags = UV_INHERIT_FD;
    c->data.fd = (int)lua_tointeger(L, vidx);
  } else if (casync__fs_fileno(L, vidx) >= 0) {
    c->flags = UV_INHERIT_FD;
    c->data.fd = casync__fs_fileno(L, vidx);
  } else {
    c->flags = UV_INHERIT_STREAM;
    c->data.stream = &casync__stream_of(L, vidx)->u.s;
  }
  return 0;
}

/* Pushes the value asked for slot i (opts at 2, opts.fds at fidx or 0). */
static void push_slot(lua_State *L, int i, int fidx) {
  if (i < 3)
    lua_getfield(L, 2, i == 0 ? "stdin" : i == 1 ? "stdout" : "stderr");
  else if (fidx) lua_rawgeti(L, fidx, i);
  else lua_pushnil(L);
}

/* Pushes argv (the list or string at 1) as a NULL-terminated char* array
 * in a userdata; strings stay on the stack (in the list, or pushed). */
static char **build_argv(lua_State *L, int shell) {
  lua_Integer n, i, extra = shell ? 2 : 0;
  char **args;
  if (lua_type(L, 1) == LUA_TSTRING) {
    if (!shell)
      luaL_argerror(L, 1,
                    "argv must be a list of strings (a command line "
                    "needs opts.shell = true)");
    luaL_argcheck(L, strlen(lua_tostring(L, 1)) == lua_rawlen(L, 1), 1,
                  "the command line contains a zero byte");
    args = lua_newuserdatauv(L, 4 * sizeof *args, 0);
    args[0] = (char *)"/bin/sh";
    args[1] = (char *)"-c";
    args[2] = (char *)lua_tostring(L, 1);
    args[3] = NULL;
    return args;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n > 0, 1, "argv must not be empty");
  luaL_argcheck(L, n < 65536, 1, "argv is too long");
  args = lua_newuserdatauv(L, (size_t)(n + extra + 1) * sizeof *args, 0);
  if (shell) {
    args[0] = (char *)"/bin/sh";
    args[1] = (char *)"-c";
  }
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      luaL_argerror(L, 1,
                    lua_pushfstring(L,
                                    "argv[%I] must be a string, "
                                    "not %s",
                                    i, luaL_typename(L, -1)));
    s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len)
      luaL_argerror(L, 1,
                    lua_pushfstring(L,
                                    "argv[%I] contains a zero "
                                    "byte",
                                    i));
    args[extra + i - 1] = (char *)s; /* the list keeps it alive */
    lua_pop(L, 1);
  }
  args[n + extra] = NULL;
  return args;
}

/* Pushes the environment for opts.env (table at eidx) as a char* array in
 * a userdata, or returns NULL (the parent's, unchanged).  opts.env merges
 * over the parent's environment (false removes a variable); with
 * clear_env it is the whole environment. */
static char **build_env(lua_State *L, int eidx, int clear) {
  char **env, **e;
  int tidx, n = 0;
  if (eidx == 0 && !clear) return NULL;
  lua_newtable(L); /* name -> "name=value" */
  tidx = lua_gettop(L);
  if (!clear)
    for (e = environ; *e; e++) {
      const char *eq = strchr(*e, '=');
      if (!eq) continue;
      lua_pushlstring(L, *e, (size_t)(eq - *e));
      lua_pushstring(L, *e);
      lua_rawset(L, tidx);
    }
  if (eidx) {
    lua_pushnil(L);
    while (lua_next(L, eidx)) {
      const char *k;
      size_t klen;
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_argerror(L, 2, "opts.env keys must be strings");
      k = lua_tolstring(L, -2, &klen);
      if (klen == 0 || strchr(k, '=') || strlen(k) != klen)
        luaL_argerror(L, 2,
                      lua_pushfstring(L,
                                      "opts.env: bad variable "
                                      "name '%s'",
                                      k));
      lua_pushvalue(L, -2);
      if (lua_type(L, -2) == LUA_TBOOLEAN && !lua_toboolean(L, -2))
        lua_pushnil(L); /* false: remove it */
      else if (lua_type(L, -2) == LUA_TSTRING ||
               lua_type(L, -2) == LUA_TNUMBER) {
        size_t vlen;
        const char *v = lua_tolstring(L, -2, &vlen);
        if (strlen(v) != vlen)
          luaL_argerror(L, 2,
                        lua_pushfstring(L,
                                        "opts.env.%s contains a "
                                        "zero byte",
                                        k));
        lua_pushfstring(L, "%s=%s", k, v);
      } else
        luaL_argerror(L, 2,
                      lua_pushfstring(L,
                                      "opts.env.%s must be a string"
                                      ", a number or false",
                                      k));
      lua_rawset(L, tidx);
      lua_pop(L, 1);
    }
  }
  lua_pushnil(L);
  while (lua_next(L, tidx)) {
    n++;
    lua_pop(L, 1);
  }
  env = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *env, 1);
  lua_pushvalue(L, tidx); /* the strings live as long as the array */
  lua_setiuservalue(L, -2, 1);
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, tidx)) {
    env[n++] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  env[n] = NULL;
  lua_remove(L, tidx);
  return env;
}

static const char *const stdio_names[] = {"stdin", "stdout", "stderr"};

/* casync.process.spawn(argv [, opts]) -> process | nil, err: starts argv[1]
 * (looked up in PATH) with the arguments argv[2..], without a shell; with
 * opts.shell = true, argv is a command line for /bin/sh -c (a string, or a
 * list whose first entry is the command line and the rest $0, $1, ...).
 * opts.env (merged over this process's environment; false removes a
 * variable; opts.clear_env = true starts from an empty one), opts.cwd,
 * opts.detached (a new session), opts.stdin/stdout/stderr: "inherit"
 * (default), "ignore", "pipe" (then proc.stdin etc. are casync streams), a
 * descriptor number, a casync file or a casync stream; opts.fds = {[3] =
 * "pipe", ...} more descriptors the same way (proc.fds[3]).  Does not
 * suspend; fails with nil, err when the program cannot be started. */
static int fn_spawn(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  uv_process_options_t o;
  uv_stdio_container_t stdio[MAX_FDS];
  int slot_idx[MAX_FDS]; /* stack index of each slot's stream, 0 if none */
  int shell = 0, clear = 0, eidx = 0, fidx = 0, i, rc = 0, nfds = 3;
  int uverr = 0;
  char **args, **env;
  proc_ud *u;
  proc_blk *b;
  if (lua_type(L, 1) != LUA_TSTRING) luaL_checktype(L, 1, LUA_TTABLE);
  memset(&o, 0, sizeof o);
  memset(stdio, 0, sizeof stdio);
  memset(slot_idx, 0, sizeof slot_idx);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  else {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  lua_settop(L, 2);
  lua_getfield(L, 2, "shell");
  shell = lua_toboolean(L, -1);
  lua_getfield(L, 2, "clear_env");
  clear = lua_toboolean(L, -1);
  lua_pop(L, 2);
  args = build_argv(L, shell); /* 3 */
  if (lua_getfield(L, 2, "env") != LUA_TNIL) {
    luaL_argcheck(L, lua_istable(L, -1), 2, "opts.env must be a table");
    eidx = lua_gettop(L);
  }
  env = build_env(L, eidx, clear);
  if (lua_getfield(L, 2, "cwd") != LUA_TNIL) {
    size_t len;
    const char *cwd;
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2,
                  "opts.cwd must be a string");
    cwd = lua_tolstring(L, -1, &len);
    luaL_argcheck(L, strlen(cwd) == len, 2, "opts.cwd contains a zero byte");
    o.cwd = cwd;
  }
  lua_getfield(L, 2, "detached");
  if (lua_toboolean(L, -1)) o.flags |= UV_PROCESS_DETACHED;
  lua_pop(L, 1);
  /* every check before any side effect: the slots' values */
  if (lua_getfield(L, 2, "fds") != LUA_TNIL) {
    luaL_argcheck(L, lua_istable(L, -1), 2, "opts.fds must be a table");
    fidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, fidx)) {
      lua_Integer fd = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : -1;
      if (fd < 3 || fd >= MAX_FDS)
        luaL_argerror(L, 2, "opts.fds keys must be descriptors 3 to 15");
      if (fd + 1 > nfds) nfds = (int)fd + 1;
      lua_pop(L, 1);
    }
  }
  for (i = 0; i < nfds; i++) {
    char what[32];
    if (i < 3) snprintf(what, sizeof what, "opts.%s", stdio_names[i]);
    else snprintf(what, sizeof what, "opts.fds[%d]", i);
    push_slot(L, i, fidx);
    check_stdio(L, -1, what);
    lua_pop(L, 1);
  }
  o.file = args[0];
  o.args = args;
  o.env = env;
  o.exit_cb = on_exit_cb;
  o.stdio = stdio;
  o.stdio_count = nfds;
  /* the pipes (each stream stays on the stack at slot_idx[i]) */
  for (i = 0; i < nfds && rc >= 0; i++) {
    push_slot(L, i, fidx);
    if (i >= 3 && lua_isnil(L, -1)) { /* a gap: closed in the child */
      stdio[i].flags = UV_IGNORE;
      lua_pop(L, 1);
      continue;
    }
    rc = set_stdio(L, ctx, &stdio[i], i, lua_gettop(L), &uverr);
    if (rc == 1) {
      lua_remove(L, -2);
      slot_idx[i] = lua_gettop(L);
    } else lua_pop(L, 1);
  }
  /* the process userdata, closed until spawned */
  u = lua_newuserdatauv(L, sizeof *u, 1);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, CASYNC_PROCESS_MT);
  lua_createtable(L, 0, 6); /* its fields: pid, stdin, stdout, stderr, fds */
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, 1);
  if (rc >= 0) {
    b = calloc(1, sizeof *b);
    if (!b) uverr = UV_ENOMEM;
    else {
      uverr = uv_spawn(ctx->loop, &b->h, &o);
      /* the handle is initialized even when uv_spawn fails: closed then */
      casync__handle_init(ctx, &b->hd, &proc_class, (uv_handle_t *)&b->h);
      if (uverr < 0) casync__handle_close(&b->hd);
      else {
        b->ud = u;
        u->b = b;
        u->pid = b->h.pid;
      }
    }
  }
  if (uverr < 0) {
    /* close the pipes made for it */
    for (i = 0; i < nfds; i++)
      if (slot_idx[i] && casync__stream_of(L, slot_idx[i]))
        casync__stream_close(casync__stream_of(L, slot_idx[i]), 0);
    lua_pushnil(L);
    casync__error_uv_path(L, "spawn", args[0], NULL, uverr);
    return 2;
  }
  /* stack: ... [streams...] [ud] [fields]: name the streams */
  lua_pushinteger(L, u->pid);
  lua_setfield(L, -2, "pid");
  for (i = 0; i < nfds; i++) {
    if (!slot_idx[i]) continue;
    lua_pushvalue(L, slot_idx[i]);
    if (i < 3) lua_setfield(L, -2, stdio_names[i]);
    else {
      if (lua_getfield(L, -2, "fds") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -4, "fds");
      }
      lua_insert(L, -2);
      lua_rawseti(L, -2, i);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* ============================================================== methods */

static int wait_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp;
  (void)why;
  casync__wq_remove(&t->u.wn);
  return 1;
}

/* A woken wait has the exit status: kept. */
static void proc_describe(lua_State *L, casync_task *t) {
  lua_pushfstring(L, "wait for process %d", ((proc_blk *)t->wait_obj)->h.pid);
}

static const casync_wait_kind proc_wait = {"wait", "process wait", wait_cancel,
                                           CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL,
                                           proc_describe};

static int wait_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  proc_ud *u = lua_touserdata(L, 1);
  (void)status;
  CASYNC_RESUMED(L, t, kc, wait_k);
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    lua_pushnil(L);
    casync__timeout_error(L, "wait", lua_tonumber(L, 2));
    return 2;
  }
  return push_exit(L, u);
}

/* proc:wait([timeout]) -> code, signal | nil, err: suspends until the child
 * exits; code is its exit status (128 + the signal's number when a signal
 * ended it), signal the signal's name ("SIGKILL") or nil.  An error of kind
 * "timeout" after timeout seconds (the child goes on). */
static int meth_wait(lua_State *L) {
  proc_ud *u = check_proc(L, 1);
  double timeout = lua_isnoneornil(L, 2) ? -1 : casync__check_seconds(L, 2, 0);
  casync_task *t = casync__wait_begin(L, "wait");
  lua_settop(L, 1);
  lua_pushnumber(L, timeout); /* 2: for the timeout's message */
  if (u->exited) return push_exit(L, u);
  memset(&t->u.wn, 0, sizeof t->u.wn);
  t->u.wn.task = t;
  casync__wq_push(&u->b->waiters, &t->u.wn);
  return casync__park(L, t, &proc_wait, u->b, casync__deadline(timeout), wait_k,
                      0);
}

/* proc:poll() -> nil (still running) | code, signal (as wait); does not
 * suspend */
static int meth_poll(lua_State *L) {
  proc_ud *u = check_proc(L, 1);
  if (!u->exited) {
    lua_pushnil(L);
    return 1;
  }
  return push_exit(L, u);
}

/* proc:kill([sig]) -> true | nil, err: sends sig (a number or a name like
 * "SIGKILL" or "kill"; default SIGTERM); an error with code "ESRCH" once
 * the child has exited */
static int meth_kill(lua_State *L) {
  proc_ud *u = check_proc(L, 1);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : casync__signal_number(L, 2);
  int rc;
  if (u->exited) rc = UV_ESRCH;
  else rc = uv_process_kill(&u->b->h, sig);
  if (rc < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "kill", rc);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Closes the streams of the process at 1. */
static void close_streams(lua_State *L) {
  int i;
  lua_getiuservalue(L, 1, 1);
  for (i = 0; i < 3; i++) {
    if (lua_getfield(L, -1, stdio_names[i]) == LUA_TUSERDATA &&
        casync__stream_of(L, -1))
      casync__stream_close(casync__stream_of(L, -1), 1);
    lua_pop(L, 1);
  }
  if (lua_getfield(L, -1, "fds") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (luaL_testudata(L, -1, CASYNC_STREAM_MT) && casync__stream_of(L, -1))
        casync__stream_close(casync__stream_of(L, -1), 1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

/* proc:close(): closes its pipes (the child goes on running).  As a
 * to-be-closed variable (__close) it also kills a child still running
 * (SIGKILL), so the child does not outlive the scope; __gc does neither
 * (the pipes close themselves when collected). */
static int meth_close(lua_State *L) {
  check_proc(L, 1);
  close_streams(L);
  return 0;
}

static int meta_close(lua_State *L) {
  proc_ud *u = check_proc(L, 1);
  close_streams(L);
  if (u->b) uv_process_kill(&u->b->h, SIGKILL);
  return 0;
}

/* Fields (pid, stdin, stdout, stderr, fds) and then methods. */
static int meta_index(lua_State *L) {
  check_proc(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int meta_tostring(lua_State *L) {
  proc_ud *u = check_proc(L, 1);
  if (u->exited) lua_pushfstring(L, "casync.Process (pid %d, exited)", u->pid);
  else lua_pushfstring(L, "casync.Process (pid %d)", u->pid);
  return 1;
}

/* ================================================================ misc */

/* casync.process.cpu_count() -> the number of CPUs this process may use */
static int fn_cpu_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

/* casync.process.exepath() -> the path of the running executable */
static int fn_exepath(lua_State *L) {
  char buf[4096];
  size_t len = sizeof buf;
  int rc = uv_exepath(buf, &len);
  if (rc < 0) {
    lua_pushnil(L);
    casync__error_uv(L, "exepath", rc);
    return 2;
  }
  lua_pushlstring(L, buf, len);
  return 1;
}

/* casync.process.pid() -> this process's id */
static int fn_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getpid());
  return 1;
}

/* ========================================= the process pool's encoding */

/* Pushes the encoding of the n values at idx (named as copy.c names them)
 * as a string; raises the message naming a value that cannot be copied. */
static int push_encoded(lua_State *L, int idx, int n, const char *root,
                        lua_Integer first, int fn_first) {
  casync_buf b = {NULL, 0, 0};
  if (casync__copy_encode(L, idx, n, &b, root, first, fn_first) != 0)
    return lua_error(L); /* the message is pushed */
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  casync__buf_free(&b);
  return 1;
}

/* casync.process._encode(root, ...) -> string: the values, named
 * root[1], root[2], ... in errors (for the process pool) */
static int fn_encode(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  return push_encoded(L, 2, lua_gettop(L) - 1, root, 1, 0);
}

/* casync.process._encode_at(root, i, ...) -> string: the values, named
 * root[i], root[i+1], ... */
static int fn_encode_at(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  return push_encoded(L, 3, lua_gettop(L) - 2, root, i, 0);
}

/* casync.process._encode_fn(fn) -> string: a function, named fn */
static int fn_encode_fn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  return push_encoded(L, 1, 1, NULL, 0, 1);
}

/* casync.process._decode(s [, pos]) -> ...: the values encoded in s from
 * byte pos (default 1) on */
static int fn_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer pos = luaL_optinteger(L, 2, 1);
  casync_buf b;
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= len + 1, 2, "out of range");
  b.data = (char *)s; /* read only */
  b.len = b.cap = len;
  lua_settop(L, 1); /* s stays alive while it is decoded */
  return casync__copy_decode(L, &b, (size_t)pos - 1);
}

void casync__process_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"wait", meth_wait},
                                     {"poll", meth_poll},
                                     {"kill", meth_kill},
                                     {"close", meth_close},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"spawn", fn_spawn},
                                 {"cpu_count", fn_cpu_count},
                                 {"exepath", fn_exepath},
                                 {"pid", fn_pid},
                                 {"_encode", fn_encode},
                                 {"_encode_at", fn_encode_at},
                                 {"_encode_fn", fn_encode_fn},
                                 {"_decode", fn_decode},
                                 {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_PROCESS_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, meta_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, meta_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_setfield(L, -2, "process");
}
