/* http_parse.c: HTTP/1.x messages parsed by llhttp (Node's parser; its
 * generated C comes from Debian's node-llhttp and is built into casync by
 * CMake) into a casync_hmsg: the request line or status, the headers (names
 * lowercased) and the body (chunked bodies decoded), with limits that map
 * to the HTTP status a server should answer (400, 413, 414, 431, 501,
 * 505).  llhttp runs strict (no lenient flag), and the RFC 9112 rules it
 * leaves to its caller are checked here: one Host in an HTTP/1.1 request,
 * no transfer coding but chunked, no 1xx for HTTP/1.0, a response with both
 * Content-Length and Transfer-Encoding read as chunked and not reused.
 * Also the small pieces of a response head.  No Lua, no libuv: the server,
 * the Lua parser objects (http.c) and the fuzz target share it.  It does
 * not parse HTTP itself; every byte of syntax goes through llhttp.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"
/* buffers larger than this are freed on reset */
#define KEEP_CAP (64u * 1024u)

/* ============================================================== buffers */

int casync__hbuf_reserve(casync_hbuf *b, size_t more) {
  size_t cap;
  char *nd;
  if (b->cap - b->len >= more) return 1;
  if (more > SIZE_MAX / 2 - b->len) return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < b->len + more) cap *= 2;
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

/* Marks m failed with an HTTP status; returns -1 (stops llhttp). */
static int fail(casync_hmsg *m, int status, const char *code, const char *why) {
  m->state = HM_ERROR;
  m->status = status;
  m->code = code;
  m->why = why;
  return -1;
}

/* Counts n more bytes of head against the limit. */
static int count_head(casync_hmsg *m, size_t n) {
  m->head_bytes += n;
  if (m->head_bytes > m->max_head) {
    int target = m->type == HTTP_REQUEST && m->nfields == 0;
    return fail(m, target ? 414 : 431, "HPE_HEADER_OVERFLOW",
                target ? "request target too long"
                       : "header section too large");
  }
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  casync_hmsg *m = p->data;
  m->state = HM_HEAD;
  return 0;
}

/* Where the method ends, to see that one space follows it. */
static int on_method(llhttp_t *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  m->method_end = m->fed + (uint64_t)(at - m->feed_at) + n;
  return 0;
}

/* The url of a request or the reason phrase of a response: first in the
 * head buffer, before any header. */
static int on_first(llhttp_t *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  /* request-line = method SP request-target SP HTTP-version (RFC 9112
   * 3): llhttp lets more spaces through */
  if (m->type == HTTP_REQUEST && m->first_len == 0 &&
      m->fed + (uint64_t)(at - m->feed_at) != m->method_end + 1)
    return fail(m, 400, "HPE_INVALID_URL",
                "more than one space before "
                "the request target");
  if (count_head(m, n)) return -1;
  if (!casync__hbuf_add(&m->head, at, n))
    return fail(m, 500, "ENOMEM", "out of memory");
  m->first_len += (uint32_t)n;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  casync_hfield *f;
  size_t i;
  int fresh = m->nfields == 0 || m->in_value;
  if (count_head(m, n + (fresh ? 4 : 0))) return -1;
  if (m->trailers) { /* trailer fields are counted, not kept */
    m->in_value = 0;
    return 0;
  }
  if (fresh) {
    if (m->nfields >= m->max_headers)
      return fail(m, 431, "HPE_HEADER_OVERFLOW", "too many header fields");
    if (m->nfields == m->cap_fields) {
      unsigned cap = m->cap_fields ? m->cap_fields * 2 : 16;
      casync_hfield *nf = realloc(m->fields, cap * sizeof *nf);
      if (!nf) return fail(m, 500, "ENOMEM", "out of memory");
      m->fields = nf;
      m->cap_fields = cap;
    }
    f = &m->fields[m->nfields++];
    f->name = (uint32_t)m->head.len;
    f->nlen = f->value = f->vlen = 0;
    m->in_value = 0;
  }
  f = &m->fields[m->nfields - 1];
  if (!casync__hbuf_reserve(&m->head, n))
    return fail(m, 500, "ENOMEM", "out of memory");
  for (i = 0; i < n; i++)
    m->head.data[m->head.len + i] = (char)tolower((unsigned char)at[i]);
  m->head.len += n;
  f->nlen += (uint32_t)n;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  casync_hfield *f;
  uint64_t pos;
  if (count_head(m, n)) return -1;
  if (m->trailers || m->nfields == 0) {
    m->in_value = 1;
    return 0;
  }
  f = &m->fields[m->nfields - 1];
  pos = m->fed + (uint64_t)(at - m->feed_at);
  if (!m->in_value) {
    f->value = (uint32_t)m->head.len;
    f->vlen = 0;
    m->in_value = 1;
  } else if (pos != m->value_end) /* llhttp skipped a CRLF and blanks: */
    return fail(m, 400, "HPE_INVALID_HEADER_TOKEN", /* RFC 9112 5.2 lets a */
                "obsolete line folding in a header value"); /* server refuse */
  m->value_end = pos + n;
  if (!casync__hbuf_add(&m->head, at, n))
    return fail(m, 500, "ENOMEM", "out of memory");
  f->vlen += (uint32_t)n;
  return 0;
}

/* A header field is complete: a value is never empty of its field (a
 * field with an empty value gets no value callback). */
static int on_header_value_complete(llhttp_t *p) {
  casync_hmsg *m = p->data;
  casync_hfield *f;
  m->in_value = 1;
  if (m->trailers || m->nfields == 0) return 0;
  f = &m->fields[m->nfields - 1];
  if (f->vlen == 0) f->value = (uint32_t)m->head.len;
  /* llhttp keeps the blanks that end a value; they are not part of it
   * (RFC 9110, 5.5) */
  while (f->vlen > 0 && (m->head.data[f->value + f->vlen - 1] == ' ' ||
                         m->head.data[f->value + f->vlen - 1] == '\t'))
    f->vlen--;
  return 0;
}

static int ieq(const char *a, size_t n, const char *lit) {
  size_t i;
  if (strlen(lit) != n) return 0;
  for (i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != lit[i]) return 0;
  return 1;
}

/* RFC 9112's rules for a request head that llhttp leaves to its caller:
 * HTTP/1.x only (505), exactly one Host in HTTP/1.1 (400, RFC 9112 3.2),
 * no transfer coding but chunked (501, RFC 9112 6.1).  Returns 0 or -1. */
static int check_request(casync_hmsg *m) {
  llhttp_t *p = &m->p;
  unsigned i, hosts = 0, te = 0;
  if (p->http_major != 1)
    return fail(m, 505, "HPE_INVALID_VERSION", "HTTP version not supported");
  for (i = 0; i < m->nfields; i++) {
    const casync_hfield *f = &m->fields[i];
    const char *name = m->head.data + f->name;
    if (f->nlen == 4 && memcmp(name, "host", 4) == 0) hosts++;
    if (f->nlen == 17 && memcmp(name, "transfer-encoding", 17) == 0) {
      /* chunked not last: the length is unknown (400, RFC 9112 6.3) */
      if (!(p->flags & F_CHUNKED))
        return fail(m, 400, "HPE_INVALID_TRANSFER_ENCODING",
                    "chunked is not the final transfer coding");
      if (te++ || !ieq(m->head.data + f->value, f->vlen, "chunked"))
        return fail(m, 501, "HPE_INVALID_TRANSFER_ENCODING",
                    "transfer coding not implemented");
    }
  }
  if (hosts > 1) return fail(m, 400, "HPE_HOST", "more than one Host");
  if (hosts == 0 && p->http_minor >= 1)
    return fail(m, 400, "HPE_HOST", "no Host in an HTTP/1.1 request");
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  casync_hmsg *m = p->data;
  size_t vlen;
  const char *v;
  m->keep_alive = (unsigned char)llhttp_should_keep_alive(p);
  m->chunked = (p->flags & F_CHUNKED) != 0;
  m->has_length = (p->flags & F_CONTENT_LENGTH) != 0;
  m->upgrade = p->upgrade;
  m->trailers = 1; /* header callbacks from now on are trailers */
  m->in_value = 0;
  m->state = HM_BODY;
  if (m->type == HTTP_REQUEST) {
    if (check_request(m)) return -1;
    /* HTTP/1.0 does not know 100-continue: ignore it (RFC 9110 10.1.1) */
    if (p->http_minor >= 1 &&
        (v = casync__hmsg_header(m, "expect", &vlen)) != NULL)
      m->expect_continue = (unsigned char)ieq(v, vlen, "100-continue");
  } else if ((p->flags & (F_CONTENT_LENGTH | F_TRANSFER_ENCODING)) ==
             (F_CONTENT_LENGTH | F_TRANSFER_ENCODING)) {
    /* RFC 9112 6.3: Transfer-Encoding wins; the connection must close */
    m->both_lengths = 1;
    m->has_length = 0;
    m->keep_alive = 0;
  }
  if (m->has_length && p->content_length > m->max_body && !m->skip_body)
    return fail(m, 413, "HPE_BODY_TOO_LARGE", "body too large");
  return m->skip_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  casync_hmsg *m = p->data;
  if (n > m->max_body - m->body.len)
    return fail(m, 413, "HPE_BODY_TOO_LARGE", "body too large");
  if (!casync__hbuf_add(&m->body, at, n))
    return fail(m, 500, "ENOMEM", "out of memory");
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  casync_hmsg *m = p->data;
  if (m->state == HM_ERROR) return -1;
  m->state = HM_DONE;
  m->keep_alive =
      (unsigned char)(llhttp_should_keep_alive(p) && !m->both_lengths);
  return HPE_PAUSED; /* the rest belongs to the next message */
}

static llhttp_settings_t settings;

/* ============================================================== messages */

static void parser_init(casync_hmsg *m) {
  if (!settings.on_message_complete) { /* once; the same values each time */
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = on_message_begin;
    s.on_method = on_method;
    s.on_url = on_first;
    s.on_status = on_first;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_header_value_complete = on_header_value_complete;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    settings = s;
  }
  llhttp_init(&m->p, (llhttp_type_t)m->type, &settings);
  m->p.data = m;
  /* a response with both lengths is read as chunked (RFC 9112 6.3) */
  if (m->type == HTTP_RESPONSE) llhttp_set_lenient_chunked_length(&m->p, 1);
}

void casync__hmsg_init(casync_hmsg *m, int type, size_t max_head,
                       size_t max_body, unsigned max_headers) {
  memset(m, 0, sizeof *m);
  m->type = type;
  m->max_head = max_head ? max_head : CASYNC_HTTP_MAX_HEAD;
  m->max_body = max_body ? max_body : CASYNC_HTTP_MAX_BODY;
  m->max_headers = max_headers ? max_headers : CASYNC_HTTP_MAX_HEADERS;
  parser_init(m);
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
  m->why = m->code = NULL;
  m->in_value = m->trailers = m->skip_body = m->keep_alive = 0;
  m->chunked = m->upgrade = m->expect_continue = m->has_length = 0;
  m->both_lengths = 0;
  m->fed = m->method_end = 0;
  parser_init(m);
}

void casync__hmsg_free(casync_hmsg *m) {
  casync__hbuf_free(&m->head);
  casync__hbuf_free(&m->body);
  free(m->fields);
  m->fields = NULL;
  m->nfields = m->cap_fields = 0;
}

/* The status a server answers an llhttp error with: 400 as Node, but
 * 505 for an HTTP/2 preface (a version llhttp reads but is not 1.x gets
 * 505 in check_request). */
static int status_of(llhttp_errno_t err) {
  return err == HPE_PAUSED_H2_UPGRADE ? 505 : 400;
}

size_t casync__hmsg_feed(casync_hmsg *m, const char *data, size_t len) {
  llhttp_errno_t err;
  if (m->state == HM_DONE || m->state == HM_ERROR || len == 0) return 0;
  m->feed_at = data;
  err = llhttp_execute(&m->p, data, len);
  m->fed += len;
  if (m->state == HM_DONE)
    return err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&m->p) - data);
  if (m->state == HM_ERROR) return len;
  if (err != HPE_OK) {
    fail(m, status_of(err), llhttp_errno_name(err),
         err == HPE_PAUSED_H2_UPGRADE ? "HTTP/2 is not supported"
                                      : llhttp_get_error_reason(&m->p));
    if (!m->why) m->why = "malformed message";
    return len;
  }
  return len;
}

int casync__hmsg_eof(casync_hmsg *m) {
  llhttp_errno_t err;
  if (m->state == HM_DONE || m->state == HM_ERROR) return m->state;
  if (m->state == HM_IDLE) return m->state; /* a clean end between messages */
  err = llhttp_finish(&m->p);
  if (m->state != HM_DONE && m->state != HM_ERROR)
    fail(m, 400, llhttp_errno_name(err == HPE_OK ? HPE_INVALID_EOF_STATE : err),
         "the stream ended in the middle of a message");
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

const char *casync__http_method_name(int method) {
  switch (method) {
#define METHOD_NAME(num, name, string) \
  case num: return #string;
    HTTP_ALL_METHOD_MAP(METHOD_NAME)
#undef METHOD_NAME
  default: return NULL;
  }
}

/* ======================================================== response heads */

/* RFC 9110's reason phrases (and a few common others). */
const char *casync__http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 102: return "Processing";
  case 103: return "Early Hints";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 207: return "Multi-Status";
  case 208: return "Already Reported";
  case 226: return "IM Used";
  case 300: return "Multiple Choices";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 305: return "Use Proxy";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 407: return "Proxy Authentication Required";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 418: return "I'm a teapot";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Entity";
  case 423: return "Locked";
  case 424: return "Failed Dependency";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 451: return "Unavailable For Legal Reasons";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 506: return "Variant Also Negotiates";
  case 507: return "Insufficient Storage";
  case 508: return "Loop Detected";
  case 510: return "Not Extended";
  case 511: return "Network Authentication Required";
  default: return "Unknown";
  }
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
