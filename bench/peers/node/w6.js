'use strict';
// W6 HTTP "Hello, World!", Node.js: the http module, keep-alive (its
// default), one request handler. Listens on 127.0.0.1:$BENCH_PORT (8080)
// until killed; bench/run loads it with wrk.
const http = require('http');

const port = +(process.env.BENCH_PORT || 8080);
http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('Hello, World!');
}).listen(port, '127.0.0.1');
