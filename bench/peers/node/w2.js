'use strict';
// W2 spawn-gather, Node.js: N async functions each awaiting a 10 ms
// setTimeout promise (timers/promises) and returning a value, gathered with
// Promise.all.
const { setTimeout: sleep } = require('timers/promises');
const { envN, statusBytes, resetHWM, now } = require('./common');

async function task(i) {
  await sleep(10);
  return i;
}

async function main() {
  const n = envN('BENCH_N', 100000);
  resetHWM();
  const rss0 = statusBytes('VmRSS');
  const t0 = now();
  const tasks = new Array(n);
  for (let i = 0; i < n; i++) tasks[i] = task(i);
  const results = await Promise.all(tasks);
  const wall = now() - t0;
  const hwm = statusBytes('VmHWM');
  if (results[n - 1] !== n - 1) throw new Error('bad result');
  console.log(JSON.stringify({ workload: 'W2', runtime: 'node', tasks: n, wall_s: wall,
    us_per_task: (wall - 0.010) * 1e6 / n, rss_bytes_per_task: (hwm - rss0) / n }));
}
main();
