/* copy.c: copies Lua values from one Lua state to another through a byte
 * buffer, for casync.thread (arguments into a worker, results and errors
 * out of it).  The buffer belongs to no state, so it can cross threads.
 *
 * Copied: nil, booleans, integers and floats (kept apart), strings, tables
 * without metatables (nested; cycles and shared references kept, as are
 * shared functions), and Lua functions whose only upvalue is _ENV (by
 * their bytecode; the copy's _ENV is the global table of the state it
 * lands in, whatever it was in the original).  Anything else (userdata,
 * coroutines, C functions, functions with other upvalues, tables with
 * metatables) is an error naming the value's path: "args[2].config.cb".
 * Limits: 100 levels of nesting, 1 GiB of encoded data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "prim.h"

#define MAX_DEPTH 100               /* nested tables, each way */
#define MAX_BYTES ((size_t)1 << 30) /* 1 GiB of encoded data */

/* Tags of the encoding.  A table or function gets the next reference
 * number when it is first seen; later sightings are written as a REF. */
enum {
  X_NIL = 'n',
  X_FALSE = 'f',
  X_TRUE = 't',
  X_INT = 'i',
  X_FLT = 'd',
  X_STR = 's',
  X_TABLE = 'T',
  X_END = 'e',
  X_REF = 'R',
  X_FUNC = 'F'
};

void casync__buf_free(casync_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ------------------------------------------------------------ encoding */

typedef struct enc {
  lua_State *L;
  casync_buf *b;
  int seen; /* stack index: table or function -> its reference */
  int nrefs;
  int depth;
  int keys[MAX_DEPTH + 1]; /* stack index of the key at each depth */
  int msg;                 /* stack index of the slot for the error message */
  const char *root;        /* the value's root name: "fn", "args", "results" */
  lua_Integer rootidx;     /* its index under root, or 0 for none */
  int room;                /* reserve's verdict when lua_dump's writer failed */
} enc;

/* Grows the buffer to hold n more bytes: 1, or 0 when out of memory, -1
 * past MAX_BYTES. */
static int reserve(casync_buf *b, size_t n) {
  size_t cap;
  char *p;
  if (b->cap - b->len >= n) return 1;
  if (n > MAX_BYTES || b->len > MAX_BYTES - n) return -1;
  cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) cap *= 2;
  p = realloc(b->data, cap);
  if (!p) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

/* Appends the name of the key at idx to a path in buffer B. */
static void path_key(lua_State *L, luaL_Buffer *B, int idx) {
  const char *s, *p;
  size_t len;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    for (p = s; p < s + len; p++)
      if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (p > s && *p >= '0' && *p <= '9')))
        break;
    if (len > 0 && p == s + len) {
      luaL_addchar(B, '.');
      luaL_addlstring(B, s, len);
    } else {
      luaL_addstring(B, "[\"");
      for (p = s; p < s + len && p < s + 40; p++) {
        if (*p == '"' || *p == '\\') luaL_addchar(B, '\\');
        luaL_addchar(B, (*p >= ' ' && *p < 127) ? *p : '?');
      }
      if (len > 40) luaL_addstring(B, "...");
      luaL_addstring(B, "\"]");
    }
    break;
  case LUA_TNUMBER:
  case LUA_TBOOLEAN:
    luaL_addchar(B, '[');
    luaL_addstring(B, luaL_tolstring(L, idx, NULL));
    lua_pop(L, 1);
    luaL_addchar(B, ']');
    break;
  default:
    lua_pushfstring(L, "[<%s>]", luaL_typename(L, idx));
    luaL_addvalue(B);
  }
}

/* Stores "cannot copy <path>: <why>" in the message slot; returns -1.  The
 * path stops before depth `upto` (the keys of deeper levels are not part of
 * it).  `why` is a format for lua_pushfstring with one %s argument. */
static int fail(enc *e, int upto, const char *why, const char *arg) {
  lua_State *L = e->L;
  luaL_Buffer B;
  int d;
  luaL_checkstack(L, 8, NULL);
  lua_pushfstring(L, why, arg);
  luaL_buffinit(L, &B);
  luaL_addstring(&B, "cannot copy ");
  luaL_addstring(&B, e->root);
  if (e->rootidx) {
    lua_pushfstring(L, "[%I]", e->rootidx);
    luaL_addvalue(&B);
  }
  for (d = 0; d < upto; d++) path_key(L, &B, e->keys[d]);
  luaL_addstring(&B, ": ");
  lua_pushvalue(L, -2); /* the reason, under the buffer's box */
  luaL_addvalue(&B);
  luaL_pushresult(&B);
  lua_replace(L, e->msg);
  lua_pop(L, 1);
  return -1;
}

static int no_room(enc *e, int why) {
  return fail(e, e->depth, "%s",
              why < 0 ? "more than 1 GiB of data" : "not enough memory");
}

static int put(enc *e, const void *p, size_t n) {
  int ok;
  if (n == 0) return 0;
  if ((ok = reserve(e->b, n)) != 1) return no_room(e, ok);
  memcpy(e->b->data + e->b->len, p, n);
  e->b->len += n;
  return 0;
}

static int put_byte(enc *e, int c) {
  unsigned char ch = (unsigned char)c;
  return put(e, &ch, 1);
}

/* Unsigned LEB128. */
static int put_size(enc *e, size_t v) {
  unsigned char tmp[10];
  int n = 0;
  do {
    tmp[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) tmp[n] |= 0x80;
    n++;
  } while (v);
  return put(e, tmp, (size_t)n);
}

static int writer(lua_State *L, const void *p, size_t sz, void *ud) {
  enc *e = ud;
  (void)L;
  if ((e->room = reserve(e->b, sz)) != 1) return 1;
  memcpy(e->b->data + e->b->len, p, sz);
  e->b->len += sz;
  return 0;
}

static int encode(enc *e, int idx);

/* A Lua function at idx: checks its upvalues, then writes
 * X_FUNC, the index of its _ENV upvalue (0 if none), the bytecode. */
static int encode_function(enc *e, int idx) {
  lua_State *L = e->L;
  const char *name;
  int i, envidx = 0, bad = 0;
  size_t at;
  luaL_Buffer B;
  if (lua_iscfunction(L, idx)) return fail(e, e->depth, "%s", "C function");
  luaL_checkstack(L, 6, NULL);
  luaL_buffinit(L, &B);
  for (i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    /* _ENV, whatever table it is here (busted gives each spec file its
     * own), becomes the globals of the state the copy lands in */
    int ok = strcmp(name, "_ENV") == 0;
    if (ok) envidx = i;
    lua_pop(L, 1);
    if (!ok) {
      if (bad++) luaL_addstring(&B, ", ");
      luaL_addstring(&B, *name ? name : "?");
    }
  }
  luaL_pushresult(&B);
  if (bad)
    return fail(e, e->depth, "function with upvalues (%s)",
                lua_tostring(L, -1));
  lua_pop(L, 1);
  if (put_byte(e, X_FUNC) || put_size(e, (size_t)envidx)) return -1;
  /* the bytecode's length goes first: leave room for it (10 bytes max) */
  if ((e->room = reserve(e->b, 10)) != 1) return no_room(e, e->room);
  at = e->b->len;
  e->b->len += 10;
  lua_pushvalue(L, idx);
  if (lua_dump(L, writer, e, 0) != 0) {
    lua_pop(L, 1);
    return no_room(e, e->room);
  }
  lua_pop(L, 1);
  {
    size_t n = e->b->len - at - 10, v = n;
    int k;
    for (k = 0; k < 10; k++) { /* fixed width LEB128 */
      e->b->data[at + k] = (char)((v & 0x7f) | (k < 9 ? 0x80 : 0));
      v >>= 7;
    }
  }
  return 0;
}

/* A table at idx, not seen before. */
static int encode_table(enc *e, int idx) {
  lua_State *L = e->L;
  size_t narr;
  if (lua_getmetatable(L, idx)) {
    lua_pop(L, 1);
    return fail(e, e->depth, "%s", "table with a metatable");
  }
  if (e->depth >= MAX_DEPTH)
    return fail(e, e->depth, "nested more than %s levels deep", "100");
  luaL_checkstack(L, 6, NULL);
  narr = lua_rawlen(L, idx);
  if (put_byte(e, X_TABLE) || put_size(e, narr)) return -1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    e->keys[e->depth] = top - 1;
    if (encode(e, top - 1)) {
      /* a key that cannot be copied: name the table that holds it */
      if (lua_type(L, top - 1) != LUA_TTABLE &&
          lua_type(L, top - 1) != LUA_TFUNCTION) {
        lua_pushfstring(L, "a %s key", luaL_typename(L, top - 1));
        fail(e, e->depth, "%s", lua_tostring(L, -1));
      }
      return -1;
    }
    e->depth++;
    if (encode(e, top)) return -1;
    e->depth--;
    lua_pop(L, 1);
  }
  return put_byte(e, X_END);
}

/* Writes the value at idx (absolute). */
static int encode(enc *e, int idx) {
  lua_State *L = e->L;
  int t = lua_type(L, idx);
  switch (t) {
  case LUA_TNIL: return put_byte(e, X_NIL);
  case LUA_TBOOLEAN:
    return put_byte(e, lua_toboolean(L, idx) ? X_TRUE : X_FALSE);
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      return put_byte(e, X_INT) || put(e, &i, sizeof i) ? -1 : 0;
    } else {
      lua_Number n = lua_tonumber(L, idx);
      return put_byte(e, X_FLT) || put(e, &n, sizeof n) ? -1 : 0;
    }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return put_byte(e, X_STR) || put_size(e, len) || put(e, s, len) ? -1 : 0;
  }
  case LUA_TTABLE:
  case LUA_TFUNCTION: {
    lua_Integer ref;
    lua_pushvalue(L, idx);
    if (lua_rawget(L, e->seen) == LUA_TNUMBER) {
      ref = lua_tointeger(L, -1);
      lua_pop(L, 1);
      return put_byte(e, X_REF) || put_size(e, (size_t)ref) ? -1 : 0;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, ++e->nrefs);
    lua_rawset(L, e->seen);
    return t == LUA_TTABLE ? encode_table(e, idx) : encode_function(e, idx);
  }
  case LUA_TTHREAD: return fail(e, e->depth, "%s", "coroutine");
  default: return fail(e, e->depth, "%s", luaL_typename(L, idx));
  }
}

typedef struct encode_args {
  casync_buf *b;
  const char *root;
  lua_Integer first; /* index under root of the first value after fn */
  int fn_first;      /* the first value is "fn", the rest root[first..] */
  int failed;        /* 1-based position of the value that failed */
} encode_args;

/* Protected: [1 args][2 msg slot][3..] the values. */
static int encode_all(lua_State *L) {
  encode_args *a = lua_touserdata(L, 1);
  enc e;
  int i, n = lua_gettop(L) - 2;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.b = a->b;
  e.msg = 2;
  lua_newtable(L);
  e.seen = lua_gettop(L);
  for (i = 0; i < n; i++) {
    if (i == 0 && a->fn_first) {
      e.root = "fn";
      e.rootidx = 0;
    } else {
      e.root = a->root;
      e.rootidx = a->first + i - (a->fn_first ? 1 : 0);
    }
    e.depth = 0;
    if (encode(&e, 3 + i)) {
      a->failed = i + 1;
      lua_settop(L, 2);
      return 1;
    }
  }
  return 0;
}

/* Encodes the n values from idx on into b (appending).  Returns 0, or
 * the 1-based position of the value that cannot be copied with the
 * message pushed; b is then emptied.  Raises only memory errors (with b
 * emptied first).  The first value is named "fn" when fn_first, the
 * others root[first], root[first+1], ... */
int casync__copy_encode(lua_State *L, int idx, int n, casync_buf *b,
                        const char *root, lua_Integer first, int fn_first) {
  encode_args a;
  int i, status;
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, n + 4)) luaL_error(L, "too many values to copy");
  a.b = b;
  a.root = root;
  a.first = first;
  a.fn_first = fn_first;
  a.failed = 0;
  lua_pushcfunction(L, encode_all);
  lua_pushlightuserdata(L, &a);
  lua_pushnil(L);
  for (i = 0; i < n; i++) lua_pushvalue(L, idx + i);
  status = lua_pcall(L, n + 2, 1, 0);
  if (status != LUA_OK) {
    casync__buf_free(b);
    lua_error(L);
  }
  if (a.failed) {
    casync__buf_free(b);
    return a.failed;
  }
  lua_pop(L, 1);
  return 0;
}

/* ------------------------------------------------------------ decoding */

typedef struct dec {
  lua_State *L;
  const unsigned char *p, *end;
  int refs; /* stack index: reference number -> table or function */
  int nrefs;
  int depth;
} dec;

static void corrupt(dec *d) { luaL_error(d->L, "casync: corrupt copy buffer"); }

static void get(dec *d, void *out, size_t n) {
  if ((size_t)(d->end - d->p) < n) corrupt(d);
  memcpy(out, d->p, n);
  d->p += n;
}

static size_t get_size(dec *d) {
  size_t v = 0;
  int shift = 0;
  for (;;) {
    unsigned c;
    if (d->p >= d->end || shift > 63) corrupt(d);
    c = *d->p++;
    v |= (size_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7;
  }
}

typedef struct {
  const char *p;
  size_t n;
} chunk;

static const char *reader(lua_State *L, void *ud, size_t *size) {
  chunk *c = ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size ? c->p : NULL;
}

static void decode(dec *d);

static void decode_table(dec *d) {
  lua_State *L = d->L;
  size_t narr = get_size(d);
  if (++d->depth > MAX_DEPTH + 1) corrupt(d);
  luaL_checkstack(L, 6, NULL);
  lua_createtable(L, narr > (1u << 24) ? 0 : (int)narr, 0);
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->refs, ++d->nrefs);
  for (;;) {
    if (d->p >= d->end) corrupt(d);
    if (*d->p == X_END) {
      d->p++;
      break;
    }
    decode(d);
    decode(d);
    if (lua_isnil(L, -2)) corrupt(d);
    lua_rawset(L, -3);
  }
  d->depth--;
}

static void decode_function(dec *d) {
  lua_State *L = d->L;
  size_t envidx = get_size(d), n = get_size(d);
  chunk c;
  if ((size_t)(d->end - d->p) < n) corrupt(d);
  c.p = (const char *)d->p;
  c.n = n;
  d->p += n;
  luaL_checkstack(L, 4, NULL);
  if (lua_load(L, reader, &c, "=(copied function)", "b") != LUA_OK)
    lua_error(L);
  if (envidx > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    if (!lua_setupvalue(L, -2, (int)envidx)) lua_pop(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->refs, ++d->nrefs);
}

static void decode(dec *d) {
  lua_State *L = d->L;
  int tag;
  if (d->p >= d->end) corrupt(d);
  tag = *d->p++;
  luaL_checkstack(L, 2, NULL);
  switch (tag) {
  case X_NIL: lua_pushnil(L); break;
  case X_FALSE: lua_pushboolean(L, 0); break;
  case X_TRUE: lua_pushboolean(L, 1); break;
  case X_INT: {
    lua_Integer i;
    get(d, &i, sizeof i);
    lua_pushinteger(L, i);
    break;
  }
  case X_FLT: {
    lua_Number n;
    get(d, &n, sizeof n);
    lua_pushnumber(L, n);
    break;
  }
  case X_STR: {
    size_t n = get_size(d);
    if ((size_t)(d->end - d->p) < n) corrupt(d);
    lua_pushlstring(L, (const char *)d->p, n);
    d->p += n;
    break;
  }
  case X_TABLE: decode_table(d); break;
  case X_FUNC: decode_function(d); break;
  case X_REF: {
    size_t r = get_size(d);
    if (r < 1 || r > (size_t)d->nrefs) corrupt(d);
    lua_rawgeti(L, d->refs, (lua_Integer)r);
    break;
  }
  default: corrupt(d);
  }
}

/* Pushes the values encoded in b (from offset `from`); returns how many.
 * Raises on memory errors (and on a corrupt buffer). */
int casync__copy_decode(lua_State *L, const casync_buf *b, size_t from) {
  dec d;
  int base, n = 0;
  if (b->len <= from) return 0;
  d.L = L;
  d.p = (const unsigned char *)b->data + from;
  d.end = (const unsigned char *)b->data + b->len;
  d.nrefs = 0;
  d.depth = 0;
  lua_newtable(L);
  d.refs = lua_gettop(L);
  base = d.refs;
  while (d.p < d.end) {
    if (!lua_checkstack(L, 4)) luaL_error(L, "too many values to copy");
    decode(&d);
    n++;
  }
  lua_remove(L, base);
  return n;
}
