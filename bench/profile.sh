#!/usr/bin/env bash
# bench/profile.sh — one bench scenario against sio-gateway with a profiler attached to the
# gateway for exactly the loadgen's run, to see where the time goes:
#
#   bench/profile.sh perf   fanout|ack|connect|rooms [loadgen options...]   perf record -g (cpu-clock), top symbols
#   bench/profile.sh strace fanout|ack|connect|rooms [loadgen options...]   strace -c -f: syscalls by count and time
#   bench/profile.sh none   fanout|ack|connect|rooms [loadgen options...]   just the run
#
# Defaults: fanout 1000 clients × 500 events; ack 100 clients × 3 s (loadgen is the SSE
# backend); connect 10000 clients; rooms 10000 clients in rooms of 2, 200000 emits at the
# maximum rate over HTTP NDJSON batches of 100 (the rooms row of compare.sh). Extra options go to bench/loadgen and win over these.
# Gateway and loadgen are pinned like compare.sh (SERVER_CPU=0, LOADGEN_CPU=1); binaries
# from $BUILD_DIR (default build-bench, -O2 -g) or GATEWAY=/LOADGEN= in the environment.
# MEMORY_DELIVERY=thread|inline picks the memory plugin's delivery mode; WORKERS the
# gateway's engine.workers (default 1: one loop on SERVER_CPU).
# Output and the gateway's log go to $OUT (default a temp dir, printed at the end).
# strace slows the gateway several times over: read its counts, not its rates.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
tool=${1:-}
scen=${2:-}
if [[ ! $tool =~ ^(perf|strace|none)$ || ! $scen =~ ^(fanout|ack|connect|rooms)$ ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 2
fi
shift 2
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
if [[ -z ${GATEWAY:-} || -z ${LOADGEN:-} ]]; then
	[[ -f $BUILD_DIR/build.ninja ]] || meson setup "$BUILD_DIR" "$ROOT" -Dbuildtype=debugoptimized -Db_ndebug=true >/dev/null
	meson compile -C "$BUILD_DIR" sio-gateway memory loadgen >/dev/null
	GATEWAY=${GATEWAY:-$BUILD_DIR/gateway/sio-gateway}
	LOADGEN=${LOADGEN:-$BUILD_DIR/bench/loadgen}
fi
command -v "$tool" >/dev/null || [[ $tool == none ]] || { echo "profile.sh: $tool is not installed" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/siogw-profile.XXXXXX")}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PIN_S=() PIN_L=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
	PIN_S=(taskset -c "${SERVER_CPU:-0}")
	PIN_L=(taskset -c "${LOADGEN_CPU:-1}")
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$OUT/gateway.yaml" <<EOF
node_id: gw-bench
listen: {host: 127.0.0.1, port: $port}
engine:
  transports: [polling, websocket]
  busy_poll_us: ${BUSY_POLL_US:-0}
  workers: ${WORKERS:-1}
adapter: {plugin: memory, options: {delivery: ${MEMORY_DELIVERY:-thread}}}
namespaces:
  - name: /
http_api: {enabled: true, token: ""}
log: {level: warn}
EOF
"${PIN_S[@]}" "$GATEWAY" -c "$OUT/gateway.yaml" >"$OUT/gateway.log" 2>&1 &
gw=$!
prof=""
cleanup() {
	[[ -n $prof ]] && kill -INT "$prof" 2>/dev/null
	kill -TERM "$gw" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
"$LOADGEN" wait --port "$port" --timeout 20

case $scen in
fanout) args=(fanout --clients 1000 --events 500 --size 100 --window 4) ;;
ack) args=(ack --clients 100 --duration 3 --backend sse) ;;
connect) args=(connect --clients 10000 --concurrency 200) ;;
rooms) args=(rooms --clients 10000 --room-size 2 --events 200000 --rate 0 --window 4096 --size 100
	--concurrency 200 --connect-timeout 120 --via http --batch 100 --posters 4) ;;
esac

case $tool in
perf)
	perf record ${PERF_EVENTS:--e cpu-clock -F 4999} ${PERF_CALLGRAPH:--g} -p "$gw" -o "$OUT/perf.data" 2>"$OUT/perf-record.log" &
	prof=$!
	;;
strace)
	strace -c -f -p "$gw" -o "$OUT/strace.txt" 2>"$OUT/strace.log" &
	prof=$!
	;;
esac
sleep 0.5 # the profiler attaches
"${PIN_L[@]}" "$LOADGEN" "${args[@]}" "$@" --port "$port" --rss-pid "$gw" --label gateway >"$OUT/loadgen.json"
if [[ -n $prof ]]; then
	kill -INT "$prof"
	wait "$prof" 2>/dev/null || true
	prof=""
fi
case $tool in
perf)
	perf report -i "$OUT/perf.data" --no-children --sort symbol,dso --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -40 | tee "$OUT/perf-top.txt"
	echo "callers: perf report -i $OUT/perf.data --no-children -G" ;;
strace)
	head -40 "$OUT/strace.txt"
	python3 - "$OUT/loadgen.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = r.get("deliveries") or r.get("acks") or r.get("connected")
what = "deliveries" if r.get("deliveries") else "acks" if r.get("acks") else "connections"
print(f"(divide the calls by {n} {what})")
PY
	;;
esac
echo "output: $OUT"
