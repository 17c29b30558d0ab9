/* W1 switch, plain C on libuv: two "tasks" take turns through the event loop.
 * Each task is a uv_idle handle whose callback is one resumption; both are
 * active, so every loop iteration runs A then B and goes back to the loop
 * (uv_run's idle phase, then a zero-timeout poll phase) before the next round. */
#include "common.h"

static long per_task;
typedef struct { uv_idle_t h; long left; } task_t;
static long switches = 0;

static void step(uv_idle_t *h) {
  task_t *t = (task_t *)h;
  switches++;
  if (--t->left == 0) uv_idle_stop(h); /* task ends */
}

int main(void) {
  long n = env_n("BENCH_N", 1000000);
  uv_loop_t *loop = uv_default_loop();
  task_t a, b;
  per_task = n / 2;
  double t0 = now_s();
  a.left = b.left = per_task;
  uv_idle_init(loop, &a.h);
  uv_idle_init(loop, &b.h);
  uv_idle_start(&a.h, step);
  uv_idle_start(&b.h, step);
  uv_run(loop, UV_RUN_DEFAULT);
  double wall = now_s() - t0;
  if (switches != 2 * per_task) { fprintf(stderr, "bad count %ld\n", switches); return 1; }
  printf("{\"workload\":\"W1\",\"runtime\":\"c\",\"switches\":%ld,\"wall_s\":%.6f,\"ns_per_op\":%.2f}\n",
         switches, wall, wall * 1e9 / (double)switches);
  uv_close((uv_handle_t *)&a.h, NULL);
  uv_close((uv_handle_t *)&b.h, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
