#!/bin/sh
# Make sure the proxies of tests/test_proxies.py are installed: Debian's squid (a forward proxy)
# and mitmproxy's mitmdump (a TLS-inspecting proxy) from the package index.
#
# - squid: like scripts/ensure_chromium.sh, installed with apt-get when missing and root;
#   otherwise say so and exit 0 (the squid tests then skip with the same reason).
# - mitmdump: installed into a virtual environment of its own ($MITMPROXY_VENV, default
#   .venv-mitmproxy), not the project's: mitmproxy pins older cryptography and h11 releases
#   than Airflow's. A failed install says so and exits 0 (the mitmproxy tests skip).
set -eu

SQUID="${SQUID:-/usr/sbin/squid}"
PYTHON="${PYTHON:-python3}"
MITMPROXY_VENV="${MITMPROXY_VENV:-.venv-mitmproxy}"

if [ ! -x "$SQUID" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "ensure_proxies: installing Debian's squid package (apt-get)..." >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends squid
        # The package's own service is not wanted: the tests start squid with their own config.
        if command -v service >/dev/null 2>&1; then service squid stop >/dev/null 2>&1 || true; fi
    else
        echo "ensure_proxies: $SQUID is missing and cannot be installed here (needs root and" \
            "apt-get); the squid tests of tests/test_proxies.py will be skipped." >&2
    fi
fi

if [ ! -x "$MITMPROXY_VENV/bin/mitmdump" ]; then
    echo "ensure_proxies: installing mitmproxy into $MITMPROXY_VENV..." >&2
    if ! { "$PYTHON" -m venv "$MITMPROXY_VENV" &&
        "$MITMPROXY_VENV/bin/python" -m pip install --quiet "mitmproxy>=11"; }; then
        echo "ensure_proxies: mitmproxy could not be installed; the mitmproxy tests of" \
            "tests/test_proxies.py will be skipped." >&2
    fi
fi
exit 0
