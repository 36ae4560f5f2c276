#!/bin/sh
# What the test set-up scripts share: run CHECK; if it fails and this is root with apt-get, install Debian's
# PACKAGE and run CHECK again. Exit 0 when CHECK passes, else 1 (the caller says what to install).
# Usage: scripts/ensure-debian-package.sh PACKAGE PURPOSE CHECK [ARG...]
set -u
package=$1 purpose=$2
shift 2
"$@" 2>/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "make test: installing Debian's $package for $purpose" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null) &&
        "$@" 2>/dev/null && exit 0
fi
exit 1
