/* W4 timers, plain C on libuv: N tasks each sleeping an LCG duration in [0,1) s
 * (libuv timers have millisecond resolution: the duration is rounded to ms). */
#include "common.h"
#include <math.h>

typedef struct { uv_timer_t t; } task_t;
static long pending;
static void free_cb(uv_handle_t *h) { free(h); }
static void fire(uv_timer_t *h) { pending--; uv_close((uv_handle_t *)h, free_cb); }

int main(void) {
  long n = env_n("BENCH_N", 200000);
  uv_loop_t *loop = uv_default_loop();
  double maxd = 0;
  uv_update_time(loop); /* timers count from now, not from loop creation */
  double t0 = now_s();
  pending = n;
  for (long i = 0; i < n; i++) {
    double d = lcg_next();
    if (d > maxd) maxd = d;
    task_t *t = malloc(sizeof *t);
    uv_timer_init(loop, &t->t);
    uv_timer_start(&t->t, fire, (uint64_t)llround(d * 1000.0), 0);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  double wall = now_s() - t0;
  if (pending != 0) { fprintf(stderr, "bad result\n"); return 1; }
  printf("{\"workload\":\"W4\",\"runtime\":\"c\",\"tasks\":%ld,\"wall_s\":%.6f,\"max_sleep_s\":%.6f,"
         "\"overhead_s\":%.6f}\n", n, wall, maxd, wall - maxd);
  return 0;
}
