// A plain Node.js http server for spec/http_strict_spec.lua: answers every
// request 200 with its method, path and body length, so the specs can send
// the same hostile bytes to it and to casync and compare the answers.
// Prints its port on stdout once it listens.
const http = require('http');
const srv = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (d) => { n += d.length; });
  req.on('end', () => {
    res.writeHead(200, {'Content-Type': 'text/plain'});
    res.end(`${req.method} ${req.url} ${n}`);
  });
});
srv.listen(0, '127.0.0.1', () => {
  process.stdout.write(srv.address().port + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
