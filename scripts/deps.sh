#!/usr/bin/env bash
# Installs the Debian packages casync needs that are missing; does nothing
# (and asks nothing of apt) when they are all there.
set -euo pipefail
PKGS=(lua5.4 liblua5.4-dev libuv1-dev lua-luv lua-luv-dev lua-busted
      pkg-config cmake make gcc libc6-dev valgrind
      node-llhttp lua-cjson libssl-dev openssl python3-websockets nodejs
      clang-format)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
# the specs' WebSocket peer on Node (spec/peers/package.json), from npm
npm_peers() {
  local peers
  peers="$(cd "$(dirname "$0")/.." && pwd)/spec/peers"
  if command -v npm >/dev/null && [ ! -d "$peers/node_modules/ws" ]; then
    (cd "$peers" &&
       npm install --no-audit --no-fund --silent >/dev/null 2>&1) ||
      echo "deps.sh: npm install in spec/peers failed (the Node ws specs skip)"
  fi
}
if [ ${#missing[@]} -eq 0 ]; then npm_peers; exit 0; fi
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
npm_peers
