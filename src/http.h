/* http.h: HTTP/1.1 on casync streams: the server (http_server.c,
 * http_conn.c, http_respond.c; their shared structures are in
 * http_server.h), the client's C helpers (http.c) and WebSocket framing
 * (ws.c); the message layer is http_parse.h.  Layer 4: includes io.h. */
#ifndef CASYNC_HTTP_H
#define CASYNC_HTTP_H

#include "io.h"

void casync__http_open(lua_State *L);
void casync__http_server_open(lua_State *L);
void casync__ws_open(lua_State *L);

#endif
