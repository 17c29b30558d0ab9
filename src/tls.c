/* tls.c: TLS as a layer inside a casync stream, on OpenSSL 3 with memory
 * BIOs.  The stream's libuv handle carries ciphertext; its read buffer
 * holds plaintext, so read, read_line, peek and every reader built on the
 * buffer work unchanged; writes and shutdown go through here.
 *
 *   ciphertext in:  on_read -> casync__tls_input -> rbio -> SSL_read ->
 *                   the stream's buffer (plaintext) -> the waiting reader
 *   plaintext out:  write -> SSL_write -> wbio -> flush: uv_try_write,
 *                   the rest in a request of its own (tls_sreq)
 *
 * The engine is driven by events, not by a task: the handshake moves on
 * as bytes come in (a task may wait for its end: casync__tls_handshake),
 * so a C owner of the stream (the HTTP server) gets TLS the same way.  A
 * failure is sticky: the stream's rerr becomes CASYNC_ETLS and every read,
 * write and handshake wait gets an error of kind "tls" saying why.
 *
 * A large write is encrypted TLS_CHUNK bytes at a time, the next chunk
 * once libuv took the last one, so memory stays bounded; a write cancelled
 * half-way encrypts the rest at once (nothing may overtake it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tls.h"

#define TLS_CHUNK (64u * 1024u) /* plaintext encrypted per flush */
#define TLS_STAGE 16384u        /* small pieces are joined up to this */
#define TLS_READ 16384u         /* room made in the buffer per SSL_read */

/* A flush libuv holds: the ciphertext that did not go out at once. */
typedef struct tls_sreq {
  uv_write_t req;
  casync_stream *s;
  wreq *w;                             /* a Lua write to go on with, or NULL */
  void (*done)(void *arg, int status); /* a C owner's callback, or NULL */
  void *arg;
  char data[];
} tls_sreq;

int casync__tls_state(casync_stream *s) { return s->tls ? s->tls->state : 0; }

/* ============================================================ failures */

static void set_why(casync_tls *tl, const char *code, const char *fmt, ...) {
  va_list ap;
  tl->code = code;
  va_start(ap, fmt);
  vsnprintf(tl->why, sizeof tl->why, fmt, ap);
  va_end(ap);
}

/* Says why the peer's certificate was refused (client side). */
static void why_verify(casync_tls *tl, long vr) {
  const char *detail = X509_verify_cert_error_string(vr);
  switch (vr) {
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    set_why(tl, "UNKNOWN_CA", "certificate verify failed: unknown CA (%s)",
            detail);
    break;
  case X509_V_ERR_CERT_HAS_EXPIRED:
    set_why(tl, "CERT_EXPIRED",
            "certificate verify failed: the certificate "
            "has expired");
    break;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    set_why(tl, "CERT_NOT_YET_VALID",
            "certificate verify failed: the "
            "certificate is not valid yet");
    break;
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    set_why(tl, "HOSTNAME_MISMATCH",
            "certificate verify failed: wrong host "
            "name (the certificate is not for '%s')",
            tl->host);
    break;
  default: set_why(tl, "CERT_INVALID", "certificate verify failed: %s", detail);
  }
}

/* The layer failed: says why (from OpenSSL's error queue and the verify
 * result, or `code`/`msg` when given), makes it sticky, stops reading,
 * wakes whoever waits for the handshake and the waiting reader. */
static void tls_fail(casync_stream *s, const char *code, const char *msg) {
  casync_tls *tl = s->tls;
  unsigned long e = ERR_peek_error();
  long vr = SSL_get_verify_result(tl->ssl);
  int was_handshake = tl->state == TS_HANDSHAKE;
  if (tl->state == TS_FAILED) return;
  if (code) set_why(tl, code, "%s", msg);
  else if (!tl->server && tl->verify && vr != X509_V_OK) why_verify(tl, vr);
  else if (e) {
    const char *r = ERR_reason_error_string(e);
    int alert = r && strstr(r, "alert") != NULL;
    if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
      set_why(tl, "NO_CERTIFICATE", "the peer sent no certificate");
    else
      set_why(tl, alert ? "ALERT" : "PROTOCOL", "%s%s",
              alert ? "the peer refused: " : "", r ? r : "protocol error");
  } else set_why(tl, "PROTOCOL", "protocol error");
  ERR_clear_error();
  tl->state = TS_FAILED;
  s->rerr = CASYNC_ETLS;
  casync__stream_read_stop(s);
  if (was_handshake && s->connecter && CTX(s)->alive) {
    stream_ud *u = s->ud;
    if (u) u->cstatus = CASYNC_ETLS;
    casync__stream_wake_slot(s, &s->connecter);
    casync__stream_ref_handle(s, s->reader != NULL);
  }
  casync__stream_arrived(s); /* a waiting reader learns it too */
}

/* Pushes nil and the error of kind "tls" of the failed layer of s ("op:
 * why"); returns 2. */
int casync__tls_push_error(lua_State *L, casync_stream *s, const char *op) {
  casync_tls *tl = s->tls;
  lua_pushnil(L);
  casync__error_push(L, "tls", tl->code ? tl->code : "PROTOCOL", "%s: %s", op,
                     tl->code ? tl->why : "the TLS layer failed");
  return 2;
}

/* ============================================================= sending */

static void on_sent(uv_write_t *req, int status);

/* Sends what SSL put in wbio: what the kernel takes now, the rest in a
 * request (its w, done and arg set from the arguments).  Returns 0 when
 * all went out now, 1 when a request carries the rest, or a libuv error
 * (the bytes are dropped: the connection is broken). */
static int tls_flush(casync_stream *s, wreq *w, void (*done)(void *, int),
                     void *arg) {
  casync_tls *tl = s->tls;
  char *p;
  long len = BIO_get_mem_data(tl->wbio, &p);
  int n = 0, r;
  tls_sreq *q;
  uv_buf_t b;
  if (len <= 0) return 0;
  if (uv_is_closing(&s->u.h)) {
    (void)BIO_reset(tl->wbio);
    return UV_ECANCELED;
  }
  if (uv_stream_get_write_queue_size(&s->u.s) == 0) { /* keep the order */
    b = uv_buf_init(p, (unsigned)len);
    n = uv_try_write(&s->u.s, &b, 1);
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
      (void)BIO_reset(tl->wbio);
      return n;
    }
    if (n < 0) n = 0;
    if (n == len) {
      (void)BIO_reset(tl->wbio);
      return 0;
    }
  }
  q = malloc(sizeof *q + (size_t)(len - n));
  if (!q) {
    (void)BIO_reset(tl->wbio);
    return UV_ENOMEM;
  }
  memcpy(q->data, p + n, (size_t)(len - n));
  (void)BIO_reset(tl->wbio);
  q->s = s;
  q->w = w;
  q->done = done;
  q->arg = arg;
  b = uv_buf_init(q->data, (unsigned)(len - n));
  r = uv_write(&q->req, &s->u.s, &b, 1, on_sent);
  if (r < 0) {
    free(q);
    return r;
  }
  CTX(s)->requests++;
  return 1;
}

/* Flushes what the engine wrote on its own (handshake, alerts, key
 * updates): a failure is kept for the next write. */
static void flush_own(casync_stream *s) {
  int r = tls_flush(s, NULL, NULL, NULL);
  if (r < 0 && !s->tls->werr) s->tls->werr = r;
}

/* SSL_write of all n bytes (into the memory BIO: never partial). */
static int ssl_write_all(casync_stream *s, const char *p, size_t n) {
  casync_tls *tl = s->tls;
  ERR_clear_error();
  if (n == 0 || SSL_write(tl->ssl, p, (int)n) > 0) return 0;
  tls_fail(s, NULL, NULL);
  return CASYNC_ETLS;
}

/* Encrypts the next TLS_CHUNK bytes of w's plaintext (all of it when
 * `all`), small pieces joined into records of up to TLS_STAGE bytes. */
static int encrypt_some(casync_stream *s, wreq *w, int all) {
  size_t budget = all ? (size_t)-1 : TLS_CHUNK;
  char stage[TLS_STAGE];
  while (w->at < w->nbufs && budget > 0) {
    uv_buf_t *b = &w->bufs[w->at];
    size_t m = 0, k;
    if (b->len >= TLS_STAGE || w->at + 1 == w->nbufs) { /* directly */
      k = b->len < budget ? b->len : budget;
      if (ssl_write_all(s, b->base, k) < 0) return CASYNC_ETLS;
      b->base += k;
      b->len -= k;
      budget -= k;
      if (b->len == 0) w->at++;
      continue;
    }
    while (w->at < w->nbufs && m < TLS_STAGE) { /* join small pieces */
      b = &w->bufs[w->at];
      k = b->len < TLS_STAGE - m ? b->len : TLS_STAGE - m;
      memcpy(stage + m, b->base, k);
      m += k;
      b->base += k;
      b->len -= k;
      if (b->len == 0) w->at++;
    }
    if (ssl_write_all(s, stage, m) < 0) return CASYNC_ETLS;
    budget = budget > m ? budget - m : 0;
  }
  return 0;
}

/* Encrypts and sends w's plaintext from where it is: 0 when all of it
 * went out, 1 when a chunk waits in libuv (its callback goes on), or an
 * error. */
static int write_more(casync_stream *s, wreq *w) {
  casync_tls *tl = s->tls;
  int r;
  if (tl->state != TS_OPEN)
    return tl->state == TS_FAILED ? CASYNC_ETLS : UV_ENOTCONN;
  if (tl->werr) return tl->werr;
  while (w->at < w->nbufs) {
    if ((r = encrypt_some(s, w, 0)) < 0) return r;
    if ((r = tls_flush(s, w, NULL, NULL)) != 0) return r;
  }
  return 0;
}

static void on_sent(uv_write_t *req, int status) {
  tls_sreq *q = container_of(req, tls_sreq, req);
  casync_stream *s = q->s;
  wreq *w = q->w;
  CTX(s)->requests--;
  if (q->done) q->done(q->arg, status);
  free(q);
  if (status < 0 && s->tls && !s->tls->werr) s->tls->werr = status;
  if (!w) return;
  if (status == 0 && !uv_is_closing(&s->u.h) && CTX(s)->alive) {
    status = write_more(s, w);
    if (status == 1) return; /* the next chunk is on its way */
  }
  casync__stream_write_done(w, status);
}

/* Starts the Lua write w (stream_write.c): 0 when all of it went out, 1
 * when the writer must wait, or an error (CASYNC_ETLS: see the layer). */
int casync__tls_write_start(casync_stream *s, wreq *w) {
  return write_more(s, w);
}

/* The writer of w stopped waiting (cancelled, timed out): the rest of its
 * plaintext is encrypted and queued now, behind the chunk in flight. */
void casync__tls_write_abandon(wreq *w) {
  casync_stream *s = w->s;
  if (s->tls->state != TS_OPEN || w->at >= w->nbufs) return;
  if (encrypt_some(s, w, 1) == 0) flush_own(s);
  w->at = w->nbufs;
}

/* Writes bufs to the TLS stream s from C (the HTTP server's answers):
 * encrypted at once; returns 0 when the kernel took it all now (done is
 * not called), 1 when the rest is queued (done(arg, status) follows), or
 * an error (CASYNC_ETLS: the layer failed).  As casync__stream_send. */
int casync__tls_send(casync_stream *s, const uv_buf_t *bufs, unsigned n,
                     void (*done)(void *arg, int status), void *arg) {
  casync_tls *tl = s->tls;
  unsigned i;
  if (tl->state != TS_OPEN)
    return tl->state == TS_FAILED ? CASYNC_ETLS : UV_ENOTCONN;
  if (tl->werr) return tl->werr;
  for (i = 0; i < n; i++)
    if (ssl_write_all(s, bufs[i].base, bufs[i].len) < 0) return CASYNC_ETLS;
  return tls_flush(s, NULL, done, arg);
}

/* ============================================================= reading */

/* Moves the engine on with the ciphertext it has: the handshake, then
 * the plaintext into the stream's buffer. */
static void pump(casync_stream *s) {
  casync_tls *tl = s->tls;
  int r;
  if (tl->state == TS_HANDSHAKE) {
    ERR_clear_error();
    r = SSL_do_handshake(tl->ssl);
    flush_own(s); /* our part of the handshake, or an alert */
    if (r != 1) {
      if (SSL_get_error(tl->ssl, r) != SSL_ERROR_WANT_READ)
        tls_fail(s, NULL, NULL);
      return;
    }
    tl->state = TS_OPEN;
    if (s->connecter && CTX(s)->alive) {
      stream_ud *u = s->ud;
      if (u) u->cstatus = 0;
      casync__stream_wake_slot(s, &s->connecter);
      casync__stream_ref_handle(s, s->reader != NULL);
    }
  }
  while (tl->state == TS_OPEN && !s->rerr) {
    if (!casync__stream_reserve(s, TLS_READ)) {
      s->rerr = UV_ENOMEM;
      break;
    }
    ERR_clear_error();
    r = SSL_read(tl->ssl, s->rbuf + s->rtail, (int)(s->rcap - s->rtail));
    if (r > 0) {
      s->rtail += (size_t)r;
      continue;
    }
    switch (SSL_get_error(tl->ssl, r)) {
    case SSL_ERROR_WANT_READ: break;
    case SSL_ERROR_ZERO_RETURN: /* close_notify: the end of the stream */
      tl->shut_got = 1;
      s->rerr = UV_EOF;
      casync__stream_read_stop(s);
      break;
    default: tls_fail(s, NULL, NULL);
    }
    break;
  }
  if (tl->state == TS_OPEN) flush_own(s); /* a key update's answer */
}

/* on_read of a TLS stream: nread bytes of ciphertext at data (or the end,
 * or an error).  Returns 1 when the stream should look at its buffer. */
int casync__tls_input(casync_stream *s, ssize_t nread, const char *data) {
  casync_tls *tl = s->tls;
  if (nread == 0 || !CTX(s)->alive) return 0;
  if (nread < 0) {
    casync__stream_read_stop(s);
    if (tl->state == TS_HANDSHAKE)
      tls_fail(s, nread == UV_EOF ? "EOF" : "IO",
               nread == UV_EOF ? "the peer closed the connection during "
                                 "the handshake"
                               : uv_strerror((int)nread));
    else if (!s->rerr) /* no close_notify: the end all the same */
      s->rerr = (int)nread;
    return 1;
  }
  if (tl->state == TS_FAILED || s->rerr) return 0;
  if (BIO_write(tl->rbio, data, (int)nread) != (int)nread) {
    tls_fail(s, "NOMEM", "not enough memory");
    return 1;
  }
  pump(s);
  return 1;
}

/* ========================================================= the layer */

/* Puts a TLS layer with settings c on the open stream s and starts the
 * handshake (a client's hello goes out now): host is the name (or IP
 * address) the server's certificate must have and the SNI sent, NULL for
 * a server or without verification.  Bytes already buffered are taken as
 * the first ciphertext (STARTTLS).  Returns 0 or a libuv error. */
int casync__tls_start(casync_stream *s, casync_tls_conf *c, const char *host) {
  casync_tls *tl = calloc(1, sizeof *tl);
  struct sockaddr_storage ss;
  int r;
  if (!tl) return UV_ENOMEM;
  tl->ssl = SSL_new(c->ctx);
  tl->rbio = BIO_new(BIO_s_mem());
  tl->wbio = BIO_new(BIO_s_mem());
  if (!tl->ssl || !tl->rbio || !tl->wbio) {
    BIO_free(tl->rbio);
    BIO_free(tl->wbio);
    SSL_free(tl->ssl);
    free(tl);
    ERR_clear_error();
    return UV_ENOMEM;
  }
  BIO_set_mem_eof_return(tl->rbio, -1); /* empty: want more, not EOF */
  SSL_set_bio(tl->ssl, tl->rbio, tl->wbio);
  tl->server = (unsigned char)c->server;
  tl->verify = (unsigned char)(!c->server && c->verify);
  tl->state = TS_HANDSHAKE;
  if (c->server) SSL_set_accept_state(tl->ssl);
  else {
    SSL_set_connect_state(tl->ssl);
    if (host && *host) {
      int ip = casync__net_parse_ip(host, 0, &ss);
      snprintf(tl->host, sizeof tl->host, "%s", host);
      if (!ip) SSL_set_tlsext_host_name(tl->ssl, host); /* SNI: names only */
      if (tl->verify) {
        SSL_set_hostflags(tl->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tl->ssl), host);
        else SSL_set1_host(tl->ssl, host);
      }
    }
  }
  s->tls = tl;
  if (s->rtail > s->rhead) { /* read ahead before the switch */
    BIO_write(tl->rbio, s->rbuf + s->rhead, (int)(s->rtail - s->rhead));
    s->rhead = s->rtail = 0;
  }
  if (s->rerr) { /* the peer is gone already */
    tls_fail(s, "EOF", "the peer closed the connection before the handshake");
    return 0;
  }
  pump(s);
  if (tl->state == TS_HANDSHAKE && (r = casync__stream_read_start(s)) < 0)
    tls_fail(s, "IO", uv_strerror(r));
  return 0;
}

/* Sends close_notify (once), before the stream's shutdown. */
void casync__tls_shutdown(casync_stream *s) {
  casync_tls *tl = s->tls;
  if (tl->state != TS_OPEN || tl->shut_sent) return;
  tl->shut_sent = 1;
  ERR_clear_error();
  SSL_shutdown(tl->ssl);
  flush_own(s);
  ERR_clear_error();
}

/* The stream closes: close_notify if it can go out now without waiting. */
void casync__tls_close(casync_stream *s) {
  casync_tls *tl = s->tls;
  char *p;
  long len;
  if (tl->state != TS_OPEN || tl->shut_sent) return;
  tl->shut_sent = 1;
  ERR_clear_error();
  SSL_shutdown(tl->ssl);
  ERR_clear_error();
  len = BIO_get_mem_data(tl->wbio, &p);
  if (len > 0 && uv_stream_get_write_queue_size(&s->u.s) == 0) {
    uv_buf_t b = uv_buf_init(p, (unsigned)len);
    (void)uv_try_write(&s->u.s, &b, 1);
  }
  (void)BIO_reset(tl->wbio);
}

/* With the stream's block. */
void casync__tls_free(casync_tls *tl) {
  SSL_free(tl->ssl);
  free(tl);
}

/* ====================================================== the handshake */

/* A finished handshake is kept: the caller closes the stream on a
 * cancellation that came meanwhile. */
static const casync_wait_kind handshake_wait = {
    "handshake", "tls handshake", casync__stream_connect_cancel,
    CASYNC_WK_KEEPS | CASYNC_WK_EXTERNAL};

/* Suspends t until the handshake of the TLS stream at sidx is over (at
 * once if it is); k(kc) continues and reads the outcome with
 * casync__tls_handshake_result. */
int casync__tls_handshake(lua_State *L, casync_task *t, int sidx,
                          uint64_t deadline, lua_KFunction k, lua_KContext kc) {
  stream_ud *u = lua_touserdata(L, sidx);
  casync_stream *s = u->s;
  if (!s || s->tls->state != TS_HANDSHAKE) {
    t->wake = WAKE_OK;
    return k(L, LUA_OK, kc);
  }
  s->connecter = t;
  u->cstatus = ST_PENDING;
  casync__stream_ref_handle(s, 1);
  return casync__park(L, t, &handshake_wait, s, deadline, k, kc);
}

/* In the continuation: pushes the stream at sidx once its handshake is
 * done (1 result), or nil and why not (2; the stream is closed then: a
 * timeout, a cancellation that came meanwhile (raised), a TLS error). */
int casync__tls_handshake_result(lua_State *L, casync_task *t, int sidx,
                                 const char *op, double timeout) {
  stream_ud *u = lua_touserdata(L, sidx);
  casync_stream *s = u->s;
  int st;
  if (casync__woken(L, t) == WAKE_TIMEOUT) {
    if (s) casync__stream_close(s, 1);
    lua_pushnil(L);
    casync__timeout_error(L, op, timeout);
    return 2;
  }
  st = !s ? ST_CLOSED : s->tls->state == TS_OPEN ? 0 : CASYNC_ETLS;
  if (st == 0 && !(t->flags & TF_CANCEL_PENDING)) {
    lua_pushvalue(L, sidx);
    return 1;
  }
  if (st == CASYNC_ETLS) casync__tls_push_error(L, s, op);
  if (s) casync__stream_close(s, 1);
  if (t->flags & TF_CANCEL_PENDING) return casync__raise_cancel(L, t);
  if (st == CASYNC_ETLS) return 2;
  return casync__stream_closed_err(L, op);
}
