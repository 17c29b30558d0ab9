'use strict';
// Helpers shared by the Node.js peers.
const fs = require('fs');

function envN(name, dflt) {
  const v = parseInt(process.env[name] || '', 10);
  return v > 0 ? v : dflt;
}

function statusBytes(key) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp('^' + key + ':\\s+(\\d+)', 'm'));
  return m ? Number(m[1]) * 1024 : -1;
}

function resetHWM() {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); } catch (e) { /* ignore */ }
}

function now() { return Number(process.hrtime.bigint()) / 1e9; }

// Park-Miller "minimal standard" LCG, identical in every peer (exact in doubles).
let lcgState = 42;
function lcgNext() {
  lcgState = (lcgState * 48271) % 2147483647;
  return lcgState / 2147483647;
}

module.exports = { envN, statusBytes, resetHWM, now, lcgNext };
