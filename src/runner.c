/* runner.c: the `casync` command.  It embeds Lua 5.4 with casync preloaded
 * and runs a script (or -e code) as the main task of casync.run, so a
 * script may suspend at top level.  `arg` is set as lua(1) sets it.
 *
 *   casync [options] [script [args...]]
 *     -e code   run code (before the script, in the same main task)
 *     -v        print the version
 *     -         read the script from standard input
 *     --trace file          record a timeline (casync.trace) from before the
 *                           script to its end, written as Chrome JSON
 *     --timeline[=file.svg] at the end, draw the timeline: a chart on
 *                           stderr, or an SVG file
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include <valgrind/valgrind.h>
#include "context.h"

typedef struct { const char *name, *chunkname, *src; size_t len; } casync_embedded_t;
extern const casync_embedded_t casync_embedded_lua[];

static const char *progname = "casync";

static void usage(void) {
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "  -e code  run code as (part of) the main task\n"
          "  -v       show version information\n"
          "  --trace file\n"
          "           record what the tasks do (casync.trace) and write it\n"
          "           to file as Chrome trace-event JSON (Perfetto opens it)\n"
          "  --timeline\n"
          "           at the end, print a chart of the tasks on stderr: a row\n"
          "           a task, time across, and the concurrency figure\n"
          "  --timeline=file.svg\n"
          "           at the end, write that chart as an SVG file\n"
          "  --       stop handling options\n"
          "  -        run standard input as the script\n",
          progname);
}

/* ------------------------------------------------- --trace, --timeline */

static const char *trace_file;    /* --trace file */
static const char *timeline_file; /* --timeline=file.svg */
static int timeline;              /* --timeline (to stderr, or the file) */

/* Takes a --trace or --timeline option at argv[*i]: 1 if it was one, -1
 * if it lacks its argument, 0 if it is another option. */
static int trace_option(char **argv, int argc, int *i) {
  const char *a = argv[*i];
  if (strcmp(a, "--trace") == 0 || strncmp(a, "--trace=", 8) == 0) {
    trace_file = a[7] == '=' ? a + 8 : (*i + 1 < argc ? argv[++*i] : NULL);
    return trace_file && *trace_file ? 1 : -1;
  }
  if (strcmp(a, "--timeline") == 0) {
    timeline = 1;
    return 1;
  }
  if (strncmp(a, "--timeline=", 11) == 0) {
    timeline = 1;
    timeline_file = a + 11;
    return *timeline_file ? 1 : -1;
  }
  return 0;
}

/* Starts recording before the script runs: casync.trace{file = ...}.
 * Stack: ... casync */
static void trace_begin(lua_State *L) {
  if (!trace_file && !timeline) return;
  lua_getfield(L, -1, "trace");
  lua_createtable(L, 0, 1);
  if (trace_file) {
    lua_pushstring(L, trace_file);
    lua_setfield(L, -2, "file");
  }
  lua_call(L, 1, 0);
}

/* At the end: stops recording (which writes --trace's file) and draws
 * the chart (on stderr, as wide as the terminal) or the SVG. */
static const char trace_end_lua[] =
  "local casync, svg_file, show, width = ...\n"
  "local rec = casync.trace(false)\n"
  "if not (show and rec) then return end\n"
  "local timeline = require 'casync.timeline'\n"
  "if svg_file then\n"
  "  local f, err = io.open(svg_file, 'w')\n"
  "  if not f then error('--timeline: ' .. err, 0) end\n"
  "  local name = arg and arg[0] and arg[0]:match('[^/]*$') or 'casync'\n"
  "  f:write(timeline.svg(rec, {title = 'casync timeline of ' .. name}))\n"
  "  f:close()\n"
  "else\n"
  "  io.stdout:flush()\n"
  "  io.stderr:write(timeline.chart(rec, {width = width}))\n"
  "end\n";

/* Runs trace_end_lua; returns 0 and prints why if it failed. */
static int trace_end(lua_State *L) {
  int width = 80, ok;
  struct winsize ws;
  const char *cols = getenv("COLUMNS");
  if (!trace_file && !timeline) return 1;
  if (isatty(2) && ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 30)
    width = ws.ws_col;
  else if (cols && atoi(cols) >= 30)
    width = atoi(cols);
  if (luaL_loadbuffer(L, trace_end_lua, sizeof trace_end_lua - 1,
                      "=casync") != LUA_OK)
    return lua_error(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "casync");
  lua_call(L, 1, 1);
  if (timeline_file) lua_pushstring(L, timeline_file);
  else lua_pushnil(L);
  lua_pushboolean(L, timeline);
  lua_pushinteger(L, width);
  ok = lua_pcall(L, 4, 0, 0) == LUA_OK;
  if (!ok) {
    fprintf(stderr, "%s: %s\n", progname, casync__tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 2);
  }
  return ok;
}

static int load_embedded(lua_State *L) {
  const casync_embedded_t *e = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, e->src, e->len, e->chunkname) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

/* package.preload: the core linked into this binary and the Lua modules
 * embedded at build time, so the runner always uses its own casync. */
static void preload(lua_State *L) {
  const casync_embedded_t *e;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_casync_core);
  lua_setfield(L, -2, "casync.core");
  for (e = casync_embedded_lua; e->name; e++) {
    lua_pushlightuserdata(L, (void *)e);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, e->name);
  }
  lua_pop(L, 1);
}

/* ----------------------------------------------------- the allocator
 * Lua's objects are small and many (a task: its coroutine, the coroutine's
 * stack, a CallInfo per frame, the task's userdata, 100-700 bytes each),
 * and a server or a fan-out makes and drops them by the hundred thousand.
 * The runner gives its state a pool allocator: blocks of up to 1 KiB come
 * from per-size free lists (16-byte classes) carved out of 64 KiB chunks,
 * with no header per block; larger ones from malloc.  Lua passes the old
 * size of every block it frees or resizes, so a block's class is known
 * without a header.  Memory in the pool goes back to the system when the
 * state closes.  Under valgrind or AddressSanitizer (which check Lua's
 * blocks one by one), or with CASYNC_ALLOC=system, Lua's own allocator
 * (malloc) is used; CASYNC_ALLOC=pool forces the pool (callgrind). */
#define POOL_MAX 1024
#define POOL_CLASSES (POOL_MAX / 16)
#define POOL_CHUNK (64 * 1024)

typedef struct pool {
  void *free[POOL_CLASSES + 1]; /* class c: blocks of c * 16 bytes */
  char *bump, *bump_end;        /* what is left of the newest chunk */
  void *chunks;                 /* every chunk, linked by their first word */
} pool;

static void *pool_get(pool *p, size_t n) {
  size_t c = (n + 15) >> 4;
  void *b = p->free[c];
  if (b) {
    p->free[c] = *(void **)b;
    return b;
  }
  if ((size_t)(p->bump_end - p->bump) < c << 4) {
    char *chunk = malloc(POOL_CHUNK);
    if (!chunk) return NULL;
    *(void **)chunk = p->chunks;
    p->chunks = chunk;
    p->bump = chunk + 16;
    p->bump_end = chunk + POOL_CHUNK;
  }
  b = p->bump;
  p->bump += c << 4;
  return b;
}

static void pool_put(pool *p, void *b, size_t n) {
  size_t c = (n + 15) >> 4;
  *(void **)b = p->free[c];
  p->free[c] = b;
}

static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  pool *p = ud;
  void *nb;
  if (nsize == 0) {
    if (!ptr) return NULL;
    if (osize <= POOL_MAX) pool_put(p, ptr, osize);
    else free(ptr);
    return NULL;
  }
  if (!ptr) return nsize <= POOL_MAX ? pool_get(p, nsize) : malloc(nsize);
  if (osize > POOL_MAX && nsize > POOL_MAX) return realloc(ptr, nsize);
  if (osize <= POOL_MAX && nsize <= POOL_MAX &&
      (osize + 15) >> 4 == (nsize + 15) >> 4)
    return ptr; /* the same class */
  nb = nsize <= POOL_MAX ? pool_get(p, nsize) : malloc(nsize);
  if (!nb) return nsize < osize ? ptr : NULL; /* a shrink never fails: the
                                                  block is big enough */
  memcpy(nb, ptr, osize < nsize ? osize : nsize);
  if (osize <= POOL_MAX) pool_put(p, ptr, osize);
  else free(ptr);
  return nb;
}

static pool the_pool;

static int pool_wanted(void) {
  const char *e = getenv("CASYNC_ALLOC");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 0;
#else
  if (e && strcmp(e, "pool") == 0) return 1; /* also under valgrind */
  return !RUNNING_ON_VALGRIND && !(e && strcmp(e, "system") == 0);
#endif
}

/* A state on the pool needs what luaL_newstate gives its states: a panic
 * function and warnings (off until "@on"), as lauxlib has them. */
static int runner_panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          msg ? msg : "error object is not a string");
  fflush(stderr);
  return 0; /* then abort */
}

static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont) {
  if (tocont || *(msg++) != '@') return 0;
  if (strcmp(msg, "off") == 0) lua_setwarnf(L, warn_off, L);
  else if (strcmp(msg, "on") == 0) lua_setwarnf(L, warn_on, L);
  return 1;
}

static void warn_off(void *ud, const char *msg, int tocont) {
  warn_control(ud, msg, tocont);
}

static void warn_cont(void *ud, const char *msg, int tocont) {
  fputs(msg, stderr);
  if (tocont) lua_setwarnf(ud, warn_cont, ud);
  else {
    fputs("\n", stderr);
    fflush(stderr);
    lua_setwarnf(ud, warn_on, ud);
  }
}

static void warn_on(void *ud, const char *msg, int tocont) {
  if (warn_control(ud, msg, tocont)) return;
  fputs("Lua warning: ", stderr);
  warn_cont(ud, msg, tocont);
}

static lua_State *new_state(void) {
  lua_State *L;
  if (!pool_wanted()) return luaL_newstate();
  if ((L = lua_newstate(pool_alloc, &the_pool)) != NULL) {
    lua_atpanic(L, runner_panic);
    lua_setwarnf(L, warn_off, L);
  }
  return L;
}

/* After lua_close: the pool's chunks go back to the system. */
static void pool_release(void) {
  void *c = the_pool.chunks, *next;
  for (; c; c = next) {
    next = *(void **)c;
    free(c);
  }
  memset(&the_pool, 0, sizeof the_pool);
}

static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The main task: run every chunk in order. Upvalue: {chunk, args...} list */
static const char driver[] =
  "local chunks = ...\n"
  "for i = 1, #chunks - 1 do chunks[i]() end\n"
  "local last = chunks[#chunks]\n"
  "return last(table.unpack(chunks.args, 1, chunks.args.n))\n";

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1), i, script = 0, nchunks = 0, n;
  char **argv = lua_touserdata(L, 2);
  luaL_openlibs(L);
  preload(L);
  lua_newtable(L); /* chunks */
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "-") == 0 || a[0] != '-') break;
    if (strcmp(a, "-v") == 0) {
      printf("casync %s (%s, libuv %s)\n", CASYNC_VERSION, LUA_RELEASE,
             uv_version_string());
      if (argc == 2) return 0;
    } else if ((n = trace_option(argv, argc, &i)) != 0) {
      if (n < 0) {
        usage();
        return luaL_error(L, "'%s' needs a file name", a);
      }
    } else if (strncmp(a, "-e", 2) == 0) {
      const char *code = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
      if (!code) { usage(); return luaL_error(L, "'-e' needs an argument"); }
      if (luaL_loadbuffer(L, code, strlen(code), "=(command line)") != LUA_OK)
        return lua_error(L);
      lua_rawseti(L, -2, ++nchunks);
    } else {
      usage();
      return luaL_error(L, "unrecognized option '%s'", a);
    }
  }
  script = i < argc ? i : 0;
  /* arg: script at 0, its arguments after, the command and options before;
   * with no script, the command is at 0 (as lua(1) does) */
  lua_createtable(L, argc, 1);
  {
    int base = script;
    int k;
    for (k = 0; k < argc; k++) {
      lua_pushstring(L, argv[k]);
      lua_rawseti(L, -2, k - base);
    }
  }
  lua_setglobal(L, "arg");
  if (script) {
    const char *fname = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
    if (luaL_loadfile(L, fname) != LUA_OK) return lua_error(L);
    lua_rawseti(L, -2, ++nchunks);
  } else if (nchunks == 0) {
    usage();
    return 0;
  }
  lua_createtable(L, argc, 1); /* the script's arguments */
  {
    int n = 0;
    for (i = script ? script + 1 : argc; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, ++n);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
  }
  lua_setfield(L, -2, "args");
  /* casync._run_report(driver, chunks) */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "casync");
  lua_call(L, 1, 1);
  trace_begin(L);
  lua_getfield(L, -1, "_run_report");
  if (luaL_loadbuffer(L, driver, sizeof driver - 1, "=casync") != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, -4);
  lua_call(L, 2, 3);
  if (!trace_end(L) && lua_toboolean(L, -3)) { /* the script ran well */
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!lua_toboolean(L, -3)) {
    const char *tb = lua_tostring(L, -1);
    int interrupted = casync__error_is(L, -2, "interrupted");
    fprintf(stderr, "%s: %s\n", progname, casync__tostring(L, -2));
    lua_pop(L, 1);
    if (lua_istable(L, -2) && lua_getfield(L, -2, "traceback") == LUA_TSTRING)
      tb = lua_tostring(L, -1);
    if (tb) fprintf(stderr, "%s\n", tb);
    fflush(stderr);
    /* Ctrl-C: the conventional status of a process ended by SIGINT */
    if (interrupted) {
      lua_pushinteger(L, 128 + SIGINT);
      return 1;
    }
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = new_state();
  int status, ok;
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (!L) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 1);
  ok = status == LUA_OK && (lua_isnil(L, -1) || lua_toboolean(L, -1));
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    fflush(stderr);
  }
  if (status == LUA_OK && lua_isinteger(L, -1)) { /* an exit status */
    int code = (int)lua_tointeger(L, -1);
    lua_close(L);
    pool_release();
    return code;
  }
  lua_close(L);
  pool_release();
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
