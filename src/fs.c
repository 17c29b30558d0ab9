/* fs.c: casync.fs, files on libuv's fs requests (its thread pool): the
 * table, and the operations that are one call each: stat/lstat, dir (an
 * iterator), rename, unlink, rmdir, readlink, symlink, copyfile, chmod.
 * The chains are elsewhere: read_file and write_file in fs_whole.c, mkdir
 * and remove in fs_tree.c, fs.open and the files in file.c; the request
 * they all use in fs_req.c, descriptors in fs_io.c.
 *
 * Each call suspends only the calling task; environmental failures return
 * nil and an error of kind "io" whose message names the operation and the
 * path; bad arguments raise.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fs.h"

#define LOOP(L) CASYNC_FS_LOOP(L)

/* ================================================================= stat */

static const char *type_name(uint64_t mode) {
  switch (mode & S_IFMT) {
  case S_IFREG: return "file";
  case S_IFDIR: return "directory";
  case S_IFLNK: return "link";
  case S_IFIFO: return "fifo";
  case S_IFSOCK: return "socket";
  case S_IFCHR: return "char";
  case S_IFBLK: return "block";
  default: return "unknown";
  }
}

static void set_num(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, uv_timespec_t ts) {
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

/* Pushes the table of the stat result in r's request. */
int casync__fs_push_stat(lua_State *L, casync_fsreq *r) {
  const uv_stat_t *s = &r->req.statbuf;
  lua_createtable(L, 0, 16);
  lua_pushstring(L, type_name(s->st_mode));
  lua_setfield(L, -2, "type");
  set_num(L, "size", (lua_Integer)s->st_size);
  set_num(L, "mode", (lua_Integer)(s->st_mode & 07777));
  set_num(L, "nlink", (lua_Integer)s->st_nlink);
  set_num(L, "uid", (lua_Integer)s->st_uid);
  set_num(L, "gid", (lua_Integer)s->st_gid);
  set_num(L, "dev", (lua_Integer)s->st_dev);
  set_num(L, "ino", (lua_Integer)s->st_ino);
  set_num(L, "rdev", (lua_Integer)s->st_rdev);
  set_num(L, "blksize", (lua_Integer)s->st_blksize);
  set_num(L, "blocks", (lua_Integer)s->st_blocks);
  set_time(L, "atime", s->st_atim);
  set_time(L, "mtime", s->st_mtim);
  set_time(L, "ctime", s->st_ctim);
  set_time(L, "birthtime", s->st_birthtim);
  return 1;
}

static int push_readlink(lua_State *L, casync_fsreq *r) {
  lua_pushstring(L, r->req.ptr ? (const char *)r->req.ptr : "");
  return 1;
}

/* ============================================================ one call */

/* Starts a one-call request (`call`, on the request STEP) with the
 * function's nargs arguments at 1..nargs, the request's userdata pushed
 * after them; `what` names the function. */
#define START_SIMPLE(L, nargs, what, push, call)                \
  do {                                                          \
    casync_task *t_ = casync__wait_begin(L, what);              \
    casync_fsreq *r_;                                           \
    lua_settop(L, nargs);                                       \
    r_ = casync__fs_req(L, CASYNC_CTX(L), push, what);          \
    casync__fs_started(r_, (call));                             \
    return casync__fs_wait(L, t_, r_, nargs + 1, casync__fs_k); \
  } while (0)
#define STEP (casync__fs_step(r_, casync__fs_simple_done))

/* casync.fs.stat(path) -> table | nil, err: type ("file", "directory",
 * "link", ...), size, mode (permission bits), mtime/atime/ctime/birthtime
 * (seconds, float), nlink, uid, gid, dev, ino, rdev, blksize, blocks */
static int fn_stat(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "stat", casync__fs_push_stat,
               uv_fs_stat(LOOP(L), STEP, p, casync__fs_cb));
}

/* casync.fs.lstat(path): stat that does not follow a final symbolic link */
static int fn_lstat(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "lstat", casync__fs_push_stat,
               uv_fs_lstat(LOOP(L), STEP, p, casync__fs_cb));
}

/* casync.fs.rename(from, to) -> true | nil, err */
static int fn_rename(lua_State *L) {
  const char *from = casync__fs_check_path(L, 1);
  const char *to = casync__fs_check_path(L, 2);
  START_SIMPLE(L, 2, "rename", casync__fs_push_true,
               uv_fs_rename(LOOP(L), STEP, from, to, casync__fs_cb));
}

/* casync.fs.unlink(path) -> true | nil, err: removes a file (not a
 * directory) */
static int fn_unlink(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "unlink", casync__fs_push_true,
               uv_fs_unlink(LOOP(L), STEP, p, casync__fs_cb));
}

/* casync.fs.rmdir(path) -> true | nil, err: removes an empty directory */
static int fn_rmdir(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "rmdir", casync__fs_push_true,
               uv_fs_rmdir(LOOP(L), STEP, p, casync__fs_cb));
}

/* casync.fs.readlink(path) -> target | nil, err */
static int fn_readlink(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "readlink", push_readlink,
               uv_fs_readlink(LOOP(L), STEP, p, casync__fs_cb));
}

/* casync.fs.symlink(target, path) -> true | nil, err */
static int fn_symlink(lua_State *L) {
  const char *target = casync__fs_check_path(L, 1);
  const char *p = casync__fs_check_path(L, 2);
  START_SIMPLE(L, 2, "symlink", casync__fs_push_true,
               uv_fs_symlink(LOOP(L), STEP, target, p, 0, casync__fs_cb));
}

/* casync.fs.chmod(path, mode) -> true | nil, err: mode an integer (0644
 * written as 420) or octal digits ("644"), required */
static int fn_chmod(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  int mode = casync__fs_check_perm(L, 2, 0, -1);
  START_SIMPLE(L, 2, "chmod", casync__fs_push_true,
               uv_fs_chmod(LOOP(L), STEP, p, mode, casync__fs_cb));
}

/* ============================================================= copyfile */

/* Copies only what cannot make the worker wait for good (fs_io.c says
 * why): a FIFO, a socket or a character device at either end is refused
 * (EINVAL).  A file swapped for one between the check and the copy is not
 * caught. */
static int copyable(const char *path) {
  struct stat st;
  return stat(path, &st) < 0 ||
         !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode));
}

static void copy_work(uv_work_t *w) {
  casync_fsreq *r = w->data;
  const char *to = r->path + r->plen + 1;
  uv_fs_t req;
  if (!copyable(r->path) || !copyable(to)) {
    r->wres = UV_EINVAL;
    return;
  }
  r->wres = uv_fs_copyfile(NULL, &req, r->path, to, 0, NULL);
  uv_fs_req_cleanup(&req);
}

static void copy_done(uv_work_t *w, int status) {
  casync_fsreq *r = w->data;
  r->active = NULL;
  casync__fs_simple_done(r, status < 0 ? status : r->wres);
}

/* casync.fs.copyfile(from, to) -> true | nil, err: copies a file (not a
 * FIFO, socket or character device) */
static int fn_copyfile(lua_State *L) {
  size_t l1, l2;
  const char *from = casync__fs_check_path(L, 1);
  const char *to = casync__fs_check_path(L, 2);
  casync_task *t = casync__wait_begin(L, "copyfile");
  casync_fsreq *r;
  lua_settop(L, 2);
  r = casync__fs_req(L, CASYNC_CTX(L), casync__fs_push_true, "copyfile");
  l1 = strlen(from);
  l2 = strlen(to);
  r->path = malloc(l1 + l2 + 2); /* from, then to: the worker's copies */
  if (!r->path) return luaL_error(L, "not enough memory");
  memcpy(r->path, from, l1 + 1);
  memcpy(r->path + l1 + 1, to, l2 + 1);
  r->plen = l1;
  r->active = (uv_req_t *)&r->work;
  r->must_run = 0;
  r->next = casync__fs_simple_done;
  casync__fs_started(r, uv_queue_work(LOOP(L), &r->work, copy_work, copy_done));
  return casync__fs_wait(L, t, r, 3, casync__fs_k);
}

/* ========================================================== directories */

/* The iterator of dir: upvalue 1 the array of names, 2 of types, 3 the
 * position. */
static int dir_next(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(3)) + 1;
  if (lua_rawgeti(L, lua_upvalueindex(1), i) == LUA_TNIL) return 1;
  lua_rawgeti(L, lua_upvalueindex(2), i);
  lua_pushinteger(L, i);
  lua_replace(L, lua_upvalueindex(3));
  return 2;
}

static const char *dirent_type(uv_dirent_type_t t) {
  switch (t) {
  case UV_DIRENT_FILE: return "file";
  case UV_DIRENT_DIR: return "directory";
  case UV_DIRENT_LINK: return "link";
  case UV_DIRENT_FIFO: return "fifo";
  case UV_DIRENT_SOCKET: return "socket";
  case UV_DIRENT_CHAR: return "char";
  case UV_DIRENT_BLOCK: return "block";
  default: return "unknown";
  }
}

/* Pushes dir's results: the iterator, nil, nil, nil (4 values). */
static int push_dir_iter(lua_State *L, casync_fsreq *r) {
  uv_dirent_t ent;
  lua_Integer n = 0;
  lua_newtable(L);
  lua_newtable(L);
  while (uv_fs_scandir_next(&r->req, &ent) != UV_EOF) {
    lua_pushstring(L, ent.name);
    lua_rawseti(L, -3, ++n);
    lua_pushstring(L, dirent_type(ent.type));
    lua_rawseti(L, -2, n);
  }
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, dir_next, 3);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushnil(L);
  return 4;
}

/* The continuation of dir: raises the error instead of returning it (dir
 * is used as `for name, type in fs.dir(p)`). */
static int dir_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t;
  int n;
  (void)status;
  CASYNC_RESUMED(L, t, ctx, dir_k);
  casync__woken(L, t);
  n = casync__fs_results(L, (int)ctx);
  if (n == 2 && lua_isnil(L, -2)) return lua_error(L);
  return n;
}

/* casync.fs.dir(path) -> iterator: `for name, type in casync.fs.dir(p)`
 * gives each entry but "." and "..", sorted by name, with its type
 * ("file", "directory", "link", ...; "unknown" where the file system does
 * not say).  The listing is read when dir is called; a failure raises the
 * error value (kind "io", code "ENOENT", ...). */
static int fn_dir(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  casync_task *t = casync__wait_begin(L, "dir");
  casync_fsreq *r;
  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), push_dir_iter, "dir");
  casync__fs_started(
      r, uv_fs_scandir(LOOP(L), casync__fs_step(r, casync__fs_simple_done), p,
                       0, casync__fs_cb));
  return casync__fs_wait(L, t, r, 2, dir_k);
}

/* casync.fs._stats() -> {blocks=}: request blocks not yet freed (for
 * tests: an abandoned request frees its block when it ends) */
static int fn_stats(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, CASYNC_CTX(L)->fs_blocks);
  lua_setfield(L, -2, "blocks");
  return 1;
}

/* Sets casync.fs in the table on top of L. */
void casync__fs_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"stat", fn_stat},         {"lstat", fn_lstat},
      {"dir", fn_dir},           {"rename", fn_rename},
      {"unlink", fn_unlink},     {"rmdir", fn_rmdir},
      {"readlink", fn_readlink}, {"symlink", fn_symlink},
      {"copyfile", fn_copyfile}, {"chmod", fn_chmod},
      {"_stats", fn_stats},      {NULL, NULL}};
  casync__fs_req_open(L);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  casync__fs_whole_open(L); /* read_file, write_file */
  casync__fs_tree_open(L);  /* mkdir, remove */
  casync__file_open(L);     /* open and the files */
  lua_setfield(L, -2, "fs");
}
