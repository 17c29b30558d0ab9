'use strict';
// TRT, Node.js: the worker_threads postMessage round trip: the main thread
// posts a message to one worker, which posts it straight back, N times one
// after another (after a warm-up).
const { Worker } = require('worker_threads');
const { envN, now } = require('./common');

const worker = new Worker(`
const { parentPort } = require('worker_threads');
parentPort.on('message', (m) => parentPort.postMessage(m));
`, { eval: true });

function roundTrips(count) {
  return new Promise((resolve) => {
    let left = count;
    const onMessage = () => {
      if (--left === 0) { worker.off('message', onMessage); resolve(); } else worker.postMessage(left);
    };
    worker.on('message', onMessage);
    worker.postMessage(left);
  });
}

async function main() {
  const n = envN('BENCH_N', 20000);
  await roundTrips(1000);
  const t0 = now();
  await roundTrips(n);
  const wall = now() - t0;
  await worker.terminate();
  console.log(JSON.stringify({ workload: 'TRT', runtime: 'node', round_trips: n, wall_s: wall,
    us_per_rt: wall / n * 1e6 }));
}
main();
