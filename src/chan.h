/* chan.h: what channel.c, queue.c and select.c share: the channel (and
 * queue) struct, its buffer and the hand-off between waiting tasks. */
#ifndef CASYNC_CHAN_H
#define CASYNC_CHAN_H

#include "prim.h"

#define CASYNC_CHANNEL_MT "casync.Channel"
#define CASYNC_QUEUE_MT "casync.Queue"
#define MAX_CAPACITY 0x7fffffff
#define UNBOUNDED ((lua_Integer)1 << 62) /* a queue's "no maxsize" */

enum { OP_SEND = 1, OP_RECV, OP_PUT, OP_GET, OP_JOIN };
enum { ORDER_FIFO, ORDER_LIFO, ORDER_PRIORITY };

/* A channel, or a queue (same struct, metatable casync.Queue).  User value
 * 1 holds the buffered values; a priority queue's user value 2 their keys. */
typedef struct chan {
  casync_wqueue senders, receivers;
  lua_Integer cap, head, count; /* ring buffer in user value 1, 1-based */
  int closed;
  int order;              /* ORDER_*: channels are FIFO */
  lua_Integer unfinished; /* queues: items put and not yet task_done */
  lua_Integer seq;        /* priority queues: arrival numbers */
  casync_wqueue joiners;  /* queues: tasks in join() */
  lua_Integer id;         /* channel#id, queue#id in task dumps */
  int is_queue;
} chan;

void casync__chan_take_from(lua_State *L, casync_wnode *w);
chan *casync__chan_check(lua_State *L, int idx);
chan *casync__queue_check(lua_State *L, int idx);
int casync__chan_raise_closed(lua_State *L, const char *fname);
int casync__chan_try_send(lua_State *L, casync_ctx *lp, chan *c, int chidx,
                          lua_Number prio);
int casync__chan_try_recv(lua_State *L, casync_ctx *lp, chan *c, int chidx);
void casync__chan_close(casync_ctx *lp, chan *c);
int casync__chan_cancel(casync_ctx *lp, casync_task *t, int why);
void casync__chan_enlist(casync_task *t, casync_wqueue *q, int op, int valslot);
int casync__chan_send(lua_State *L, chan *c, int op, lua_Number prio);
int casync__chan_recv(lua_State *L, chan *c, int op);
int casync__chan_poll_recv(lua_State *L, chan *c);
lua_Integer casync__chan_check_capacity(lua_State *L, int arg,
                                        const char *what);
chan *casync__chan_new(lua_State *L, lua_Integer cap, int order,
                       const char *mt);
void casync__chan_describe(lua_State *L, chan *c, const char *op);
const void *casync__chan_new_type(lua_State *L, const char *name,
                                  const luaL_Reg *methods,
                                  lua_CFunction tostring, lua_CFunction len);

#endif
