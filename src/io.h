/* io.h: I/O on the loop: byte streams over TCP, pipes and stdio, servers,
 * name resolution, files, child processes and signals.  Layer 3: includes
 * prim.h. */
#ifndef CASYNC_IO_H
#define CASYNC_IO_H

#include "prim.h"

/* fs.c, file.c: casync.fs (issue 5) */
#define CASYNC_FILE_MT "casync.File"

/* What a request does; chains go through several steps. */
enum {
  FSOP_SIMPLE = 1, /* one libuv call; results from req (stat, rename, ...) */
  FSOP_READ_FILE,
  FSOP_WRITE_FILE,
  FSOP_MKDIR_P,
  FSOP_REMOVE,
  FSOP_FREAD,  /* file:read */
  FSOP_FWRITE, /* file:write */
  FSOP_FREAD_ALL
};

/* The libuv side of an open file (file.c): freed when Lua let go and no
 * request uses it. */
typedef struct casync_file {
  uv_file fd;     /* -1 once closed */
  int inflight;   /* requests using fd */
  int closing;    /* close() was called (while requests were in flight) */
  int lua_gone;   /* the userdata was collected or closed */
} casync_file;

/* A request: libuv's from uv_fs_* until its callback, then its userdata's
 * (on the waiting task's stack). */
typedef struct casync_fsreq {
  uv_fs_t req;
  casync_ctx *lp;
  casync_task *task; /* the waiting task, NULL once it stopped waiting */
  struct fs_ud *ud;  /* the userdata owning it after the callback */
  int op, step;
  int done;          /* the operation (the whole chain) ended */
  int status;        /* 0 or the first libuv error */
  const char *failed_op; /* the step that failed ("open", "read", ...) */
  int req_dirty;     /* req needs uv_fs_req_cleanup */
  uv_file fd;        /* a chain's own descriptor, -1 when none */
  casync_file *file; /* file methods: the file (its inflight counted) */
  char *buf;         /* data read or to write (owned) */
  size_t len, cap, pos;
  int64_t offset;    /* file offset, -1 for the current position */
  int flags, mode;
  char *path;        /* chains: a copy of the path */
  size_t plen, pdone; /* mkdir -p: the prefix made so far */
  uv_stat_t st;
} casync_fsreq;

void casync__fs_open(lua_State *L);
casync_fsreq *casync__fs_req(lua_State *L, casync_ctx *lp, int op);
int casync__fs_wait(lua_State *L, casync_task *t, casync_fsreq *r, int rc,
                    int ctx, const char *what, lua_KFunction k);
int casync__fs_k(lua_State *L, int status, lua_KContext ctx);
int casync__fs_read_more(casync_fsreq *r);
int casync__fs_write_more(casync_fsreq *r);
void casync__fs_cb(uv_fs_t *req);
void casync__fs_file_release(casync_file *f);
const char *casync__fs_check_path(lua_State *L, int arg);
int casync__fs_opt_perm(lua_State *L, int arg, int def);
void casync__file_open(lua_State *L);
int casync__fs_push_file(lua_State *L, uv_file fd, int pidx);
int casync__fs_fileno(lua_State *L, int idx);

/* signal.c, process.c */
int casync__signal_number(lua_State *L, int arg);
const char *casync__signal_name(int signum);
void casync__signal_open(lua_State *L);
void casync__process_open(lua_State *L);

/* ------------------------------------------------------------ network
 * stream.c, stdio.c, server.c, tcp.c, pipe.c, dns.c; net.c has what they
 * share (addresses, options, the stats for tests). */
#define CASYNC_STREAM_MT "casync.Stream"
#define CASYNC_SERVER_MT "casync.Server"
typedef struct casync_stream casync_stream;
typedef struct casync_server casync_server;

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
  void *ud;                 /* the Lua userdata, NULL once Lua let go */
  int kind;
  unsigned flags;
  char *rbuf;               /* read buffer: bytes [rhead, rtail) of rcap */
  size_t rhead, rtail, rcap;
  size_t rscan;             /* bytes already searched for the delimiter */
  int rerr;                 /* sticky: UV_EOF or the read error, 0 = none */
  int rmode;                /* what the waiting reader needs: */
  size_t rn, rmax, dlen;
  const char *delim;        /* (on the waiting reader's stack) */
  casync_task *reader, *writer, *shutter, *connecter; /* waiting tasks */
  void *wwait;              /* the write request the writer waits on */
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

/* stream.c */
casync_stream *casync__stream_new(lua_State *L, casync_ctx *ctx, int kind,
                                  int *uverr);
casync_stream *casync__stream_new_fd(lua_State *L, casync_ctx *ctx, int kind,
                                     int fd, int *uverr);
casync_stream *casync__stream_of(lua_State *L, int idx);
void casync__stream_close(casync_stream *s, int wake);
int casync__stream_connect(lua_State *L, casync_task *t, int sidx,
                           const struct sockaddr *addr, const char *path,
                           uint64_t deadline, lua_KFunction k,
                           lua_KContext kc);
int casync__stream_connect_status(lua_State *L, int sidx);
int casync__stream_count(casync_ctx *ctx);
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

/* tcp.c, pipe.c, dns.c */
void casync__tcp_open(lua_State *L);
void casync__pipe_open(lua_State *L);
int casync__dns_lookup(lua_State *L, casync_task *t, const char *host,
                       const char *service, int family, uint64_t deadline,
                       lua_KFunction k, lua_KContext kc);
struct addrinfo *casync__dns_result(lua_State *L, int idx, int *status);
void casync__dns_open(lua_State *L);

#endif
