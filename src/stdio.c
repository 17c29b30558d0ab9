/* stdio.c: casync.stdin(), stdout(), stderr() and casync.stream.stdio(fd):
 * a descriptor as a casync.Stream when it is a pipe, a socket or a TTY
 * (not a regular file: libuv cannot poll those).
 *
 * libuv makes the descriptor non-blocking; for 0-2 that is shared with the
 * rest of the process (io.write, a parent shell), so closing the stream
 * puts the original file flags back, and libuv never closes 0-2 itself.
 */
#include <fcntl.h>
#include "io.h"

/* casync.stream.stdio(fd) -> stream | nil, err: fd (0, 1, 2 or another
 * descriptor the process owns) as a stream when it is a pipe, socket or
 * TTY; the same stream again while it is open.  Descriptors 0-2 are not
 * closed by close(), and get their blocking mode back. */
static int fn_stdio(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  lua_Integer fd = luaL_checkinteger(L, 1);
  casync_stream *s;
  uv_handle_type type;
  int kind, r, flags;
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "not a file descriptor");
  lua_settop(L, 1);
  casync__ctx_push(L);
  lua_getiuservalue(L, -1, CTX_STDIO);
  lua_replace(L, 2);
  if (lua_rawgeti(L, 2, fd) == LUA_TUSERDATA && casync__stream_of(L, -1))
    return 1;
  lua_pop(L, 1);
  type = uv_guess_handle((uv_file)fd);
  kind = type == UV_TTY          ? CASYNC_TTY
         : type == UV_NAMED_PIPE ? CASYNC_PIPE
         : type == UV_TCP        ? CASYNC_TCP
                                 : 0;
  if (!kind) {
    lua_pushnil(L);
    casync__error_push(L, "io", type == UV_UNKNOWN_HANDLE ? "EBADF" : "ENOTSUP",
                       "stdio: fd %I is %s", fd,
                       type == UV_UNKNOWN_HANDLE ? "not open"
                                                 : "not a pipe, socket or tty");
    return 2;
  }
  flags = fcntl((int)fd, F_GETFL);
  s = casync__stream_new_fd(L, ctx, kind, (int)fd, &r);
  if (!s) {
    lua_pushnil(L);
    casync__error_uv(L, "stdio", r);
    return 2;
  }
  s->stdio_fd = (int)fd;
  s->stdio_flags = flags;
  lua_pushvalue(L, -1);
  lua_rawseti(L, 2, fd);
  return 1;
}

static int stdio_fd(lua_State *L, int fd) {
  lua_settop(L, 0);
  lua_pushinteger(L, fd);
  return fn_stdio(L);
}

/* casync.stdin() / stdout() / stderr() -> stream | nil, err */
static int fn_stdin(lua_State *L) { return stdio_fd(L, 0); }
static int fn_stdout(lua_State *L) { return stdio_fd(L, 1); }
static int fn_stderr(lua_State *L) { return stdio_fd(L, 2); }

void casync__stdio_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"stdin", fn_stdin},
                                 {"stdout", fn_stdout},
                                 {"stderr", fn_stderr},
                                 {NULL, NULL}};
  static const luaL_Reg stream_fns[] = {{"stdio", fn_stdio}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
  lua_getfield(L, -1, "stream");
  casync__ctx_setfuncs(L, stream_fns);
  lua_pop(L, 1);
}
