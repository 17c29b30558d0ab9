/* runner.c: the `casync` command.  It embeds Lua 5.4 with casync preloaded
 * and runs a script (or -e code) as the main task of casync.run, so a
 * script may suspend at top level.  Its options are lua(1)'s:
 *
 *   casync [options] [script [args...]]
 *     -e stat   run stat (in the main task, in order with -l)
 *     -i        an interactive prompt after the script: each line a task
 *     -l mod    require mod into the global mod (-l g=mod: into g)
 *     -v        print the version;  --version: print it and exit
 *     -E        ignore LUA_INIT, LUA_PATH and LUA_CPATH
 *     -W        turn warnings on
 *     -h        (--help) print the usage and exit
 *     --trace file          record a timeline (casync.trace) from before the
 *                           script to its end, written as Chrome JSON
 *     --timeline[=file.svg] at the end, draw the timeline: a chart on
 *                           stderr, or an SVG file
 *     --        stop handling options
 *     -         run standard input as the script
 *
 * `arg` is set as lua(1) sets it and the global `casync` is the module.
 * casync.run(main) called in the main task runs main in place (loop.c),
 * so a script ending with casync.run(main) runs here and under lua5.4.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lualib.h>
#include <valgrind/valgrind.h>
#include "context.h"

static const char *progname = "casync";

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: %s [options] [script [args]]\n"
      "Runs a Lua 5.4 script as the main task of casync.run: it may suspend\n"
      "(casync.sleep, task:wait(), ...) at top level; the global casync is set.\n"
      "Available options are:\n"
      "  -e stat   execute string 'stat' (in the main task)\n"
      "  -i        enter interactive mode after executing 'script'\n"
      "            (each line runs as a task)\n"
      "  -l mod    require library 'mod' into global 'mod'\n"
      "  -l g=mod  require library 'mod' into global 'g'\n"
      "  -v        show version information\n"
      "  -E        ignore environment variables\n"
      "  -W        turn warnings on\n"
      "  -h        show this help (also --help)\n"
      "  --version show version information and exit\n"
      "  --trace file\n"
      "            record what the tasks do (casync.trace) and write it\n"
      "            to file as Chrome trace-event JSON (Perfetto opens it)\n"
      "  --timeline\n"
      "            at the end, print a chart of the tasks on stderr: a row\n"
      "            a task, time across, and the concurrency figure\n"
      "  --timeline=file.svg\n"
      "            at the end, write that chart as an SVG file\n"
      "  --        stop handling options\n"
      "Or: %s ps PID  print the task tree of casync process PID (one in\n"
      "            debug mode: CASYNC_DEBUG=1), what each task waits on\n"
      "  -         stop handling options and execute stdin\n"
      "Environment: CASYNC_DEBUG=1 turns the watchdog and debug mode on (a dump\n"
      "of the task tree on SIGUSR1); CASYNC_SEED=n orders the ready tasks by a\n"
      "seed; LUA_INIT_5_4 or LUA_INIT, LUA_PATH_5_4 or LUA_PATH, LUA_CPATH_5_4\n"
      "or LUA_CPATH as for lua.\n"
      "Exit status: 0, 1 when the script fails, 130 after Ctrl-C, or os.exit's.\n",
      progname, progname);
  fflush(f);
}

static void print_version(void) {
  printf("casync %s (%s, libuv %s)\n", CASYNC_VERSION, LUA_RELEASE,
         uv_version_string());
  fflush(stdout);
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
  else if (cols && atoi(cols) >= 30) width = atoi(cols);
  if (luaL_loadbuffer(L, trace_end_lua, sizeof trace_end_lua - 1, "=casync") !=
      LUA_OK)
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
    lua_pop(L, 1);
  }
  return ok;
}

static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The main task: runs the steps in order.  A step that cannot start (a
 * syntax error, a missing script or module) fails with a `quiet` error,
 * printed without a traceback (none would help). */
static const char driver[] =
    "local steps, args, quiet, repl = ...\n"
    "local function fail(msg) error(setmetatable({msg = msg}, quiet), 0) end\n"
    "local function loaded(f, err) if not f then fail(err) end return f end\n"
    "for i = 1, #steps do -- (not ipairs: a return in it is no tail call)\n"
    "  local s = steps[i]\n"
    "  if s.code then loaded(load(s.code, s.chunkname))()\n"
    "  elseif s.file then loaded(loadfile(s.file))()\n"
    "  elseif s.lib then\n"
    "    local ok, m = pcall(require, s.lib)\n"
    "    if not ok then\n"
    "      if type(m) == 'string' and m:find(\"^module '[^']*' not found\") then\n"
    "        fail(m)\n"
    "      end\n"
    "      error(m, 0)\n"
    "    end\n"
    "    _G[s.global] = m\n"
    "  elseif s.script then\n"
    "    local f = loaded(loadfile(s.path))\n"
    "    if i == #steps then return f(table.unpack(args, 1, args.n)) end\n"
    "    f(table.unpack(args, 1, args.n))\n"
    "  elseif s.repl then repl() end\n"
    "end\n";

/* The interactive prompt (-i): reads lines from stdin (a casync stream when
 * it is a pipe or a TTY, so other tasks run while it waits), compiles them
 * as lua(1) does (as an expression first, reading more lines while the
 * chunk is incomplete), and runs each chunk as a task, printing its
 * results or its error.  Ends at the end of the input. */
static const char repl[] =
    "local casync = require 'casync'\n"
    "local stdin = casync.stdin()\n"
    "local function readline(prompt)\n"
    "  io.stdout:write(prompt)\n"
    "  io.stdout:flush()\n"
    "  if stdin then return stdin:read_line() end\n"
    "  return io.read('l')\n"
    "end\n"
    "local function prompt(n)\n"
    "  local p = n == 1 and _PROMPT or n == 2 and _PROMPT2\n"
    "  return p and tostring(p) or (n == 1 and '> ' or '>> ')\n"
    "end\n"
    "while true do\n"
    "  local line = readline(prompt(1))\n"
    "  if not line then break end\n"
    "  local src = line\n"
    "  local f, err = load('return ' .. src, '=stdin')\n"
    "  if not f then\n"
    "    f, err = load(src, '=stdin')\n"
    "    while not f and err:find('<eof>$') do\n"
    "      local more = readline(prompt(2))\n"
    "      if not more then break end\n"
    "      src = src .. '\\n' .. more\n"
    "      f, err = load(src, '=stdin')\n"
    "    end\n"
    "  end\n"
    "  if not f then\n"
    "    io.stderr:write(err, '\\n')\n"
    "  else\n"
    "    local t = casync.spawn({name = 'stdin'}, f)\n"
    "    local r = table.pack(pcall(t.wait, t))\n"
    "    if not r[1] then io.stderr:write(tostring(r[2]), '\\n')\n"
    "    elseif r.n > 1 then print(table.unpack(r, 2, r.n)) end\n"
    "  end\n"
    "  io.stderr:flush()\n"
    "end\n"
    "io.stdout:write('\\n')\n"
    "if stdin then stdin:close() end\n";

/* steps[#steps + 1] = the table on top */
static void add_step(lua_State *L, int steps) {
  lua_rawseti(L, steps, (lua_Integer)lua_rawlen(L, steps) + 1);
}

/* A step {code = s, chunkname = name}, or {file = path} for LUA_INIT's
 * "@path" (init set). */
static void step_code(lua_State *L, int steps, const char *code,
                      const char *chunkname, int init) {
  lua_createtable(L, 0, 2);
  if (init && code[0] == '@') {
    lua_pushstring(L, code + 1);
    lua_setfield(L, -2, "file");
  } else {
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, chunkname);
    lua_setfield(L, -2, "chunkname");
  }
  add_step(L, steps);
}

/* A step {lib = mod, global = g} for -l mod or -l g=mod. */
static void step_lib(lua_State *L, int steps, const char *spec) {
  const char *eq = strchr(spec, '=');
  lua_createtable(L, 0, 2);
  lua_pushstring(L, eq ? eq + 1 : spec);
  lua_setfield(L, -2, "lib");
  if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
  else lua_pushstring(L, spec);
  lua_setfield(L, -2, "global");
  add_step(L, steps);
}

/* A flag step, e.g. {repl = true}. */
static void step_flag(lua_State *L, int steps, const char *name) {
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, name);
  add_step(L, steps);
}

/* Bad command line: the message and the usage, exit status 1. */
static int bad_usage(lua_State *L, const char *fmt, const char *a) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  usage(stderr);
  lua_pushinteger(L, EXIT_FAILURE);
  return 1;
}

enum { HAS_E = 1, HAS_I = 2, HAS_V = 4, HAS_BIG_E = 8, HAS_W = 16 };

/* Checks the options (as lua(1) does, before running anything); sets
 * *script to the index of the script (0: none) and returns the flags, or
 * -1 after printing what is wrong, -2 for -h / --help, -3 for --version,
 * -4 for an option without its argument, -5 for --trace without a file. */
static int collect_args(int argc, char **argv, int *script, const char **bad) {
  int i, flags = 0;
  *script = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    *bad = a;
    if (a[0] != '-') {
      *script = i;
      return flags;
    }
    if (strcmp(a, "-") == 0) {
      *script = i;
      return flags;
    }
    if (strcmp(a, "--") == 0) {
      *script = i + 1 < argc ? i + 1 : 0;
      return flags;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return -2;
    if (strcmp(a, "--version") == 0) return -3;
    switch (trace_option(argv, argc, &i)) {
    case 1: continue;
    case -1: return -5; /* needs a file name */
    default: break;
    }
    switch (a[1]) {
    case 'i':
    case 'v':
    case 'E':
    case 'W':
      if (a[2]) return -1;
      flags |= a[1] == 'i'   ? HAS_I | HAS_V
               : a[1] == 'v' ? HAS_V
               : a[1] == 'E' ? HAS_BIG_E
                             : HAS_W;
      break;
    case 'e':
    case 'l':
      if (a[1] == 'e') flags |= HAS_E;
      if (!a[2] && (++i >= argc || argv[i][0] == '-')) {
        *bad = a;
        return -4; /* needs an argument */
      }
      break;
    default: return -1;
    }
  }
  return flags;
}

/* LUA_INIT_5_4 or LUA_INIT, as a first step (lua(1)'s handle_luainit). */
static void step_init(lua_State *L, int steps) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (!init) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init) step_code(L, steps, init, name, 1);
}

/* Prints the failure _run_report left (ok, err, traceback on top) and
 * returns the exit status, or -1 when it ran fine.  quiet: the metatable
 * of errors printed without a traceback. */
static int report(lua_State *L, int quiet) {
  int ok = lua_gettop(L) - 2, err = ok + 1, tb = ok + 2;
  if (lua_toboolean(L, ok)) return -1;
  if (lua_getmetatable(L, err) && lua_rawequal(L, -1, quiet)) {
    lua_getfield(L, err, "msg");
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    fflush(stderr);
    return EXIT_FAILURE;
  }
  fprintf(stderr, "%s: %s\n", progname, casync__tostring(L, err));
  if (lua_istable(L, err) && lua_getfield(L, err, "traceback") == LUA_TSTRING)
    lua_replace(L, tb);
  if (lua_isstring(L, tb)) fprintf(stderr, "%s\n", lua_tostring(L, tb));
  fflush(stderr);
  /* Ctrl-C: the conventional status of a process ended by SIGINT */
  return casync__error_is(L, err, "interrupted") ? 128 + SIGINT : EXIT_FAILURE;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1), i, script, flags, steps, quiet, code;
  char **argv = lua_touserdata(L, 2);
  const char *bad = NULL;
  flags = collect_args(argc, argv, &script, &bad);
  if (flags == -1) return bad_usage(L, "unrecognized option '%s'", bad);
  if (flags == -4) return bad_usage(L, "'%s' needs argument", bad);
  if (flags == -5) return bad_usage(L, "'%s' needs a file name", bad);
  if (flags == -2) {
    usage(stdout);
    return 0;
  }
  if (flags == -3 || (flags & HAS_V)) print_version();
  if (flags == -3) return 0;
  if (flags & HAS_BIG_E) { /* as lua.c: package ignores LUA_PATH, ... */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  casync_preload(L); /* this binary's casync, whatever LUA_PATH says */
  if (flags & HAS_W) lua_warning(L, "@on", 0);
  /* arg: script at 0, its arguments after, the command and options before;
   * with no script, the command is at 0 (as lua(1) does) */
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  /* the global casync, for -e code, scripts and the prompt */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "casync");
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "casync");
  trace_begin(L); /* --trace, --timeline: recording from here */
  /* casync._run_report(driver, steps, args, quiet, repl) */
  lua_getfield(L, -1, "_run_report");
  if (luaL_loadbuffer(L, driver, sizeof driver - 1, "=casync") != LUA_OK)
    return lua_error(L);
  lua_newtable(L);
  steps = lua_gettop(L);
  if (!(flags & HAS_BIG_E)) step_init(L, steps);
  for (i = 1; i < (script ? script : argc); i++) {
    const char *a = argv[i];
    if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
      const char *v = a[2] ? a + 2 : argv[++i];
      if (a[1] == 'e') step_code(L, steps, v, "=(command line)", 0);
      else step_lib(L, steps, v);
    }
  }
  if (!script && !(flags & (HAS_E | HAS_V | HAS_I))) {
    if (isatty(STDIN_FILENO)) { /* lua(1): a prompt on a terminal */
      print_version();
      flags |= HAS_I;
    } else step_flag(L, steps, "script"); /* else stdin is the script */
  }
  if (script) {
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "script");
    if (strcmp(argv[script], "-") != 0 || strcmp(argv[script - 1], "--") == 0) {
      lua_pushstring(L, argv[script]);
      lua_setfield(L, -2, "path");
    }
    add_step(L, steps);
  }
  if (flags & HAS_I) step_flag(L, steps, "repl");
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
  lua_newtable(L); /* the metatable of quiet errors */
  quiet = lua_gettop(L);
  lua_pushvalue(L, quiet);
  lua_insert(L, steps - 2); /* kept below the call */
  quiet = steps - 2;
  if (luaL_loadbuffer(L, repl, sizeof repl - 1, "=casync -i") != LUA_OK)
    return lua_error(L);
  lua_call(L, 5, 3);
  code = report(L, quiet);
  /* the recording ends (its file written, the chart drawn) after the
   * report; failing to write it fails a script that ran well */
  if (!trace_end(L) && code < 0) code = EXIT_FAILURE;
  if (code < 0) lua_pushboolean(L, 1);
  else lua_pushinteger(L, code);
  return 1;
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
  if (!nb)
    return nsize < osize ? ptr : NULL; /* a shrink never fails: the
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
int casync__ps_wanted(int argc, char **argv);
int casync__ps_main(const char *progname, int argc, char **argv);

int main(int argc, char **argv) {
  lua_State *L = new_state();
  int status, ok;
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (casync__ps_wanted(argc, argv)) { /* casync ps PID */
    if (L) lua_close(L);
    pool_release();
    return casync__ps_main(progname, argc, argv);
  }
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
