/* fuzz_http.c: a fuzz target for casync's HTTP message layer
 * (src/http_parse.c on llhttp): request and response parsing fed in
 * random pieces, pipelined messages, the end of the stream, the limits,
 * and a round trip through the response-head serializer (what the server
 * writes must parse back to the same status and headers, and header text
 * that could inject a line must be refused).
 *
 * Built with clang -fsanitize=fuzzer,address,undefined (libFuzzer), or
 * with -DFUZZ_STANDALONE by any compiler: then main() drives it itself
 * with random and mutated inputs from a fixed seed for a given time
 * (tests/fuzz_http.sh picks one).  A broken invariant aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http_parse.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "fuzz_http: %s:%d: check failed: %s\n", __FILE__,        \
              __LINE__, #c);                                                   \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A small PRNG for split points, seeded from the input. */
static uint32_t rng_next(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/* Everything a complete or failed message must satisfy. */
static void check_message(const casync_hmsg *m) {
  unsigned i;
  size_t len;
  CHECK(m->state == HM_DONE || m->state == HM_ERROR);
  if (m->state == HM_ERROR) {
    CHECK(m->status >= 400 && m->status <= 505);
    CHECK(m->why != NULL);
    CHECK(m->code != NULL);
    return;
  }
  CHECK(m->body.len <= m->max_body);
  CHECK(m->nfields <= m->max_headers);
  CHECK(m->first_len <= m->head.len);
  if (m->type == HTTP_REQUEST) { /* what check_request lets through */
    size_t hl;
    CHECK(m->p.http_major == 1);
    CHECK(m->p.http_minor == 0 || casync__hmsg_header(m, "host", &hl) != NULL);
    CHECK(!(m->chunked && m->has_length));
  }
  for (i = 0; i < m->nfields; i++) {
    const casync_hfield *f = &m->fields[i];
    size_t k;
    CHECK(f->name + f->nlen <= m->head.len);
    CHECK(f->value + f->vlen <= m->head.len);
    for (k = 0; k < f->nlen; k++) /* names come lowercased */
      CHECK(!(m->head.data[f->name + k] >= 'A' &&
              m->head.data[f->name + k] <= 'Z'));
  }
  (void)casync__hmsg_header(m, "content-length", &len);
  (void)casync__hmsg_header(m, "host", &len);
}

/* Parses data as a stream of messages of `type`, fed in random pieces. */
static void parse_stream(int type, const uint8_t *data, size_t size,
                         uint32_t seed, int small) {
  casync_hmsg m;
  size_t pos = 0;
  int messages = 0;
  casync__hmsg_init(&m, type, small ? 64 : 0, small ? 32 : 0, small ? 4 : 0);
  m.skip_body = (unsigned char)(seed & 1);
  while (pos < size && messages < 64) {
    size_t piece = 1 + rng_next(&seed) % 64, used;
    if (piece > size - pos) piece = size - pos;
    used = casync__hmsg_feed(&m, (const char *)data + pos, piece);
    CHECK(used <= piece);
    pos += used;
    if (m.state == HM_ERROR) {
      check_message(&m);
      break;
    }
    if (m.state == HM_DONE) {
      check_message(&m);
      messages++;
      casync__hmsg_reset(&m);
      m.skip_body = (unsigned char)(rng_next(&seed) & 1);
      continue;
    }
    CHECK(used == piece); /* not done, no error: it took everything */
  }
  if (m.state != HM_ERROR && m.state != HM_DONE) {
    int st = casync__hmsg_eof(&m);
    CHECK(st == HM_IDLE || st == HM_DONE || st == HM_ERROR);
    if (st != HM_IDLE) check_message(&m);
  }
  casync__hmsg_free(&m);
}

static int valid_name(const uint8_t *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') ||
          (s[i] && strchr("!#$%&'*+-.^_`|~", s[i]))))
      return 0;
  return 1;
}

/* Serializes a response built from the input, parses it back. */
static void round_trip(const uint8_t *data, size_t size) {
  casync_hbuf b = {0};
  casync_hmsg m;
  const uint8_t *p = data, *end = data + size;
  int status = 100 + (size ? data[0] * 4 % 900 : 0);
  struct {
    const uint8_t *n, *v;
    size_t nl, vl;
  } kept[16];
  int nkept = 0, i;
  size_t body_len = size % 50, used;
  char date[30];
  if (status < 200 || status == 204 || status == 304) status = 200;
  CHECK(casync__http_status_line(&b, status, NULL));
  /* headers: "name\0value\0" pairs from the input */
  while (p < end && nkept < 16) {
    const uint8_t *n = p, *v, *z;
    size_t nl, vl;
    z = memchr(p, 0, (size_t)(end - p));
    if (!z) break;
    nl = (size_t)(z - n);
    v = z + 1;
    z = v < end ? memchr(v, 0, (size_t)(end - v)) : NULL;
    if (!z) break;
    vl = (size_t)(z - v);
    p = z + 1;
    {
      int ok =
          casync__http_header(&b, (const char *)n, nl, (const char *)v, vl);
      int should = valid_name(n, nl) && memchr(v, '\r', vl) == NULL &&
                   memchr(v, '\n', vl) == NULL && memchr(v, 0, vl) == NULL;
      CHECK(ok == should);
      /* the framing is the server's business; skip names it would drop */
      if (ok &&
          !(nl == 14 &&
            strncasecmp((const char *)n, "content-length", 14) == 0) &&
          !(nl == 17 &&
            strncasecmp((const char *)n, "transfer-encoding", 17) == 0)) {
        kept[nkept].n = n;
        kept[nkept].nl = nl;
        kept[nkept].v = v;
        kept[nkept].vl = vl;
        nkept++;
      } else if (ok) {
        b.len -= nl + vl + 4; /* take it out again */
      }
    }
  }
  casync__hbuf_adds(&b, "Content-Length: ");
  casync__hbuf_addu(&b, body_len);
  casync__hbuf_add(&b, "\r\n\r\n", 4);
  for (i = 0; i < (int)body_len; i++)
    casync__hbuf_add(&b, "b", 1);
  casync__hmsg_init(&m, HTTP_RESPONSE, 1u << 20, 1u << 20, 64);
  used = casync__hmsg_feed(&m, b.data, b.len);
  if (m.state == HM_DONE) {
    CHECK(used == b.len);
    CHECK(m.p.status_code == status);
    CHECK(m.body.len == body_len);
    for (i = 0; i < nkept; i++) {
      /* the value comes back without surrounding blanks (a header given
       * twice: the first one; the parser may also refuse odd bytes) */
      size_t vl = kept[i].vl, k, glen;
      const uint8_t *v = kept[i].v;
      char name[256];
      const char *got;
      if (kept[i].nl >= sizeof name) continue;
      for (k = 0; k < kept[i].nl; k++)
        name[k] = (char)((kept[i].n[k] >= 'A' && kept[i].n[k] <= 'Z')
                             ? kept[i].n[k] + 32
                             : kept[i].n[k]);
      name[k] = 0;
      while (vl && (v[0] == ' ' || v[0] == '\t'))
        v++, vl--;
      while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
      got = casync__hmsg_header(&m, name, &glen);
      CHECK(got != NULL);
      for (k = 0; k < (size_t)i; k++) /* only its first occurrence */
        if (kept[k].nl == kept[i].nl &&
            strncasecmp((const char *)kept[k].n, name, kept[i].nl) == 0)
          break;
      if (k == (size_t)i) {
        CHECK(glen == vl);
        CHECK(memcmp(got, v, vl) == 0);
      }
    }
  } else {
    /* llhttp refuses some bytes a header value may hold (controls) */
    CHECK(m.state == HM_ERROR);
  }
  casync__hmsg_free(&m);
  casync__hbuf_free(&b);
  {
    int64_t t = 0;
    memcpy(&t, data, size < sizeof t ? size : sizeof t);
    casync__http_date(date, t % ((int64_t)1 << 40));
    CHECK(strlen(date) == 29);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint32_t seed = 2463534242u;
  if (size == 0) return 0;
  seed ^= (uint32_t)data[0] * 16777619u;
  switch (data[0] % 5) {
  case 0:
  case 1:
    parse_stream(HTTP_REQUEST, data + 1, size - 1, seed, 0);
    break;
  case 2:
    parse_stream(HTTP_REQUEST, data + 1, size - 1, seed, 1);
    break;
  case 3:
    parse_stream(HTTP_RESPONSE, data + 1, size - 1, seed, data[0] & 8);
    break;
  default:
    round_trip(data + 1, size - 1);
  }
  return 0;
}

#ifdef FUZZ_STANDALONE
/* Without libFuzzer: random inputs and mutations of a few valid messages,
 * from a fixed seed, for argv[1] seconds (default 30). */
#include <time.h>

static const char *const seeds[] = {
    "\0GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "\0POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    "GET /next HTTP/1.1\r\n\r\n",
    "\0POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    "0\r\nTrailer: t\r\n\r\n",
    "\3HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No "
    "Content\r\n\r\n",
    "\3HTTP/1.0 200 OK\r\n\r\nuntil the end",
    "\4X-A\0value\0Content-Type\0text/plain\0Bad Name\0v\0X-B\0a\r\nb\0",
};

int main(int argc, char **argv) {
  double limit = argc > 1 ? atof(argv[1]) : 30;
  uint32_t s = 12345;
  uint8_t buf[4096];
  long runs = 0;
  time_t start = time(NULL);
  while (difftime(time(NULL), start) < limit) {
    size_t n, i, k;
    for (k = 0; k < 1000; k++, runs++) {
      if (rng_next(&s) % 4 == 0) { /* random bytes */
        n = rng_next(&s) % sizeof buf;
        for (i = 0; i < n; i++)
          buf[i] = (uint8_t)rng_next(&s);
      } else { /* a seed, mutated */
        const char *sd = seeds[rng_next(&s) % (sizeof seeds / sizeof *seeds)];
        size_t len = 1 + strlen(sd + 1), muts = 1 + rng_next(&s) % 8;
        memcpy(buf, sd, len);
        n = len;
        for (i = 0; i < muts && n > 1; i++) {
          size_t at = 1 + rng_next(&s) % (n - 1);
          switch (rng_next(&s) % 4) {
          case 0:
            buf[at] = (uint8_t)rng_next(&s);
            break;
          case 1:
            memmove(buf + at, buf + at + 1, n - at - 1), n--;
            break;
          case 2:
            if (n < sizeof buf - 64) {
              size_t rep = 1 + rng_next(&s) % 60;
              memmove(buf + at + rep, buf + at, n - at);
              memset(buf + at, buf[at], rep);
              n += rep;
            }
            break;
          default:
            buf[at] ^= (uint8_t)(1u << (rng_next(&s) % 8));
          }
        }
      }
      LLVMFuzzerTestOneInput(buf, n);
    }
  }
  printf("fuzz_http: %ld inputs in %.0f s, no failure\n", runs, limit);
  return 0;
}
#endif
