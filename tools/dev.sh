#!/usr/bin/env bash
# tools/dev.sh — the project's two commands (see README):
#   tools/dev.sh run  [gateway args]  install what is missing, build, start the gateway
#   tools/dev.sh test                 install what is missing, build (ASan+UBSan), run every suite
# Both are idempotent: a second run only rebuilds what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PKGS=(gcc clang libclang-rt-14-dev meson ninja-build pkg-config python3
	libwebsockets-dev libwebsockets-evlib-ev libev-dev libhttp-parser-dev libssl-dev zlib1g-dev librdkafka-dev libnng-dev nng-utils libcjson-dev libyaml-dev curl
	nginx-light openssl python3-socketio python3-engineio python3-websocket python3-aiohttp python3-requests python3-msgpack
	libcrypt-dev)
# only the tests need these (the admin UI page in a real browser)
TEST_APT_PKGS=(chromium fonts-liberation)

log() { printf '== %s\n' "$*" >&2; }

install_deps() { # install_deps [extra packages...]
	local missing=()
	for p in "${APT_PKGS[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
	if ((${#missing[@]})); then
		log "installing: ${missing[*]}"
		local sudo=""
		[[ $(id -u) -eq 0 ]] || sudo=sudo
		$sudo apt-get update -q
		# nginx is only a test tool (the sticky-session test starts its own on
		# loopback): keep the package from starting a system nginx on port 80
		local guard=""
		if [[ ! -e /usr/sbin/policy-rc.d ]]; then
			guard=/usr/sbin/policy-rc.d
			printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null
			$sudo chmod +x "$guard"
		fi
		local irc=0
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || irc=$?
		if [[ -n $guard ]]; then $sudo rm -f "$guard"; fi
		if ((irc)); then
			log "apt-get install failed (exit $irc)"
			return 1
		fi
	fi
}

build() { # build DIR [meson options...]
	local dir=$1
	shift
	if [[ ! -f $dir/build.ninja ]]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	meson compile -C "$dir"
}

cmd_run() {
	install_deps
	build build
	exec build/gateway/sio-gateway "$@"
}

count_meson() { # prints "passed failed" from a meson testlog.json
	python3 - "$1" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL", "SKIP"):
        p += r != "SKIP"
    else:
        f += 1
print(p, f)
PY
}

cmd_test() {
	install_deps "${TEST_APT_PKGS[@]}"
	local rc=0 passed=0 failed=0 p f
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

	log "build (AddressSanitizer + UBSan)"
	build build-test -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	log "unit tests"
	meson test -C build-test --print-errorlogs --num-processes 2 || rc=1
	read -r p f < <(count_meson build-test/meson-logs/testlog.json)
	passed=$((passed + p)); failed=$((failed + f))

	log "fuzz smoke (libFuzzer, short runs)"
	if CC=clang build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false; then
		meson test -C build-fuzz --suite fuzz --print-errorlogs --num-processes 2 || rc=1
		read -r p f < <(count_meson build-fuzz/meson-logs/testlog.json)
		passed=$((passed + p)); failed=$((failed + f))
	else
		log "fuzz build failed"; failed=$((failed + 1)); rc=1
	fi

	log "install smoke: the installed binary finds its installed plugin and client bundle"
	rm -rf build-inst
	if meson setup build-inst --prefix="$ROOT/build-inst/prefix" >/dev/null &&
		meson install -C build-inst >/dev/null &&
		(cd / && "$ROOT/build-inst/prefix/bin/sio-gateway" --check) &&
		printf 'engine: {serve_client: true}\n' >build-inst/serve-client.yaml &&
		(cd / && "$ROOT/build-inst/prefix/bin/sio-gateway" -c "$ROOT/build-inst/serve-client.yaml" --check); then
		passed=$((passed + 1))
	else
		log "install smoke FAILED"; failed=$((failed + 1)); rc=1
	fi
	log "plugin SDK smoke: the guide's example plugin, built against the installed SDK, passes the installed battery"
	if [[ -x build-inst/prefix/bin/sio-gateway ]] && bash tools/sdk-smoke.sh build-inst/prefix >/dev/null 2>&1; then
		passed=$((passed + 1))
	else
		log "plugin SDK smoke FAILED: bash tools/sdk-smoke.sh build-inst/prefix"; failed=$((failed + 1)); rc=1
	fi

	log "integration tests (node + socket.io-client)"
	local out
	out=$(mktemp)
	local irc=0
	SIOGW_BIN="$ROOT/build-test/gateway/sio-gateway" bash tests/integration/run.sh 2>&1 | tee "$out" || irc=1
	p=$(grep -aE '^(# pass|ℹ pass) [0-9]+' "$out" | tail -1 | grep -oE '[0-9]+$' || echo 0)
	f=$(grep -aE '^(# fail|ℹ fail) [0-9]+' "$out" | tail -1 | grep -oE '[0-9]+$' || echo 1)
	# a failing hook (e.g. a gateway that did not exit cleanly) fails the run without
	# failing a test: count it, so the summary line never says 0 failed for a red run
	if ((irc)); then
		rc=1
		((f > 0)) || f=1
	fi
	passed=$((passed + p)); failed=$((failed + f))
	rm -f "$out"

	echo "$passed passed, $failed failed"
	if ((failed > 0)); then rc=1; fi
	return $rc
}

case "${1:-}" in
run) shift; cmd_run "$@" ;;
test) shift; cmd_test "$@" ;;
deps) install_deps ;;
*) echo "usage: tools/dev.sh run|test|deps" >&2; exit 2 ;;
esac
