/* http_parse.c: HTTP/1.x messages parsed by http_parser (Debian's
 * libhttp-parser) into a casync_hmsg: the request line or status, the
 * headers (names lowercased) and the body (chunked bodies decoded), with
 * limits that map to the HTTP status a server should answer (400, 413,
 * 414, 431).  Also the small pieces of a response head.  No Lua, no libuv:
 * the server (http_server.c), the Lua parser objects (http.c) and the fuzz
 * target (tests/fuzz_http.c) share it.  It does not parse HTTP itself;
 * every byte of syntax goes through http_parser.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"

#define KEEP_CAP                                                               \
  (64u * 1024u) /* buffers larger than this are freed on reset                 \
                 */

/* ============================================================== buffers */

int casync__hbuf_reserve(casync_hbuf *b, size_t more) {
  size_t cap;
  char *nd;
  if (b->cap - b->len >= more) return 1;
  if (more > SIZE_MAX / 2 - b->len) return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < b->len + more)
    cap *= 2;
  nd = realloc(b->data, cap);
  if (!nd) return 0;
  b->data = nd;
  b->cap = cap;
  return 1;
}

int casync__hbuf_add(casync_hbuf *b, const void *p, size_t n) {
  if (!casync__hbuf_reserve(b, n)) return 0;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

int casync__hbuf_adds(casync_hbuf *b, const char *s) {
  return casync__hbuf_add(b, s, strlen(s));
}

int casync__hbuf_addu(casync_hbuf *b, uint64_t v) {
  char tmp[24], *p = tmp + sizeof tmp;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return casync__hbuf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

int casync__hbuf_addx(casync_hbuf *b, uint64_t v) {
  char tmp[20], *p = tmp + sizeof tmp;
  do {
    *--p = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  return casync__hbuf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

void casync__hbuf_free(casync_hbuf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Empties b, freeing it if it grew large (one huge message should not pin
 * its memory for the rest of a keep-alive connection). */
static void hbuf_clear(casync_hbuf *b) {
  if (b->cap > KEEP_CAP) casync__hbuf_free(b);
  b->len = 0;
}

/* ============================================================ callbacks */

/* Marks m failed with an HTTP status; returns 1 (stops http_parser). */
static int fail(casync_hmsg *m, int status, const char *why) {
  m->state = HM_ERROR;
  m->status = status;
  m->why = why;
  return 1;
}

/* Counts n more bytes of head against the limit. */
static int count_head(casync_hmsg *m, size_t n) {
  m->head_bytes += n;
  if (m->head_bytes > m->max_head)
    return fail(m, m->type == HTTP_REQUEST && m->nfields == 0 ? 414 : 431,
                m->nfields == 0 && m->type == HTTP_REQUEST
                    ? "request target too long"
                    : "header section too large");
  return 0;
}

static int on_message_begin(http_parser *p) {
  casync_hmsg *m = p->data;
  m->state = HM_HEAD;
  return 0;
}

/* The url of a request or the reason phrase of a response: first in the
 * head buffer, before any header. */
static int on_first(http_parser *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  if (count_head(m, n)) return 1;
  if (!casync__hbuf_add(&m->head, at, n)) return fail(m, 500, "out of memory");
  m->first_len += (uint32_t)n;
  return 0;
}

/* Drops the blanks that end the last value (http_parser keeps them; they
 * are not part of it: RFC 9110, 5.5). */
static void trim_last(casync_hmsg *m) {
  casync_hfield *f;
  if (m->nfields == 0 || m->trailers) return;
  f = &m->fields[m->nfields - 1];
  while (f->vlen > 0 && (m->head.data[f->value + f->vlen - 1] == ' ' ||
                         m->head.data[f->value + f->vlen - 1] == '\t'))
    f->vlen--;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  casync_hfield *f;
  size_t i;
  int fresh = m->nfields == 0 || m->in_value;
  if (count_head(m, n + (fresh ? 4 : 0))) return 1;
  if (m->trailers) { /* trailer fields are counted, not kept */
    m->in_value = 0;
    return 0;
  }
  if (fresh) {
    trim_last(m);
    if (m->nfields >= m->max_headers)
      return fail(m, 431, "too many header fields");
    if (m->nfields == m->cap_fields) {
      unsigned cap = m->cap_fields ? m->cap_fields * 2 : 16;
      casync_hfield *nf = realloc(m->fields, cap * sizeof *nf);
      if (!nf) return fail(m, 500, "out of memory");
      m->fields = nf;
      m->cap_fields = cap;
    }
    f = &m->fields[m->nfields++];
    f->name = (uint32_t)m->head.len;
    f->nlen = f->value = f->vlen = 0;
    m->in_value = 0;
  }
  f = &m->fields[m->nfields - 1];
  if (!casync__hbuf_reserve(&m->head, n)) return fail(m, 500, "out of memory");
  for (i = 0; i < n; i++)
    m->head.data[m->head.len + i] = (char)tolower((unsigned char)at[i]);
  m->head.len += n;
  f->nlen += (uint32_t)n;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  casync_hfield *f;
  if (count_head(m, n)) return 1;
  if (m->trailers || m->nfields == 0) {
    m->in_value = 1;
    return 0;
  }
  f = &m->fields[m->nfields - 1];
  if (!m->in_value) {
    f->value = (uint32_t)m->head.len;
    f->vlen = 0;
    m->in_value = 1;
  }
  if (!casync__hbuf_add(&m->head, at, n)) return fail(m, 500, "out of memory");
  f->vlen += (uint32_t)n;
  return 0;
}

static int ieq(const char *a, size_t n, const char *lit) {
  size_t i;
  if (strlen(lit) != n) return 0;
  for (i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != lit[i]) return 0;
  return 1;
}

static int on_headers_complete(http_parser *p) {
  casync_hmsg *m = p->data;
  size_t vlen;
  const char *v;
  trim_last(m);
  m->keep_alive = (unsigned char)http_should_keep_alive(p);
  m->chunked = (p->flags & F_CHUNKED) != 0;
  m->has_length = (p->flags & F_CONTENTLENGTH) != 0;
  m->upgrade = p->upgrade;
  m->trailers = 1; /* header callbacks from now on are trailers */
  m->in_value = 0;
  m->state = HM_BODY;
  /* (1 here would mean "no body", so errors return -1) */
  if (m->type == HTTP_REQUEST && p->http_major != 1) {
    fail(m, 505, "HTTP version not supported");
    return -1;
  }
  if (m->has_length && p->content_length > m->max_body && !m->skip_body) {
    fail(m, 413, "body too large");
    return -1;
  }
  if (m->type == HTTP_REQUEST &&
      (v = casync__hmsg_header(m, "expect", &vlen)) != NULL)
    m->expect_continue = (unsigned char)ieq(v, vlen, "100-continue");
  return m->skip_body ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  if (n > m->max_body - m->body.len) return fail(m, 413, "body too large");
  if (!casync__hbuf_add(&m->body, at, n)) return fail(m, 500, "out of memory");
  return 0;
}

static int on_message_complete(http_parser *p) {
  casync_hmsg *m = p->data;
  if (m->state == HM_ERROR) return 1;
  m->state = HM_DONE;
  m->keep_alive = (unsigned char)http_should_keep_alive(p);
  http_parser_pause(p, 1); /* the rest belongs to the next message */
  return 0;
}

static const http_parser_settings settings = {on_message_begin,
                                              on_first,
                                              on_first,
                                              on_header_field,
                                              on_header_value,
                                              on_headers_complete,
                                              on_body,
                                              on_message_complete,
                                              NULL,
                                              NULL};

/* ============================================================== messages */

void casync__hmsg_init(casync_hmsg *m, int type, size_t max_head,
                       size_t max_body, unsigned max_headers) {
  memset(m, 0, sizeof *m);
  m->type = type;
  m->max_head = max_head ? max_head : CASYNC_HTTP_MAX_HEAD;
  m->max_body = max_body ? max_body : CASYNC_HTTP_MAX_BODY;
  m->max_headers = max_headers ? max_headers : CASYNC_HTTP_MAX_HEADERS;
  http_parser_init(&m->p, (enum http_parser_type)type);
  m->p.data = m;
}

void casync__hmsg_reset(casync_hmsg *m) {
  hbuf_clear(&m->head);
  hbuf_clear(&m->body);
  if (m->cap_fields > 256) {
    free(m->fields);
    m->fields = NULL;
    m->cap_fields = 0;
  }
  m->nfields = 0;
  m->first_len = 0;
  m->head_bytes = 0;
  m->state = HM_IDLE;
  m->status = 0;
  m->why = NULL;
  m->in_value = m->trailers = m->skip_body = m->keep_alive = 0;
  m->chunked = m->upgrade = m->expect_continue = m->has_length = 0;
  http_parser_init(&m->p, (enum http_parser_type)m->type);
  m->p.data = m;
}

void casync__hmsg_free(casync_hmsg *m) {
  casync__hbuf_free(&m->head);
  casync__hbuf_free(&m->body);
  free(m->fields);
  m->fields = NULL;
  m->nfields = m->cap_fields = 0;
}

size_t casync__hmsg_feed(casync_hmsg *m, const char *data, size_t len) {
  size_t n;
  enum http_errno err;
  if (m->state == HM_DONE || m->state == HM_ERROR || len == 0) return 0;
  n = http_parser_execute(&m->p, &settings, data, len);
  if (m->state == HM_DONE || m->state == HM_ERROR) return n;
  err = HTTP_PARSER_ERRNO(&m->p);
  if (err != HPE_OK)
    fail(m, err == HPE_HEADER_OVERFLOW ? 431 : 400,
         http_errno_description(err));
  return n;
}

int casync__hmsg_eof(casync_hmsg *m) {
  if (m->state == HM_DONE || m->state == HM_ERROR) return m->state;
  if (m->state == HM_IDLE) return m->state; /* a clean end between messages */
  http_parser_execute(&m->p, &settings, NULL, 0);
  if (m->state != HM_DONE && m->state != HM_ERROR)
    fail(m, 400, "the stream ended in the middle of a message");
  return m->state;
}

const char *casync__hmsg_header(const casync_hmsg *m, const char *name,
                                size_t *len) {
  size_t nlen = strlen(name);
  unsigned i;
  for (i = 0; i < m->nfields; i++) {
    const casync_hfield *f = &m->fields[i];
    if (f->nlen == nlen && memcmp(m->head.data + f->name, name, nlen) == 0) {
      *len = f->vlen;
      return m->head.data + f->value;
    }
  }
  return NULL;
}

/* ======================================================== response heads */

const char *casync__http_reason(int status) {
  const char *s;
  if (status < 100 || status > 999) return "Unknown";
  s = http_status_str((enum http_status)status);
  return s[0] == '<' ? "Unknown" : s;
}

int casync__http_valid_name(const char *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c)))) return 0;
  }
  return 1;
}

int casync__http_valid_value(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}

int casync__http_status_line(casync_hbuf *b, int status, const char *reason) {
  if (!reason) reason = casync__http_reason(status);
  return casync__hbuf_add(b, "HTTP/1.1 ", 9) &&
         casync__hbuf_addu(b, (uint64_t)status) &&
         casync__hbuf_add(b, " ", 1) && casync__hbuf_adds(b, reason) &&
         casync__hbuf_add(b, "\r\n", 2);
}

int casync__http_header(casync_hbuf *b, const char *name, size_t nlen,
                        const char *value, size_t vlen) {
  size_t len = b->len;
  if (!casync__http_valid_name(name, nlen) ||
      !casync__http_valid_value(value, vlen))
    return 0;
  if (casync__hbuf_reserve(b, nlen + vlen + 4)) {
    casync__hbuf_add(b, name, nlen);
    casync__hbuf_add(b, ": ", 2);
    casync__hbuf_add(b, value, vlen);
    casync__hbuf_add(b, "\r\n", 2);
    return 1;
  }
  b->len = len;
  return 0;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), so
 * the date does not depend on the C locale or the time zone. */
void casync__http_date(char out[30], int64_t t) {
  static const char days[] = "ThuFriSatSunMonTueWed";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int64_t z = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - z * 86400, era, doe, yoe, doy, mp, d, mo, y;
  int wd = (int)(((z % 7) + 7) % 7);
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = yoe + era * 400;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  mo = mp < 10 ? mp + 3 : mp - 9;
  if (mo <= 2) y++;
  if (y < 0) y = 0;
  if (y > 9999) y = 9999;
  memcpy(out, days + 3 * wd, 3);
  out[3] = ',';
  out[4] = ' ';
  out[5] = (char)('0' + d / 10);
  out[6] = (char)('0' + d % 10);
  out[7] = ' ';
  memcpy(out + 8, months + 3 * (mo - 1), 3);
  out[11] = ' ';
  out[12] = (char)('0' + y / 1000);
  out[13] = (char)('0' + y / 100 % 10);
  out[14] = (char)('0' + y / 10 % 10);
  out[15] = (char)('0' + y % 10);
  out[16] = ' ';
  out[17] = (char)('0' + secs / 36000);
  out[18] = (char)('0' + secs / 3600 % 10);
  out[19] = ':';
  out[20] = (char)('0' + secs % 3600 / 600);
  out[21] = (char)('0' + secs % 3600 / 60 % 10);
  out[22] = ':';
  out[23] = (char)('0' + secs % 60 / 10);
  out[24] = (char)('0' + secs % 10);
  memcpy(out + 25, " GMT", 5);
}
