/* file.c: casync.fs.open and the file objects it returns (casync.File):
 * read (n bytes, or to the end, at an offset or the position), write,
 * seek, stat, sync, truncate, close (also __close and __gc).  The requests
 * are fs.c's; this file holds what is particular to an open descriptor.
 *
 * Ownership: the descriptor lives in a block of its own (casync_file),
 * shared by the userdata and the requests in flight on it, so close()
 * never closes a descriptor a worker thread is still using: the last
 * request to end closes it, and the last of them to let go frees it.
 * close() itself never suspends (close(2) of a local file does not block).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io.h"

#define DEFAULT_READ 65536u
#define LOOP(L) (CASYNC_CTX(L)->loop)

typedef struct file_ud {
  casync_file *f; /* NULL once closed */
} file_ud;

/* Pushes a file userdata for descriptor fd (user value: the path at pidx
 * of L). */
int casync__fs_push_file(lua_State *L, uv_file fd, int pidx) {
  file_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->f = NULL;
  luaL_setmetatable(L, CASYNC_FILE_MT);
  lua_pushvalue(L, pidx);
  lua_setiuservalue(L, -2, 1);
  u->f = calloc(1, sizeof *u->f);
  if (!u->f) {
    uv_fs_t req;
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
    return luaL_error(L, "not enough memory");
  }
  u->f->fd = fd;
  return 1;
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
  int flags, mode, rc;
  casync_task *t;
  casync_fsreq *r;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer v = luaL_checkinteger(L, 2);
    luaL_argcheck(L, v >= 0 && v <= 0x7fffffff, 2, "flags out of range");
    flags = (int)v;
  } else {
    flags = parse_flags(luaL_optstring(L, 2, "r"));
    luaL_argcheck(L, flags >= 0, 2, "invalid mode (\"r\", \"w\", \"a\", "
                  "\"r+\", \"w+\", \"a+\", with \"x\" or \"b\")");
  }
  mode = casync__fs_opt_perm(L, 3, 0666);
  t = casync__wait_begin(L, "open");

  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);
  r->req_dirty = 1;
  rc = uv_fs_open(LOOP(L), &r->req, p, flags | O_CLOEXEC, mode, casync__fs_cb);
  return casync__fs_wait(L, t, r, rc, 4, "open", casync__fs_k);
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

/* file:read([n [, offset]]) -> string | nil (end of file) | nil, err: up to
 * n bytes (default 65536) from offset, or from the current position (which
 * moves); n = "a" reads to the end ("" at the end) */
static int meth_read(lua_State *L) {
  file_ud *u = check_file(L, "read");
  int all = 0, rc;
  lua_Integer n = DEFAULT_READ;
  int64_t off = opt_offset(L, 3);
  casync_task *t;
  casync_fsreq *r;
  uv_buf_t b;
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
  r = casync__fs_req(L, CASYNC_CTX(L), all ? FSOP_FREAD_ALL : FSOP_FREAD);
  use_file(r, u);
  r->offset = off;
  r->req.loop = LOOP(L);
  if (all) rc = casync__fs_read_more(r);
  else {
    r->buf = malloc((size_t)n);
    if (!r->buf) return luaL_error(L, "not enough memory");
    r->cap = (size_t)n;
    b = uv_buf_init(r->buf, (unsigned)n);
    r->req_dirty = 1;
    rc = uv_fs_read(LOOP(L), &r->req, u->f->fd, &b, 1, off, casync__fs_cb);
  }
  return casync__fs_wait(L, t, r, rc, 4, "read", casync__fs_k);
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
  int rc;

  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_FWRITE);
  use_file(r, u);
  r->offset = off;
  r->req.loop = LOOP(L);
  r->buf = malloc(len ? len : 1);
  if (!r->buf) return luaL_error(L, "not enough memory");
  memcpy(r->buf, data, len);
  r->len = len;
  rc = casync__fs_write_more(r);
  return casync__fs_wait(L, t, r, rc, 4, "write", casync__fs_k);
}

/* file:stat() -> table | nil, err (as casync.fs.stat) */
static int meth_stat(lua_State *L) {
  file_ud *u = check_file(L, "stat");
  casync_task *t = casync__wait_begin(L, "stat");
  casync_fsreq *r;
  int rc;

  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);
  use_file(r, u);
  r->req_dirty = 1;
  rc = uv_fs_fstat(LOOP(L), &r->req, u->f->fd, casync__fs_cb);
  return casync__fs_wait(L, t, r, rc, 2, "stat", casync__fs_k);
}

/* file:sync() -> true | nil, err: flushes the file to the disk (fsync) */
static int meth_sync(lua_State *L) {
  file_ud *u = check_file(L, "sync");
  casync_task *t = casync__wait_begin(L, "sync");
  casync_fsreq *r;
  int rc;

  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);
  use_file(r, u);
  r->req_dirty = 1;
  rc = uv_fs_fsync(LOOP(L), &r->req, u->f->fd, casync__fs_cb);
  return casync__fs_wait(L, t, r, rc, 2, "sync", casync__fs_k);
}

/* file:truncate([size]) -> true | nil, err (size default 0) */
static int meth_truncate(lua_State *L) {
  file_ud *u = check_file(L, "truncate");
  lua_Integer size = luaL_optinteger(L, 2, 0);
  casync_task *t;
  casync_fsreq *r;
  int rc;
  luaL_argcheck(L, size >= 0, 2, "size must be non-negative");
  t = casync__wait_begin(L, "truncate");

  lua_settop(L, 2);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);
  use_file(r, u);
  r->req_dirty = 1;
  rc = uv_fs_ftruncate(LOOP(L), &r->req, u->f->fd, size, casync__fs_cb);
  return casync__fs_wait(L, t, r, rc, 3, "truncate", casync__fs_k);
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

/* Closes file u: now, or when its last request ends. */
static void close_file(file_ud *u) {
  casync_file *f = u->f;
  if (!f) return;
  u->f = NULL;
  f->closing = 1;
  f->lua_gone = 1;
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

void casync__file_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"read", meth_read}, {"write", meth_write}, {"seek", meth_seek},
    {"stat", meth_stat}, {"sync", meth_sync}, {"truncate", meth_truncate},
    {"close", meth_close}, {"closed", meth_closed}, {"fileno", meth_fileno},
    {NULL, NULL}};
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
