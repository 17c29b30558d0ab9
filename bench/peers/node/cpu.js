'use strict';
// CPU, Node.js: the seed's cpu_intensive_task (the sum of i*i for i < 10^7)
// four times, one after another on the main thread, then on four
// worker_threads (started and warm before the clock starts), each posting
// its result back. JS numbers are doubles (the sum loses precision past 2^53
// but the work is the same loop).
const { Worker } = require('worker_threads');
const { envN, now } = require('./common');

const TASKS = 4;
function cpuIntensiveTask(n) {
  let result = 0;
  for (let i = 0; i < n; i++) result += i * i;
  return result;
}

const workerSrc = `
const { parentPort } = require('worker_threads');
${cpuIntensiveTask.toString()}
parentPort.on('message', (n) => parentPort.postMessage(cpuIntensiveTask(n)));
`;

function run(worker, n) {
  return new Promise((resolve) => { worker.once('message', resolve); worker.postMessage(n); });
}

async function main() {
  const n = envN('BENCH_N', 10000000);
  let t0 = now();
  const seq = [];
  for (let i = 0; i < TASKS; i++) seq.push(cpuIntensiveTask(n));
  const seqS = now() - t0;
  const workers = [];
  for (let i = 0; i < TASKS; i++) workers.push(new Worker(workerSrc, { eval: true }));
  await Promise.all(workers.map((w) => run(w, n))); // started, and the JIT warm
  t0 = now();
  const par = await Promise.all(workers.map((w) => run(w, n)));
  const parS = now() - t0;
  for (let i = 0; i < TASKS; i++) if (par[i] !== seq[i]) throw new Error('results differ');
  await Promise.all(workers.map((w) => w.terminate()));
  console.log(JSON.stringify({ workload: 'CPU', runtime: 'node', tasks: TASKS, n, workers: TASKS,
    seq_s: seqS, par_s: parS, speedup: seqS / parS }));
}
main();
