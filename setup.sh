#!/usr/bin/env bash
# First command: installs what is missing (Debian packages), builds casync
# into ./build, and runs the main demonstration (seed 000's gather example)
# through the casync runner.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== build/casync examples/e000_1_gather_fetch_data.lua"
./build/casync examples/e000_1_gather_fetch_data.lua
