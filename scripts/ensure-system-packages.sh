#!/usr/bin/env bash
# Install the Debian packages given as arguments, unless they are installed already.
#
#   scripts/ensure-system-packages.sh libfaketime [more ...]
#
# The test suite needs a few system packages (libfaketime for the clock-offset tests,
# chromium for the dashboard's browser tests; nodejs and npm for the JavaScript checker
# in `make lint`, where no npm is installed).
# A machine is not guaranteed to keep what was installed by hand, so `make
# check-services` runs this before every test run. It installs with
# `apt-get install -y --no-install-recommends`, runs `apt-get update` once when the
# first attempt fails (an empty or stale package list), and exits non-zero with a
# message naming the packages when it cannot install them (not root, no apt-get, no
# network, unknown package).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE [PACKAGE ...]" >&2
    exit 2
fi

missing=()
for package in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)"
    if [ "$status" != "installed" ]; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

fail() {
    echo "error: the tests need the Debian package(s) ${missing[*]}, which are not installed" >&2
    echo "error: $1" >&2
    echo "error: install them as root: apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
}

if ! command -v apt-get >/dev/null 2>&1; then
    fail "apt-get is not available on this machine"
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        fail "installing them needs root (or password-less sudo)"
    fi
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}
echo "installing missing system packages: ${missing[*]}" >&2
if ! install; then
    echo "apt-get install failed; updating the package lists and retrying" >&2
    "${SUDO[@]}" apt-get update -q || fail "apt-get update failed (no network or no package mirror?)"
    install || fail "apt-get install ${missing[*]} failed (see apt's message above)"
fi
