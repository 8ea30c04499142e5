#!/bin/sh
# Make sure Debian's Chromium is installed for tests/test_browser.py.
#
# - Chromium already installed: nothing to do.
# - Missing, running as root on a machine with apt-get: `apt-get update` then a
#   non-interactive `apt-get install -y chromium`; a failed install fails this script.
# - Missing and it cannot be installed here (not root, or no apt-get): say so and exit 0;
#   the browser test then skips with the same reason.
#
# Playwright drives this system Chromium; it never downloads a browser of its own.
set -eu

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and there is no apt-get here;" \
        "tests/test_browser.py will be skipped (install Debian's chromium package to run it)." >&2
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "ensure_chromium: $CHROMIUM is missing and installing it needs root;" \
        "tests/test_browser.py will be skipped (run: sudo apt-get install chromium)." >&2
    exit 0
fi

echo "ensure_chromium: installing Debian's chromium package (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium
test -x "$CHROMIUM"
