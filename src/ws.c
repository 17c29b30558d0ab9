/* ws.c: the byte-level pieces of WebSocket (RFC 6455) for
 * lua/casync/websocket.lua, as casync.core.http._ws_*: a frame's bytes
 * (header, masking with a fresh random key), unmasking, the handshake's
 * Sec-WebSocket-Accept (SHA-1 and base64) and a random Sec-WebSocket-Key.
 * The protocol (handshake, frames read from the stream, control frames,
 * close codes, limits) is the Lua module's: it reads and writes through
 * casync streams, so whatever layer is below a stream (TLS) carries it.
 * Debian's libwslay is not used: it owns the I/O through its own callbacks
 * and message queue, beside stream.c's buffer and writes, and it does not
 * check UTF-8.
 */
#include <stdint.h>
#include <string.h>
#include "http.h"

/* ================================================================ SHA-1 */

#define ROL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const unsigned char *p) {
  uint32_t w[80], a, b, c, d, e, f, k, t;
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (i = 16; i < 80; i++)
    w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (i = 0; i < 80; i++) {
    if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
    else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
    else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
    else f = b ^ c ^ d, k = 0xCA62C1D6u;
    t = ROL(a, 5) + f + e + k + w[i];
    e = d, d = c, c = ROL(b, 30), b = a, a = t;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* The SHA-1 digest of p[0..n) (n < 2^29: a handshake key). */
static void sha1(const unsigned char *p, size_t n, unsigned char out[20]) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u,
                   0xC3D2E1F0u};
  unsigned char last[128];
  size_t i, rest = n % 64, tail;
  uint64_t bits = (uint64_t)n * 8;
  for (i = 0; i + 64 <= n; i += 64) sha1_block(h, p + i);
  memset(last, 0, sizeof last);
  memcpy(last, p + n - rest, rest);
  last[rest] = 0x80;
  tail = rest < 56 ? 64 : 128;
  for (i = 0; i < 8; i++) last[tail - 1 - i] = (unsigned char)(bits >> (8 * i));
  sha1_block(h, last);
  if (tail == 128) sha1_block(h, last + 64);
  for (i = 0; i < 5; i++) {
    out[4 * i] = (unsigned char)(h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(h[i] >> 8);
    out[4 * i + 3] = (unsigned char)h[i];
  }
}

/* Pushes the base64 of p[0..n). */
static void push_base64(lua_State *L, const unsigned char *p, size_t n) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 |
                 (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    luaL_addchar(&b, abc[v >> 18]);
    luaL_addchar(&b, abc[(v >> 12) & 63]);
    luaL_addchar(&b, i + 1 < n ? abc[(v >> 6) & 63] : '=');
    luaL_addchar(&b, i + 2 < n ? abc[v & 63] : '=');
  }
  luaL_pushresult(&b);
}

/* ============================================================ functions */

/* _ws_accept(key) -> base64(SHA-1(key .. the RFC 6455 GUID)) */
static int fn_accept(lua_State *L) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  size_t klen;
  const char *key = luaL_checklstring(L, 1, &klen);
  unsigned char buf[128 + sizeof guid], digest[20];
  luaL_argcheck(L, klen <= 128, 1, "key too long");
  memcpy(buf, key, klen);
  memcpy(buf + klen, guid, sizeof guid - 1);
  sha1(buf, klen + sizeof guid - 1, digest);
  push_base64(L, digest, sizeof digest);
  return 1;
}

/* _ws_key() -> a random Sec-WebSocket-Key (16 random bytes, base64) */
static int fn_key(lua_State *L) {
  unsigned char r[16];
  int rc = uv_random(NULL, NULL, r, sizeof r, 0, NULL);
  if (rc < 0)
    return luaL_error(L, "websocket: no random bytes: %s", uv_strerror(rc));
  push_base64(L, r, sizeof r);
  return 1;
}

/* XORs n bytes of p into out with the 4-byte key, from key offset 0. */
static void mask_into(char *out, const char *p, size_t n,
                      const unsigned char key[4]) {
  size_t i;
  for (i = 0; i < n; i++) out[i] = (char)(p[i] ^ key[i & 3]);
}

/* _ws_unmask(key4, data) -> data XORed with the masking key */
static int fn_unmask(lua_State *L) {
  size_t klen, n;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *p = luaL_checklstring(L, 2, &n);
  luaL_Buffer b;
  luaL_argcheck(L, klen == 4, 1, "masking key must be 4 bytes");
  mask_into(luaL_buffinitsize(L, &b, n), p, n, (const unsigned char *)key);
  luaL_pushresultsize(&b, n);
  return 1;
}

/* _ws_frame(first_byte, payload, masked) -> the frame's bytes: first_byte
 * (FIN, RSV and opcode), the length, and the payload, masked with a fresh
 * random key when `masked` (frames from a client) */
static int fn_frame(lua_State *L) {
  lua_Integer b0 = luaL_checkinteger(L, 1);
  size_t n, hl = 2, i;
  const char *p = luaL_checklstring(L, 2, &n);
  int masked = lua_toboolean(L, 3);
  unsigned char head[14], key[4];
  luaL_Buffer b;
  char *out;
  luaL_argcheck(L, b0 >= 0 && b0 <= 255, 1, "first byte must be in 0..255");
  head[0] = (unsigned char)b0;
  if (n < 126) head[1] = (unsigned char)n;
  else if (n <= 0xffff) {
    head[1] = 126;
    head[2] = (unsigned char)(n >> 8);
    head[3] = (unsigned char)n;
    hl = 4;
  } else {
    head[1] = 127;
    for (i = 0; i < 8; i++)
      head[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  if (masked) {
    int rc = uv_random(NULL, NULL, key, sizeof key, 0, NULL);
    if (rc < 0)
      return luaL_error(L, "websocket: no random bytes: %s", uv_strerror(rc));
    head[1] |= 0x80;
    memcpy(head + hl, key, 4);
    hl += 4;
  }
  out = luaL_buffinitsize(L, &b, hl + n);
  memcpy(out, head, hl);
  if (masked) mask_into(out + hl, p, n, key);
  else if (n) memcpy(out + hl, p, n);
  luaL_pushresultsize(&b, hl + n);
  return 1;
}

/* Adds the _ws_* functions to the table on top (casync.core.http). */
void casync__ws_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"_ws_accept", fn_accept},
                                 {"_ws_key", fn_key},
                                 {"_ws_unmask", fn_unmask},
                                 {"_ws_frame", fn_frame},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
