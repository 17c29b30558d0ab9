/* net.c: what the network files (stream.c, stdio.c, server.c, tcp.c,
 * pipe.c, dns.c) share: the per-state casync_net, anchors that keep Lua
 * values alive for libuv, waiting with a deadline, option and address
 * helpers, and ignoring SIGPIPE.  No Lua API of its own but _stats.
 *
 * The casync_net block is malloc'd and referenced by every libuv-owned
 * block; its userdata's __gc (which runs after every stream's and before
 * the loop context's at lua_close) marks it dead, so a libuv callback that
 * comes later touches no Lua object.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <luv/luv.h>
#include <luv/lhandle.h>
#include "internal.h"

static char net_key, anchor_key;

static int net_gc(lua_State *L) {
  casync_net **pp = lua_touserdata(L, 1), *net = *pp;
  if (!net) return 0;
  *pp = NULL;
  net->alive = 0;
  net->L = NULL;
  net->lp = NULL;
  free(net->scratch);
  net->scratch = NULL;
  if (net->refs == 0) {
    free(net->luvh);
    free(net);
  }
  return 0;
}

void casync__net_unref(casync_net *net) {
  if (--net->refs == 0 && !net->alive) {
    free(net->luvh);
    free(net);
  }
}

/* What luv's uv.walk hands out for one of our handles: an object whose
 * methods do nothing and that says it is closing, so code that walks the
 * loop closing every handle leaves ours alone. */
static int stand_in_true(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

static int stand_in_none(lua_State *L) {
  (void)L;
  return 0;
}

static int stand_in_type(lua_State *L) {
  lua_pushliteral(L, "casync");
  return 1;
}

static int stand_in_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (!strcmp(k, "is_closing") || !strcmp(k, "is_active"))
    lua_pushcfunction(L, stand_in_true);
  else if (!strcmp(k, "get_type"))
    lua_pushcfunction(L, stand_in_type);
  else
    lua_pushcfunction(L, stand_in_none);
  return 1;
}

/* Makes the stand-in luv_handle_t of the network handles. */
static void *make_stand_in(lua_State *L) {
  luv_handle_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, stand_in_index);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "casync network handle");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  h->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  h->callbacks[0] = h->callbacks[1] = LUA_NOREF;
  h->ctx = luv_context(L);
  return h;
}

/* luaL_setfuncs with the loop context and the net userdata as upvalues. */
void casync__net_setfuncs(lua_State *L, const luaL_Reg *l) {
  casync__loop_push(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &net_key);
  luaL_setfuncs(L, l, 2);
}

/* Anchors the value at idx for libuv; returns the reference. */
int casync__net_anchor(lua_State *L, casync_net *net, int idx) {
  int ref;
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &anchor_key);
  lua_pushvalue(L, idx);
  ref = luaL_ref(L, -2);
  lua_pop(L, 1);
  net->pins++;
  return ref;
}

/* Drops an anchor (from a libuv callback: on the main thread). */
void casync__net_unanchor(casync_net *net, int ref) {
  lua_State *L = net->L;
  if (!net->alive || ref == LUA_NOREF) return;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &anchor_key);
  luaL_unref(L, -1, ref);
  lua_pop(L, 1);
  net->pins--;
}

void casync__net_push_anchor(lua_State *L, int ref) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &anchor_key);
  lua_rawgeti(L, -1, ref);
  lua_remove(L, -2);
}

/* opts[field] of the options table at arg as seconds (-1 when absent). */
double casync__net_opt_seconds(lua_State *L, int arg, const char *field) {
  double v = -1;
  int isnum;
  if (lua_isnoneornil(L, arg)) return -1;
  if (lua_getfield(L, arg, field) != LUA_TNIL) {
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || v != v)
      luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be a number",
                                            field));
    if (v < 0) v = 0;
  }
  lua_pop(L, 1);
  return v;
}

/* opts[field] of the options table at arg as an integer (def if absent). */
lua_Integer casync__net_opt_int(lua_State *L, int arg, const char *field,
                                lua_Integer def) {
  lua_Integer v = def;
  int isint;
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_getfield(L, arg, field) != LUA_TNIL) {
    v = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be an integer",
                                            field));
  }
  lua_pop(L, 1);
  return v;
}

/* Pushes the host and port of an IPv4/IPv6 address; returns 2. */
int casync__net_push_addr(lua_State *L, const struct sockaddr *sa) {
  char host[INET6_ADDRSTRLEN + 1] = "";
  int port = 0;
  uv_ip_name(sa, host, sizeof host);
  if (sa->sa_family == AF_INET)
    port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
  else if (sa->sa_family == AF_INET6)
    port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

/* Parses a numeric IPv4 or IPv6 address; 1 if it is one. */
int casync__net_parse_ip(const char *host, int port,
                         struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 1;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 1;
  return 0;
}

/* The address to listen on: host numeric, else looked up (synchronously:
 * a listener is made once), with port.  Returns 0 or a libuv error. */
int casync__net_bind_addr(casync_net *net, const char *host, int port,
                          struct sockaddr_storage *ss) {
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  int r;
  if (casync__net_parse_ip(host, port, ss)) return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  r = uv_getaddrinfo(net->lp->loop, &req, NULL, host, NULL, &hints);
  if (r < 0) return r;
  memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  return 0;
}

/* casync.stream._stats() -> {streams=, open=, servers=, pins=}: counts for
 * tests (blocks libuv has not freed, streams Lua has not closed, listeners
 * not freed, anchors held) */
int casync__net_stats(lua_State *L) {
  casync_net *net = CASYNC_NET(L);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, net->streams);
  lua_setfield(L, -2, "streams");
  lua_pushinteger(L, net->open);
  lua_setfield(L, -2, "open");
  lua_pushinteger(L, net->servers);
  lua_setfield(L, -2, "servers");
  lua_pushinteger(L, net->pins);
  lua_setfield(L, -2, "pins");
  return 1;
}

/* Creates the network state of this Lua state.  Runs first of the network
 * files' _open functions, after the loop context exists. */
void casync__net_open(lua_State *L) {
  casync_net **pp, *net;
  struct sigaction sa;
  /* a write to a peer that went away must return EPIPE, not kill us */
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  /* created after the loop context, so at lua_close its __gc runs before
   * the context's (which runs the loop one last time) and after every
   * stream's and server's */
  pp = lua_newuserdatauv(L, sizeof *pp, 0);
  *pp = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, net_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  net = calloc(1, sizeof *net);
  if (!net) luaL_error(L, "not enough memory");
  net->lp = casync__loop_get(L);
  net->L = net->lp->L;
  net->alive = 1;
  *pp = net;
  if (!(net->luvh = make_stand_in(L))) luaL_error(L, "not enough memory");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &net_key);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &anchor_key);
}
