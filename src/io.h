/* io.h: I/O on the loop: byte streams over TCP, pipes and stdio, servers,
 * name resolution, files, child processes and signals.  Layer 3: includes
 * prim.h. */
#ifndef CASYNC_IO_H
#define CASYNC_IO_H

#include "prim.h"

/* casync.fs (fs.c and the files fs.h lists) */
#define CASYNC_FILE_MT "casync.File"
void casync__fs_open(lua_State *L);
int casync__fs_fileno(lua_State *L, int idx);

/* signal.c, process.c */
void casync__signal_open(lua_State *L);
void casync__process_open(lua_State *L);

/* ------------------------------------------------------------ network
 * stream.c, stdio.c, server.c, tcp.c, pipe.c, dns.c; net.c has what they
 * share (addresses, options, the stats for tests). */
#define CASYNC_STREAM_MT "casync.Stream"
#define CASYNC_SERVER_MT "casync.Server"
typedef struct casync_stream casync_stream;
typedef struct casync_server casync_server;
typedef struct casync_tls casync_tls; /* tls.c: a stream's TLS layer */
typedef struct casync_tls_conf casync_tls_conf; /* tls_conf.c: its settings */

/* A stream status (s->rerr, a connect's or write's outcome) that is no
 * libuv error: the TLS layer failed, and says why (casync__stream_err). */
#define CASYNC_ETLS (-5000)

enum { CASYNC_TCP = 1, CASYNC_PIPE, CASYNC_TTY }; /* kinds of stream */

/* The libuv side of a stream: a handle block, freed when libuv closed it. */
struct casync_stream {
  casync_handle hd;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;
  void *ud; /* the Lua userdata, NULL once Lua let go */
  int kind;
  unsigned flags;
  char *rbuf; /* read buffer: bytes [rhead, rtail) of rcap */
  size_t rhead, rtail, rcap;
  size_t rscan; /* bytes already searched for the delimiter */
  int rerr;     /* sticky: UV_EOF or the read error, 0 = none */
  int rmode;    /* what the waiting reader needs: */
  size_t rn, rmax, dlen;
  const char *delim; /* (on the waiting reader's stack) */
  casync_task *reader, *writer, *shutter, *connecter; /* waiting tasks */
  void *wwait; /* the write request the writer waits on */
  uv_connect_t creq;
  uv_shutdown_t sreq;
  /* told when the stream closes (a server's connection) */
  void (*on_close)(casync_stream *s, void *arg);
  void *on_close_arg;
  /* a C owner that reads (the HTTP server's connections): called with
   * on_close_arg when bytes came or reading ended (s->rerr), instead of
   * waking a Lua reader; it parses [rhead, rtail) itself and calls
   * casync__stream_consume */
  void (*on_data)(casync_stream *s, void *arg);
  int stdio_fd, stdio_flags; /* fd 0-2: file flags to restore at close */
  casync_tls *tls;           /* the TLS layer, NULL for a plain stream */
};

/* net.c */
void casync__net_open(lua_State *L);
int casync__net_stats(lua_State *L);
double casync__net_opt_seconds(lua_State *L, int arg, const char *field);
lua_Integer casync__net_opt_int(lua_State *L, int arg, const char *field,
                                lua_Integer def);
int casync__net_push_addr(lua_State *L, const struct sockaddr *sa);
int casync__net_parse_ip(const char *host, int port,
                         struct sockaddr_storage *ss);
int casync__net_bind_addr(casync_ctx *ctx, const char *host, int port,
                          struct sockaddr_storage *ss);
int casync__net_resolve(lua_State *L, const char *fname, const char *host,
                        int port, struct sockaddr_storage *ss, lua_KFunction k,
                        lua_KContext kc);
int casync__net_lookup_addr(lua_State *L, int idx, int port,
                            struct sockaddr_storage *ss);
lua_Integer casync__net_check_port(lua_State *L, int arg);

/* stream.c */
casync_stream *casync__stream_new(lua_State *L, casync_ctx *ctx, int kind,
                                  int *uverr);
casync_stream *casync__stream_new_fd(lua_State *L, casync_ctx *ctx, int kind,
                                     int fd, int *uverr);
casync_stream *casync__stream_of(lua_State *L, int idx);
void casync__stream_close(casync_stream *s, int wake);
int casync__stream_connect(lua_State *L, casync_task *t, int sidx,
                           const struct sockaddr *addr, const char *path,
                           uint64_t deadline, lua_KFunction k, lua_KContext kc);
int casync__stream_connect_status(lua_State *L, int sidx);
int casync__stream_count(casync_ctx *ctx);
int casync__stream_err(lua_State *L, casync_stream *s, const char *op, int err);
void casync__stream_open(lua_State *L);
void casync__stream_consume(casync_stream *s, size_t n);
int casync__stream_read_start(casync_stream *s);
void casync__stream_read_stop(casync_stream *s);

/* stream_send.c: writes for a C owner.  done(arg, status) runs once libuv
 * has written (or failed: UV_ECANCELED when the stream closed) the part
 * the kernel did not take at once. */
typedef void (*casync_send_cb)(void *arg, int status);
int casync__stream_send(casync_stream *s, const uv_buf_t *bufs, unsigned n,
                        casync_send_cb done, void *arg);
size_t casync__stream_write_queue(casync_stream *s);
int casync__stream_shutdown(casync_stream *s, uv_shutdown_t *req,
                            uv_shutdown_cb cb);

/* tls.c, tls_conf.c, tls_lua.c: TLS (OpenSSL 3) as a layer inside a
 * stream: the reads, writes, shutdown and close of stream.c go through it,
 * so code on a TLS stream is the same as on a plain one. */
casync_tls_conf *casync__tls_conf(lua_State *L, int opts, int server,
                                  const char *fname);
int casync__tls_start(casync_stream *s, casync_tls_conf *c, const char *host);
int casync__tls_handshake(lua_State *L, casync_task *t, int sidx,
                          uint64_t deadline, lua_KFunction k, lua_KContext kc);
int casync__tls_handshake_result(lua_State *L, casync_task *t, int sidx,
                                 const char *op, double timeout);
int casync__tls_send(casync_stream *s, const uv_buf_t *bufs, unsigned n,
                     void (*done)(void *arg, int status), void *arg);
void casync__tls_shutdown(casync_stream *s);
int casync__tls_push_error(lua_State *L, casync_stream *s, const char *op);
extern const luaL_Reg casync__stream_tls_methods[];
void casync__tls_open(lua_State *L);

/* stdio.c */
void casync__stdio_open(lua_State *L);

/* server.c */
casync_server *casync__server_new(lua_State *L, casync_ctx *ctx, int kind,
                                  int hidx);
uv_stream_t *casync__server_handle(casync_server *srv);
int casync__server_listen(lua_State *L, casync_server *srv, int sidx,
                          int backlog, const char *path);
void casync__server_close(lua_State *L, casync_server *srv, int cancel);
/* Instead of a handler task per connection: hook(L, data, s, sidx) with
 * the new stream's userdata at sidx (protected, on the main thread). */
typedef void (*casync_accept_hook)(lua_State *L, void *data, casync_stream *s,
                                   int sidx);
void casync__server_set_accept(casync_server *srv, casync_accept_hook hook,
                               void *data);
int casync__server_count(casync_ctx *ctx);
void casync__server_open(lua_State *L);

/* tcp.c, connect.c, pipe.c, dns.c, udp.c */
int casync__tcp_connect(lua_State *L, casync_task *t, const char *host,
                        int port, uint64_t deadline, double timeout,
                        lua_KFunction k, lua_KContext kc);
int casync__tcp_listen(lua_State *L, const char *fname, const char *host,
                       int port, int hidx, int backlog, int workers);

/* workers.c: `workers = n` of tcp.listen and http.serve (worker processes
 * on one address, SO_REUSEPORT, a supervisor) */
int casync__workers_opt(lua_State *L, int opts);
int casync__workers_start(lua_State *L, casync_ctx *ctx, int n,
                          struct sockaddr_storage *ss, const char *fname);
int casync__tcp_bind(uv_tcp_t *tcp, const struct sockaddr_storage *ss);
void casync__workers_open(lua_State *L);
void casync__tcp_open(lua_State *L);
void casync__udp_open(lua_State *L);
void casync__pipe_open(lua_State *L);
int casync__dns_lookup(lua_State *L, casync_task *t, const char *host,
                       const char *service, int family, uint64_t deadline,
                       lua_KFunction k, lua_KContext kc);
struct addrinfo *casync__dns_result(lua_State *L, int idx, int *status);
void casync__dns_open(lua_State *L);

#endif
