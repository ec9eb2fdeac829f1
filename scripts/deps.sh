#!/bin/sh
# Installs the Debian packages tmem needs to build, test, bench and demo,
# when any is missing.  Called by make; safe to run again (it only checks).
set -e
PKGS="gcc make pkg-config liblz4-dev libzstd-dev libxxhash-dev liburing-dev \
libmicrohttpd-dev zstd clang libclang-rt-14-dev redis-server redis-tools \
sqlite3 libsqlite3-dev python3 \
fuse3 libfuse3-dev gnuplot-nox chromium \
util-linux procps"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
