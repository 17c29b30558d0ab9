'use strict';
// W5, Node.js: 100 x `await sleep(10 ms)` one after another, then 100 async
// functions sleeping 10 ms at once, gathered with Promise.all.
const { setTimeout: sleep } = require('timers/promises');
const { envN, now } = require('./common');

async function main() {
  const n = envN('BENCH_N', 100);
  let t0 = now();
  for (let i = 0; i < n; i++) await sleep(10);
  const seq = now() - t0;
  t0 = now();
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push((async () => { await sleep(10); })());
  await Promise.all(tasks);
  const gat = now() - t0;
  console.log(JSON.stringify({ workload: 'W5', runtime: 'node', tasks: n, seq_s: seq, gather_s: gat,
    speedup: seq / gat }));
}
main();
