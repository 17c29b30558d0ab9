#!/usr/bin/env bash
# Installs the Debian packages casync needs that are missing; does nothing
# (and asks nothing of apt) when they are all there.
set -euo pipefail
PKGS=(lua5.4 liblua5.4-dev libuv1-dev lua-luv lua-luv-dev lua-busted
      pkg-config cmake make gcc libc6-dev valgrind
      node-llhttp lua-cjson)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
