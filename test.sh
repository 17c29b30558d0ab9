#!/usr/bin/env bash
# Second command: the whole test suite.
#   1. the busted specs (spec/, examples included) on a normal build;
#   2. the same specs on an AddressSanitizer + UndefinedBehaviorSanitizer build;
#   3. the thread specs (spec/thread_spec.lua, spec/thread_jobs_spec.lua,
#      spec/regress/thread_map_spec.lua)
#      on a ThreadSanitizer build;
#   4. the HTTP fuzz target (tests/fuzz_http.c) for 30 s with a fixed seed,
#      counted as one test;
#   5. every example under valgrind: no errors, no definite leaks.
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
jobs=$(nproc)
passed=0
failed=0

build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCASYNC_WERROR=ON \
    -DCASYNC_TESTING=ON "$@" >/dev/null &&
    cmake --build "$dir" -j"$jobs" >"$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
}

# busted in TAP form; counts "ok"/"not ok" lines. $1 = label, rest = env.
# Run by lua5.4 itself: `busted` starts with whatever `lua` is (Debian's
# luarocks makes it lua5.1) and would relaunch itself through /bin/sh,
# which the ThreadSanitizer runtime preloaded below crashes.
specs() {
  local label=$1; shift
  local out
  out=$(env "$@" lua5.4 "$(command -v busted)" -o TAP ${spec_files:-} 2>&1)
  local ok bad
  ok=$(grep -c '^ok ' <<<"$out")
  bad=$(grep -c '^not ok ' <<<"$out")
  # a crash or an error outside any test counts as a failure too
  if ! grep -q '^1\.\.[0-9]' <<<"$out"; then bad=$((bad + 1)); fi
  echo "$out" | grep -v '^ok ' | sed "s/^/[$label] /"
  echo "[$label] $ok passed, $bad failed"
  passed=$((passed + ok))
  failed=$((failed + bad))
}

echo "== build (RelWithDebInfo)"
build build || { echo "0 passed, 1 failed"; exit 1; }
echo "== build (ASan + UBSan)"
build build-asan -DCASYNC_SANITIZE=ON || { echo "0 passed, 1 failed"; exit 1; }
echo "== build (ThreadSanitizer)"
build build-tsan -DCASYNC_TSAN=ON || { echo "0 passed, 1 failed"; exit 1; }

echo "== specs"
specs specs CASYNC_BUILD=build

echo "== specs under ASan + UBSan"
asan_rt=$(gcc -print-file-name=libasan.so)
ubsan_rt=$(gcc -print-file-name=libubsan.so)
specs asan CASYNC_BUILD=build-asan CASYNC_SANITIZED=1 LD_PRELOAD="$asan_rt:$ubsan_rt" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# TSan's runtime must be in the process from the start (lua5.4 is not
# built with it); a data race aborts the run, which then counts as failed.
echo "== thread specs under ThreadSanitizer"
tsan_rt=$(gcc -print-file-name=libtsan.so)
spec_files="spec/thread_spec.lua spec/thread_jobs_spec.lua spec/regress/thread_map_spec.lua" \
  specs tsan CASYNC_BUILD=build-tsan \
  LD_PRELOAD="$tsan_rt" TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

echo "== fuzz: tests/fuzz_http.c (HTTP parser and serializer, 30 s, seed 1)"
if tests/fuzz_http.sh 30 build-fuzz 2>&1 | sed 's/^/[fuzz] /'; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "[fuzz] FAILED"
fi

echo "== examples under valgrind"
for ex in examples/*.lua; do
  log=$(mktemp)
  if valgrind -q --error-exitcode=99 --leak-check=full \
       --errors-for-leak-kinds=definite --show-leak-kinds=definite \
       ./build/casync "$ex" >/dev/null 2>"$log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "[valgrind] FAILED $ex"
    sed 's/^/[valgrind]   /' "$log" | tail -40
  fi
  rm -f "$log"
done
echo "[valgrind] examples checked"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
