'use strict';
// W3 ping-pong, Node.js: two async functions exchange N round trips over two
// minimal promise-based capacity-1 channels (below). A sends i on ch1 and
// receives it back on ch2; B receives on ch1 and sends the value back on ch2.
// A message is one send + recv, so a round trip is two messages. The channel
// has the shape of asyncio.Queue(maxsize=1): one slot and two FIFO lists of
// waiters (the resolve functions of pending promises); a send or recv that
// changes the slot resolves the first waiter of the other side, which
// re-checks the slot when it runs. Everything runs as promise reactions
// (microtasks): like a pure-Lua scheduler, the event loop is never polled
// during the exchange.
const { envN, now } = require('./common');

class Channel {
  constructor() {
    this.full = false;
    this.value = undefined;
    this.senders = [];
    this.receivers = [];
  }

  async send(v) {
    while (this.full) await new Promise((resolve) => this.senders.push(resolve));
    this.value = v;
    this.full = true;
    const r = this.receivers.shift();
    if (r) r();
  }

  async recv() {
    while (!this.full) await new Promise((resolve) => this.receivers.push(resolve));
    const v = this.value;
    this.value = undefined;
    this.full = false;
    const s = this.senders.shift();
    if (s) s();
    return v;
  }
}

async function main() {
  const n = envN('BENCH_N', 500000);
  const ch1 = new Channel();
  const ch2 = new Channel();
  let sum = 0;
  async function a() {
    for (let i = 1; i <= n; i++) {
      await ch1.send(i);
      const v = await ch2.recv();
      if (v !== i) throw new Error('wrong value');
      sum += v;
    }
  }
  async function b() {
    for (let i = 0; i < n; i++) await ch2.send(await ch1.recv());
  }
  const t0 = now();
  await Promise.all([a(), b()]);
  const wall = now() - t0;
  if (sum !== n * (n + 1) / 2) throw new Error('lost or duplicated messages');
  console.log(JSON.stringify({ workload: 'W3', runtime: 'node', round_trips: n, messages: 2 * n,
    wall_s: wall, ns_per_msg: wall * 1e9 / (2 * n) }));
}
main();
