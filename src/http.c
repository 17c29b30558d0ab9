/* http.c: the C side of casync.http: casync.core.http.parser (an HTTP/1.x
 * request or response parser object over http_parse.c, which the Lua
 * client in lua/casync/http.lua feeds from a stream), reason phrases and
 * dates; the server is http_server.c.  Nothing here parses HTTP syntax by
 * hand: llhttp does.
 */
#include <string.h>
#include <time.h>
#include "http.h"
#include "http_parse.h"

#define HTTP_PARSER_MT "casync.HttpParser"

typedef struct parser_ud {
  casync_hmsg m;
  int live; /* 0 once collected */
} parser_ud;

static parser_ud *check_parser(lua_State *L) {
  parser_ud *u = luaL_checkudata(L, 1, HTTP_PARSER_MT);
  if (!u->live) luaL_error(L, "attempt to use a closed parser");
  return u;
}

static size_t opt_limit(lua_State *L, int arg, const char *field) {
  lua_Integer v = casync__net_opt_int(L, arg, field, 0);
  if (v < 0 || v > 0x7fffffff)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "opts.%s must be in 0..2^31-1", field));
  return (size_t)v;
}

/* casync.core.http.parser("request" | "response" [, opts]) -> parser;
 * opts: max_header_size, max_headers, max_body_size (0: the defaults) */
static int fn_parser(lua_State *L) {
  static const char *const kinds[] = {"request", "response", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  size_t mh, mb, mn;
  parser_ud *u;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  mh = opt_limit(L, 2, "max_header_size");
  mn = opt_limit(L, 2, "max_headers");
  mb = opt_limit(L, 2, "max_body_size");
  u = lua_newuserdatauv(L, sizeof *u, 0);
  casync__hmsg_init(&u->m, kind == 0 ? HTTP_REQUEST : HTTP_RESPONSE, mh, mb,
                    (unsigned)mn);
  u->live = 1;
  luaL_setmetatable(L, HTTP_PARSER_MT);
  return 1;
}

/* Pushes the outcome of a feed or eof: "done", "more" (or "idle"), or nil
 * and an error of kind "http" whose field status is what a server would
 * answer. */
static int push_state(lua_State *L, casync_hmsg *m) {
  switch (m->state) {
  case HM_DONE: lua_pushliteral(L, "done"); break;
  case HM_ERROR:
    lua_pushnil(L);
    casync__error_push(L, m->status == 413 ? "limit" : "http",
                       m->code ? m->code : "HPE_INTERNAL", "%s",
                       m->why ? m->why : "malformed message");
    lua_pushinteger(L, m->status);
    lua_setfield(L, -2, "status");
    return 2;
  case HM_IDLE: lua_pushliteral(L, "idle"); break;
  default: lua_pushliteral(L, "more");
  }
  return 1;
}

/* parser:feed(data [, init]) -> "done" | "more", bytes used | nil, err:
 * parses data from byte init on (default 1); stops after a complete
 * message (the bytes after it are the next one's) */
static int meth_feed(lua_State *L) {
  parser_ud *u = check_parser(L);
  size_t len, used;
  const char *p = luaL_checklstring(L, 2, &len);
  lua_Integer init = luaL_optinteger(L, 3, 1);
  luaL_argcheck(L, init >= 1 && (size_t)init <= len + 1, 3,
                "initial position out of range");
  used = casync__hmsg_feed(&u->m, p + init - 1, len - (size_t)(init - 1));
  if (u->m.state == HM_ERROR) return push_state(L, &u->m); /* nil, err */
  push_state(L, &u->m);
  lua_pushinteger(L, (lua_Integer)used);
  return 2;
}

/* parser:eof() -> "done" | "idle" | nil, err: the stream ended (a body that
 * runs to the end of the stream is complete; a message cut short fails) */
static int meth_eof(lua_State *L) {
  parser_ud *u = check_parser(L);
  casync__hmsg_eof(&u->m);
  return push_state(L, &u->m);
}

/* parser:reset([skip_body]): ready for the next message; skip_body for a
 * response to HEAD */
static int meth_reset(lua_State *L) {
  parser_ud *u = check_parser(L);
  casync__hmsg_reset(&u->m);
  u->m.skip_body = (unsigned char)lua_toboolean(L, 2);
  return 0;
}

/* parser:message() -> {method=, target= | status=, reason=, version=,
 * headers=, body=, keep_alive=, upgrade=} of a complete message */
static int meth_message(lua_State *L) {
  parser_ud *u = check_parser(L);
  casync_hmsg *m = &u->m;
  const char *head = m->head.data ? m->head.data : "";
  unsigned i;
  if (m->state != HM_DONE)
    return luaL_error(L, "message: the message is not complete");
  lua_createtable(L, 0, 8);
  if (m->type == HTTP_REQUEST) {
    lua_pushstring(L, casync__http_method_name(m->p.method));
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, head, m->first_len);
    lua_setfield(L, -2, "target");
  } else {
    lua_pushinteger(L, m->p.status_code);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, head, m->first_len);
    lua_setfield(L, -2, "reason");
  }
  lua_pushfstring(L, "%d.%d", (int)m->p.http_major, (int)m->p.http_minor);
  lua_setfield(L, -2, "version");
  lua_createtable(L, 0, (int)m->nfields);
  for (i = 0; i < m->nfields; i++) {
    const casync_hfield *f = &m->fields[i];
    lua_pushlstring(L, head + f->name, f->nlen);
    lua_pushvalue(L, -1);
    if (f->nlen == 10 && memcmp(head + f->name, "set-cookie", 10) == 0) {
      /* kept apart, one string per line: a cookie's Expires has a comma,
       * so joined lines could not be split again (RFC 9110 5.3) */
      if (lua_rawget(L, -3) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
      }
      lua_pushlstring(L, head + f->value, f->vlen);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    } else if (lua_rawget(L, -3) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlstring(L, head + f->value, f->vlen);
    } else {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, head + f->value, f->vlen);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, m->body.data ? m->body.data : "", m->body.len);
  lua_setfield(L, -2, "body");
  lua_pushboolean(L, m->keep_alive);
  lua_setfield(L, -2, "keep_alive");
  lua_pushboolean(L, m->upgrade);
  lua_setfield(L, -2, "upgrade");
  lua_pushboolean(L, m->chunked);
  lua_setfield(L, -2, "chunked");
  return 1;
}

static int meta_gc(lua_State *L) {
  parser_ud *u = luaL_checkudata(L, 1, HTTP_PARSER_MT);
  if (u->live) casync__hmsg_free(&u->m);
  u->live = 0;
  return 0;
}

/* casync.core.http._check_task(fname): raises the core's message when the
 * caller cannot wait (outside a task, or in a plain coroutine) */
static int fn_check_task(lua_State *L) {
  casync__wait_begin(L, luaL_checkstring(L, 1));
  return 0;
}

/* casync.core.http.reason(status) -> the reason phrase ("Not Found") */
static int fn_reason(lua_State *L) {
  lua_pushstring(L, casync__http_reason((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* casync.core.http.date([t]) -> the IMF-fixdate of t (default: now) */
static int fn_date(lua_State *L) {
  char buf[30];
  lua_Integer t = luaL_optinteger(L, 1, (lua_Integer)time(NULL));
  casync__http_date(buf, (int64_t)t);
  lua_pushstring(L, buf);
  return 1;
}

void casync__http_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"feed", meth_feed},
                                     {"eof", meth_eof},
                                     {"reset", meth_reset},
                                     {"message", meth_message},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"parser", fn_parser},
                                 {"reason", fn_reason},
                                 {"_check_task", fn_check_task},
                                 {"date", fn_date},
                                 {NULL, NULL}};
  luaL_newmetatable(L, HTTP_PARSER_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  casync__http_server_open(L);
  casync__ws_open(L);
  lua_setfield(L, -2, "http");
}
