/* W5, plain C on libuv: 100 x 10 ms one after another (one timer re-armed from
 * its callback), then 100 x 10 ms at once (100 timers, counted down). */
#include "common.h"

static long n, seq_left, pending;
static uv_timer_t seq_timer, *conc;

static void seq_fire(uv_timer_t *h) {
  if (--seq_left > 0) uv_timer_start(h, seq_fire, 10, 0);
}
static void conc_fire(uv_timer_t *h) { (void)h; pending--; }

int main(void) {
  n = env_n("BENCH_N", 100);
  uv_loop_t *loop = uv_default_loop();
  double t0 = now_s();
  seq_left = n;
  uv_timer_init(loop, &seq_timer);
  uv_timer_start(&seq_timer, seq_fire, 10, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  double seq = now_s() - t0;

  conc = malloc(sizeof(uv_timer_t) * n);
  uv_update_time(loop);
  t0 = now_s();
  pending = n;
  for (long i = 0; i < n; i++) {
    uv_timer_init(loop, &conc[i]);
    uv_timer_start(&conc[i], conc_fire, 10, 0);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  double gat = now_s() - t0;
  if (pending != 0 || seq_left != 0) { fprintf(stderr, "bad result\n"); return 1; }
  printf("{\"workload\":\"W5\",\"runtime\":\"c\",\"tasks\":%ld,\"seq_s\":%.6f,\"gather_s\":%.6f,\"speedup\":%.2f}\n",
         n, seq, gat, seq / gat);
  return 0;
}
