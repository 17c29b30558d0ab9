/* http_server.h: what the HTTP server's three files share: the server
 * (http_server.c: serve, its methods, accepting), a connection (http_conn.c:
 * reading, parsing, timeouts, the request table, the request task) and an
 * answer (http_respond.c: the handler's result serialized and written).
 *
 * Ownership: a connection block is malloc'd per accepted stream and freed
 * once its stream has closed, its request task has ended and no write or
 * shutdown of its own is in flight.  The stream (stream.c, accepted by
 * server.c's listener) is owned by the connection: its userdata is anchored
 * until the connection closes it.  The server block stays until it is
 * closed and every connection block is gone.
 */
#ifndef CASYNC_HTTP_SERVER_H
#define CASYNC_HTTP_SERVER_H

#include "http.h"
#include "http_parse.h"

/* uv values of the request task's stack: [1 handler][2 req][3 conn]
 * [4 result][5 body] */
#define R_CONN 3
#define R_RESULT 4
#define R_BODY 5

/* c->flags */
#define CF_CLOSING 0x0001u   /* its stream is closing or closed */
#define CF_EOF 0x0004u       /* the peer sent FIN */
#define CF_RESPONDED 0x0008u /* the request task answered in full */
#define CF_SENT 0x0010u      /* some of the answer went out */
#define CF_CLOSE_AFTER 0x0020u
#define CF_HEAD 0x0040u        /* the request is a HEAD */
#define CF_HTTP10 0x0080u      /* ... an HTTP/1.0 one */
#define CF_CONTINUED 0x0100u   /* the body's own deadline is set */
#define CF_LINGER 0x0200u      /* answered and closing: reading to drop */
#define CF_STOPPED 0x0400u     /* reading paused (a handler runs, data waits) */
#define CF_KICK 0x0800u        /* buffered requests to go on with */
#define CF_REJECTED 0x1000u    /* over max_connections: answered 503 */
#define CF_CHUNKED 0x2000u     /* the answer's body is chunked */
#define CF_UPGRADED 0x4000u    /* handed to a WebSocket: not HTTP any more */
#define CF_COUNTED 0x8000u     /* counted in srv->nconn */
#define CF_ORPHAN 0x10000u     /* the Lua state is closing: free it when done */
#define CF_SCOPED 0x20000u     /* the request's scope is open (http_scope.c) */
#define CF_HANDLING 0x40000u   /* the handler runs (not yet the answer) */
#define CF_CUT 0x80000u        /* the request's scope cut it short */
#define CF_TIMED_OUT 0x100000u /* ... because request_timeout passed */
#define HTTP_MAX_ID 128        /* a longer X-Request-Id is replaced */

#define CF_PER_REQUEST                                                        \
  (CF_RESPONDED | CF_SENT | CF_HEAD | CF_HTTP10 | CF_CONTINUED | CF_CHUNKED | \
   CF_CUT | CF_TIMED_OUT)

enum { PH_DONE = 1, PH_NEXT }; /* what follows a finished write */

typedef struct hserver hserver;
typedef struct hconn hconn;

typedef struct hserver_ud {
  hserver *srv;   /* NULL once closed */
  hserver *block; /* NULL once the block is freed */
} hserver_ud;

#define HNAME_SLOTS 64

struct hserver {
  casync_server *lsn;   /* server.c's listener; NULL once closed */
  casync_tls_conf *tls; /* HTTPS: each connection's TLS settings */
  casync_ctx *ctx;
  hserver_ud *ud;   /* NULL once Lua let go */
  int pin_ref;      /* the userdata, while it listens */
  hconn *conns;     /* every connection block not yet freed */
  int nconn;        /* open connections (rejected ones not counted) */
  int blocks;       /* connection blocks, +1 until it is closed */
  hserver **ublock; /* the userdata's pointer to it, cleared when freed */
  lua_Integer max_conn;
  size_t max_head, max_body;
  unsigned max_headers;
  uint64_t header_ms, body_ms, idle_ms, write_ms;
  double request_s;   /* opts.request_timeout; 0: none */
  char id_prefix[12]; /* of the request ids it makes (random) */
  int64_t date_sec;   /* the Date header line, made once a second */
  char date[40];
  lua_Integer accepted, requests, rejected, bad;
  /* header names seen, by a hash of their bytes: each one's Lua string is
   * kept in the keys table (http_conn.c), so a request's header names are
   * not interned again */
  struct hname {
    uint8_t len;
    char name[31];
  } hnames[HNAME_SLOTS];
};

struct hconn {
  casync_stream *s; /* NULL once it closed */
  int sref;         /* anchor of the stream's userdata */
  hserver *srv;
  hconn *next, *prev;          /* in srv->conns until it closes */
  casync_hmsg msg;             /* the request being read */
  casync_task *task;           /* the request task, NULL between requests */
  casync_obs obs;              /* in that task's observers */
  casync_tnode timer;          /* fires at (or before) deadline */
  uint64_t deadline, timer_at; /* loop time, ms */
  unsigned flags;
  int inflight;        /* its writes and shutdown libuv still holds */
  casync_task *writer; /* the request task, while it waits for a write */
  int wstatus;         /* the last write's outcome */
  size_t wqueue;       /* bytes queued when the write timer was set */
  uv_shutdown_t sreq;
  casync_hbuf out;      /* the head of the answer */
  casync_cscope rscope; /* the request's scope (http_scope.c) */
  lua_Integer req_no;   /* the request's number on its server */
  size_t rid_len;       /* its X-Request-Id, when that is a plain token */
  char rid[HTTP_MAX_ID];
};

/* http_server.c */
const char *casync__hserver_date(hserver *srv);
void casync__hserver_unref(hserver *srv);

/* http_conn.c */
void casync__hconn_accept(lua_State *L, void *srv, casync_stream *s, int sidx);
void casync__hconn_close(hconn *c);
void casync__hconn_linger(hconn *c);
void casync__hconn_error(hconn *c, int status);
void casync__hconn_deadline(hconn *c, uint64_t ms);
void casync__hconn_push_keys(lua_State *L);
hconn *casync__hconn_of_task(casync_task *t);
casync_stream *casync__hconn_upgrade(lua_State *L, hconn *c);
void casync__hconn_release(hconn *c);
void casync__hconn_orphan(hconn *c);

/* http_scope.c */
int casync__hscope_request(lua_State *L);
void casync__hscope_gone(hconn *c, int reset);
void casync__hscope_drop(hconn *c);
int casync__hscope_sane_id(const char *v, size_t n);

/* http_respond.c */
int casync__hconn_send(hconn *c, uv_buf_t *bufs, unsigned n);
int casync__hresp_request_body(lua_State *L);

#endif
