/* prim.h: the primitives built on the scheduler: channels, select and
 * queues, semaphores, locks, events and conditions, the combinators, and
 * worker threads with the value copying they need.  Layer 2: includes
 * scheduler.h. */
#ifndef CASYNC_PRIM_H
#define CASYNC_PRIM_H

#include "scheduler.h"

/* channel.c, select.c, queue.c, sync.c, combinators.c */
void casync__channel_open(lua_State *L);
void casync__select_open(lua_State *L);
void casync__queue_open(lua_State *L);
void casync__sync_open(lua_State *L);
void casync__combinators_open(lua_State *L);

/* copy.c: values copied between Lua states */
typedef struct casync_buf {
  char *data;
  size_t len, cap;
} casync_buf;
void casync__buf_free(casync_buf *b);
int casync__copy_encode(lua_State *L, int idx, int n, casync_buf *b,
                        const char *root, lua_Integer first, int fn_first);
int casync__copy_decode(lua_State *L, const casync_buf *b, size_t from);

/* wrap.c: casync.wrap, callback APIs as waits */
void casync__wrap_open(lua_State *L);

/* thread.c, worker.c: casync.thread and thread pools */
void casync__thread_open(lua_State *L);

#endif
