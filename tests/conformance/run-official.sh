#!/usr/bin/env bash
# Run the official protocol test suites against the sio-gateway binary:
#   socketio/engine.io-protocol  test-suite/  (Engine.IO v4, 24 tests)
#   socketio/socket.io-protocol  test-suite/  (Socket.IO v5, 32 tests)
#
#   tests/conformance/run-official.sh SUITES_DIR
#
# SUITES_DIR holds checkouts of both repositories:
#   SUITES_DIR/engine.io-protocol/test-suite/test-suite.js
#   SUITES_DIR/socket.io-protocol/test-suite/test-suite.js
# Without SUITES_DIR, or when it lacks them, the script says how to get them
# and exits 0 (skipped). See tests/conformance/README.md.
#
# It builds nothing: the binary is $SIOGW_BIN, default <repo>/build/gateway/sio-gateway.
# What it does:
#   - writes a gateway config (YAML) into a temp dir: the reference servers'
#     options (pingInterval 300, pingTimeout 200, maxPayload 1e6, connectTimeout
#     1000, CORS *), namespaces / and /custom, and the raw Engine.IO echo
#     endpoint at /engine.io/ for the Engine.IO suite;
#   - starts the gateway on a free 127.0.0.1 port, ready when GET /healthz is 200;
#   - installs each suite's npm deps in SUITES_DIR/<suite>/test-suite (npm ci,
#     only when node_modules is missing or does not match package-lock.json);
#   - copies each test-suite.js into the temp dir and points its hard-coded
#     URL ("http://localhost:3000") at the gateway (SUITES_DIR is not modified
#     besides node_modules);
#   - for the Socket.IO suite, starts tests/conformance/backend.js (the
#     reference server's behaviour over the gateway's HTTP API);
#   - runs mocha on each suite (JSON reporter; --exit, since some tests leave
#     sockets open), prints every test and failure, and per suite
#     "<suite>: passed/total";
#   - stops everything it started (trap), removes the temp dir.
#
# Environment:
#   SIOGW_BIN              the gateway binary
#   SIOGW_KEEP_LOGS=1      keep the temp dir (config, gateway.log, backend.log, results)
#   CONF_SUITES            which suites to run (default "engine.io-protocol socket.io-protocol")
#   CONF_SUITE_TIMEOUT     seconds one mocha run may take (default 300)
#   CONF_MOCHA_ARGS        extra mocha arguments (e.g. "--grep upgrade")
#   CONF_WORKERS           the gateway's engine.workers (default auto, as the gateway's)
#
# Exit status: 0 every test passed (or skipped: no suites), 1 some test failed,
# 2 setup error (no binary, no node, gateway did not start, ...).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

say() { printf 'conformance: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 2
}

usage_skip() {
	cat >&2 <<EOF
conformance: $1
conformance: skipped. To run the official suites, check out both repositories in one directory:
  mkdir -p /tmp/suites && cd /tmp/suites
  git clone --depth 1 https://github.com/socketio/engine.io-protocol
  git clone --depth 1 https://github.com/socketio/socket.io-protocol
then: tests/conformance/run-official.sh /tmp/suites      (see tests/conformance/README.md)
EOF
	exit 0
}

[ "$#" -ge 1 ] && [ -n "$1" ] || usage_skip "no SUITES_DIR given"
suites_dir="$1"
[ -d "$suites_dir" ] || usage_skip "SUITES_DIR $suites_dir does not exist"
suites_dir="$(cd "$suites_dir" && pwd)"
read -r -a suites <<<"${CONF_SUITES:-engine.io-protocol socket.io-protocol}"
for s in "${suites[@]}"; do
	case "$s" in engine.io-protocol | socket.io-protocol) ;; *) die "unknown suite in CONF_SUITES: $s" ;; esac
	[ -f "$suites_dir/$s/test-suite/test-suite.js" ] ||
		usage_skip "$suites_dir/$s/test-suite/test-suite.js not found"
done

bin="${SIOGW_BIN:-$repo/build/gateway/sio-gateway}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
[ -x "$bin" ] || die "sio-gateway binary not found or not executable: $bin (build it: meson setup build && meson compile -C build, or set SIOGW_BIN)"
command -v node >/dev/null 2>&1 || die "node is not installed (need node >= 18)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 18 ] || die "node $(node --version) is too old (need >= 18)"
suite_timeout="${CONF_SUITE_TIMEOUT:-300}"

# ------------------------------------------------------------------ cleanup

tmp="$(mktemp -d "${TMPDIR:-/tmp}/siogw-conf.XXXXXX")"
gw_pid=""
be_pid=""
mocha_pid=""

stop_pid() { # stop_pid PID NAME: SIGTERM, wait up to 5 s, then SIGKILL
	local pid="$1" name="$2" deadline
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + 5))
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$name (pid $pid) did not stop on SIGTERM within 5 s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$mocha_pid" mocha
	stop_pid "$be_pid" backend.js
	stop_pid "$gw_pid" sio-gateway
	if [ "${SIOGW_KEEP_LOGS:-0}" = 1 ]; then
		say "kept $tmp (config, gateway.log, backend.log, results)"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers

free_port() {
	node -e '
const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => console.log(p)); });'
}

# wait_until DEADLINE_S DESCRIPTION CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local secs="$1" what="$2" deadline
	shift 2
	deadline=$((SECONDS + secs))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

gw_alive() { [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; }
gw_healthy() {
	gw_alive || return 0 # stop polling: checked after the wait
	curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$port/healthz"
}

# npm deps in SUITES_DIR/<suite>/test-suite, installed when missing or stale.
install_deps() {
	local d="$1" sum stamp
	stamp="$d/node_modules/.siogw-lock-sha256"
	if [ -f "$d/package-lock.json" ]; then
		sum="$(sha256sum "$d/package-lock.json" | cut -d' ' -f1)"
	else
		sum="no-lock:$(sha256sum "$d/package.json" | cut -d' ' -f1)"
	fi
	if [ -d "$d/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
		return 0
	fi
	say "npm deps for $d"
	if [ -f "$d/package-lock.json" ]; then
		(cd "$d" && npm ci --no-audit --no-fund --loglevel=error) >&2 || return 1
	else
		(cd "$d" && npm install --no-audit --no-fund --loglevel=error) >&2 || return 1
	fi
	echo "$sum" >"$stamp"
}

# ------------------------------------------------------------------ the gateway

cat >"$tmp/gateway.yaml.in" <<'EOF'
# Written by tests/conformance/run-official.sh: the options the official
# suites' reference servers use (README "Test suite" of each repository).
node_id: gw-conf
listen: {host: 127.0.0.1, port: @PORT@}
engine:
  path: /socket.io/
  transports: [polling, websocket]
  ping_interval_ms: 300
  ping_timeout_ms: 200
  max_payload: 1000000
  connect_timeout_ms: 1000
  cors: {origins: ["*"], credentials: false}
  cookie: false
  echo_path: /engine.io/
  workers: @WORKERS@
adapter:
  plugin: memory
  options: {}
topics: {prefix: sio}
namespaces:
  - name: /
  - name: /custom
http_api: {enabled: true, token: ""}
metrics: {enabled: true}
log: {level: info}
EOF

start_gateway() {
	local attempt
	for attempt in 1 2 3; do
		port="$(free_port)"
		sed "s/@PORT@/$port/; s/@WORKERS@/${CONF_WORKERS:-auto}/" "$tmp/gateway.yaml.in" >"$tmp/gateway.yaml"
		"$bin" -c "$tmp/gateway.yaml" --check >&2 || die "the generated config was refused: $tmp/gateway.yaml"
		"$bin" -c "$tmp/gateway.yaml" >>"$tmp/gateway.log" 2>&1 &
		gw_pid=$!
		if wait_until 10 "gateway /healthz" gw_healthy && gw_alive; then
			say "sio-gateway (pid $gw_pid) on http://127.0.0.1:$port (log $tmp/gateway.log)"
			return 0
		fi
		say "gateway did not become healthy on port $port (attempt $attempt); log tail:"
		tail -n 20 "$tmp/gateway.log" >&2 || true
		stop_pid "$gw_pid" sio-gateway
		gw_pid=""
	done
	die "sio-gateway did not start"
}

start_backend() {
	rm -f "$tmp/backend.ready"
	node "$here/backend.js" "http://127.0.0.1:$port" --ready-file "$tmp/backend.ready" \
		>>"$tmp/backend.log" 2>&1 &
	be_pid=$!
	be_ready() { [ -f "$tmp/backend.ready" ] || ! kill -0 "$be_pid" 2>/dev/null; }
	wait_until 15 "backend ready" be_ready || true
	if [ ! -f "$tmp/backend.ready" ]; then
		tail -n 20 "$tmp/backend.log" >&2 || true
		die "backend.js did not become ready"
	fi
	say "backend.js (pid $be_pid) subscribed to sio.in (log $tmp/backend.log)"
}

# ------------------------------------------------------------------ one suite

declare -A result
overall=0

run_suite() {
	local s="$1" src work total rc
	src="$suites_dir/$s/test-suite"
	work="$tmp/$s"
	install_deps "$src" || die "npm install failed in $src"
	mkdir -p "$work"
	cp "$src"/*.js "$src/package.json" "$work/"
	ln -s "$src/node_modules" "$work/node_modules"
	# The suites hard-code the server: const URL = "http://localhost:3000";
	local pat='^const URL = "http://localhost:3000";$'
	[ "$(grep -c "$pat" "$work/test-suite.js")" = 1 ] ||
		die "$s: test-suite.js no longer has exactly one line 'const URL = \"http://localhost:3000\";' to point at the gateway"
	sed -i "s|$pat|const URL = \"http://127.0.0.1:$port\";|" "$work/test-suite.js"
	total="$(grep -cE '^[[:space:]]*it\(' "$work/test-suite.js" || true)"

	say "running $s ($total tests) against http://127.0.0.1:$port"
	echo "== $s (gateway $(basename "$bin"), http://127.0.0.1:$port)"
	rc=0
	# shellcheck disable=SC2086
	(cd "$work" && exec timeout --kill-after=10 "$suite_timeout" node node_modules/mocha/bin/mocha \
		--exit --reporter json --reporter-option "output=$tmp/$s.json" ${CONF_MOCHA_ARGS:-} test-suite.js) \
		>"$tmp/$s.mocha.log" 2>&1 &
	mocha_pid=$!
	wait "$mocha_pid" || rc=$?
	mocha_pid=""
	if [ ! -s "$tmp/$s.json" ]; then
		say "$s: mocha wrote no results (exit $rc); its output:"
		tail -n 40 "$tmp/$s.mocha.log" >&2 || true
		result[$s]="0/$total (mocha did not finish, exit $rc)"
		overall=1
		return 0
	fi
	local summary
	summary="$(node - "$tmp/$s.json" "$total" 2>"$tmp/$s.count" <<'EOF'
const fs = require('fs');
const [file, totalText] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(file, 'utf8'));
const failed = new Set(r.failures.map((t) => t.fullTitle));
for (const t of r.tests) {
  const bad = failed.has(t.fullTitle);
  console.log(`  ${bad ? 'FAIL' : t.pending ? 'SKIP' : 'ok  '} ${t.fullTitle}${t.duration !== undefined ? ` (${t.duration} ms)` : ''}`);
}
// failures not tied to a test (hooks, uncaught errors after a test ended)
for (const f of r.failures) if (!r.tests.some((t) => t.fullTitle === f.fullTitle)) console.log(`  FAIL ${f.fullTitle}`);
if (r.failures.length) console.log('  failures:');
for (const f of r.failures) {
  const msg = (f.err && (f.err.message || f.err.stack)) || JSON.stringify(f.err);
  console.log(`  - ${f.fullTitle}\n      ${String(msg).split('\n').slice(0, 6).join('\n      ')}`);
}
const total = Number(totalText) || r.stats.tests;
const note = r.stats.tests !== total ? ` (mocha ran ${r.stats.tests})` : '';
process.stderr.write(`${r.stats.passes}/${total}${note}\n`);
EOF
	)" || true
	echo "$summary"
	result[$s]="$(cat "$tmp/$s.count")"
	case "${result[$s]}" in "$total/$total") ;; *) overall=1 ;; esac
	echo "$s: ${result[$s]} passed"
}

# ------------------------------------------------------------------ main

start_gateway
for s in "${suites[@]}"; do
	if [ "$s" = socket.io-protocol ]; then
		start_backend
	fi
	run_suite "$s"
	if [ "$s" = socket.io-protocol ]; then
		stop_pid "$be_pid" backend.js
		be_pid=""
	fi
	gw_alive || die "sio-gateway exited during $s; log tail: $(tail -n 20 "$tmp/gateway.log")"
done

echo "== summary"
for s in "${suites[@]}"; do
	echo "$s: ${result[$s]} passed"
done
exit "$overall"
