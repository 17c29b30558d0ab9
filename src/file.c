/* file.c: casync.fs.open and the file objects it returns (casync.File):
 * read (n bytes, or to the end, at an offset or the position), write,
 * seek, stat, sync, truncate, close (also __close and __gc).  The requests
 * are fs_req.c's and the descriptor's I/O fs_io.c's; this file holds what is
 * particular to an open file.
 *
 * Ownership: the descriptor lives in a block of its own (casync_file),
 * shared by the userdata and the requests in flight on it, so close()
 * never closes a descriptor a worker thread is still using: the last
 * request to end closes it, and the last of them to let go frees it.
 * Requests waiting for a FIFO or a terminal to be ready are not in a
 * worker: close() ends them (ECANCELED) and closes at once.  close()
 * itself never suspends (close(2) of a local file does not block).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fs.h"

#define DEFAULT_READ 65536u
#define LOOP(L) CASYNC_FS_LOOP(L)

typedef struct file_ud {
  casync_file *f; /* NULL once closed */
} file_ud;

/* Closes f's descriptor once no request uses it and Lua closed it; frees
 * f once Lua let go too. */
void casync__fs_file_release(casync_file *f) {
  if (f->inflight > 0) return;
  if (f->closing && f->fd >= 0) {
    uv_fs_t req; /* synchronous: close(2) of a local file does not block */
    if (f->poll) casync__fs_poll_close(f->poll);
    f->poll = NULL;
    uv_fs_close(NULL, &req, f->fd, NULL);
    uv_fs_req_cleanup(&req);
    f->fd = -1;
  }
  if (f->lua_gone) free(f);
}

/* Pushes a file userdata for the descriptor request r opened, which it
 * takes from r (user value: the path at pidx of L). */
static int push_file(lua_State *L, casync_fsreq *r, int pidx) {
  file_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->f = NULL;
  luaL_setmetatable(L, CASYNC_FILE_MT);
  lua_pushvalue(L, pidx);
  lua_setiuservalue(L, -2, 1);
  u->f = calloc(1, sizeof *u->f);
  if (!u->f) return luaL_error(L, "not enough memory"); /* r closes fd */
  u->f->fd = r->fd;
  u->f->poll = r->poll;
  r->fd = -1;
  r->poll = NULL;
  return 1;
}

static int push_opened(lua_State *L, casync_fsreq *r) {
  return push_file(L, r, 1);
}

static void opened(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "open", (int)res);
  casync__fs_finish(r);
}

/* Parses an io.open-style mode ("r", "w", "a", "r+", "w+", "a+", with "b"
 * ignored and "x" for exclusive creation) into open flags; -1 if bad. */
static int parse_flags(const char *m) {
  int flags;
  switch (*m++) {
  case 'r': flags = O_RDONLY; break;
  case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
  case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
  default: return -1;
  }
  for (; *m; m++) {
    if (*m == '+') flags = (flags & ~(O_RDONLY | O_WRONLY)) | O_RDWR;
    else if (*m == 'x' && (flags & O_CREAT)) flags |= O_EXCL;
    else if (*m != 'b') return -1;
  }
  return flags;
}

/* casync.fs.open(path [, flags [, mode]]) -> file | nil, err: flags as
 * io.open's ("r" default, "w", "a", "r+", "w+", "a+", "x" for exclusive
 * creation) or an integer of O_* bits; mode the permissions of a created
 * file (default 0666 less the umask) */
static int fn_open(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  int flags, mode;
  casync_task *t;
  casync_fsreq *r;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer v = luaL_checkinteger(L, 2);
    luaL_argcheck(L, v >= 0 && v <= 0x7fffffff, 2, "flags out of range");
    flags = (int)v;
  } else {
    flags = parse_flags(luaL_optstring(L, 2, "r"));
    luaL_argcheck(L, flags >= 0, 2,
                  "invalid mode (\"r\", \"w\", \"a\", "
                  "\"r+\", \"w+\", \"a+\", with \"x\" or \"b\")");
  }
  mode = casync__fs_check_perm(L, 3, 0, 0666);
  t = casync__wait_begin(L, "open");
  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), push_opened, "open");
  r->path = strdup(p); /* the worker opens it after this call returns */
  if (!r->path) return luaL_error(L, "not enough memory");
  r->flags = flags;
  r->mode = mode;
  casync__fs_open_fd(r, opened);
  return casync__fs_wait(L, t, r, 4, casync__fs_k);
}

static file_ud *check_file(lua_State *L, const char *fname) {
  file_ud *u = luaL_checkudata(L, 1, CASYNC_FILE_MT);
  if (!u->f || u->f->closing)
    luaL_error(L, "%s: attempt to use a closed file", fname);
  return u;
}

/* An offset argument: a non-negative integer, or nil (-1: the current
 * position). */
static int64_t opt_offset(lua_State *L, int arg) {
  lua_Integer v;
  if (lua_isnoneornil(L, arg)) return -1;
  v = luaL_checkinteger(L, arg);
  luaL_argcheck(L, v >= 0, arg, "offset must be non-negative");
  return (int64_t)v;
}

/* Starts request r on file u (counted in flight). */
static void use_file(casync_fsreq *r, file_ud *u) {
  r->file = u->f;
  u->f->inflight++;
}

/* The results of read(n): the bytes, or nil at the end of the file. */
static int push_some(lua_State *L, casync_fsreq *r) {
  if (r->len == 0) lua_pushnil(L);
  else lua_pushlstring(L, r->buf, r->len);
  return 1;
}

static void read_some(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "read", (int)res);
  else r->len = (size_t)res;
  casync__fs_finish(r);
}

static void read_all(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "read", (int)res);
  else if (res > 0) {
    r->len += (size_t)res;
    if (!r->abandoned) {
      casync__fs_read_more(r, read_all);
      return;
    }
  }
  casync__fs_finish(r);
}

/* file:read([n [, offset]]) -> string | nil (end of file) | nil, err: up to
 * n bytes (default 65536) from offset, or from the current position (which
 * moves); n = "a" reads to the end ("" at the end) */
static int meth_read(lua_State *L) {
  file_ud *u = check_file(L, "read");
  int all = 0;
  lua_Integer n = DEFAULT_READ;
  int64_t off = opt_offset(L, 3);
  casync_task *t;
  casync_fsreq *r;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (*s == '*') s++;
    luaL_argcheck(L, *s == 'a', 2, "invalid format (a count or \"a\")");
    all = 1;
  } else if (!lua_isnoneornil(L, 2)) {
    n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 0x40000000, 2,
                  "count must be between 0 and 2^30");
  }
  t = casync__wait_begin(L, "read");
  if (n == 0 && !all) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), all ? casync__fs_push_data : push_some,
                     "read");
  use_file(r, u);
  r->offset = off;
  if (all) casync__fs_read_more(r, read_all);
  else {
    r->buf = malloc((size_t)n);
    if (!r->buf) return luaL_error(L, "not enough memory");
    r->cap = (size_t)n;
    casync__fs_read_into(r, read_some);
  }
  return casync__fs_wait(L, t, r, 4, casync__fs_k);
}

static void wrote(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "write", (int)res);
  else {
    r->pos += (size_t)res;
    /* a short write: write the rest, unless nobody waits any more */
    if (res > 0 && r->pos < r->len && !r->abandoned) {
      casync__fs_write_more(r, wrote);
      return;
    }
  }
  casync__fs_finish(r);
}

/* file:write(data [, offset]) -> true | nil, err: writes all of data at
 * offset, or at the current position (which moves; the end for a file
 * opened to append) */
static int meth_write(lua_State *L) {
  file_ud *u = check_file(L, "write");
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int64_t off = opt_offset(L, 3);
  casync_task *t = casync__wait_begin(L, "write");
  casync_fsreq *r;
  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), casync__fs_push_true, "write");
  use_file(r, u);
  r->offset = off;
  /* a copy: a worker thread writes from it after the task may be gone */
  r->buf = malloc(len ? len : 1);
  if (!r->buf) return luaL_error(L, "not enough memory");
  memcpy(r->buf, data, len);
  r->len = len;
  casync__fs_write_more(r, wrote);
  return casync__fs_wait(L, t, r, 4, casync__fs_k);
}

/* A one-call request on the file at 1: `call`, on the request STEP, with
 * the method's nargs arguments, the request's userdata pushed after them. */
#define START_FILE(L, u, nargs, what, push, call)               \
  do {                                                          \
    casync_task *t_ = casync__wait_begin(L, what);              \
    casync_fsreq *r_;                                           \
    lua_settop(L, nargs);                                       \
    r_ = casync__fs_req(L, CASYNC_CTX(L), push, what);          \
    use_file(r_, u);                                            \
    casync__fs_started(r_, (call));                             \
    return casync__fs_wait(L, t_, r_, nargs + 1, casync__fs_k); \
  } while (0)
#define STEP (casync__fs_step(r_, casync__fs_simple_done))

/* file:stat() -> table | nil, err (as casync.fs.stat) */
static int meth_stat(lua_State *L) {
  file_ud *u = check_file(L, "stat");
  START_FILE(L, u, 1, "stat", casync__fs_push_stat,
             uv_fs_fstat(LOOP(L), STEP, u->f->fd, casync__fs_cb));
}

/* file:sync() -> true | nil, err: flushes the file to the disk (fsync) */
static int meth_sync(lua_State *L) {
  file_ud *u = check_file(L, "sync");
  START_FILE(L, u, 1, "sync", casync__fs_push_true,
             uv_fs_fsync(LOOP(L), STEP, u->f->fd, casync__fs_cb));
}

/* file:truncate([size]) -> true | nil, err (size default 0) */
static int meth_truncate(lua_State *L) {
  file_ud *u = check_file(L, "truncate");
  lua_Integer size = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, size >= 0, 2, "size must be non-negative");
  START_FILE(L, u, 2, "truncate", casync__fs_push_true,
             uv_fs_ftruncate(LOOP(L), STEP, u->f->fd, size, casync__fs_cb));
}

/* file:seek([whence [, offset]]) -> position | nil, err: as io's seek
 * ("set", "cur" (default), "end"); never suspends (lseek does not block) */
static int meth_seek(lua_State *L) {
  static const char *const names[] = {"set", "cur", "end", NULL};
  static const int modes[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  file_ud *u = check_file(L, "seek");
  int op = luaL_checkoption(L, 2, "cur", names);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  off_t pos = lseek(u->f->fd, (off_t)off, modes[op]);
  if (pos < 0) {
    lua_getiuservalue(L, 1, 1);
    lua_pushnil(L);
    casync__error_uv_path(L, "seek", lua_tostring(L, -2), NULL,
                          uv_translate_sys_error(errno));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)pos);
  return 1;
}

/* Closes file u: now, or when its last request in a worker ends. */
static void close_file(file_ud *u) {
  casync_file *f = u->f;
  if (!f) return;
  u->f = NULL;
  f->closing = 1;
  f->lua_gone = 1;
  if (f->poll) { /* held, or the last wait to end would free f here */
    f->inflight++;
    casync__fs_poll_flush(f->poll);
    f->inflight--;
  }
  casync__fs_file_release(f);
}

/* file:close() -> true: closes it (never suspends: close(2) of a local
 * file does not block; with a read or write still in flight the descriptor
 * is closed when it ends).  Closing again does nothing.  Also __close and
 * __gc. */
static int meth_close(lua_State *L) {
  close_file(luaL_checkudata(L, 1, CASYNC_FILE_MT));
  lua_pushboolean(L, 1);
  return 1;
}

/* file:closed() -> boolean */
static int meth_closed(lua_State *L) {
  file_ud *u = luaL_checkudata(L, 1, CASYNC_FILE_MT);
  lua_pushboolean(L, u->f == NULL);
  return 1;
}

/* file:fileno() -> the descriptor (for casync.process.spawn's stdio) */
static int meth_fileno(lua_State *L) {
  file_ud *u = check_file(L, "fileno");
  lua_pushinteger(L, u->f->fd);
  return 1;
}

static int meta_tostring(lua_State *L) {
  file_ud *u = luaL_checkudata(L, 1, CASYNC_FILE_MT);
  lua_getiuservalue(L, 1, 1);
  if (u->f) lua_pushfstring(L, "casync.File (%s)", lua_tostring(L, -1));
  else lua_pushliteral(L, "casync.File (closed)");
  return 1;
}

/* The descriptor of the open casync file at idx, or -1 if it is not one. */
int casync__fs_fileno(lua_State *L, int idx) {
  file_ud *u = luaL_testudata(L, idx, CASYNC_FILE_MT);
  return u && u->f && !u->f->closing ? u->f->fd : -1;
}

/* Registers casync.File and adds open to the casync.fs table on top of L. */
void casync__file_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"read", meth_read},     {"write", meth_write},
      {"seek", meth_seek},     {"stat", meth_stat},
      {"sync", meth_sync},     {"truncate", meth_truncate},
      {"close", meth_close},   {"closed", meth_closed},
      {"fileno", meth_fileno}, {NULL, NULL}};
  luaL_newmetatable(L, CASYNC_FILE_MT);
  lua_newtable(L);
  casync__ctx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meth_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, meth_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  casync__ctx_setfuncs(L, (const luaL_Reg[]){{"open", fn_open}, {NULL, NULL}});
}
