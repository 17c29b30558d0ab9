/* sync.h: what sync.c shares with select.c: semaphores and locks (whose
 * permits select can take) and events. */
#ifndef CASYNC_SYNC_H
#define CASYNC_SYNC_H

#include "prim.h"

#define SEM_MT "casync.Semaphore"
#define LOCK_MT "casync.Lock"
#define PERMIT_MT "casync.Permit"
#define EVENT_MT "casync.Event"
#define COND_MT "casync.Condition"

enum { OP_ACQUIRE = 10, OP_REACQUIRE, OP_EVENT, OP_COND };

typedef struct permit permit;

typedef struct sem {
  casync_wqueue waiters;
  lua_Integer id;       /* lock#id, semaphore#id in task dumps */
  lua_Integer owner_id; /* a lock's holder's task id, 0 for none */
  lua_Integer count, initial;
  int is_lock;
  casync_task *owner;  /* a lock's holder */
  permit *held;        /* permits not yet released, newest first */
  lua_Integer dropped; /* permits collected unreleased: still taken */
} sem;

struct permit {
  sem *s;             /* NULL once released */
  casync_task *owner; /* compared, never followed: it may be gone */
  lua_Integer owner_id;
  permit *next, *prev;
};

typedef struct event {
  casync_wqueue waiters;
  lua_Integer id;
  int set;
} event;

sem *casync__sync_check_sem(lua_State *L, int idx);
int casync__sync_push_permit(lua_State *L, sem *s, int sidx, casync_task *t);
void casync__sync_describe(lua_State *L, sem *s);
int casync__sync_blockers(lua_State *L, sem *s, casync_task **out, int max);

#endif
