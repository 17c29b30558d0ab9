#!/usr/bin/env bash
# Builds tests/fuzz_http.c and runs it for a bounded time with a fixed seed:
# with libFuzzer (clang -fsanitize=fuzzer,address,undefined) when clang and
# its runtime are there, otherwise the self-driving loop (-DFUZZ_STANDALONE)
# under gcc's ASan + UBSan.  Exits non-zero on any crash or broken check.
#   tests/fuzz_http.sh [seconds (30)] [build dir (build-fuzz)]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
dir=${2:-build-fuzz}
mkdir -p "$dir"
# llhttp's generated sources, from Debian's node-llhttp (scripts/deps.sh)
llh_src=${LLHTTP_SOURCE_DIR:-/usr/share/llhttp}
llh_inc=${LLHTTP_INCLUDE_DIR:-/usr/share/include/llhttp}
src=(tests/fuzz_http.c src/http_parse.c "$llh_src/llhttp.c" "$llh_src/api.c"
     "$llh_src/http.c")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if command -v clang >/dev/null &&
   clang -g -O1 -fsanitize=fuzzer,address,undefined \
     -fno-sanitize-recover=undefined -DLLHTTP_STRICT_MODE=1 -Isrc -I"$llh_inc" "${src[@]}" \
     -o "$dir/fuzz_http" 2>"$dir/fuzz_http.log"; then
  # a few valid messages to start from (the first byte picks the mode)
  mkdir "$work/seeds" "$work/corpus"
  printf '\0GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n' >"$work/seeds/req"
  printf '\0POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n' >"$work/seeds/pipe"
  printf '\0POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' >"$work/seeds/chunk"
  printf '\3HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi' >"$work/seeds/resp"
  printf '\4X-A\0v\0Content-Type\0text/plain\0' >"$work/seeds/hdrs"
  echo "fuzz_http: libFuzzer, ${secs} s, seed 1"
  "$dir/fuzz_http" -seed=1 -max_total_time="$secs" -max_len=4096 \
    -artifact_prefix="$dir/" "$work/corpus" "$work/seeds" 2>"$work/log"
  rc=$?
  grep -E '^(Done|#[0-9]+ +DONE)' "$work/log" | tail -1
  if [ $rc -ne 0 ]; then tail -40 "$work/log"; fi
  exit $rc
fi
echo "fuzz_http: no libFuzzer here (see $dir/fuzz_http.log); self-driving loop, ${secs} s"
gcc -g -O1 -DFUZZ_STANDALONE -fsanitize=address,undefined \
  -fno-sanitize-recover=undefined -DLLHTTP_STRICT_MODE=1 -Isrc -I"$llh_inc" "${src[@]}" \
  -o "$dir/fuzz_http_standalone" || exit 1
"$dir/fuzz_http_standalone" "$secs"
