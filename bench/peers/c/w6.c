#define _GNU_SOURCE /* memmem */
/* W6 HTTP "Hello, World!", plain C on libuv with a minimal parser: the
 * floor.  A request ends at the first "\r\n\r\n" (GET without a body, as
 * wrk sends); every request gets the same fixed keep-alive response.
 * Listens on 127.0.0.1:$BENCH_PORT (8080) until killed. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "\r\nHello, World!";

typedef struct conn {
  uv_tcp_t tcp;
  char buf[65536];
  size_t len;
} conn;

static void on_close(uv_handle_t *h) { free(h->data); }

static void on_write(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *c = h->data;
  (void)suggested;
  buf->base = c->buf + c->len;
  buf->len = sizeof c->buf - c->len;
}

static void respond(conn *c, int n) {
  uv_buf_t bufs[64];
  int i, total = 0, r;
  for (i = 0; i < n; i++) {
    bufs[i] = uv_buf_init((char *)RESPONSE, sizeof RESPONSE - 1);
    total += (int)sizeof RESPONSE - 1;
  }
  r = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)n);
  if (r == total) return;
  if (r < 0) r = 0;
  { /* the rest, from the static response (never changes) */
    uv_write_t *req = malloc(sizeof *req);
    int skip = r, first = 0;
    while (skip >= (int)bufs[first].len) skip -= (int)bufs[first++].len;
    bufs[first].base += skip;
    bufs[first].len -= (size_t)skip;
    uv_write(req, (uv_stream_t *)&c->tcp, bufs + first, (unsigned)(n - first),
             on_write);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  char *p, *end, *q;
  int n = 0;
  (void)buf;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  c->len += (size_t)nread;
  p = c->buf;
  end = c->buf + c->len;
  while (n < 64 && (q = memmem(p, (size_t)(end - p), "\r\n\r\n", 4))) {
    p = q + 4;
    n++;
  }
  if (n) respond(c, n);
  c->len = (size_t)(end - p);
  memmove(c->buf, p, c->len);
  if (c->len == sizeof c->buf) uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status) {
  conn *c;
  if (status < 0) return;
  c = calloc(1, sizeof *c);
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  } else
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  const char *port = getenv("BENCH_PORT");
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port ? atoi(port) : 8080, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)&server, 511, on_connection))
    return 1;
  return uv_run(loop, UV_RUN_DEFAULT);
}
