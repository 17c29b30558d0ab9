#!/bin/sh
# Install the Debian packages the benchmark peers and the casync build need (W7: the
# openssl command makes its certificate); does nothing when they are there.
set -eu
PKGS="lua5.4 liblua5.4-dev libuv1-dev lua-luv lua-cqueues python3 python3-uvloop
golang-go nodejs build-essential cmake pkg-config
wrk python3-aiohttp lua-cjson
lua-luv-dev node-llhttp libssl-dev openssl"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "bench/setup.sh: all packages present"
  exit 0
fi
echo "bench/setup.sh: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
