/* tls_lua.c: casync.tls: connect, listen and wrap (STARTTLS), and
 * stream:tls_info().  A TLS stream is a casync.Stream like any other:
 * read, read_line, write, shutdown, close and the rest are the same.
 *
 * Every handshake is a wait like a read: bounded by the operation's
 * timeout, cancellable, and a stream whose handshake did not finish is
 * closed.  A failure is an error of kind "tls" that says why (tls.c).
 */
#include <string.h>
#include "tls.h"

#define DEFAULT_BACKLOG 511
#define DEFAULT_HANDSHAKE_TIMEOUT 30.0 /* seconds a client has to say hello */

/* ============================================================ connect */

/* connect's stack: [1 host][2 port][3 opts][4 settings][5 name] */
static int connect_hs_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, connect_hs_k);
  return casync__tls_handshake_result(L, t, 6, "connect",
                                      casync__net_opt_seconds(L, 3, "timeout"));
}

static int connect_tcp_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  casync_stream *s;
  int r;
  (void)status;
  CASYNC_RESUMED(L, t, kc, connect_tcp_k);
  if (lua_gettop(L) != 6) return 2; /* nil, err */
  s = casync__stream_of(L, 6);
  r = casync__tls_start(s, lua_touserdata(L, 4), lua_tostring(L, 5));
  if (r < 0) {
    casync__stream_close(s, 1);
    return casync__stream_err(L, NULL, "connect", r);
  }
  return casync__tls_handshake(L, t, 6, (uint64_t)kc, connect_hs_k, kc);
}

/* casync.tls.connect(host, port [, opts]) -> stream | nil, err: a TCP
 * connection to host (its addresses raced as tcp.connect does) with a TLS
 * handshake on it; the server's certificate is checked against the
 * system's CAs (opts.ca: a file, directory or PEM text instead) and must
 * name opts.server_name or host; opts.verify = false skips the checks;
 * opts.cert/key: a client certificate; opts.alpn (default {"http/1.1"});
 * opts.timeout bounds connect and handshake together */
static int fn_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = casync__net_check_port(L, 2);
  double timeout;
  uint64_t deadline;
  casync_task *t;
  const char *name;
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  timeout = casync__net_opt_seconds(L, 3, "timeout");
  lua_settop(L, 3);
  if (!casync__tls_conf(L, 3, 0, "connect")) return 2; /* 4 */
  name = host;
  if (!lua_isnil(L, 3) && lua_getfield(L, 3, "server_name") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 3, "opts.server_name must be a string");
    name = lua_tostring(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnil(L, 3)) lua_pop(L, 1);
  lua_pushstring(L, name); /* 5 */
  t = casync__wait_begin(L, "connect");
  deadline = casync__deadline(timeout);
  return casync__tcp_connect(L, t, host, (int)port, deadline, timeout,
                             connect_tcp_k, (lua_KContext)deadline);
}

/* =============================================================== wrap */

/* wrap's stack: [1 stream][2 opts][3 settings] */
static int wrap_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  stream_ud *u = lua_touserdata(L, 1);
  (void)status;
  CASYNC_RESUMED(L, t, kc, wrap_k);
  return casync__tls_handshake_result(
      L, t, 1, "wrap",
      lua_isnil(L, 2) || lua_getfield(L, 2, "timeout") == LUA_TNIL
          ? u->timeout
          : lua_tonumber(L, -1));
}

/* casync.tls.wrap(stream, opts) -> stream | nil, err: starts TLS on an
 * open stream (STARTTLS) and returns the same stream once the handshake
 * is done: a client (opts.server_name, the name the server's certificate
 * must have, unless opts.verify = false; the rest as tls.connect) or,
 * with opts.server = true, a server (opts.cert, opts.key [, opts.ca]);
 * opts.timeout (default: the stream's).  On failure the stream is closed */
static int fn_wrap(lua_State *L) {
  stream_ud *u;
  casync_stream *s = casync__stream_check_open(L, 1, "wrap");
  const char *name = NULL;
  int server = 0, r;
  double timeout;
  casync_task *t;
  casync_tls_conf *c;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  u = lua_touserdata(L, 1);
  luaL_argcheck(L, s->tls == NULL, 1, "the stream speaks TLS already");
  if (lua_getfield(L, 2, "server") != LUA_TNIL) {
    if (!lua_isboolean(L, -1))
      luaL_argerror(L, 2, "opts.server must be a boolean");
    server = lua_toboolean(L, -1);
  }
  if (lua_getfield(L, 2, "server_name") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 2, "opts.server_name must be a string");
    name = lua_tostring(L, -1);
  }
  lua_getfield(L, 2, "verify");
  if (!server && !name && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1)))
    luaL_argerror(L, 2,
                  "opts.server_name is needed to verify the server "
                  "(or opts.verify = false)");
  lua_pop(L, 3);
  timeout = casync__net_opt_seconds(L, 2, "timeout");
  if (timeout < 0) timeout = u->timeout;
  if (!(c = casync__tls_conf(L, 2, server, "wrap"))) return 2; /* 3 */
  t = casync__wait_begin(L, "wrap");
  if (s->reader || s->writer)
    return luaL_error(L, "wrap: another task is reading from or writing to "
                         "this stream");
  if ((r = casync__tls_start(s, c, name)) < 0) {
    casync__stream_close(s, 1);
    return casync__stream_err(L, NULL, "wrap", r);
  }
  return casync__tls_handshake(L, t, 1, casync__deadline(timeout), wrap_k, 0);
}

/* ============================================================= listen */

/* The handler of a TLS server's connections: the handshake, then the
 * user's handler.  Upvalues: 1 the context, 2 the handler, 3 the
 * settings, 4 the handshake timeout, 5 on_error or nil. */
static int serve_done(lua_State *L, int status, lua_KContext kc) {
  (void)status;
  return lua_gettop(L) - (int)kc;
}

static int serve_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  int n;
  (void)status;
  CASYNC_RESUMED(L, t, kc, serve_k);
  lua_settop(L, 1);
  n = casync__tls_handshake_result(L, t, 1, "handshake",
                                   lua_tonumber(L, lua_upvalueindex(4)));
  if (n == 2) { /* refused: the handler is not called */
    if (!lua_isnil(L, lua_upvalueindex(5))) {
      lua_pushvalue(L, lua_upvalueindex(5));
      lua_insert(L, -2);
      lua_callk(L, 1, 0, 1, serve_done);
    }
    return 0;
  }
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_callk(L, 1, LUA_MULTRET, 1, serve_done);
  return serve_done(L, LUA_OK, 1);
}

static int serve_conn(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "handshake");
  casync_task *t = casync__wait_begin(L, "handshake");
  lua_settop(L, 1);
  if (casync__tls_start(s, lua_touserdata(L, lua_upvalueindex(3)), NULL) < 0)
    return 0;
  return casync__tls_handshake(
      L, t, 1, casync__deadline(lua_tonumber(L, lua_upvalueindex(4))), serve_k,
      0);
}

/* casync.tls.listen(host, port, handler, opts) -> server | nil, err: a TCP
 * server whose connections speak TLS: handler(stream) runs once the
 * handshake is done (opts.cert, opts.key: files or PEM text; opts.ca: ask
 * clients for a certificate from these CAs; opts.alpn: protocols to
 * accept; opts.handshake_timeout, default 30 s; opts.on_error(err) hears
 * of refused handshakes; opts.backlog); a host name needs a task */
static int fn_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = casync__net_check_port(L, 2), backlog;
  double hs;
  casync__check_callable(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  backlog = casync__net_opt_int(L, 4, "backlog", DEFAULT_BACKLOG);
  luaL_argcheck(L, backlog > 0 && backlog <= 0x7fffffff, 4,
                "opts.backlog must be positive");
  hs = casync__net_opt_seconds(L, 4, "handshake_timeout");
  if (hs < 0) hs = DEFAULT_HANDSHAKE_TIMEOUT;
  lua_settop(L, 4);
  if (lua_getfield(L, 4, "on_error") != LUA_TNIL && !casync__is_callable(L, -1))
    luaL_argerror(L, 4, "opts.on_error must be callable");
  lua_pop(L, 1);
  if (!casync__tls_conf(L, 4, 1, "listen")) return 2; /* 5 */
  casync__ctx_push(L);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 5);
  lua_pushnumber(L, hs);
  lua_getfield(L, 4, "on_error");
  lua_pushcclosure(L, serve_conn, 5); /* 6 */
  return casync__tcp_listen(L, "listen", host, (int)port, 6, (int)backlog, 1);
}

/* ======================================================= stream method */

/* stream:tls_info() -> {version=, cipher=, alpn=, server_name=,
 * peer_subject=, verified=} | nil: what the handshake agreed (nil for a
 * plain stream or one whose handshake is not done) */
static int meth_tls_info(lua_State *L) {
  casync_stream *s = casync__stream_check_open(L, 1, "tls_info");
  casync_tls *tl = s->tls;
  const unsigned char *alpn;
  unsigned alen;
  const char *sni;
  X509 *peer;
  if (!tl || tl->state != TS_OPEN) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, SSL_get_version(tl->ssl));
  lua_setfield(L, -2, "version");
  lua_pushstring(L, SSL_get_cipher_name(tl->ssl));
  lua_setfield(L, -2, "cipher");
  SSL_get0_alpn_selected(tl->ssl, &alpn, &alen);
  if (alen) {
    lua_pushlstring(L, (const char *)alpn, alen);
    lua_setfield(L, -2, "alpn");
  }
  sni = SSL_get_servername(tl->ssl, TLSEXT_NAMETYPE_host_name);
  if (sni) {
    lua_pushstring(L, sni);
    lua_setfield(L, -2, "server_name");
  }
  peer = SSL_get_peer_certificate(tl->ssl);
  if (peer) {
    char buf[512];
    X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "peer_subject");
    X509_free(peer);
  }
  lua_pushboolean(
      L, peer && SSL_get_verify_result(tl->ssl) == X509_V_OK &&
             (tl->verify || SSL_get_verify_mode(tl->ssl) != SSL_VERIFY_NONE));
  lua_setfield(L, -2, "verified");
  return 1;
}

const luaL_Reg casync__stream_tls_methods[] = {{"tls_info", meth_tls_info},
                                               {NULL, NULL}};

void casync__tls_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"connect", fn_connect},
                                 {"listen", fn_listen},
                                 {"wrap", fn_wrap},
                                 {NULL, NULL}};
  casync__tls_conf_open(L);
  lua_newtable(L);
  casync__ctx_setfuncs(L, fns);
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "library");
  lua_setfield(L, -2, "tls");
}
