/* error.c: casync's error values, for the Lua API and every C file.
 *
 * An error is a table {kind=..., message=..., code=...} with the metatable
 * casync.Error, whose __tostring reads "kind: message".  This is the only
 * place such values are made.  Argument errors stay plain strings, raised
 * with luaL_argerror like Lua's own libraries raise them.
 */
#include <stdarg.h>
#include <string.h>
#include "context.h"

/* Pushes a new error value; returns 1. `code` may be NULL. */
int casync__error_push(lua_State *L, const char *kind, const char *code,
                       const char *fmt, ...) {
  va_list ap;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (code) {
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
  }
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, CASYNC_ERROR_MT);
  return 1;
}

/* Is the value at idx a casync error (of `kind`, unless kind is NULL)? */
int casync__error_is(lua_State *L, int idx, const char *kind) {
  int yes = 0;
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, CASYNC_ERROR_MT);
  yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (yes && kind) {
    lua_getfield(L, idx, "kind");
    yes = lua_type(L, -1) == LUA_TSTRING &&
          strcmp(lua_tostring(L, -1), kind) == 0;
    lua_pop(L, 1);
  }
  return yes;
}

/* Pushes the error for libuv error uverr in operation `op` ("connect",
 * "read", ...): kind "timeout" for ETIMEDOUT, "eof" for EOF, "io" for the
 * rest; code the libuv name ("ECONNREFUSED"); message "connect: connection
 * refused".  Returns 1. */
int casync__error_uv(lua_State *L, const char *op, int uverr) {
  const char *kind = uverr == UV_ETIMEDOUT ? "timeout"
                     : uverr == UV_EOF     ? "eof"
                                           : "io";
  return casync__error_push(L, kind, uv_err_name(uverr), "%s: %s", op,
                            uv_strerror(uverr));
}

/* Pushes the error for libuv error uverr in operation `op` on a file:
 * as casync__error_uv, with the message naming the path ("open 'a.txt':
 * no such file or directory", or "rename 'a' -> 'b': ..." when path2 is
 * given) and a field `path`.  Returns 1. */
int casync__error_uv_path(lua_State *L, const char *op, const char *path,
                          const char *path2, int uverr) {
  if (!path) return casync__error_uv(L, op, uverr);
  if (path2) lua_pushfstring(L, "%s '%s' -> '%s'", op, path, path2);
  else lua_pushfstring(L, "%s '%s'", op, path);
  casync__error_uv(L, lua_tostring(L, -1), uverr);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_remove(L, -2);
  return 1;
}

static int tostring_of(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Pushes tostring(v) of the value at idx and returns it, never raising: a
 * __tostring that fails (or returns no string) gives a description of the
 * value instead.  For reports printed where no error may escape. */
const char *casync__tostring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, tostring_of);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}

static int meta_tostring(lua_State *L) {
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "error"),
                  luaL_optstring(L, -1, "?"));
  return 1;
}

/* casync.new_error(kind, message [, code]) -> a casync error value */
static int fn_new_error(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  const char *msg = luaL_checkstring(L, 2);
  const char *code = luaL_optstring(L, 3, NULL);
  return casync__error_push(L, kind, code, "%s", msg);
}

/* casync.is_error(v [, kind]) -> whether v is a casync error (of that kind) */
static int fn_is_error(lua_State *L) {
  const char *kind = luaL_optstring(L, 2, NULL);
  lua_pushboolean(L, casync__error_is(L, 1, kind));
  return 1;
}

void casync__error_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"new_error", fn_new_error}, {"is_error", fn_is_error}, {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_ERROR_MT);
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
