/* http_parse.h: HTTP/1.x messages on llhttp (Node's parser, built from
 * Debian's node-llhttp sources), strict, with limits and RFC 9112's framing
 * rules, and the pieces of a serialized response head.  Shared by http.c,
 * the server (http_server.c, http_conn.c) and tests/fuzz_http.c; it needs
 * neither Lua nor libuv, which is why it is kept apart from internal.h (the
 * fuzz target links only this layer and llhttp).
 */
#ifndef CASYNC_HTTP_PARSE_H
#define CASYNC_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <llhttp.h>

/* A growable byte buffer. */
typedef struct casync_hbuf {
  char *data;
  size_t len, cap;
} casync_hbuf;

int casync__hbuf_reserve(casync_hbuf *b, size_t more); /* 0: no memory */
int casync__hbuf_add(casync_hbuf *b, const void *p, size_t n);
int casync__hbuf_adds(casync_hbuf *b, const char *s);
int casync__hbuf_addu(casync_hbuf *b, uint64_t v); /* decimal */
int casync__hbuf_addx(casync_hbuf *b, uint64_t v); /* lowercase hex */
void casync__hbuf_free(casync_hbuf *b);

/* One header: offsets into the message's head buffer.  Names are stored
 * lowercased; values as they came (http_parser drops surrounding spaces). */
typedef struct casync_hfield {
  uint32_t name, nlen, value, vlen;
} casync_hfield;

enum { HM_IDLE, HM_HEAD, HM_BODY, HM_DONE, HM_ERROR }; /* casync_hmsg.state */

/* Limits of one message (0 in a field: the default below). */
#define CASYNC_HTTP_MAX_HEAD (16u * 1024u) /* request line/status + headers */
#define CASYNC_HTTP_MAX_HEADERS 100u
#define CASYNC_HTTP_MAX_BODY (1u << 20) /* 1 MiB */

/* A message being parsed (a request or a response) and, once it is
 * complete, its parts.  The url (requests) or the reason phrase
 * (responses) is at offset 0 of `head`, the headers after it. */
typedef struct casync_hmsg {
  llhttp_t p;
  int type;        /* HTTP_REQUEST or HTTP_RESPONSE */
  int state;       /* HM_* */
  int status;      /* on HM_ERROR: the HTTP status that fits (400,
                      413, 414, 431, 501, 505) */
  const char *why; /* on HM_ERROR: what went wrong */
  size_t max_head, max_body;
  unsigned max_headers;
  size_t head_bytes; /* bytes of head seen so far */
  casync_hbuf head;
  uint32_t first_len; /* url / reason phrase, at offset 0 */
  casync_hfield *fields;
  unsigned nfields, cap_fields;
  casync_hbuf body;
  unsigned char in_value;   /* the last header callback was a value */
  unsigned char trailers;   /* headers after a chunked body: counted only */
  unsigned char skip_body;  /* a response to HEAD (set before feeding) */
  unsigned char keep_alive; /* known from the end of the head on */
  unsigned char chunked, upgrade, expect_continue, has_length;
  unsigned char both_lengths; /* a response with Content-Length and
                                 Transfer-Encoding: read as chunked, and
                                 the connection is not reused */
  const char *code;         /* on HM_ERROR: llhttp's error name, or casync's */
  const char *feed_at;      /* the bytes being fed, and how many came before */
  uint64_t fed, method_end; /* (where the method ended, in those terms) */
  uint64_t value_end;       /* (where the last value piece ended) */
} casync_hmsg;

void casync__hmsg_init(casync_hmsg *m, int type, size_t max_head,
                       size_t max_body, unsigned max_headers);
void casync__hmsg_reset(casync_hmsg *m); /* for the next message */
void casync__hmsg_free(casync_hmsg *m);
/* Feeds bytes; returns how many were used.  It stops after a complete
 * message (state HM_DONE: the rest belongs to the next one) or on an
 * error (HM_ERROR).  Feeding a message in HM_DONE or HM_ERROR uses
 * nothing. */
size_t casync__hmsg_feed(casync_hmsg *m, const char *data, size_t len);
/* The peer ended the stream: completes a body that runs to the end of the
 * stream (responses without a length), or fails a message cut short.
 * Returns the new state. */
int casync__hmsg_eof(casync_hmsg *m);
/* The value of header `name` (lowercase), or NULL; *len its length. */
const char *casync__hmsg_header(const casync_hmsg *m, const char *name,
                                size_t *len);

/* The name of an llhttp method number ("GET"), or NULL. */
const char *casync__http_method_name(int method);

/* Response heads. */
const char *casync__http_reason(int status);
/* A header name is a token; a value has no CR, LF or NUL. */
int casync__http_valid_name(const char *s, size_t n);
int casync__http_valid_value(const char *s, size_t n);
int casync__http_status_line(casync_hbuf *b, int status, const char *reason);
/* Appends "name: value\r\n"; 0 (nothing appended) if either is invalid or
 * memory ran out. */
int casync__http_header(casync_hbuf *b, const char *name, size_t nlen,
                        const char *value, size_t vlen);
/* The IMF-fixdate of t (29 characters and a NUL). */
void casync__http_date(char out[30], int64_t t);

#endif
