/* casync.h: the public C API of casync, for hosts that embed Lua 5.4.
 *
 * A host that runs its own libuv loop installs it before the module opens;
 * casync then drives its tasks from handles on that loop, so they advance
 * whenever the host runs uv_run.  Everything else is reached through Lua.
 */
#ifndef CASYNC_H
#define CASYNC_H

#include <lua.h>
#include <uv.h>

#define CASYNC_VERSION "0.1.0"

#if defined(_WIN32)
#define CASYNC_API __declspec(dllexport)
#else
#define CASYNC_API __attribute__((visibility("default")))
#endif

/* Opens the module: pushes the casync.core table.  (require "casync.core") */
CASYNC_API int luaopen_casync_core(lua_State *L);

/* Makes casync use `loop` in this Lua state instead of creating its own.
 * Must be called before the module is opened; returns 0, or -1 if casync is
 * already open in L.  The host keeps ownership of the loop. */
CASYNC_API int casync_set_loop(lua_State *L, uv_loop_t *loop);

/* The loop casync runs on in L (NULL before the module is opened). */
CASYNC_API uv_loop_t *casync_loop(lua_State *L);

/* Spawns the function below the top `nargs` values as a task; pops them and
 * pushes the task.  Raises a Lua error like casync.spawn on bad input. */
CASYNC_API int casync_spawn(lua_State *L, int nargs);

#endif
