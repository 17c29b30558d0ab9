'use strict';
// W4 timers, Node.js: N async functions each awaiting a setTimeout promise of
// an LCG duration in [0,1) s (passed as fractional milliseconds; Node clamps
// values below 1 ms to 1 ms), gathered with Promise.all.
const { setTimeout: sleep } = require('timers/promises');
const { envN, now, lcgNext } = require('./common');

async function main() {
  const n = envN('BENCH_N', 200000);
  let maxd = 0;
  const t0 = now();
  const tasks = new Array(n);
  for (let i = 0; i < n; i++) {
    const d = lcgNext();
    if (d > maxd) maxd = d;
    tasks[i] = (async () => { await sleep(d * 1000); })();
  }
  await Promise.all(tasks);
  const wall = now() - t0;
  console.log(JSON.stringify({ workload: 'W4', runtime: 'node', tasks: n, wall_s: wall,
    max_sleep_s: maxd, overhead_s: wall - maxd }));
}
main();
