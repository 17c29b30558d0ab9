/* fs_whole.c: casync.fs.read_file and write_file, whole files in one call.
 * Each is a chain: open (fs_io.c: never blocking a pool thread for good),
 * read to the end or write everything, close.  A chain whose task stopped
 * waiting skips to the close, so it never keeps a descriptor.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fs.h"

static void closed(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "close", (int)res);
  casync__fs_finish(r);
}

/* Ends a chain: closes its descriptor first if it has one. */
static void chain_end(casync_fsreq *r) {
  if (r->fd < 0) casync__fs_finish(r);
  else casync__fs_close_fd(r, closed);
}

/* ============================================================ read_file */

static void rf_read(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "read", (int)res);
  else if (res > 0) {
    r->len += (size_t)res;
    if (!r->abandoned) {
      casync__fs_read_more(r, rf_read);
      return;
    }
  }
  chain_end(r); /* the end of the file, a failure, or nobody waits */
}

static void rf_opened(casync_fsreq *r, ssize_t res) {
  if (res < 0) {
    casync__fs_fail(r, "open", (int)res);
    casync__fs_finish(r);
    return;
  }
  if (r->abandoned) {
    chain_end(r);
    return;
  }
  /* room for the whole file and one more byte, to see the end in one read
   * more; a size of 0 (/proc, FIFOs) starts small and grows */
  if (r->ftype == S_IFREG && r->fsize > 0 && r->fsize < ((int64_t)1 << 40)) {
    size_t want = (size_t)r->fsize + 4096;
    r->buf = malloc(want);
    if (r->buf) r->cap = want;
  }
  casync__fs_read_more(r, rf_read);
}

/* casync.fs.read_file(path) -> string | nil, err: the whole file (for a
 * FIFO: what its writers write until the last one closes it) */
static int fn_read_file(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  casync_task *t = casync__wait_begin(L, "read_file");
  casync_fsreq *r;
  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), casync__fs_push_data, "read_file");
  r->path = strdup(p); /* the worker opens it after this call returns */
  if (!r->path) return luaL_error(L, "not enough memory");
  r->flags = O_RDONLY;
  casync__fs_open_fd(r, rf_opened);
  return casync__fs_wait(L, t, r, 2, casync__fs_k);
}

/* =========================================================== write_file */

static void wf_wrote(casync_fsreq *r, ssize_t res) {
  if (res < 0) casync__fs_fail(r, "write", (int)res);
  else {
    r->pos += (size_t)res;
    if (r->pos < r->len && !r->abandoned) {
      casync__fs_write_more(r, wf_wrote);
      return;
    }
  }
  chain_end(r);
}

static void wf_opened(casync_fsreq *r, ssize_t res) {
  if (res < 0) {
    casync__fs_fail(r, "open", (int)res);
    casync__fs_finish(r);
    return;
  }
  if (r->abandoned || r->len == 0) chain_end(r);
  else casync__fs_write_more(r, wf_wrote);
}

/* casync.fs.write_file(path, data [, opts]) -> true | nil, err: replaces
 * the file's contents with data (creating it, mode opts.mode or 0666 less
 * the umask), or appends with opts.append; a FIFO is waited on until it
 * has a reader */
static int fn_write_file(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int append = 0, mode = 0666;
  casync_task *t;
  casync_fsreq *r;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "append");
    append = lua_toboolean(L, -1);
    lua_pop(L, 1);
    mode = casync__fs_check_perm(L, 3, 1, 0666);
  }
  t = casync__wait_begin(L, "write_file");
  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), casync__fs_push_true, "write_file");
  r->path = strdup(p);
  /* a copy: a worker thread writes from it after the task may be gone */
  r->buf = malloc(len ? len : 1);
  if (!r->path || !r->buf) return luaL_error(L, "not enough memory");
  memcpy(r->buf, data, len);
  r->len = len;
  r->flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  r->mode = mode;
  casync__fs_open_fd(r, wf_opened);
  return casync__fs_wait(L, t, r, 4, casync__fs_k);
}

/* Adds read_file and write_file to the casync.fs table on top of L. */
void casync__fs_whole_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"read_file", fn_read_file}, {"write_file", fn_write_file}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
