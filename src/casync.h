/* casync.h: the public C API of casync, for hosts that embed Lua 5.4.
 *
 * Link with libcasync (cc host.c $(pkg-config --cflags --libs casync)).
 * A host that runs its own libuv loop installs it before casync opens;
 * casync then drives its tasks from handles on that loop, so they advance
 * whenever the host runs uv_run.  Everything else is reached through Lua.
 *
 * Errors: casync_spawn and luaopen_casync_core raise Lua errors (bad
 * arguments, out of memory) like any Lua API function that may raise: call
 * them from a C function run by lua_pcall (or from Lua), not bare from
 * main(), where an error would end the process through lua_atpanic.
 * casync_set_loop, casync_loop and casync_preload do not raise, except
 * on running out of memory (casync_preload).
 *
 * Signals: opening casync sets SIGPIPE to SIG_IGN when it is at its
 * default action, so a write to a vanished peer returns EPIPE instead of
 * killing the process.  A host that wants SIGPIPE installs its own handler
 * (anything but SIG_DFL) before casync opens; casync then leaves it alone.
 * During casync.run, SIGINT cancels the main task (unless it is ignored).
 */
#ifndef CASYNC_H
#define CASYNC_H

#include <lua.h>
#include <uv.h>

#define CASYNC_VERSION_MAJOR 0
#define CASYNC_VERSION_MINOR 1
#define CASYNC_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH: #if CASYNC_VERSION_NUM >= 100 */
#define CASYNC_VERSION_NUM                                     \
  (CASYNC_VERSION_MAJOR * 10000 + CASYNC_VERSION_MINOR * 100 + \
   CASYNC_VERSION_PATCH)
#define CASYNC_VERSION "0.1.0"

#if defined(_WIN32)
#define CASYNC_API __declspec(dllexport)
#else
#define CASYNC_API __attribute__((visibility("default")))
#endif

/* Opens the module: pushes the casync.core table (require "casync.core").
 * Raises on error: call it under lua_pcall, or through luaL_requiref from
 * a protected function, or let casync_preload make it a require. */
CASYNC_API int luaopen_casync_core(lua_State *L);

/* Registers this library's casync in package.preload: casync.core and the
 * Lua front end (casync, casync.http, ...), compiled into the library, so
 * that require "casync" loads them whatever package.path says. */
CASYNC_API void casync_preload(lua_State *L);

/* Makes casync use `loop` in this Lua state instead of creating its own.
 * Must be called before the module is opened; returns 0, or -1 if casync is
 * already open in L.  The host keeps ownership of the loop. */
CASYNC_API int casync_set_loop(lua_State *L, uv_loop_t *loop);

/* The loop casync runs on in L (NULL before the module is opened). */
CASYNC_API uv_loop_t *casync_loop(lua_State *L);

/* Spawns the function below the top `nargs` values as a task; pops them and
 * pushes the task.  Raises a Lua error like casync.spawn on bad input (and
 * when casync is not open): call it under lua_pcall. */
CASYNC_API int casync_spawn(lua_State *L, int nargs);

#endif
