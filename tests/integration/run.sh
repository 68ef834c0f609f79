#!/usr/bin/env bash
# Integration tests: the real socket.io-client@4 against the sio-gateway binary.
#
#   tests/integration/run.sh [test files...]      (default: every *.test.js here)
#
# SIOGW_BIN   the gateway binary (default: <repo>/build/gateway/sio-gateway);
#             a relative path is taken from the directory run.sh was called in.
# Other knobs (SIOGW_LOG_LEVEL, SIOGW_KEEP_LOGS, ...): see helpers/gateway.js.
# Prints the node test runner's spec summary ("ℹ pass N" / "ℹ fail N") and
# exits non-zero when any test failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="${SIOGW_BIN:-$repo/build/gateway/sio-gateway}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
export SIOGW_BIN="$bin"

cd "$here"

# a thousand clients in one test process (and nginx in front of them) need fds
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard" 2>/dev/null || true

if ! command -v node >/dev/null 2>&1; then
	echo "integration: node is not installed (need node >= 18)" >&2
	echo "integration: 0 passed, 1 failed"
	exit 2
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
# 18 is Debian 12's (what the README's test command installs on a fresh machine)
if [ "$major" -lt 18 ]; then
	echo "integration: node $(node --version) is too old (need >= 18)" >&2
	echo "integration: 0 passed, 1 failed"
	exit 2
fi

# One clear message instead of every test timing out.
if [ ! -x "$bin" ]; then
	echo "integration: sio-gateway binary not found or not executable: $bin" >&2
	echo "integration: build it first (meson setup build && meson compile -C build) or set SIOGW_BIN" >&2
	echo "integration: 0 passed, 1 failed"
	exit 2
fi

# Install the pinned client packages when node_modules is missing or does not
# match package-lock.json.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.siogw-lock-sha256"
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
	echo "integration: npm ci" >&2
	npm ci --no-audit --no-fund >&2
	echo "$lock_sum" >"$stamp"
fi

if [ "$#" -eq 0 ]; then
	set -- *.test.js
fi

# Files run in parallel (2 at a time: the CI machine has 2 cores); each file
# starts its own gateway(s) on free ports. --test-timeout is a safety net per
# test: the tests' own deadlines are a few seconds.
# (--test-timeout arrived in node 20)
timeout_flag=()
if [ "$major" -ge 20 ]; then timeout_flag=(--test-timeout=60000); fi
exec node --test --test-reporter=spec --test-concurrency=2 "${timeout_flag[@]}" "$@"
