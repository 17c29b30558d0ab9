/* stream_send.c: writing to a casync stream from C, for owners that are
 * not Lua code (the HTTP server's connections): what the kernel takes at
 * once goes out without a copy, the rest is copied and handed to libuv,
 * and a callback says when it is written.  Lua's stream:write is
 * stream.c's.  Both go through the stream's libuv handle, so a layer below
 * the stream (TLS) sees every byte either way.
 */
#include <stdlib.h>
#include <string.h>
#include "io.h"

/* A write libuv holds: the request and a copy of the data. */
typedef struct sendreq {
  uv_write_t req;
  casync_send_cb done;
  void *arg;
  char data[];
} sendreq;

static void on_sent(uv_write_t *req, int status) {
  sendreq *w = container_of(req, sendreq, req);
  if (w->done) w->done(w->arg, status);
  free(w);
}

/* Writes bufs to s: returns 0 when the kernel took all of it now (done is
 * not called), 1 when the rest is queued (done(arg, status) follows), or a
 * libuv error (nothing queued).  done may be NULL. */
int casync__stream_send(casync_stream *s, const uv_buf_t *bufs, unsigned n,
                        casync_send_cb done, void *arg) {
  size_t total = 0, rest, off = 0, skip;
  unsigned i;
  int r;
  sendreq *w;
  uv_buf_t b;
  if (uv_is_closing(&s->u.h)) return UV_ECANCELED;
  if (s->tls) return casync__tls_send(s, bufs, n, done, arg); /* encrypts */
  for (i = 0; i < n; i++) total += bufs[i].len;
  if (total == 0) return 0;
  r = 0;
  if (uv_stream_get_write_queue_size(&s->u.s) == 0) { /* keep the order */
    r = uv_try_write(&s->u.s, bufs, n);
    if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) return r;
    if (r < 0) r = 0;
    if ((size_t)r == total) return 0;
  }
  rest = total - (size_t)r;
  w = malloc(sizeof *w + rest);
  if (!w) return UV_ENOMEM;
  skip = (size_t)r;
  for (i = 0; i < n; i++) { /* copy what did not go out */
    size_t k = skip > bufs[i].len ? bufs[i].len : skip;
    skip -= k;
    memcpy(w->data + off, bufs[i].base + k, bufs[i].len - k);
    off += bufs[i].len - k;
  }
  w->done = done;
  w->arg = arg;
  b = uv_buf_init(w->data, (unsigned)rest);
  r = uv_write(&w->req, &s->u.s, &b, 1, on_sent);
  if (r < 0) {
    free(w);
    return r;
  }
  return 1;
}

/* Bytes handed to libuv and not yet written (to see a peer that stops
 * reading). */
size_t casync__stream_write_queue(casync_stream *s) {
  return uv_stream_get_write_queue_size(&s->u.s);
}

/* Sends end-of-stream (after TLS's close_notify) once the pending writes
 * are out; cb as libuv's. */
int casync__stream_shutdown(casync_stream *s, uv_shutdown_t *req,
                            uv_shutdown_cb cb) {
  if (s->tls) casync__tls_shutdown(s);
  return uv_shutdown(req, &s->u.s, cb);
}
