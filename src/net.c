/* net.c: what the network files (stream.c, stdio.c, server.c, tcp.c,
 * pipe.c, dns.c) share: option and address helpers, ignoring SIGPIPE,
 * and the counts the specs check.  No Lua API of its own but _stats.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "io.h"

/* opts[field] of the options table at arg as seconds (-1 when absent). */
double casync__net_opt_seconds(lua_State *L, int arg, const char *field) {
  double v = -1;
  int isnum;
  if (lua_isnoneornil(L, arg)) return -1;
  if (lua_getfield(L, arg, field) != LUA_TNIL) {
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || v != v)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "opts.%s must be a number", field));
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
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "opts.%s must be an integer", field));
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

/* The address to listen on: host numeric, else looked up synchronously,
 * with port.  Returns 0 or a libuv error.  Only http.serve still uses it;
 * tcp.listen, tls.listen and udp.bind resolve without blocking the loop
 * (casync__net_resolve). */
int casync__net_bind_addr(casync_ctx *ctx, const char *host, int port,
                          struct sockaddr_storage *ss) {
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  int r;
  if (casync__net_parse_ip(host, port, ss)) return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  r = uv_getaddrinfo(ctx->loop, &req, NULL, host, NULL, &hints);
  if (r < 0) return r;
  memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  return 0;
}

/* The address to bind a socket to, for Lua function fname: a numeric
 * host fills *ss with port and returns 0, in a task or not.  A name is
 * looked up without blocking the loop, so it needs a task (raises
 * otherwise): the lookup is pushed, the task suspends and k(kc) goes on,
 * where casync__net_lookup_addr gives the address.  Does not return then. */
int casync__net_resolve(lua_State *L, const char *fname, const char *host,
                        int port, struct sockaddr_storage *ss, lua_KFunction k,
                        lua_KContext kc) {
  casync_ctx *ctx = CASYNC_CTX(L);
  casync_task *t;
  if (casync__net_parse_ip(host, port, ss)) return 0;
  if (!ctx->current || ctx->current->co != L)
    return luaL_error(L,
                      "%s: a host name is resolved without blocking the "
                      "loop, so it needs a task (or give a numeric address "
                      "such as \"127.0.0.1\")",
                      fname);
  t = casync__wait_begin(L, fname);
  return casync__dns_lookup(L, t, host, NULL, AF_UNSPEC, 0, k, kc);
}

/* In k of casync__net_resolve (the lookup at idx): the first address the
 * name has, with port, in *ss; returns 0 or the lookup's libuv error. */
int casync__net_lookup_addr(lua_State *L, int idx, int port,
                            struct sockaddr_storage *ss) {
  int st;
  struct addrinfo *ai = casync__dns_result(L, idx, &st);
  for (; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) break;
  if (!ai) return st < 0 ? st : UV_EAI_NONAME;
  memset(ss, 0, sizeof *ss);
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  return 0;
}

/* casync.stream._stats() -> {streams=, open=, servers=, pins=}: counts for
 * tests (stream blocks libuv has not freed, streams Lua has not closed,
 * listeners not freed, values pinned for libuv) */
int casync__net_stats(lua_State *L) {
  casync_ctx *ctx = CASYNC_CTX(L);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, casync__stream_count(ctx));
  lua_setfield(L, -2, "streams");
  lua_pushinteger(L, ctx->streams_open);
  lua_setfield(L, -2, "open");
  lua_pushinteger(L, casync__server_count(ctx));
  lua_setfield(L, -2, "servers");
  lua_pushinteger(L, ctx->pins);
  lua_setfield(L, -2, "pins");
  return 1;
}

/* Ignores SIGPIPE (unless the program handles it): a write to a peer that
 * went away must return EPIPE, not end the process. */
void casync__net_open(lua_State *L) {
  struct sigaction sa;
  (void)L;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
}
