/* sleep_until.c: casync.sleep_until(t), the worked example of ARCHITECTURE.md
 * ("adding a waiting operation"): the wait is nothing but its deadline. */
#include <math.h>
#include "scheduler.h"

static int until_cancel(casync_ctx *lp, casync_task *t, int why) {
  (void)lp, (void)t, (void)why;
  return 1; /* nothing to undo: the deadline is the whole wait */
}

static const casync_wait_kind until_wait = {"sleep_until", "sleep until",
                                            until_cancel, 0};

static int until_k(lua_State *L, int status, lua_KContext kc) {
  casync_task *t;
  (void)status;
  CASYNC_RESUMED(L, t, kc, until_k);
  casync__woken(L, t); /* raises a cancellation; WAKE_TIMEOUT is "done" */
  return 0;
}

/* casync.sleep_until(t): suspends the calling task until casync.now() >= t
 * (a time in the past lets the other ready tasks run first) */
static int fn_sleep_until(lua_State *L) {
  double at = luaL_checknumber(L, 1);
  casync_task *t;
  luaL_argcheck(L, !isnan(at), 1, "number expected, got NaN");
  t = casync__wait_begin(L, "sleep_until");
  if (at * 1e9 <= (double)casync__now_ns(t->loop))
    return casync__requeue(L, t, &until_wait, until_k, 0);
  return casync__park(L, t, &until_wait, NULL, /* real-time ns, as always */
                      at >= 1e9 ? UINT64_MAX - 1
                                : (uint64_t)(at * 1e9) - t->loop->clock_offset,
                      until_k, 0);
}

void casync__sleep_until_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"sleep_until", fn_sleep_until}, {NULL, NULL}};
  casync__ctx_setfuncs(L, fns);
}
