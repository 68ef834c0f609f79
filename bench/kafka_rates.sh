#!/usr/bin/env bash
# bench/kafka_rates.sh — Kafka bus figures with the C load generator (bench/loadgen), through
# librdkafka's mock cluster (tests/helpers/kafka_mock_cluster, no JVM). Issue 12, scope 4.
#
#   bench/kafka_rates.sh events     client events -> Kafka: `loadgen events` (N websocket
#                                   clients sending EVENT packets as fast as TCP takes them)
#                                   for several producer settings; the stored rate from the
#                                   gateway's delivery reports (sio_kafka_delivered_total;
#                                   siogw_kafka_* before b851206), the gateway's CPU per
#                                   event, and the backend's count
#   bench/kafka_rates.sh latency    backend emit -> client latency for each consumer
#                                   fetch.wait.max.ms (1 5 10 50 100): a kafka_backend producing
#                                   emits to sio.out (lines from `loadgen fanout --pipe`), the
#                                   loadgen's websocket clients timing arrival; paced at
#                                   1,000 and 10,000 emits/s, then closed loop (the max rate)
#   bench/kafka_rates.sh all        both (the default)
#   bench/kafka_rates.sh table DIR  the markdown tables of an earlier run
#
# Every run starts a fresh mock cluster (1 broker), gateway and backend. The gateway is
# pinned to CPU $SERVER_CPU (0), the loadgen, the backend and the mock to CPU $LOADGEN_CPU
# (1), with taskset, as bench/compare.sh does. Results: one JSON line per run in
# $OUT/results.jsonl (default bench/results/kafka-<date>), logs beside it, tables in
# $OUT/table.md. Binaries from $BUILD_DIR (default build/; meson compile sio-gateway kafka
# loadgen kafka_mock_cluster kafka_backend first).
#
# Sizes (environment): CLIENTS=200 DURATION=10 (events runs, seconds of sending) SIZE=100
#   BURST=8 (frames per write) WINDOW=16 (the ack: broker run's events in flight per client)
#   PACED_RATE=20000 (the events run at a fixed rate) VERIFY_EVENTS=30000 (the run whose
#   events all fit the mock's log, so that the backend must read every one)
#   LAT_CLIENTS=10 LAT_WAITS="1 5 10 50 100" LAT_RATES="1000 10000" LAT_SECONDS=5
#   LAT_MAX_EMITS=200000 LAT_MAX_WINDOW=20000  (the closed-loop run: emits in flight)
#   EVENTS_ONLY="name ..."  run only these events configurations (names in the table)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
GW="$BUILD_DIR/gateway/sio-gateway"
LOADGEN="$BUILD_DIR/bench/loadgen"
MOCK="$BUILD_DIR/tests/kafka_mock_cluster"
BACKEND="$BUILD_DIR/tests/kafka_backend"
CLIENTS=${CLIENTS:-200}
DURATION=${DURATION:-10}
SIZE=${SIZE:-100}
BURST=${BURST:-8}
WINDOW=${WINDOW:-16}
PACED_RATE=${PACED_RATE:-20000}
VERIFY_EVENTS=${VERIFY_EVENTS:-30000}
LAT_CLIENTS=${LAT_CLIENTS:-10}
LAT_WAITS=${LAT_WAITS:-1 5 10 50 100}
LAT_RATES=${LAT_RATES:-1000 10000}
LAT_SECONDS=${LAT_SECONDS:-5}
LAT_MAX_EMITS=${LAT_MAX_EMITS:-200000}
LAT_MAX_WINDOW=${LAT_MAX_WINDOW:-20000}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}

WHAT=${1:-all}
if [[ $WHAT == table ]]; then
	OUT=${2:?usage: kafka_rates.sh table DIR}
else
	OUT=${OUT:-$HERE/results/kafka-$(date -u +%Y%m%dT%H%M%SZ)}
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
log() { printf '== %s\n' "$*" >&2; }

table() {
	python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def f(v, d=0):
    return "—" if v is None else f"{v:,.{d}f}"
ev = [r for r in rows if r.get("mode") == "events"]
if ev:
    print("### Client events → Kafka (`loadgen events`)\n")
    print("| configuration | clients | sent/s (loadgen) | stored/s while sending | stored/s overall | all stored | backend read | gateway CPU % | µs gateway CPU / event | loadgen CPU % | mock CPU % | backend CPU % | ack RTT p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ev:
        m = r.get("metrics", {})
        ack = "—"
        if r.get("ack_p50_us") is not None:
            ack = f"{r['ack_p50_us']/1000:.1f} / {r['ack_p99_us']/1000:.1f}"
        read = r.get("backend_consumed")
        stored = r.get("stored")
        rd = "—" if read is None else ("all" if stored is not None and read >= stored else f"{read:,} of {stored:,.0f}")
        rej = (m.get("sio_kafka_publish_rejected_total") or m.get("siogw_kafka_publish_rejected_total") or 0)
        name = r.get("tag", "")
        if rej > 0:
            name += f" ({rej:,.0f} rejected)"
        print(f"| {name} | {r['connected']} | {f(r.get('send_rate'))} | {f(r.get('stored_rate_during_send'))} | "
              f"{f(r.get('stored_rate'))} | {'yes' if r.get('all_stored') else 'NO'} | {rd} | {f(r.get('server_cpu_pct'))} | "
              f"{f(r.get('server_cpu_us_per_event'), 2)} | {f(r.get('send_loadgen_cpu_pct'))} | {f(r.get('mock_cpu_pct'))} | "
              f"{f(r.get('backend_cpu_pct'))} | {ack} |")
    print()
fo = [r for r in rows if r.get("mode") == "fanout"]
if fo:
    print("### Backend emit → client latency per `fetch.wait.max.ms` (`loadgen fanout --pipe`)\n")
    print("| fetch.wait.max.ms | load | emits/s delivered | p50 ms | p99 ms | max ms | gateway CPU % | µs gateway CPU / emit | loadgen CPU % | mock CPU % | backend CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in fo:
        load = f"paced {r['rate']:,.0f}/s" if r.get("rate") else f"max (≤ {r['window']:,} in flight)"
        print(f"| {r.get('fetch_wait_ms')} | {load} | {f(r.get('events_per_s'))} | {r['lat_p50_us']/1000:.1f} | "
              f"{r['lat_p99_us']/1000:.1f} | {r['lat_max_us']/1000:.1f} | {f(r.get('server_cpu_pct'))} | "
              f"{f(r.get('server_cpu_us_per_event'), 2)} | {f(r.get('loadgen_cpu_pct'))} | {f(r.get('mock_cpu_pct'))} | "
              f"{f(r.get('backend_cpu_pct'))} |" + ("" if r.get("ok") else f" FAILED: {r.get('error')}"))
    print()
PY
}
if [[ $WHAT == table ]]; then
	table
	exit 0
fi

for b in "$GW" "$LOADGEN" "$MOCK" "$BACKEND" "$BUILD_DIR/plugins/kafka/kafka.so"; do
	[[ -e $b ]] || { echo "kafka_rates.sh: missing $b (build the Kafka plugin and helpers in $BUILD_DIR)" >&2; exit 2; }
done
: >"$RESULTS"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PIN_S=(taskset -c "$SERVER_CPU") PIN_L=(taskset -c "$LOADGEN_CPU")
log "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); gateway on CPU $SERVER_CPU, loadgen/backend/mock on CPU $LOADGEN_CPU"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
ticks() { # utime+stime of a process (all threads), in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)

PIDS=() FDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
	local fd
	for fd in "${FDS[@]}"; do eval "exec $fd>&-"; done
	FDS=()
}
trap cleanup EXIT

wait_line() { # file regex timeout-s: the first matching line, or fail
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "kafka_rates.sh: no line /$2/ in $1 within $3 s" >&2
	return 1
}

# The mock cluster, 1 broker, with sio.in of $1 partitions. Sets BOOTSTRAP MOCK_PID.
start_mock() {
	local run=$1 parts=$2
	mkfifo "$OUT/$run.mock.in"
	exec {mfd}<>"$OUT/$run.mock.in" # held open: the mock exits at the end of its stdin
	FDS+=("$mfd")
	"${PIN_L[@]}" "$MOCK" --brokers 1 --topic "sio.in:$parts" --topic sio.out:6 --topic sio.reply.gw-bench:1 \
		<"$OUT/$run.mock.in" >"$OUT/$run.mock.out" 2>"$OUT/$run.mock.err" &
	MOCK_PID=$!
	PIDS+=("$MOCK_PID")
	BOOTSTRAP=$(wait_line "$OUT/$run.mock.out" '^127\.0\.0\.1:[0-9]+' 10)
}

# A kafka_backend reading fifo $2 as its stdin; $3...: its arguments. Sets BE_PID BE_FD.
start_backend() {
	local run=$1 fifo=$2
	shift 2
	mkfifo "$fifo"
	exec {BE_FD}<>"$fifo"
	FDS+=("$BE_FD")
	"${PIN_L[@]}" "$BACKEND" --brokers "$BOOTSTRAP" "$@" <"$fifo" >"$OUT/$run.backend.out" 2>"$OUT/$run.backend.err" &
	BE_PID=$!
	PIDS+=("$BE_PID")
}

# The gateway: $2 the adapter options (YAML flow map entries), $3 the namespace entry.
start_gateway() {
	local run=$1 opts=$2 nsp=$3
	GW_PORT=$(free_port)
	cat >"$OUT/$run.yaml" <<EOF
# generated by bench/kafka_rates.sh
node_id: gw-bench
listen: {host: 127.0.0.1, port: $GW_PORT}
engine: {transports: [websocket], send_queue: 100000, workers: 1}
adapter:
  plugin: kafka
  inbound_queue: 65536
  options:
    brokers: "$BOOTSTRAP"
    create_topics: auto
    metadata_refresh: 500ms
    connect_timeout: 5s
    close_timeout: 1s
    rdkafka.reconnect.backoff.max.ms: "500"
$opts
namespaces:
  - $nsp
http_api: {enabled: true, token: ""}
metrics: {enabled: true}
log: {level: warn}
EOF
	"${PIN_S[@]}" "$GW" -c "$OUT/$run.yaml" >"$OUT/$run.gateway.log" 2>&1 &
	GW_PID=$!
	PIDS+=("$GW_PID")
	"$LOADGEN" wait --port "$GW_PORT" --timeout 20 || { tail "$OUT/$run.gateway.log" >&2; return 1; }
}

# The kafka plugin's counter prefix on /metrics: sio_kafka (since b851206), siogw_kafka before.
kafka_prefix() {
	python3 - "$GW_PORT" <<'PY'
import sys, urllib.request
t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print("sio_kafka" if "\nsio_kafka_delivered_total" in "\n" + t else "siogw_kafka")
PY
}

# ---------------------------------------------------------------- client events -> Kafka
# name partitions-of-sio.in "adapter options" [loadgen args...]
events_run() {
	local name=$1 parts=$2 opts=$3
	shift 3
	local nsp="{name: /}"
	[[ " $* " == *" --window "* ]] && nsp="{name: /, ack: broker}"
	if [[ -n ${EVENTS_ONLY:-} && " $EVENTS_ONLY " != *" $name "* ]]; then return 0; fi
	log "events: $name (sio.in: $parts partition(s); $(echo "$opts" | tr -s ' \n' ' '))"
	start_mock "ev-$name" "$parts"
	start_backend "ev-$name" "$OUT/ev-$name.backend.in" --topic sio.in --quiet
	wait_line "$OUT/ev-$name.backend.out" '"event":"assigned"' 15 >/dev/null
	start_gateway "ev-$name" "$opts" "$nsp"
	local m0 b0 json K
	K=$(kafka_prefix)
	m0=$(ticks "$MOCK_PID") b0=$(ticks "$BE_PID")
	local t0
	t0=$(date +%s.%N)
	json=$("${PIN_L[@]}" "$LOADGEN" events --port "$GW_PORT" --clients "$CLIENTS" --duration "$DURATION" \
		--size "$SIZE" --burst "$BURST" --rss-pid "$GW_PID" --label gateway-kafka --tag "$name" \
		--metric "${K}_delivered_total" --metric "${K}_published_total" \
		--metric "${K}_publish_rejected_total" --metric "${K}_delivery_failed_total" \
		--metric sio_bus_publish_errors_total --metric sio_packets_in_total "$@" 2>"$OUT/ev-$name.loadgen.log") || true
	local wall
	wall=$(python3 -c "import sys,time; print(time.time() - float(sys.argv[1]))" "$t0")
	local m1 b1
	m1=$(ticks "$MOCK_PID") b1=$(ticks "$BE_PID")
	sed 's/^/   /' "$OUT/ev-$name.loadgen.log" >&2
	# the backend (a librdkafka consumer of every sio.in partition) must read them all
	local stored consumed=0 i line
	stored=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1] or "{}").get("stored", 0)))' "$json")
	for ((i = 0; i < 100; i++)); do
		echo '{"op":"count"}' >&"$BE_FD"
		sleep 0.1
		line=$(grep '"event":"count"' "$OUT/ev-$name.backend.out" | tail -1)
		consumed=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["consumed"])' "$line")
		((consumed >= stored)) && break
	done
	log "   the backend read $consumed of $stored stored events"
	python3 - "$json" "$consumed" "$parts" "$(((m1 - m0) * 100 / HZ))" "$(((b1 - b0) * 100 / HZ))" "$wall" \
		>>"$RESULTS" <<'PY'
import json, sys
r = json.loads(sys.argv[1] or '{"mode":"events","ok":false}')
r["backend_consumed"] = int(sys.argv[2]); r["partitions"] = int(sys.argv[3])
wall = max(1e-9, float(sys.argv[6]))
# the mock's and backend's CPU over the loadgen's whole run (connect and drain included)
r["mock_cpu_pct"] = int(sys.argv[4]) / 100 / wall * 100
r["backend_cpu_pct"] = int(sys.argv[5]) / 100 / wall * 100
print(json.dumps(r))
PY
	cleanup
	sleep 1
}

# ---------------------------------------------------------------- backend emit -> client
latency_runs() { # fetch.wait.max.ms
	local w=$1 run="lat-$1"
	log "latency: fetch.wait.max.ms $w"
	start_mock "$run" 6
	start_backend "$run" "$OUT/$run.emits" # a producer only: the loadgen writes its stdin
	start_gateway "$run" "    linger: 1ms
    rdkafka_consumer.fetch.wait.max.ms: \"$w\"" "{name: /}"
	local rate args
	for rate in $LAT_RATES max; do
		if [[ $rate == max ]]; then
			args=(--events "$LAT_MAX_EMITS" --window "$LAT_MAX_WINDOW")
		else
			args=(--events "$((rate * LAT_SECONDS))" --rate "$rate")
		fi
		local m0 b0 json t0
		t0=$(date +%s.%N)
		m0=$(ticks "$MOCK_PID") b0=$(ticks "$BE_PID")
		json=$("${PIN_L[@]}" "$LOADGEN" fanout --port "$GW_PORT" --clients "$LAT_CLIENTS" --pipe "$OUT/$run.emits" \
			--size "$SIZE" --rss-pid "$GW_PID" --label gateway-kafka --tag "wait$w-$rate" --idle-timeout 10 \
			"${args[@]}" 2>"$OUT/$run-$rate.loadgen.log") || true
		local m1 b1 wall
		wall=$(python3 -c "import sys,time; print(time.time() - float(sys.argv[1]))" "$t0")
		m1=$(ticks "$MOCK_PID") b1=$(ticks "$BE_PID")
		sed 's/^/   /' "$OUT/$run-$rate.loadgen.log" >&2
		python3 - "$json" "$w" "$(((m1 - m0) * 100 / HZ))" "$(((b1 - b0) * 100 / HZ))" "$wall" "${args[@]}" \
			>>"$RESULTS" <<'PY'
import json, sys
r = json.loads(sys.argv[1] or '{"mode":"fanout","ok":false,"lat_p50_us":0,"lat_p99_us":0,"lat_max_us":0}')
r["fetch_wait_ms"] = int(sys.argv[2])
wall = max(1e-9, float(sys.argv[5]))
r["mock_cpu_pct"] = int(sys.argv[3]) / 100 / wall * 100
r["backend_cpu_pct"] = int(sys.argv[4]) / 100 / wall * 100
print(json.dumps(r))
PY
	done
	cleanup
	sleep 1
}

if [[ $WHAT == events || $WHAT == all ]]; then
	events_run linger0 1 "    linger: 0ms"
	events_run linger1 1 "    linger: 1ms"
	events_run linger5 1 "    linger: 5ms"
	events_run linger0-p3 3 "    linger: 0ms"
	events_run linger1-p3 3 "    linger: 1ms"
	events_run linger5-p3 3 "    linger: 5ms"
	events_run linger5-batch1000 1 "    linger: 5ms
    rdkafka_producer.batch.num.messages: \"1000\""
	events_run linger5-batch64k 1 "    linger: 5ms
    rdkafka_producer.batch.size: \"65536\""
	events_run linger5-acks1 1 "    linger: 5ms
    acks: \"1\"
    idempotence: false"
	events_run "linger5-paced$PACED_RATE" 1 "    linger: 5ms" --rate "$PACED_RATE"
	events_run "linger5-ackbroker-w$WINDOW" 1 "    linger: 5ms" --window "$WINDOW"
	# all of it read back: few enough events that no partition exceeds the mock's 5 MiB log
	events_run "verify-p3-$VERIFY_EVENTS" 3 "    linger: 5ms" --events "$VERIFY_EVENTS"
	events_run "linger1-ackbroker-w$WINDOW" 1 "    linger: 1ms" --window "$WINDOW"
fi
if [[ $WHAT == latency || $WHAT == all ]]; then
	for w in $LAT_WAITS; do latency_runs "$w"; done
fi
table | tee "$OUT/table.md"
log "results: $OUT"
