#!/bin/bash
# bench/callgrind.sh BUILD_DIR [WORKLOAD...]: instructions per operation of
# the casync runner in BUILD_DIR (a Release build: cmake -DCMAKE_BUILD_TYPE=
# Release), counted by valgrind's callgrind.  Deterministic up to Lua's
# string-hash seed (which moves a count by 1-3 %), so each figure is the
# median of three runs, with the runner's start-up (an empty script)
# subtracted; independent of what else runs on the machine.  W2 and W4
# also move by up to ~5 % with where the GC's cycles fall against the
# heap's growth (a bigger start-up heap shifts them): check a few-percent
# change there at a second size (BENCH_N).  For A/B work
# on a shared machine: build both sides and run this on each.
#
#   W1 per switch (200k), W2 per task (20k), W3 per message (100k round
#   trips), W4 per task (20k), SW per task spawned and waited for one at a
#   time (20k: the coroutine pool reused, as a server's handler tasks are).
#
# The runner's pool allocator is off under valgrind unless CASYNC_ALLOC=pool
# (set here, so the counts are those of the runner as benchmarked).
set -euo pipefail
B=$(cd "${1:?usage: bench/callgrind.sh BUILD_DIR [W1 W2 W3 W4 SW]}" && pwd)
shift
cd "$(dirname "$0")/.."
export CASYNC_ALLOC=${CASYNC_ALLOC:-pool}
W=${*:-W1 W2 W3 W4 SW}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo 'local casync = require "casync"' >"$tmp/empty.lua"
cat >"$tmp/sw.lua" <<'EOF'
local casync = require "casync"
local N = tonumber(os.getenv("BENCH_N") or "") or 20000
local function f(x) casync.sleep(0) return x end
for i = 1, N do casync.spawn(f, i):wait() end
EOF
declare -A N=([W1]=200000 [W2]=20000 [W3]=100000 [W4]=20000 [SW]=20000)
declare -A D=([W1]=200000 [W2]=20000 [W3]=200000 [W4]=20000 [SW]=20000)
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
start=$(ir "$B/casync" "$tmp/empty.lua")
for w in $W; do
  f=bench/casync/$(echo "$w" | tr A-Z a-z).lua
  [ "$w" = SW ] && f=$tmp/sw.lua
  runs=$(for _ in 1 2 3; do BENCH_N=${N[$w]} ir "$B/casync" "$f"; done | sort -n)
  med=$(echo "$runs" | sed -n 2p)
  echo "$w $(( (med - start) / ${D[$w]} )) instructions per op (runs: $(echo $runs))"
done
