/* tls_conf.c: TLS settings from a Lua options table: OpenSSL's SSL_CTX in
 * a userdata (casync.TlsConf).
 *
 * A client gets what a browser has unless told otherwise: the system's CA
 * store, the server's name checked and sent (SNI), TLS 1.2 at least, ALPN
 * "http/1.1"; only verify = false turns the checks off.  ca, cert and key
 * are file names or PEM text.  Settings without files (the usual client)
 * are made once and shared.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "tls.h"

static char cache_key;

/* A server's ALPN protocols live with its SSL_CTX (ex_data), which may
 * outlive the userdata: a handshake still going on uses them. */
typedef struct alpn_list {
  unsigned len;
  unsigned char data[];
} alpn_list;
static int alpn_index = -1;
static uv_once_t alpn_once = UV_ONCE_INIT;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp) {
  (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
  free(ptr);
}

static void alpn_init(void) {
  alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
}

static int conf_gc(lua_State *L) {
  casync_tls_conf *c = lua_touserdata(L, 1);
  if (c->ctx) SSL_CTX_free(c->ctx);
  c->ctx = NULL;
  return 0;
}

/* opts[field] as a string (NULL if absent); raises as argument arg. */
static const char *opt_string(lua_State *L, int opts, const char *field,
                              int arg) {
  const char *v = NULL;
  int ty = lua_getfield(L, opts, field);
  if (ty == LUA_TSTRING) v = lua_tostring(L, -1);
  else if (ty != LUA_TNIL)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "opts.%s must be a string", field));
  lua_pop(L, 1); /* the options table keeps the string alive */
  return v;
}

/* opts[field] as a boolean (def if absent). */
static int opt_bool(lua_State *L, int opts, const char *field, int arg,
                    int def) {
  int ty = lua_getfield(L, opts, field), v = def;
  if (ty == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (ty != LUA_TNIL)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "opts.%s must be a boolean", field));
  lua_pop(L, 1);
  return v;
}

/* opts[field]: "tls1.2" or "tls1.3" (def if absent). */
static int opt_version(lua_State *L, int opts, const char *field, int arg,
                       int def) {
  const char *v = opt_string(L, opts, field, arg);
  if (!v) return def;
  if (strcmp(v, "tls1.2") == 0) return TLS1_2_VERSION;
  if (strcmp(v, "tls1.3") == 0) return TLS1_3_VERSION;
  return luaL_argerror(L, arg,
                       lua_pushfstring(L,
                                       "opts.%s must be "
                                       "\"tls1.2\" or \"tls1.3\"",
                                       field));
}

/* opts.alpn in wire form, pushed as a string ("" for none): default for a
 * client {"http/1.1"}, for a server none; false means none. */
static void opt_alpn(lua_State *L, int opts, int arg, int server) {
  luaL_Buffer b;
  int ty = lua_getfield(L, opts, "alpn");
  lua_Integer i, n;
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    if (server) lua_pushliteral(L, "");
    else lua_pushliteral(L, "\x08http/1.1");
    return;
  }
  if (ty == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    return;
  }
  if (ty != LUA_TTABLE)
    luaL_argerror(L, arg, "opts.alpn must be an array of strings or false");
  n = (lua_Integer)lua_rawlen(L, -1);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *p;
    lua_rawgeti(L, -2, i); /* the table is below the buffer */
    p = lua_tolstring(L, -1, &len);
    if (!p || len == 0 || len > 255 || lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg,
                    "opts.alpn must be an array of non-empty "
                    "strings of at most 255 bytes");
    lua_pop(L, 1);
    luaL_addchar(&b, (char)len);
    luaL_addlstring(&b, p, len);
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

/* The error of a settings failure: kind "tls", code "CONFIG". */
static casync_tls_conf *config_error(lua_State *L, const char *fname,
                                     const char *what, const char *name) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  lua_pushnil(L);
  casync__error_push(L, "tls", "CONFIG", "%s: %s%s%s%s: %s", fname, what,
                     name ? " '" : "", name ? name : "", name ? "'" : "",
                     r ? r : "no usable PEM data");
  return NULL;
}

static int is_pem(const char *v) { return strstr(v, "-----BEGIN") != NULL; }

/* A file the settings name must be readable: NULL or why not. */
static const char *unreadable(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strerror(errno);
  fclose(f);
  return NULL;
}

#define FILE_CHECK(v, what)                                                 \
  do {                                                                      \
    const char *why_;                                                       \
    if (!is_pem(v) && (why_ = unreadable(v)) != NULL) {                     \
      lua_pushnil(L);                                                       \
      casync__error_push(L, "tls", "CONFIG",                                \
                         "%s: cannot read the %s '%s': %s", fname, what, v, \
                         why_);                                             \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

/* Loads the certificate chain (first the leaf) from a file or PEM text. */
static int load_chain(SSL_CTX *ctx, const char *v) {
  BIO *bio;
  X509 *x;
  int ok;
  if (!is_pem(v)) return SSL_CTX_use_certificate_chain_file(ctx, v) == 1;
  bio = BIO_new_mem_buf(v, -1);
  if (!bio) return 0;
  x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
  ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
  X509_free(x);
  while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
      X509_free(x);
      ok = 0;
    }
  ERR_clear_error(); /* the end of the PEM data */
  BIO_free(bio);
  return ok;
}

static int load_key(SSL_CTX *ctx, const char *v) {
  BIO *bio;
  EVP_PKEY *k;
  int ok;
  if (!is_pem(v))
    return SSL_CTX_use_PrivateKey_file(ctx, v, SSL_FILETYPE_PEM) == 1;
  bio = BIO_new_mem_buf(v, -1);
  if (!bio) return 0;
  k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;
  EVP_PKEY_free(k);
  BIO_free(bio);
  return ok;
}

/* Whether dir holds OpenSSL's hash links (<8 hex digits>.<n>, made by
 * update-ca-certificates or openssl rehash), through which a certificate
 * is found by its issuer's name when a handshake needs it. */
static int has_hash_links(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  if (!d) return 0;
  while (!found && (e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    size_t i = 0;
    while (i < 8 && isxdigit((unsigned char)n[i])) i++;
    found = i == 8 && n[8] == '.' && isdigit((unsigned char)n[9]);
  }
  closedir(d);
  return found;
}

/* Trusts the system's CA store.  Read through the hashed directory
 * (SSL_CERT_DIR or OpenSSL's default, /etc/ssl/certs on Debian) when it
 * has hash links: a handshake then reads the one or two certificates it
 * needs, where loading the bundle file parses all ~140 of them (20-30 ms
 * of the loop for every new client context).  Otherwise, or when
 * SSL_CERT_FILE names a file, OpenSSL's default paths, file included. */
static int load_system_store(SSL_CTX *ctx) {
  const char *file = getenv(X509_get_default_cert_file_env());
  const char *dirs = getenv(X509_get_default_cert_dir_env());
  char one[4096];
  const char *p;
  if (!dirs || !*dirs) dirs = X509_get_default_cert_dir();
  if (file && *file) return SSL_CTX_set_default_verify_paths(ctx);
  for (p = dirs; *p;) { /* a list, as SSL_CERT_DIR may be */
    size_t n = strcspn(p, ":");
    if (n > 0 && n < sizeof one) {
      memcpy(one, p, n);
      one[n] = '\0';
      if (has_hash_links(one)) return SSL_CTX_load_verify_dir(ctx, dirs);
    }
    p += n;
    if (*p == ':') p++;
  }
  return SSL_CTX_set_default_verify_paths(ctx);
}

/* Trusts the CA certificates of a file, a directory or PEM text (at least
 * one); a server also names them to its clients. */
static int load_ca(SSL_CTX *ctx, const char *v, int server) {
  X509_STORE *st = SSL_CTX_get_cert_store(ctx);
  struct stat sb;
  BIO *bio;
  X509 *x;
  int n = 0;
  if (!is_pem(v) && stat(v, &sb) == 0 && S_ISDIR(sb.st_mode))
    return SSL_CTX_load_verify_locations(ctx, NULL, v) == 1;
  bio = is_pem(v) ? BIO_new_mem_buf(v, -1) : BIO_new_file(v, "r");
  if (!bio) return 0;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (X509_STORE_add_cert(st, x) == 1) n++;
    if (server) SSL_CTX_add_client_CA(ctx, x);
    X509_free(x);
  }
  BIO_free(bio);
  if (n == 0) return 0; /* the error queue says why */
  ERR_clear_error();    /* the end of the PEM data */
  return 1;
}

/* A server picks the first of its protocols the client offers; none in
 * common: no ALPN (the client decides whether that is fatal). */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  alpn_list *a = arg;
  (void)ssl;
  if (SSL_select_next_proto((unsigned char **)out, outlen, a->data, a->len, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  return SSL_TLSEXT_ERR_OK;
}

/* Makes (or finds) the settings of the options table at opts (absent:
 * defaults) for a server or a client; raises `bad argument #opts to
 * fname` for a malformed option.  Pushes the settings' userdata (keep it
 * while they are in use) and returns them, or pushes nil and an error of
 * kind "tls" (a file that cannot be read, a key that does not match the
 * certificate) and returns NULL. */
casync_tls_conf *casync__tls_conf(lua_State *L, int opts, int server,
                                  const char *fname) {
  const char *ca = NULL, *cert = NULL, *key = NULL, *ciphers = NULL,
             *suites = NULL;
  int verify = 1, minv = TLS1_2_VERSION, maxv = 0, top = lua_gettop(L);
  size_t alpn_len;
  const char *alpn;
  casync_tls_conf *c;
  SSL_CTX *ctx;
  opts = lua_absindex(L, opts);
  if (!lua_isnoneornil(L, opts)) {
    luaL_checktype(L, opts, LUA_TTABLE);
    ca = opt_string(L, opts, "ca", opts);
    cert = opt_string(L, opts, "cert", opts);
    key = opt_string(L, opts, "key", opts);
    ciphers = opt_string(L, opts, "ciphers", opts);
    suites = opt_string(L, opts, "ciphersuites", opts);
    verify = opt_bool(L, opts, "verify", opts, 1);
    minv = opt_version(L, opts, "min_version", opts, TLS1_2_VERSION);
    maxv = opt_version(L, opts, "max_version", opts, 0);
  }
  if (server && (!cert || !key))
    luaL_argerror(L, opts, "opts.cert and opts.key are needed to serve TLS");
  if (!cert != !key)
    luaL_argerror(L, opts, "opts.cert and opts.key go together");
  if (maxv && maxv < minv)
    luaL_argerror(L, opts, "opts.max_version is below opts.min_version");
  if (lua_isnoneornil(L, opts)) { /* opt_alpn reads a table */
    lua_newtable(L);
    opt_alpn(L, lua_gettop(L), opts, server);
    lua_remove(L, -2);
  } else opt_alpn(L, opts, opts, server);
  alpn = lua_tolstring(L, -1, &alpn_len); /* top+1 */
  /* settings without files are shared */
  if (!ca && !cert) {
    lua_pushfstring(L, "%s|%d|%d|%d|%s|%s|", server ? "s" : "c", verify, minv,
                    maxv, ciphers ? ciphers : "", suites ? suites : "");
    lua_pushvalue(L, -2);
    lua_concat(L, 2); /* top+2: the key */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "v");
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
    }
    lua_pushvalue(L, -2);
    if (lua_rawget(L, -2) == LUA_TUSERDATA) {
      c = lua_touserdata(L, -1);
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return c;
    }
    lua_pop(L, 1); /* top+3: the cache */
  }
  if (ca) FILE_CHECK(ca, "CA file");
  if (cert) {
    FILE_CHECK(cert, "certificate");
    FILE_CHECK(key, "key");
  }
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CASYNC_TLS_CONF_MT);
  c->server = server;
  c->verify = verify;
  c->ctx = ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) return config_error(L, fname, "cannot make a TLS context", NULL);
  SSL_CTX_set_min_proto_version(ctx, minv);
  if (maxv) SSL_CTX_set_max_proto_version(ctx, maxv);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
    return config_error(L, fname, "bad opts.ciphers", ciphers);
  if (suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1)
    return config_error(L, fname, "bad opts.ciphersuites", suites);
  if (cert && !load_chain(ctx, cert))
    return config_error(L, fname, "bad certificate",
                        is_pem(cert) ? NULL : cert);
  if (key && !load_key(ctx, key))
    return ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH
               ? config_error(L, fname,
                              "the key does not match the certificate", NULL)
               : config_error(L, fname, "bad key", is_pem(key) ? NULL : key);
  if (cert && SSL_CTX_check_private_key(ctx) != 1)
    return config_error(L, fname, "the key does not match the certificate",
                        NULL);
  if (server) {
    if (ca) { /* clients must show a certificate from ca */
      if (!load_ca(ctx, ca, 1))
        return config_error(L, fname, "bad CA", is_pem(ca) ? NULL : ca);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         NULL);
    }
    if (alpn_len) {
      alpn_list *a = malloc(sizeof *a + alpn_len);
      if (!a) return config_error(L, fname, "out of memory", NULL);
      memcpy(a->data, alpn, alpn_len);
      a->len = (unsigned)alpn_len;
      uv_once(&alpn_once, alpn_init);
      if (alpn_index < 0 || !SSL_CTX_set_ex_data(ctx, alpn_index, a)) {
        free(a);
        return config_error(L, fname, "cannot keep opts.alpn", NULL);
      }
      SSL_CTX_set_alpn_select_cb(ctx, select_alpn, a);
    }
  } else {
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (verify && ca && !load_ca(ctx, ca, 0))
      return config_error(L, fname, "bad CA", is_pem(ca) ? NULL : ca);
    if (verify && !ca && load_system_store(ctx) != 1)
      return config_error(L, fname, "cannot load the system's CA store", NULL);
    if (alpn_len && SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)alpn,
                                            (unsigned)alpn_len) != 0)
      return config_error(L, fname, "bad opts.alpn", NULL);
  }
  ERR_clear_error();
  if (!ca && !cert) { /* cache[key] = conf */
    lua_pushvalue(L, top + 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, top + 3);
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return c;
}

/* The metatable of the settings (tls_lua.c opens it). */
void casync__tls_conf_open(lua_State *L) {
  luaL_newmetatable(L, CASYNC_TLS_CONF_MT);
  lua_pushcfunction(L, conf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "casync.TlsConf");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
