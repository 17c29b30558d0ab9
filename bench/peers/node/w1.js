'use strict';
// W1 switch, Node.js: two async functions taking turns through
// `await setImmediate()` (timers/promises). Each await goes back to the event
// loop (check phase), the closest honest equivalent of sleep(0): a bare
// `await null` would only switch microtasks and never let the loop poll I/O.
const { setImmediate: yieldLoop } = require('timers/promises');
const { envN, now } = require('./common');

async function main() {
  const n = envN('BENCH_N', 1000000);
  const per = Math.floor(n / 2);
  let count = 0;
  async function task() {
    for (let i = 0; i < per; i++) {
      await yieldLoop();
      count++;
    }
  }
  const t0 = now();
  await Promise.all([task(), task()]);
  const wall = now() - t0;
  console.log(JSON.stringify({ workload: 'W1', runtime: 'node', switches: count, wall_s: wall,
    ns_per_op: wall * 1e9 / count }));
}
main();
