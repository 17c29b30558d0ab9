/* fs_tree.c: casync.fs.mkdir (also recursive) and remove, the operations
 * on the tree that may take more than one call: mkdir -p makes each
 * missing component, then checks the whole is a directory; remove unlinks,
 * and removes a directory when that is what it found.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fs.h"

#define LOOP(r) ((r)->lp->loop)

/* ============================================================== mkdir -p */

static void mk_made(casync_fsreq *r, ssize_t res);

static void mk_checked(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "mkdir", (int)res);
  else if (!S_ISDIR(r->req.statbuf.st_mode))
    casync__fs_fail(r, "mkdir", UV_EEXIST);
  casync__fs_finish(r);
}

/* Makes the next component of the path; once all are there, checks that
 * the path is a directory (what was there may have been a file). */
static void mk_next(casync_fsreq *r) {
  size_t i = r->pdone;
  if (i >= r->plen) {
    casync__fs_started(r, uv_fs_stat(LOOP(r), casync__fs_step(r, mk_checked),
                                     r->path, casync__fs_cb));
    return;
  }
  while (i < r->plen && r->path[i] == '/') i++; /* skip separators */
  while (i < r->plen && r->path[i] != '/') i++;
  r->pdone = i;
  r->path[i] = '\0'; /* the prefix made by this step */
  casync__fs_started(r, uv_fs_mkdir(LOOP(r), casync__fs_step(r, mk_made),
                                    r->path, r->mode, casync__fs_cb));
}

static void mk_made(casync_fsreq *r, ssize_t res) {
  if (r->pdone < r->plen) r->path[r->pdone] = '/';
  if (res < 0 && res != UV_EEXIST) {
    casync__fs_fail(r, "mkdir", (int)res);
    casync__fs_finish(r);
  } else if (r->abandoned) casync__fs_finish(r);
  else mk_next(r);
}

/* casync.fs.mkdir(path [, mode | opts]) -> true | nil, err: opts.mode
 * (default 0777, less the umask), opts.recursive (make the missing parents;
 * an existing directory is not an error then) */
static int fn_mkdir(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  int mode, recursive = 0;
  casync_task *t;
  casync_fsreq *r;
  if (lua_type(L, 2) == LUA_TTABLE) {
    mode = casync__fs_check_perm(L, 2, 1, 0777);
    lua_getfield(L, 2, "recursive");
    recursive = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else mode = casync__fs_check_perm(L, 2, 0, 0777);
  t = casync__wait_begin(L, "mkdir");
  lua_settop(L, 2);
  r = casync__fs_req(L, CASYNC_CTX(L), casync__fs_push_true, "mkdir");
  if (!recursive) {
    casync__fs_started(
        r, uv_fs_mkdir(LOOP(r), casync__fs_step(r, casync__fs_simple_done), p,
                       mode, casync__fs_cb));
    return casync__fs_wait(L, t, r, 3, casync__fs_k);
  }
  r->path = strdup(p);
  if (!r->path) return luaL_error(L, "not enough memory");
  r->plen = strlen(p);
  while (r->plen > 1 && r->path[r->plen - 1] == '/') r->path[--r->plen] = 0;
  r->mode = mode;
  mk_next(r);
  return casync__fs_wait(L, t, r, 3, casync__fs_k);
}

/* ================================================================ remove */

static void rm_rmdir_done(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "rmdir", (int)res);
  casync__fs_finish(r);
}

static void rm_unlinked(casync_fsreq *r, ssize_t res) {
  /* unlink of a directory: EISDIR on Linux, EPERM by POSIX */
  if ((res == UV_EISDIR || res == UV_EPERM) && !r->abandoned) {
    casync__fs_started(r,
                       uv_fs_rmdir(LOOP(r), casync__fs_step(r, rm_rmdir_done),
                                   r->path, casync__fs_cb));
    return;
  }
  if (res < 0) casync__fs_fail(r, "remove", (int)res);
  casync__fs_finish(r);
}

/* casync.fs.remove(path) -> true | nil, err: removes a file or an empty
 * directory (as os.remove does) */
static int fn_remove(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  casync_task *t = casync__wait_begin(L, "remove");
  casync_fsreq *r;
  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), casync__fs_push_true, "remove");
  r->path = strdup(p); /* for the rmdir step */
  if (!r->path) return luaL_error(L, "not enough memory");
  casync__fs_started(r, uv_fs_unlink(LOOP(r), casync__fs_step(r, rm_unlinked),
                                     p, casync__fs_cb));
  return casync__fs_wait(L, t, r, 2, casync__fs_k);
}

/* Adds mkdir and remove to the casync.fs table on top of L. */
void casync__fs_tree_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"mkdir", fn_mkdir}, {"remove", fn_remove}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
