/* stream.h: what the parts of casync.Stream share (stream.c: the block,
 * its lifecycle and the small methods; stream_read.c: the read buffer and
 * the reads; stream_write.c: writes, shutdown, connect).  Private to them:
 * other files use io.h's casync__stream_* functions. */
#ifndef CASYNC_STREAM_H
#define CASYNC_STREAM_H

#include "io.h"

#define SCRATCH_SIZE 65536u     /* one read(2) at most */
#define HWM (64u * 1024u)       /* read-ahead stops above this */
#define DEFAULT_READ 65536u     /* read() without n */
#define DEFAULT_MAX_LINE 65536u /* read_line / read_until limit */
#define MIN_DIRECT 4096u        /* read straight into the buffer's tail */
#define KEEP_BUF (64u * 1024u)  /* a drained buffer larger than this goes */
#define MAX_WRITE_BUFS 1024     /* write{...}: at most this many strings */

/* s->flags */
#define SF_READING 0x01u /* uv_read_start is on */
#define SF_SHUT 0x02u    /* shutdown requested */
#define SF_SHUT_DONE 0x04u
#define SF_CLOSING 0x08u /* uv_close called */
#define SF_WOKEN 0x10u   /* the waiting reader has been woken */
#define SF_REF 0x20u     /* the handle is ref'd (a reader waits) */

enum { R_SOME = 1, R_LINE, R_UNTIL, R_EXACT };
enum { ST_PENDING = 1, ST_CLOSED = 2 }; /* u->wstatus etc. besides 0/uverr */

/* The Lua side of a stream. */
typedef struct stream_ud {
  casync_stream *s;   /* NULL once closed */
  double timeout;     /* default per-operation timeout, < 0 for none */
  uint64_t rdeadline; /* the current read's deadline (ns), 0 for none */
  int wstatus, sstatus, cstatus; /* results for a waiting write, shutdown,
                                    connect */
  int kind;
} stream_ud;

/* A write handed to libuv (plain), or to the TLS layer. */
typedef struct wreq {
  uv_write_t req;
  casync_stream *s;
  casync_task *task;  /* the waiting writer, NULL once it stopped waiting */
  int ref;            /* anchor of the data (a string or a table) */
  uv_buf_t *bufs;     /* TLS: the plaintext not yet encrypted, */
  unsigned nbufs, at; /* from bufs[at] on */
} wreq;

static inline int casync__stream_closed_err(lua_State *L, const char *op) {
  lua_pushnil(L);
  casync__error_push(L, "closed", NULL, "%s: the stream was closed", op);
  return 2;
}

static inline int casync__stream_uv_err(lua_State *L, const char *op,
                                        int uverr) {
  lua_pushnil(L);
  casync__error_uv(L, op, uverr);
  return 2;
}

static inline int casync__stream_timeout_err(lua_State *L, const char *op,
                                             double seconds) {
  lua_pushnil(L);
  casync__timeout_error(L, op, seconds);
  return 2;
}

#define CTX(s) ((s)->hd.ctx)

/* stream.c */
casync_stream *casync__stream_check_open(lua_State *L, int idx,
                                         const char *fname);
double casync__stream_opt_timeout(lua_State *L, int arg);
size_t casync__stream_opt_count(lua_State *L, int arg, size_t def,
                                const char *what);
void casync__stream_ref_handle(casync_stream *s, int on);
void casync__stream_wake_slot(casync_stream *s, casync_task **slot);
int casync__stream_connect_cancel(casync_ctx *lp, casync_task *t, int why);
void casync__stream_describe(lua_State *L, casync_stream *s, const char *op);

/* stream_read.c: the buffer, for the TLS layer */
int casync__stream_reserve(casync_stream *s, size_t n);
void casync__stream_arrived(casync_stream *s);
int casync__stream_read_start(casync_stream *s);
void casync__stream_read_stop(casync_stream *s);

/* stream_write.c: a write is over (status 0 or an error) */
void casync__stream_write_done(wreq *w, int status);

/* tls.c: the TLS layer's side of the stream's reads, writes and close */
int casync__tls_input(casync_stream *s, ssize_t nread, const char *data);
int casync__tls_write_start(casync_stream *s, wreq *w);
void casync__tls_write_abandon(wreq *w);
void casync__tls_close(casync_stream *s);
void casync__tls_free(casync_tls *tl);

/* stream_read.c, stream_write.c: their methods */
extern const luaL_Reg casync__stream_read_methods[];
extern const luaL_Reg casync__stream_write_methods[];

#endif
