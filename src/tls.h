/* tls.h: what the TLS files share (tls.c: the layer inside a stream;
 * tls_conf.c: settings from Lua options, OpenSSL's SSL_CTX; tls_lua.c:
 * casync.tls and stream:tls_info).  Private to them. */
#ifndef CASYNC_TLS_H
#define CASYNC_TLS_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "stream.h"

#define CASYNC_TLS_CONF_MT "casync.TlsConf"

/* Settings shared by every stream made with them (a Lua userdata; each
 * SSL holds a reference to the SSL_CTX, so it may go first). */
struct casync_tls_conf {
  SSL_CTX *ctx;
  int server;
  int verify; /* client: check the peer's certificate */
};

enum { TS_HANDSHAKE = 1, TS_OPEN, TS_FAILED };

/* The TLS layer of one stream, freed with the stream's block. */
struct casync_tls {
  SSL *ssl;         /* owns rbio and wbio */
  BIO *rbio, *wbio; /* ciphertext from the peer, for the peer */
  int state;        /* TS_* */
  unsigned char server, verify, shut_sent, shut_got;
  int werr;         /* a failed write nobody waited for */
  const char *code; /* why it failed: the error's code, */
  char why[240];    /* and its message */
  char host[256];   /* client: the name the certificate must have */
};

/* tls.c */
int casync__tls_state(casync_stream *s);

/* tls_conf.c */
void casync__tls_conf_open(lua_State *L);

#endif
