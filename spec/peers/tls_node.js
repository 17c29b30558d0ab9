// TLS peer for spec/tls_spec.lua, on Node's https module.
//   node tls_node.js server CERT KEY   an https server on 127.0.0.1:0:
//       prints its port; answers every request "node https: METHOD PATH"
//       and, for POST, the length of the body it read
//   node tls_node.js client URL CA    GETs URL trusting CA; prints the
//       status, then the body; an error prints "error: CODE", exit 1
'use strict';
const fs = require('fs');
const https = require('https');

const [mode, a, b] = process.argv.slice(2);
if (mode === 'server') {
  const srv = https.createServer({cert: fs.readFileSync(a), key: fs.readFileSync(b)},
    (req, res) => {
      let n = 0;
      req.on('data', (c) => { n += c.length; });
      req.on('end', () => {
        res.end(`node https: ${req.method} ${req.url}` +
                (req.method === 'POST' ? ` ${n}` : ''));
      });
    });
  srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
} else {
  https.get(a, {ca: fs.readFileSync(b)}, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => { body += c; });
    res.on('end', () => { console.log(res.statusCode); console.log(body); });
  }).on('error', (e) => { console.log('error: ' + e.code); process.exit(1); });
}
