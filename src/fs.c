/* fs.c: casync.fs, files on libuv's fs requests (its thread pool): whole
 * files (read_file, write_file), stat/lstat, mkdir (also recursive), dir
 * (an iterator), rename, remove, unlink, rmdir, readlink, symlink,
 * copyfile, chmod; and the requests the file objects of file.c use.  Each
 * call suspends only the calling task; environmental failures return nil
 * and an error of kind "io" whose message names the operation and the
 * path.
 *
 * Ownership (STYLE 5): a request block (casync_fsreq) is libuv's from the
 * moment it is handed to uv_fs_* until its callback; after that it belongs
 * to a userdata on the waiting task's stack, whose continuation or __gc
 * frees it.  A task that stops waiting (cancelled) leaves the request to
 * finish: the callback frees the block when Lua has let go, and a chain
 * (read_file, write_file) first closes the descriptor it opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io.h"

#define FS_REQ_MT "casync.FsRequest"
#define FIRST_READ 65536u /* read_file of a file whose size stat cannot tell */

/* Steps of the chains. */
enum {
  S_OPEN = 1, S_FSTAT, S_READ, S_WRITE, S_CLOSE, /* read_file, write_file */
  S_MKDIR, S_STAT,                               /* mkdir -p */
  S_UNLINK, S_RMDIR                              /* remove */
};

typedef struct fs_ud fs_ud;

struct fs_ud {
  casync_fsreq *r; /* NULL once freed */
};

/* ================================================================ blocks */

void casync__fs_file_release(casync_file *f) {
  if (f->inflight > 0) return;
  if (f->closing && f->fd >= 0) {
    uv_fs_t req; /* synchronous: close(2) of a local file does not block */
    uv_fs_close(NULL, &req, f->fd, NULL);
    uv_fs_req_cleanup(&req);
    f->fd = -1;
  }
  if (f->lua_gone) free(f);
}

static void cleanup_req(casync_fsreq *r) {
  if (r->req_dirty) {
    uv_fs_req_cleanup(&r->req);
    r->req_dirty = 0;
  }
}

static void free_req(casync_fsreq *r) {
  cleanup_req(r);
  if (r->fd >= 0) { /* a chain abandoned before its close step */
    uv_fs_t req;
    uv_fs_close(NULL, &req, r->fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  if (r->file) {
    r->file->inflight--;
    casync__fs_file_release(r->file);
  }
  free(r->buf);
  free(r->path);
  casync__ctx_unref(r->lp);
  free(r);
}

static int req_gc(lua_State *L) {
  fs_ud *u = lua_touserdata(L, 1);
  casync_fsreq *r = u->r;
  if (!r) return 0;
  u->r = NULL;
  if (r->done) free_req(r);
  else { /* in libuv's hands: the callback frees it */
    r->ud = NULL;
    r->task = NULL;
    uv_cancel((uv_req_t *)&r->req);
  }
  return 0;
}

/* Pushes a new request userdata and returns its block; raises on memory. */
casync_fsreq *casync__fs_req(lua_State *L, casync_ctx *lp, int op) {
  fs_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  casync_fsreq *r;
  u->r = NULL;
  luaL_setmetatable(L, FS_REQ_MT);
  r = calloc(1, sizeof *r);
  if (!r) luaL_error(L, "not enough memory");
  r->lp = lp;
  lp->refs++; /* until the block is freed */
  lp->requests++; /* until it is done */
  r->op = op;
  r->fd = -1;
  r->offset = -1;
  r->req.data = r;
  r->ud = u;
  u->r = r;
  return r;
}

/* ============================================================ callbacks */

/* The operation ended (r->status set): wake the task or free the block. */
static void finish_req(casync_fsreq *r) {
  r->done = 1;
  r->lp->requests--;
  if (r->file) { /* the descriptor is free for close() now */
    r->file->inflight--;
    casync__fs_file_release(r->file);
    r->file = NULL;
  }
  if (!r->ud) {
    free_req(r);
    return;
  }
  if (r->task) {
    casync_task *t = r->task;
    r->task = NULL;
    casync__wake(r->lp, t, WAKE_OK);
  }
}

/* Records the first failure of a chain. */
static void fail(casync_fsreq *r, const char *op, int status) {
  if (r->status == 0) {
    r->status = status;
    r->failed_op = op;
  }
}

/* Starts the close step of a chain, or ends it if nothing is open. */
static void chain_close(casync_fsreq *r) {
  int rc;
  if (r->fd < 0) {
    finish_req(r);
    return;
  }
  r->step = S_CLOSE;
  r->req_dirty = 1;
  rc = uv_fs_close(r->req.loop, &r->req, r->fd, casync__fs_cb);
  r->fd = -1;
  if (rc < 0) {
    fail(r, "close", rc);
    finish_req(r);
  }
}

/* Issues the next read of read_file (or file:read("a")). */
int casync__fs_read_more(casync_fsreq *r) {
  uv_buf_t b;
  if (r->cap - r->len < 4096) { /* grow */
    size_t ncap = r->cap ? r->cap * 2 : FIRST_READ;
    char *nb = realloc(r->buf, ncap);
    if (!nb) return UV_ENOMEM;
    r->buf = nb;
    r->cap = ncap;
  }
  b = uv_buf_init(r->buf + r->len, (unsigned)(r->cap - r->len > 0x40000000u
                                                  ? 0x40000000u
                                                  : r->cap - r->len));
  r->step = S_READ;
  r->req_dirty = 1;
  return uv_fs_read(r->req.loop, &r->req,
                    r->file ? r->file->fd : r->fd, &b, 1,
                    r->offset >= 0 ? r->offset + (int64_t)r->len : -1,
                    casync__fs_cb);
}

int casync__fs_write_more(casync_fsreq *r) {
  uv_buf_t b;
  size_t left = r->len - r->pos;
  b = uv_buf_init(r->buf + r->pos, (unsigned)(left > 0x40000000u
                                                  ? 0x40000000u : left));
  r->step = S_WRITE;
  r->req_dirty = 1;
  return uv_fs_write(r->req.loop, &r->req,
                     r->file ? r->file->fd : r->fd, &b, 1,
                     r->offset >= 0 ? r->offset + (int64_t)r->pos : -1,
                     casync__fs_cb);
}

/* mkdir -p: makes the next component of the path (or ends). */
static int chain_mkdir(casync_fsreq *r) {
  size_t i = r->pdone;
  if (i >= r->plen) return 1; /* all made */
  while (i < r->plen && r->path[i] == '/') i++; /* skip separators */
  while (i < r->plen && r->path[i] != '/') i++;
  r->pdone = i;
  r->path[i] = '\0';
  r->step = S_MKDIR;
  r->req_dirty = 1;
  return uv_fs_mkdir(r->req.loop, &r->req, r->path, r->mode, casync__fs_cb);
}

/* Every fs callback: stores the result and goes on with a chain. */
void casync__fs_cb(uv_fs_t *req) {
  casync_fsreq *r = req->data;
  ssize_t res = req->result;
  int rc = 0;
  switch (r->op) {
  case FSOP_SIMPLE: /* results stay in req (scandir, readlink) until freed */
    if (res < 0) fail(r, r->failed_op, (int)res);
    else if (req->fs_type == UV_FS_OPEN)
      r->fd = (uv_file)res; /* free_req closes it unless a file takes it */
    if (req->fs_type == UV_FS_STAT || req->fs_type == UV_FS_LSTAT ||
        req->fs_type == UV_FS_FSTAT)
      r->st = req->statbuf;
    finish_req(r);
    return;

  case FSOP_FREAD:
  case FSOP_FWRITE:
    cleanup_req(r);
    if (res < 0) r->status = (int)res;
    else if (r->op == FSOP_FREAD) r->len = (size_t)res;
    else {
      r->pos += (size_t)res;
      /* a short write: write the rest, unless nobody waits any more */
      if (res > 0 && r->pos < r->len && r->ud && r->task &&
          (rc = casync__fs_write_more(r)) == 0)
        return;
      if (rc < 0) r->status = rc;
    }
    finish_req(r);
    return;

  case FSOP_FREAD_ALL:
    cleanup_req(r);
    if (res < 0) r->status = (int)res;
    else if (res > 0) {
      r->len += (size_t)res;
      if (r->ud && r->task) {
        if ((rc = casync__fs_read_more(r)) == 0) return;
        r->status = rc;
      }
    }
    finish_req(r);
    return;

  case FSOP_REMOVE:
    cleanup_req(r);
    /* unlink of a directory: EISDIR on Linux, EPERM by POSIX */
    if (r->step == S_UNLINK && (res == UV_EISDIR || res == UV_EPERM) && r->ud &&
        r->task) {
      r->step = S_RMDIR;
      r->req_dirty = 1;
      rc = uv_fs_rmdir(req->loop, req, r->path, casync__fs_cb);
      if (rc == 0) return;
      res = rc;
    }
    if (res < 0) fail(r, r->step == S_RMDIR ? "rmdir" : "remove", (int)res);
    finish_req(r);
    return;

  case FSOP_MKDIR_P:
    cleanup_req(r);
    if (r->step == S_MKDIR) {
      if (r->pdone < r->plen) r->path[r->pdone] = '/';
      if (res < 0 && res != UV_EEXIST) {
        fail(r, "mkdir", (int)res);
        finish_req(r);
        return;
      }
      if (r->ud && r->task && (rc = chain_mkdir(r)) <= 0) {
        if (rc == 0) return;
        fail(r, "mkdir", rc);
        finish_req(r);
        return;
      }
      if (!r->ud || !r->task) {
        finish_req(r);
        return;
      }
      /* all made, or already there: it must be a directory */
      r->step = S_STAT;
      r->req_dirty = 1;
      rc = uv_fs_stat(req->loop, req, r->path, casync__fs_cb);
      if (rc == 0) return;
      fail(r, "mkdir", rc);
      finish_req(r);
      return;
    }
    /* S_STAT */
    if (res < 0) fail(r, "mkdir", (int)res);
    else if (!S_ISDIR(req->statbuf.st_mode)) fail(r, "mkdir", UV_EEXIST);
    finish_req(r);
    return;

  case FSOP_READ_FILE:
  case FSOP_WRITE_FILE:
    cleanup_req(r);
    switch (r->step) {
    case S_OPEN:
      if (res < 0) {
        fail(r, "open", (int)res);
        finish_req(r);
        return;
      }
      r->fd = (uv_file)res;
      if (!r->ud || !r->task) {
        chain_close(r);
        return;
      }
      if (r->op == FSOP_READ_FILE) {
        r->step = S_FSTAT;
        r->req_dirty = 1;
        rc = uv_fs_fstat(req->loop, req, r->fd, casync__fs_cb);
        if (rc < 0) fail(r, "stat", rc), chain_close(r);
        return;
      }
      if (r->len == 0 || (rc = casync__fs_write_more(r)) == 0) {
        if (r->len == 0) chain_close(r);
        return;
      }
      fail(r, "write", rc);
      chain_close(r);
      return;
    case S_FSTAT:
      if (res < 0) {
        fail(r, "stat", (int)res);
        chain_close(r);
        return;
      }
      /* room for the whole file and one more byte, to see the end in one
       * read more; a size of 0 (/proc) starts small and grows */
      if (req->statbuf.st_size > 0 &&
          req->statbuf.st_size < ((uint64_t)1 << 40)) {
        size_t want = (size_t)req->statbuf.st_size + 4096;
        r->buf = malloc(want);
        if (r->buf) r->cap = want;
      }
      if (!r->ud || !r->task) {
        chain_close(r);
        return;
      }
      if ((rc = casync__fs_read_more(r)) < 0) {
        fail(r, "read", rc);
        chain_close(r);
      }
      return;
    case S_READ:
      if (res < 0) fail(r, "read", (int)res);
      else if (res > 0) {
        r->len += (size_t)res;
        if (r->ud && r->task) {
          if ((rc = casync__fs_read_more(r)) == 0) return;
          fail(r, "read", rc);
        }
      }
      chain_close(r);
      return;
    case S_WRITE:
      if (res < 0) fail(r, "write", (int)res);
      else {
        r->pos += (size_t)res;
        if (r->pos < r->len && r->ud && r->task) {
          if ((rc = casync__fs_write_more(r)) == 0) return;
          fail(r, "write", rc);
        }
      }
      chain_close(r);
      return;
    case S_CLOSE:
      if (res < 0) fail(r, "close", (int)res);
      finish_req(r);
      return;
    }
  }
  finish_req(r);
}

/* ============================================================== waiting */

static int fs_cancel(casync_ctx *lp, casync_task *t, int why) {
  casync_fsreq *r = t->wait_obj;
  (void)lp;
  (void)why;
  r->task = NULL;
  uv_cancel((uv_req_t *)&r->req); /* if a worker has not taken it yet */
  return 1;
}

/* A woken file operation is done: its result is kept. */
static const casync_wait_kind fs_wait = {"fs", "file operation", fs_cancel,
                                         CASYNC_WK_KEEPS};

/* Suspends the running task t until request r (its userdata at index ctx
 * of L) ends; rc is what starting it returned (< 0: it did not start, and
 * k runs at once).  Continues in k. */
int casync__fs_wait(lua_State *L, casync_task *t, casync_fsreq *r, int rc,
                    int ctx, const char *what, lua_KFunction k) {
  if (!r->failed_op) r->failed_op = what; /* the default name in errors */
  if (rc < 0) { /* no callback will come */
    fail(r, r->failed_op ? r->failed_op : what, rc);
    r->done = 1;
    r->lp->requests--;
    if (r->file) {
      r->file->inflight--;
      casync__fs_file_release(r->file);
      r->file = NULL;
    }
    t->wake = WAKE_OK;
    t->wait = &fs_wait;
    return k(L, LUA_OK, (lua_KContext)ctx);
  }
  r->task = t;
  return casync__park(L, t, &fs_wait, r, 0, k, (lua_KContext)ctx);
}

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

/* Pushes the table of a stat result. */
static void push_stat(lua_State *L, const uv_stat_t *s) {
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
}

static int push_dir_iter(lua_State *L, casync_fsreq *r);

/* Pushes the results of the request whose userdata is at ctx (the call's
 * arguments below it: a path at 1 for path functions, the file at 1 for
 * methods) and frees it; returns how many.  Failures push nil and the
 * error, whose message names the step that failed and the path. */
static int fs_results(lua_State *L, int ctx) {
  fs_ud *u = lua_touserdata(L, ctx);
  casync_fsreq *r = u->r;
  int n = 1;
  if (r->status < 0) {
    const char *op = r->failed_op ? r->failed_op : "fs";
    const char *path = NULL, *path2 = NULL;
    if (luaL_testudata(L, 1, CASYNC_FILE_MT)) {
      lua_getiuservalue(L, 1, 1);
      path = lua_tostring(L, -1);
    } else {
      path = lua_tostring(L, 1);
      if (ctx > 2 && lua_type(L, 2) == LUA_TSTRING &&
          (!strcmp(op, "rename") || !strcmp(op, "copyfile") ||
           !strcmp(op, "symlink")))
        path2 = lua_tostring(L, 2);
    }
    lua_pushnil(L);
    casync__error_uv_path(L, op, path, path2, r->status);
    n = 2;
  } else
    switch (r->op) {
    case FSOP_READ_FILE:
    case FSOP_FREAD_ALL:
      lua_pushlstring(L, r->buf ? r->buf : "", r->len);
      break;
    case FSOP_FREAD: /* nothing read: the end of the file */
      if (r->len == 0) lua_pushnil(L);
      else lua_pushlstring(L, r->buf, r->len);
      break;
    case FSOP_SIMPLE:
      switch (r->req.fs_type) {
      case UV_FS_STAT:
      case UV_FS_LSTAT:
      case UV_FS_FSTAT:
        push_stat(L, &r->st);
        break;
      case UV_FS_OPEN:
        casync__fs_push_file(L, r->fd, 1);
        r->fd = -1; /* the file has it */
        break;
      case UV_FS_SCANDIR:
        n = push_dir_iter(L, r);
        break;
      case UV_FS_READLINK:
        lua_pushstring(L, r->req.ptr ? (const char *)r->req.ptr : "");
        break;
      default:
        lua_pushboolean(L, 1);
      }
      break;
    default:
      lua_pushboolean(L, 1);
    }
  u->r = NULL;
  free_req(r);
  return n;
}

/* The continuation of every fs call but dir. */
int casync__fs_k(lua_State *L, int status, lua_KContext ctx) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, ctx, casync__fs_k);
  casync__woken(L, t);
  return fs_results(L, (int)ctx);
}

/* ================================================================ paths */

const char *casync__fs_check_path(lua_State *L, int arg) {
  size_t len;
  const char *p = luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, len > 0, arg, "path must not be empty");
  luaL_argcheck(L, strlen(p) == len, arg, "path contains a zero byte");
  return p;
}

/* A permission argument: an integer (0644 written as 420 or "644"/"0644")
 * or nil for def. */
int casync__fs_opt_perm(lua_State *L, int arg, int def) {
  int isnum;
  lua_Integer v;
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *s = lua_tostring(L, arg);
    char *end;
    long m = strtol(s, &end, 8);
    luaL_argcheck(L, *s && !*end && m >= 0 && m <= 07777, arg,
                  "mode must be octal digits like \"644\"");
    return (int)m;
  }
  v = lua_tointegerx(L, arg, &isnum);
  if (!isnum) luaL_typeerror(L, arg, "integer or octal string");
  luaL_argcheck(L, v >= 0 && v <= 07777, arg, "mode out of range");
  return (int)v;
}

/* Starts a one-call request on path at 1 (with the userdata pushed at
 * NARGS+1 by the caller); `what` names the operation. */
#define START_SIMPLE(L, nargs, what, call)                                  \
  do {                                                                      \
    casync_task *t_ = casync__wait_begin(L, what);                          \
    casync_fsreq *r_;                                                       \
    int rc_;                                                                \
    lua_settop(L, nargs);                                                   \
    r_ = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);                     \
    r_->req_dirty = 1;                                                      \
    rc_ = (call);                                                           \
    return casync__fs_wait(L, t_, r_, rc_, nargs + 1, what, casync__fs_k);  \
  } while (0)
#define LOOP(L) (CASYNC_CTX(L)->loop)

/* casync.fs.stat(path) -> table | nil, err: type ("file", "directory",
 * "link", ...), size, mode (permission bits), mtime/atime/ctime/birthtime
 * (seconds, float), nlink, uid, gid, dev, ino, rdev, blksize, blocks */
static int fn_stat(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "stat", uv_fs_stat(LOOP(L), &r_->req, p, casync__fs_cb));
}

/* casync.fs.lstat(path): stat that does not follow a final symbolic link */
static int fn_lstat(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "lstat", uv_fs_lstat(LOOP(L), &r_->req, p, casync__fs_cb));
}

/* casync.fs.rename(from, to) -> true | nil, err */
static int fn_rename(lua_State *L) {
  const char *from = casync__fs_check_path(L, 1);
  const char *to = casync__fs_check_path(L, 2);
  START_SIMPLE(L, 2, "rename",
               uv_fs_rename(LOOP(L), &r_->req, from, to, casync__fs_cb));
}

/* casync.fs.unlink(path) -> true | nil, err: removes a file (not a
 * directory) */
static int fn_unlink(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "unlink",
               uv_fs_unlink(LOOP(L), &r_->req, p, casync__fs_cb));
}

/* casync.fs.rmdir(path) -> true | nil, err: removes an empty directory */
static int fn_rmdir(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "rmdir", uv_fs_rmdir(LOOP(L), &r_->req, p, casync__fs_cb));
}

/* casync.fs.readlink(path) -> target | nil, err */
static int fn_readlink(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  START_SIMPLE(L, 1, "readlink",
               uv_fs_readlink(LOOP(L), &r_->req, p, casync__fs_cb));
}

/* casync.fs.symlink(target, path) -> true | nil, err */
static int fn_symlink(lua_State *L) {
  const char *target = casync__fs_check_path(L, 1);
  const char *p = casync__fs_check_path(L, 2);
  START_SIMPLE(L, 2, "symlink",
               uv_fs_symlink(LOOP(L), &r_->req, target, p, 0, casync__fs_cb));
}

/* casync.fs.copyfile(from, to) -> true | nil, err */
static int fn_copyfile(lua_State *L) {
  const char *from = casync__fs_check_path(L, 1);
  const char *to = casync__fs_check_path(L, 2);
  START_SIMPLE(L, 2, "copyfile",
               uv_fs_copyfile(LOOP(L), &r_->req, from, to, 0, casync__fs_cb));
}

/* casync.fs.chmod(path, mode) -> true | nil, err */
static int fn_chmod(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  int mode;
  luaL_checkany(L, 2);
  mode = casync__fs_opt_perm(L, 2, 0);
  START_SIMPLE(L, 2, "chmod",
               uv_fs_chmod(LOOP(L), &r_->req, p, mode, casync__fs_cb));
}

/* casync.fs.remove(path) -> true | nil, err: removes a file or an empty
 * directory (as os.remove does) */
static int fn_remove(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  casync_task *t = casync__wait_begin(L, "remove");
  casync_fsreq *r;
  int rc;

  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_REMOVE);
  r->path = strdup(p);
  if (!r->path) return luaL_error(L, "not enough memory");
  r->step = S_UNLINK;
  r->req_dirty = 1;
  rc = uv_fs_unlink(LOOP(L), &r->req, p, casync__fs_cb);
  return casync__fs_wait(L, t, r, rc, 2, "remove", casync__fs_k);
}

/* casync.fs.mkdir(path [, mode | opts]) -> true | nil, err: opts.mode
 * (default 0777, less the umask), opts.recursive (make the missing parents;
 * an existing directory is not an error then) */
static int fn_mkdir(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  int mode = 0777, recursive = 0, rc;
  casync_task *t;
  casync_fsreq *r;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "mode");
    mode = casync__fs_opt_perm(L, -1, 0777);
    lua_pop(L, 1);
    lua_getfield(L, 2, "recursive");
    recursive = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 2))
    mode = casync__fs_opt_perm(L, 2, 0777);
  t = casync__wait_begin(L, "mkdir");

  lua_settop(L, 2);
  if (!recursive) {
    r = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);
    r->req_dirty = 1;
    rc = uv_fs_mkdir(LOOP(L), &r->req, p, mode, casync__fs_cb);
    return casync__fs_wait(L, t, r, rc, 3, "mkdir", casync__fs_k);
  }
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_MKDIR_P);
  r->path = strdup(p);
  if (!r->path) return luaL_error(L, "not enough memory");
  r->plen = strlen(p);
  while (r->plen > 1 && r->path[r->plen - 1] == '/') r->path[--r->plen] = 0;
  r->mode = mode;
  r->req.loop = LOOP(L);
  rc = chain_mkdir(r);
  return casync__fs_wait(L, t, r, rc, 3, "mkdir", casync__fs_k);
}

/* ============================================================ whole files */

/* casync.fs.read_file(path) -> string | nil, err: the whole file */
static int fn_read_file(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  casync_task *t = casync__wait_begin(L, "read_file");
  casync_fsreq *r;
  int rc;

  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_READ_FILE);
  r->step = S_OPEN;
  r->req_dirty = 1;
  rc = uv_fs_open(LOOP(L), &r->req, p, O_RDONLY | O_CLOEXEC, 0, casync__fs_cb);
  if (rc < 0) r->failed_op = "open";
  return casync__fs_wait(L, t, r, rc, 2, "read_file", casync__fs_k);
}

/* casync.fs.write_file(path, data [, opts]) -> true | nil, err: replaces
 * the file's contents with data (creating it, mode opts.mode or 0666 less
 * the umask), or appends with opts.append */
static int fn_write_file(lua_State *L) {
  const char *p = casync__fs_check_path(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int append = 0, mode = 0666, rc;
  casync_task *t;
  casync_fsreq *r;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "append");
    append = lua_toboolean(L, -1);
    lua_getfield(L, 3, "mode");
    mode = casync__fs_opt_perm(L, -1, 0666);
    lua_pop(L, 2);
  }
  t = casync__wait_begin(L, "write_file");

  lua_settop(L, 3);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_WRITE_FILE);
  /* a copy: a worker thread writes from it after the task may be gone */
  r->buf = malloc(len ? len : 1);
  if (!r->buf) return luaL_error(L, "not enough memory");
  memcpy(r->buf, data, len);
  r->len = len;
  r->step = S_OPEN;
  r->req_dirty = 1;
  rc = uv_fs_open(LOOP(L), &r->req, p,
                  O_WRONLY | O_CREAT | O_CLOEXEC |
                      (append ? O_APPEND : O_TRUNC),
                  mode, casync__fs_cb);
  if (rc < 0) r->failed_op = "open";
  return casync__fs_wait(L, t, r, rc, 4, "write_file", casync__fs_k);
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
  n = fs_results(L, (int)ctx);
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
  int rc;

  lua_settop(L, 1);
  r = casync__fs_req(L, CASYNC_CTX(L), FSOP_SIMPLE);
  r->req_dirty = 1;
  rc = uv_fs_scandir(LOOP(L), &r->req, p, 0, casync__fs_cb);
  return casync__fs_wait(L, t, r, rc, 2, "dir", dir_k);
}

/* casync.fs._stats() -> nothing for now (kept for symmetry in tests) */

void casync__fs_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"read_file", fn_read_file}, {"write_file", fn_write_file},
    {"stat", fn_stat}, {"lstat", fn_lstat},
    {"mkdir", fn_mkdir}, {"dir", fn_dir}, {"rename", fn_rename},
    {"remove", fn_remove}, {"unlink", fn_unlink}, {"rmdir", fn_rmdir},
    {"readlink", fn_readlink}, {"symlink", fn_symlink},
    {"copyfile", fn_copyfile}, {"chmod", fn_chmod}, {NULL, NULL}};
  luaL_newmetatable(L, FS_REQ_MT);
  lua_pushcfunction(L, req_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  casync__file_open(L); /* fs.open and the files (file.c) */
  lua_setfield(L, -2, "fs");
}
