/* http.h: HTTP/1.1 on casync streams: the server (http_server.c) and the
 * client's C helpers (http.c); the message layer is http_parse.h.  Layer
 * 4: includes io.h. */
#ifndef CASYNC_HTTP_H
#define CASYNC_HTTP_H

#include "io.h"

void casync__http_open(lua_State *L);
void casync__http_server_open(lua_State *L);

#endif
