'use strict';
// W7 HTTPS "Hello, World!", Node.js: the https module, keep-alive (its
// default), one request handler: W6 over TLS. Listens on
// 127.0.0.1:$BENCH_PORT (8443) with the certificate and key in
// $BENCH_TLS_CERT and $BENCH_TLS_KEY (the same for every runtime: an EC
// P-256 key), TLS 1.3 only with TLS_AES_128_GCM_SHA256, as the others.
const fs = require('fs');
const https = require('https');

const port = +(process.env.BENCH_PORT || 8443);
https.createServer({
  cert: fs.readFileSync(process.env.BENCH_TLS_CERT),
  key: fs.readFileSync(process.env.BENCH_TLS_KEY),
  minVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256',
}, (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('Hello, World!');
}).listen(port, '127.0.0.1');
