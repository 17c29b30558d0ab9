// A WebSocket peer on Node's `ws` (npm install --prefix spec/peers) for
// spec/websocket_spec.lua.
//   node ws_node.js server        echo server; prints its port; "frag"
//                                 is answered as three fragments,
//                                 "close:CODE" by closing with CODE
//   node ws_node.js client URL    sends a fixed script of messages to URL
//                                 and prints one line per event
const WebSocket = require('ws');
const crypto = require('crypto');
const mode = process.argv[2];

if (mode === 'server') {
  const wss = new WebSocket.Server({host: '127.0.0.1', port: 0, maxPayload: 1 << 20});
  wss.on('listening', () => process.stdout.write(wss.address().port + '\n'));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      const s = data.toString();
      if (!isBinary && s === 'frag') {
        ws.send('fr', {fin: false});
        ws.send('ag', {fin: false});
        ws.send('ment', {fin: true});
      } else if (!isBinary && s.startsWith('close:')) {
        ws.close(Number(s.slice(6)), 'asked');
      } else {
        ws.send(data, {binary: isBinary});
      }
    });
    ws.on('error', () => {}); // a malformed frame: ws closes with its code
    ws.on('close', (code) => process.stdout.write('server-close ' + code + '\n'));
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
} else {
  const ws = new WebSocket(process.argv[3]);
  const out = (s) => process.stdout.write(s + '\n');
  const big = crypto.createHash('sha256');
  const bin = Buffer.alloc(70000);
  for (let i = 0; i < bin.length; i++) bin[i] = i % 251;
  big.update(bin);
  const steps = [
    () => ws.send('hello'),
    () => ws.send('h\u00e9llo \u2603'),
    () => ws.send(bin),
    () => { ws.send('fr', {fin: false}); ws.send('ag', {fin: false}); ws.send('ment', {fin: true}); },
    () => ws.ping('p'),
  ];
  let i = 0;
  const next = () => { if (i < steps.length) steps[i++](); else ws.close(1000, 'done'); };
  ws.on('open', next);
  ws.on('message', (data, isBinary) => {
    if (isBinary) out('binary ' + data.length + ' ' +
                      (crypto.createHash('sha256').update(data).digest('hex') ===
                       crypto.createHash('sha256').update(bin).digest('hex')));
    else out('text ' + data.toString());
    next();
  });
  ws.on('pong', (d) => { out('pong ' + d.toString()); next(); });
  ws.on('close', (code, reason) => { out('close ' + code + ' ' + reason.toString()); process.exit(0); });
  ws.on('error', (e) => { out('error ' + e.message); process.exit(1); });
}
