/* fs_io.c: descriptors for casync.fs: opening one, reading and writing it,
 * closing it, without ever letting a task that may wait forever hold one
 * of libuv's pool threads.
 *
 * Why: libuv runs file operations on a pool of four threads, shared with
 * DNS lookups.  A call that blocks for good there (open(2) of a FIFO that
 * has no writer, read(2) of a FIFO or a terminal with nothing to read)
 * keeps its thread: cancelling the task cannot take it back, and once four
 * are gone every fs call and lookup hangs and the process cannot exit
 * (libuv joins its threads at exit).  So casync never hands the pool a
 * call that may block for good:
 *  - every open is O_NONBLOCK: for a FIFO or a device it then returns at
 *    once; for a regular file, a directory or a block device the flag does
 *    nothing and is cleared again (unless the caller asked for it);
 *  - a FIFO, character device or socket is read and written by readiness:
 *    a uv_poll watcher on the loop, the read(2)/write(2) made on the loop's
 *    thread once it cannot block.  Waiting costs no thread, and a cancelled
 *    wait just stops;
 *  - opening a FIFO for writing while it has no reader (ENXIO) is tried
 *    again after a pause (1 ms, doubling up to 50 ms), as a blocking open
 *    waits for the reader; cancelling stops the pauses;
 *  - copyfile refuses such files (fs.c).
 * A device the loop cannot watch (epoll refuses /dev/null, /dev/zero)
 * answers at once, so it stays on the pool, in blocking mode.
 *
 * Each descriptor has at most one watcher (libuv allows no more), with a
 * queue of the requests waiting to read and one of those waiting to write,
 * served first come, first served.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fs.h"

#define NO_READER 1     /* wres: a FIFO opened to write has no reader yet */
#define RETRY_MAX_MS 50 /* the longest pause between those opens */
/* The most one read(2)/write(2) on the loop's thread moves: a device that
 * is always ready (/dev/urandom) must not hold the loop for long. */
#define POLL_CHUNK 65536u

struct casync_fspoll {
  casync_handle hd;
  uv_poll_t h;
  uv_file fd;
  int acc;                         /* O_RDONLY, O_WRONLY or O_RDWR */
  casync_fsreq *head[2], *tail[2]; /* waiting to read [0], to write [1] */
  int events;                      /* what h watches for */
};

/* What may block for good and can be watched for readiness instead. */
static int by_readiness(unsigned ftype) {
  return ftype == S_IFIFO || ftype == S_IFCHR || ftype == S_IFSOCK;
}

static void set_blocking(uv_file fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* =============================================================== opening */

static int open_eintr(const char *path, int flags, int mode) {
  int fd;
  while ((fd = open(path, flags, mode)) < 0 && errno == EINTR) continue;
  return fd;
}

static void open_work(uv_work_t *w) {
  casync_fsreq *r = w->data;
  struct stat st;
  int fd, e, flags = r->flags | O_CLOEXEC | O_NONBLOCK;
  fd = open_eintr(r->path, flags, r->mode);
  e = fd < 0 ? errno : 0;
  if ((e == EAGAIN || e == EWOULDBLOCK) && stat(r->path, &st) == 0 &&
      S_ISREG(st.st_mode)) {
    /* a lease another process holds: a blocking open waits (a bounded
     * time) for the kernel to break it */
    flags = (flags & ~O_NONBLOCK) | (r->flags & O_NONBLOCK);
    fd = open_eintr(r->path, flags, r->mode);
    e = fd < 0 ? errno : 0;
  }
  if (fd < 0) {
    if (e == ENXIO && (r->flags & O_ACCMODE) == O_WRONLY &&
        stat(r->path, &st) == 0 && S_ISFIFO(st.st_mode))
      r->wres = NO_READER;
    else r->wres = uv_translate_sys_error(e);
    return;
  }
  if (fstat(fd, &st) < 0) {
    r->wres = uv_translate_sys_error(errno);
    close(fd);
    return;
  }
  r->ftype = st.st_mode & S_IFMT;
  r->fsize = st.st_size;
  if (!by_readiness(r->ftype) && !(r->flags & O_NONBLOCK)) set_blocking(fd);
  r->fd = fd;
  r->wres = 0;
}

static void open_done(uv_work_t *w, int status);

static void open_submit(casync_fsreq *r) {
  r->active = (uv_req_t *)&r->work;
  r->must_run = 0;
  casync__fs_started(
      r, uv_queue_work(r->lp->loop, &r->work, open_work, open_done));
}

static void retry_fire(casync_ctx *lp, casync_tnode *n) {
  (void)lp;
  open_submit(container_of(n, casync_fsreq, retry));
}

static int watch(casync_fsreq *r);

static void open_done(uv_work_t *w, int status) {
  casync_fsreq *r = w->data;
  int res = status < 0 ? status : r->wres;
  r->active = NULL;
  if (res == NO_READER && !r->abandoned) {
    r->retry.fire = retry_fire;
    casync__timer_add(r->lp, &r->retry, r->retry_ms / 1e3);
    if ((r->retry_ms *= 2) > RETRY_MAX_MS) r->retry_ms = RETRY_MAX_MS;
    return;
  }
  if (res == NO_READER) res = UV_ECANCELED;
  if (res == 0 && by_readiness(r->ftype) && !r->abandoned && r->lp->alive &&
      watch(r) < 0 && !(r->flags & O_NONBLOCK))
    set_blocking(r->fd);
  r->next(r, res);
}

/* Opens r->path with the open flags r->flags and permissions r->mode;
 * next gets 0 (r->fd, r->poll, r->ftype and r->fsize set) or the error. */
void casync__fs_open_fd(casync_fsreq *r, casync_fs_next next) {
  r->next = next;
  r->retry_ms = 1;
  open_submit(r);
}

/* =============================================================== watching */

static void fspoll_free(casync_handle *h) {
  free(container_of(h, casync_fspoll, hd));
}

static const casync_hclass fspoll_class = {"fs poll", NULL, fspoll_free};

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches for what the first request of each queue waits for. */
static void update(casync_fspoll *p) {
  int ev = (p->head[0] ? UV_READABLE : 0) | (p->head[1] ? UV_WRITABLE : 0);
  if ((p->hd.hflags & CASYNC_H_CLOSING) || ev == p->events) return;
  p->events = ev;
  if (ev) uv_poll_start(&p->h, ev, on_poll);
  else uv_poll_stop(&p->h);
}

/* Gives r's descriptor a watcher; < 0 when the loop cannot watch it. */
static int watch(casync_fsreq *r) {
  casync_fspoll *p = calloc(1, sizeof *p);
  int rc;
  if (!p) return UV_ENOMEM;
  rc = uv_poll_init(r->lp->loop, &p->h, r->fd);
  if (rc < 0) {
    free(p);
    return rc;
  }
  p->fd = r->fd;
  rc = fcntl(r->fd, F_GETFL);
  p->acc = rc < 0 ? O_RDWR : rc & O_ACCMODE;
  casync__handle_init(r->lp, &p->hd, &fspoll_class, (uv_handle_t *)&p->h);
  r->poll = p;
  return 0;
}

static void unqueue(casync_fspoll *p, casync_fsreq *r) {
  casync_fsreq **pp = &p->head[r->pwrite], *prev = NULL;
  while (*pp != r) {
    prev = *pp;
    pp = &(*pp)->pnext;
  }
  *pp = r->pnext;
  if (p->tail[r->pwrite] == r) p->tail[r->pwrite] = prev;
  r->pnext = NULL;
  r->pollq = NULL;
  update(p);
}

/* Makes r's read or write, now that the descriptor said it is ready;
 * 0 when it would block after all. */
static int attempt(casync_fspoll *p, casync_fsreq *r, ssize_t *res) {
  ssize_t n;
  do {
    if (r->pwrite)
      n = r->poff >= 0 ? pwrite(p->fd, r->pbuf.base, r->pbuf.len, r->poff)
                       : write(p->fd, r->pbuf.base, r->pbuf.len);
    else
      n = r->poff >= 0 ? pread(p->fd, r->pbuf.base, r->pbuf.len, r->poff)
                       : read(p->fd, r->pbuf.base, r->pbuf.len);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  *res = n < 0 ? uv_translate_sys_error(errno) : n;
  return 1;
}

/* Serves the first request of queue q; status < 0: the watcher failed
 * (libuv stopped it), and a request that would still block gets that. */
static void serve(casync_fspoll *p, int q, int status) {
  casync_fsreq *r = p->head[q];
  ssize_t res = status;
  if (!r || (!attempt(p, r, &res) && status >= 0)) return;
  unqueue(p, r);
  r->next(r, res);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  casync_fspoll *p = container_of(h, casync_fspoll, h);
  if (status < 0) { /* libuv stopped watching: try both queues */
    p->events = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  if (events & UV_READABLE) serve(p, 0, status);
  /* a request's next step may have closed the descriptor */
  if (p->hd.hflags & CASYNC_H_CLOSING) return;
  if (events & UV_WRITABLE) serve(p, 1, status);
  if (!(p->hd.hflags & CASYNC_H_CLOSING)) update(p);
}

/* Ends every wait on p with ECANCELED (its file is being closed). */
void casync__fs_poll_flush(casync_fspoll *p) {
  int q;
  for (q = 0; q < 2; q++)
    while (p->head[q]) {
      casync_fsreq *r = p->head[q];
      unqueue(p, r);
      r->next(r, UV_ECANCELED);
    }
}

/* Closes watcher p (the descriptor stays open: its owner closes it, which
 * may be at once: uv_close stops the watching now). */
void casync__fs_poll_close(casync_fspoll *p) {
  casync__fs_poll_flush(p);
  casync__handle_close(&p->hd);
}

/* Ends r's wait for readiness or for a FIFO's reader with ECANCELED;
 * 0 when it waits for neither.  r may be freed on return. */
int casync__fs_abort_wait(casync_fsreq *r) {
  if (r->pollq) {
    unqueue(r->pollq, r);
    r->next(r, UV_ECANCELED);
    return 1;
  }
  if (r->retry.list) {
    casync__timer_remove(r->lp, &r->retry);
    r->next(r, UV_ECANCELED);
    return 1;
  }
  return 0;
}

/* ======================================================== reading, writing */

/* One read or write of r's descriptor (its file's, or its own); its
 * result goes to next. */
static void io(casync_fsreq *r, int wr, char *base, size_t len, int64_t off,
               casync_fs_next next) {
  casync_fspoll *p = r->file ? r->file->poll : r->poll;
  uv_file fd = r->file ? r->file->fd : r->fd;
  uv_buf_t b =
      uv_buf_init(base, (unsigned)(len > 0x40000000u ? 0x40000000u : len));
  int rc;
  if (p && p->acc == (wr ? O_RDONLY : O_WRONLY)) {
    next(r, UV_EBADF); /* as read(2) would say; readiness never would */
    return;
  }
  if (p) {
    if (b.len > POLL_CHUNK) b.len = POLL_CHUNK;
    r->next = next;
    r->pbuf = b;
    r->poff = off;
    r->pwrite = wr;
    r->pollq = p;
    r->pnext = NULL;
    if (p->tail[wr]) p->tail[wr]->pnext = r;
    else p->head[wr] = r;
    p->tail[wr] = r;
    update(p);
    return;
  }
  if (wr)
    rc = uv_fs_write(r->lp->loop, casync__fs_step(r, next), fd, &b, 1, off,
                     casync__fs_cb);
  else
    rc = uv_fs_read(r->lp->loop, casync__fs_step(r, next), fd, &b, 1, off,
                    casync__fs_cb);
  casync__fs_started(r, rc);
}

/* r->offset + done: where the next read or write goes (-1: at the file's
 * position). */
static int64_t at(casync_fsreq *r, size_t done) {
  if (r->offset < 0) return -1;
  return (uint64_t)r->offset + done > (uint64_t)INT64_MAX
             ? INT64_MAX
             : r->offset + (int64_t)done;
}

/* Reads once into the free part of r->buf. */
void casync__fs_read_into(casync_fsreq *r, casync_fs_next next) {
  io(r, 0, r->buf + r->len, r->cap - r->len, at(r, r->len), next);
}

/* Reads on to the end: grows r->buf when it is nearly full, then reads. */
void casync__fs_read_more(casync_fsreq *r, casync_fs_next next) {
  if (r->cap - r->len < 4096) {
    size_t ncap = r->cap ? r->cap * 2 : 65536u;
    char *nb = realloc(r->buf, ncap);
    if (!nb) {
      next(r, UV_ENOMEM);
      return;
    }
    r->buf = nb;
    r->cap = ncap;
  }
  casync__fs_read_into(r, next);
}

/* Writes what is left of r->buf (from r->pos). */
void casync__fs_write_more(casync_fsreq *r, casync_fs_next next) {
  io(r, 1, r->buf + r->pos, r->len - r->pos, at(r, r->pos), next);
}

/* Closes a chain's own descriptor on the pool (close(2) may report a
 * failed write, and may wait for a device's output to drain). */
void casync__fs_close_fd(casync_fsreq *r, casync_fs_next next) {
  uv_file fd = r->fd;
  uv_fs_t *req;
  if (r->poll) {
    casync__fs_poll_close(r->poll);
    r->poll = NULL;
  }
  r->fd = -1;
  req = casync__fs_step(r, next);
  r->must_run = 1; /* a close cancelled would leak the descriptor */
  casync__fs_started(r, uv_fs_close(r->lp->loop, req, fd, casync__fs_cb));
}
