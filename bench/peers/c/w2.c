/* W2 spawn-gather, plain C on libuv: N heap-allocated tasks, each a uv_timer of
 * 10 ms; each stores its result and counts down; the loop ends when all are done. */
#include "common.h"

typedef struct { uv_timer_t t; long i; } task_t;
static long pending;
static long *results;

static void free_cb(uv_handle_t *h) { free(h); }

static void fire(uv_timer_t *h) {
  task_t *t = (task_t *)h;
  results[t->i] = t->i;
  pending--;
  uv_close((uv_handle_t *)h, free_cb);
}

int main(void) {
  long n = env_n("BENCH_N", 100000);
  uv_loop_t *loop = uv_default_loop();
  reset_hwm();
  long rss0 = proc_status_bytes("VmRSS");
  uv_update_time(loop); /* timers count from now, not from loop creation */
  double t0 = now_s();
  results = malloc(sizeof(long) * n);
  pending = n;
  for (long i = 0; i < n; i++) {
    task_t *t = malloc(sizeof *t);
    t->i = i;
    uv_timer_init(loop, &t->t);
    uv_timer_start(&t->t, fire, 10, 0);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  double wall = now_s() - t0;
  long hwm = proc_status_bytes("VmHWM");
  if (pending != 0 || results[n - 1] != n - 1) { fprintf(stderr, "bad result\n"); return 1; }
  printf("{\"workload\":\"W2\",\"runtime\":\"c\",\"tasks\":%ld,\"wall_s\":%.6f,\"us_per_task\":%.4f,"
         "\"rss_bytes_per_task\":%.1f}\n",
         n, wall, (wall - 0.010) * 1e6 / (double)n, (double)(hwm - rss0) / (double)n);
  free(results);
  return 0;
}
