#!/usr/bin/env bash
# bench/compare.sh — sio-gateway against the Node.js socket.io@4 server and a bare epoll
# ceiling, on this machine, in one command:
#
#   bench/compare.sh            the full comparison (~16 minutes), table at the end
#   bench/compare.sh --smoke    10 clients, 10 events, rooms of 2 with 100 emits, no Node: seconds; CI runs it
#                               (meson test bench/smoke)
#
# Options:
#   --no-node / --no-ceiling    skip that server
#   --no-rooms                  skip the rooms scenario     --rooms-only   run only the rooms scenario
#   --no-workers                skip the engine.workers 1 vs 2 runs (fan-out and rooms over HTTP, with
#                               neither the server nor the loadgen pinned: they share every core)
#   --workers-only              run only those
#   --nng-hop BIN               bench/nng_hop (the bare nng hop of the rooms scenario; default: built
#                               with the rest when libnng is found; without it and the gateway's nng
#                               plugin, the nng runs are skipped)
#   --node                      run the Node server even with --smoke
#   --gateway BIN --loadgen BIN --ceiling BIN   use these binaries (default: build them in
#                               $BUILD_DIR, default build-bench, -O2 with NDEBUG and debug info)
#   --out DIR                   keep logs and results here (default bench/results/<date>; --smoke: a temp dir)
# Sizes (environment):
#   FANOUT_CLIENTS=1000 FANOUT_EVENTS=2000 EVENT_SIZE=100
#   FANOUT_POSTERS=32 FANOUT_WINDOW=32  the publishing backend: keep-alive connections (one request
#                                      in flight each), events in flight (published, not delivered)
#   FANOUT_RUNS=3                      fan-out runs per server (fresh process each); the table shows the median
#   IDLE_STEPS=0,1000,10000,100000   idle-memory checkpoints; the largest feasible one is also
#                                    the connect-rate run; steps the fd limit forbids are reported, not run
#   CONNECT_CONCURRENCY=200   handshakes in flight    ACK_CLIENTS=100 ACK_SECONDS=5   SETTLE_S=2
#   ACK_INTERVAL_MS=100  the paced ack run: each client starts a request every 100 ms (1,000 req/s
#                        at 100 clients), for latency at a known load; the closed-loop run gives requests/s
#   ACK_POSTERS=4        keep-alive connections the ack backend answers over
#   MEMORY_DELIVERY=thread   the gateway's memory bus: thread | inline (adapter.options.delivery)
#   HOLD_MAX=1           also connect as many idle websockets to the gateway as one process may
#                        open here (hard fd limit - 200), and report them with the RSS
#   TUNED_RUNS=1         also run the paced ack with the loadgen polling instead of sleeping (its
#                        clients and backend stop paying for vCPU wake-ups: the servers' own latency,
#                        both at their defaults), and the gateway once more latency-tuned
#                        (delivery: inline, engine.busy_poll_us: 2000)
#   AWAKE_RUNS=0         also run the paced ack with both cores kept out of idle (a nice-19 spinner
#                        on each): on a VM, waking an idle vCPU costs milliseconds of tail latency
#   ROOMS_CLIENTS=10000 ROOMS_SIZE=2 ROOMS_EVENTS=200000 ROOMS_RATE=10000 ROOMS_PACED_EVENTS=200000
#   ROOMS_BATCH=100 ROOMS_POSTERS=4 ROOMS_WINDOW=4096 ROOMS_EVENT_SIZE=100
#                        the rooms scenario (loadgen rooms): ROOMS_CLIENTS clients in rooms of
#                        ROOMS_SIZE; ROOMS_EVENTS emits to random rooms as fast as the publisher
#                        may (at most ROOMS_WINDOW emits in flight), then ROOMS_PACED_EVENTS at
#                        ROOMS_RATE/s (latency). Runs: gateway over HTTP with NDJSON batches of
#                        ROOMS_BATCH over ROOMS_POSTERS connections, the same one envelope per
#                        POST, gateway over nng (its plugin, receive_listen; the loadgen's PUB
#                        dials), node (the same HTTP batches; joins and emits in-process), and
#                        the bare nng hop (bench/nng_hop: a SUB that only counts; open loop)
#   SERVER_CPU=0 LOADGEN_CPU=1   cores for taskset (when the machine has at least 2)
#   QUIET_WAIT=300 QUIET_PCT=10  before each run, wait up to QUIET_WAIT s until the machine is at
#                                most QUIET_PCT % busy (other people's builds); 0 = do not wait.
#                                Each run reports the CPU everything else used while it ran.
#
# Every server gets a fresh process per scenario, pinned to SERVER_CPU; bench/loadgen is
# pinned to LOADGEN_CPU and is the backend too (publisher, ack answerer). Results: one JSON
# line per run in $OUT/results.jsonl, server logs beside it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

SMOKE=0 NODE=1 CEILING=1 FORCE_NODE=0 ROOMS=1 ROOMS_ONLY=0 WORKERS=1 WORKERS_ONLY=0
GATEWAY="" LOADGEN="" CEIL_BIN="" OUT="" NNG_HOP=""
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
while (($#)); do
	case "$1" in
	--smoke) SMOKE=1 ;;
	--no-node) NODE=0 ;;
	--node) FORCE_NODE=1 ;;
	--no-ceiling) CEILING=0 ;;
	--no-rooms) ROOMS=0 ;;
	--rooms-only) ROOMS_ONLY=1 ;;
	--no-workers) WORKERS=0 ;;
	--workers-only) WORKERS_ONLY=1 ;;
	--nng-hop) NNG_HOP="$2"; shift ;;
	--gateway) GATEWAY="$2"; shift ;;
	--loadgen) LOADGEN="$2"; shift ;;
	--ceiling) CEIL_BIN="$2"; shift ;;
	--out) OUT="$2"; shift ;;
	--build-dir) BUILD_DIR="$2"; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

((ROOMS_ONLY)) && WORKERS=0
((WORKERS_ONLY)) && WORKERS=1
if ((SMOKE)); then
	: "${FANOUT_CLIENTS:=10}" "${FANOUT_EVENTS:=10}" "${IDLE_STEPS:=0,10}" "${ACK_CLIENTS:=10}"
	: "${ACK_SECONDS:=0.5}" "${SETTLE_S:=0.2}" "${QUIET_WAIT:=0}" "${FANOUT_RUNS:=1}" "${AWAKE_RUNS:=0}" "${TUNED_RUNS:=0}"
	: "${ROOMS_CLIENTS:=10}" "${ROOMS_EVENTS:=100}" "${ROOMS_PACED_EVENTS:=100}" "${ROOMS_RATE:=1000}" "${ROOMS_BATCH:=10}"
	: "${ROOMS_POSTERS:=2}"
	((FORCE_NODE)) || NODE=0
fi
FANOUT_CLIENTS=${FANOUT_CLIENTS:-1000}
FANOUT_EVENTS=${FANOUT_EVENTS:-2000}
EVENT_SIZE=${EVENT_SIZE:-100}
FANOUT_WINDOW=${FANOUT_WINDOW:-32}
FANOUT_POSTERS=${FANOUT_POSTERS:-32}
FANOUT_RUNS=${FANOUT_RUNS:-3}
IDLE_STEPS=${IDLE_STEPS:-0,1000,10000,100000}
CONNECT_CONCURRENCY=${CONNECT_CONCURRENCY:-200}
ACK_CLIENTS=${ACK_CLIENTS:-100}
ACK_SECONDS=${ACK_SECONDS:-5}
ACK_INTERVAL_MS=${ACK_INTERVAL_MS:-100}
ACK_POSTERS=${ACK_POSTERS:-4}
AWAKE_RUNS=${AWAKE_RUNS:-0}
TUNED_RUNS=${TUNED_RUNS:-1}
HOLD_MAX=${HOLD_MAX:-1}
SETTLE_S=${SETTLE_S:-2}
QUIET_WAIT=${QUIET_WAIT:-300}
QUIET_PCT=${QUIET_PCT:-10}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
ROOMS_CLIENTS=${ROOMS_CLIENTS:-10000}
ROOMS_SIZE=${ROOMS_SIZE:-2}
ROOMS_EVENTS=${ROOMS_EVENTS:-200000}
ROOMS_RATE=${ROOMS_RATE:-10000}
ROOMS_PACED_EVENTS=${ROOMS_PACED_EVENTS:-200000}
ROOMS_BATCH=${ROOMS_BATCH:-100}
ROOMS_POSTERS=${ROOMS_POSTERS:-4}
ROOMS_WINDOW=${ROOMS_WINDOW:-4096}
ROOMS_EVENT_SIZE=${ROOMS_EVENT_SIZE:-100}

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- binaries
if [[ -z $GATEWAY || -z $LOADGEN || (-z $CEIL_BIN && $CEILING == 1) ]]; then
	log "building in $BUILD_DIR"
	if [[ ! -f $BUILD_DIR/build.ninja ]]; then
		meson setup "$BUILD_DIR" "$ROOT" -Dbuildtype=debugoptimized -Db_ndebug=true >/dev/null
	fi
	meson compile -C "$BUILD_DIR" sio-gateway memory loadgen ceiling >/dev/null
	# the nng parts exist only when libnng was found
	meson compile -C "$BUILD_DIR" nng nng_hop >/dev/null 2>&1 || true
	# and the Kafka parts only with librdkafka
	meson compile -C "$BUILD_DIR" kafka kafka_mock_cluster >/dev/null 2>&1 || true
	: "${GATEWAY:=$BUILD_DIR/gateway/sio-gateway}" "${LOADGEN:=$BUILD_DIR/bench/loadgen}"
	: "${CEIL_BIN:=$BUILD_DIR/bench/ceiling}"
	if [[ -z $NNG_HOP && -x $BUILD_DIR/bench/nng_hop ]]; then NNG_HOP=$BUILD_DIR/bench/nng_hop; fi
fi
for b in "$GATEWAY" "$LOADGEN"; do
	[[ -x $b ]] || { echo "compare.sh: not executable: $b" >&2; exit 2; }
done

# ---------------------------------------------------------------- the machine
if ((SMOKE)); then
	OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/siogw-bench-smoke.XXXXXX")}
else
	OUT=${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_HARD=$(ulimit -Hn)
[[ $FD_HARD == unlimited ]] && FD_HARD=1048576
NPROC=$(nproc)
PIN_SERVER=() PIN_LOADGEN=()
if ((NPROC >= 2)) && command -v taskset >/dev/null; then
	PIN_SERVER=(taskset -c "$SERVER_CPU")
	PIN_LOADGEN=(taskset -c "$LOADGEN_CPU")
	PINNING="server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU (taskset)"
else
	PINNING="not pinned ($NPROC CPU(s) or no taskset)"
fi

NODE_VERSION="" SIO_VERSION=""
if ((NODE)); then
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		log "node/npm not found: skipping the Node.js server"
		NODE=0
	else
		lock_sum="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
		stamp="$HERE/node_modules/.siogw-lock-sha256"
		if [[ ! -f $stamp || "$(cat "$stamp")" != "$lock_sum" ]]; then
			log "npm ci in bench/ (socket.io@4)"
			(cd "$HERE" && npm ci --no-audit --no-fund >&2)
			echo "$lock_sum" >"$stamp"
		fi
		NODE_VERSION=$(node --version)
		SIO_VERSION=$(node -p "require('$HERE/node_modules/socket.io/package.json').version")
	fi
fi
if ((CEILING)) && [[ ! -x $CEIL_BIN ]]; then
	log "no ceiling binary: skipping the ceiling"
	CEILING=0
fi
# nng runs of the rooms scenario: the loadgen's nng publisher, the gateway's nng plugin
# (found where the gateway's loader looks in a build tree) and the bare hop
NNG=0
if ((ROOMS)); then
	if [[ "$("$LOADGEN" features 2>/dev/null)" != *nng* ]]; then
		log "loadgen built without nng: skipping the rooms runs over nng"
	elif [[ ! -f "$(dirname "$GATEWAY")/../plugins/nng/nng.so" ]]; then
		log "no nng plugin beside $GATEWAY: skipping the rooms runs over nng"
	else
		NNG=1
	fi
	if ((NNG)) && [[ ! -x $NNG_HOP ]]; then
		log "no bench/nng_hop binary: skipping the bare nng hop"
	fi
fi

# The Kafka run of the rooms scenario: the loadgen's producer, the gateway's kafka plugin,
# librdkafka's mock cluster (built with the tests, pinned with the loadgen)
KAFKA=0
MOCK_BIN="$(dirname "$GATEWAY")/../tests/kafka_mock_cluster"
if ((ROOMS)); then
	if [[ "$("$LOADGEN" features 2>/dev/null)" != *kafka* ]]; then
		log "loadgen built without librdkafka: skipping the rooms run over Kafka"
	elif [[ ! -f "$(dirname "$GATEWAY")/../plugins/kafka/kafka.so" || ! -x $MOCK_BIN ]]; then
		log "no kafka plugin or kafka_mock_cluster beside $GATEWAY: skipping the rooms run over Kafka"
	else
		KAFKA=1
	fi
fi

# Which gateway source was measured: the commit, and whether gateway/ or plugins/ had
# uncommitted changes (GIT_REV overrides, e.g. for an exported tree).
if [[ -z ${GIT_REV:-} ]]; then
	GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ $GIT_REV != unknown && -n "$(git -C "$ROOT" status --porcelain -- gateway plugins include 2>/dev/null)" ]]; then
		GIT_REV="$GIT_REV + uncommitted changes in gateway/plugins"
	fi
fi

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

python3 - "$OUT/machine.json" <<PY
import json, os, platform, sys, time
def first(path, key):
    try:
        for line in open(path):
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
mem_kb = int(first("/proc/meminfo", "MemTotal").split()[0] or 0)
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "nproc": os.cpu_count(), "cpu": first("/proc/cpuinfo", "model name"),
    "ram_gib": round(mem_kb / 1048576, 1), "kernel": platform.release(),
    "load_before": open("/proc/loadavg").read().split()[:3],
    "fd_hard": "$FD_HARD", "pinning": "$PINNING",
    "gateway": "$GATEWAY", "rev": "$GIT_REV", "node": "$NODE_VERSION", "socketio": "$SIO_VERSION",
    "smoke": $SMOKE,
    "sizes": {"fanout_clients": $FANOUT_CLIENTS, "fanout_events": $FANOUT_EVENTS, "event_size": $EVENT_SIZE,
              "window": $FANOUT_WINDOW, "posters": $FANOUT_POSTERS, "runs": $FANOUT_RUNS,
              "idle_steps": "$IDLE_STEPS", "ack_clients": $ACK_CLIENTS, "ack_seconds": $ACK_SECONDS,
              "ack_interval_ms": $ACK_INTERVAL_MS, "ack_posters": $ACK_POSTERS,
              "memory_delivery": "${MEMORY_DELIVERY:-thread}", "awake_runs": $AWAKE_RUNS, "tuned_runs": $TUNED_RUNS,
              "connect_concurrency": $CONNECT_CONCURRENCY,
              "rooms_clients": $ROOMS_CLIENTS, "rooms_size": $ROOMS_SIZE, "rooms_events": $ROOMS_EVENTS,
              "rooms_rate": $ROOMS_RATE, "rooms_paced_events": $ROOMS_PACED_EVENTS, "rooms_batch": $ROOMS_BATCH,
              "rooms_posters": $ROOMS_POSTERS, "rooms_window": $ROOMS_WINDOW, "rooms_event_size": $ROOMS_EVENT_SIZE,
              "workers_runs": $WORKERS},
}, open(sys.argv[1], "w"))
PY
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg); $PINNING"

# Idle-memory steps the fd limit allows: server and loadgen each hold one fd per connection.
FD_MAX=$((FD_HARD - 100))
STEPS="" SKIPPED=""
for s in ${IDLE_STEPS//,/ }; do
	if ((s <= FD_MAX)); then STEPS="$STEPS${STEPS:+,}$s"; else SKIPPED="$SKIPPED${SKIPPED:+,}$s"; fi
done
MAX_STEP=${STEPS##*,}
if [[ -n $SKIPPED ]]; then
	log "idle memory at $SKIPPED clients: not possible here (hard fd limit $FD_HARD per process, cannot be raised); measured up to $MAX_STEP"
fi

# ---------------------------------------------------------------- servers
SERVER_PID="" SERVER_PORT="" SERVER_LOG="" FAILURES=0
LOADGEN_EXTRA=() # per-server loadgen arguments (the nng URL of gateway-nng and nng-hop)

gateway_config() { # file adapter-yaml: the gateway's generated config with that adapter block
	cat >"$1" <<EOF
# generated by bench/compare.sh
node_id: gw-bench
listen: {host: 127.0.0.1, port: $SERVER_PORT}
engine:
  transports: [polling, websocket]
  busy_poll_us: ${BUSY_POLL_US:-0}
  workers: ${GW_WORKERS:-1}
$2
namespaces:
  - name: /
http_api: {enabled: true, token: ""}
metrics: {enabled: true}
log: {level: warn}
EOF
}

MOCK_PID="" MOCK_FD=""
mock_start() { # librdkafka's mock cluster (1 broker) held on a fifo: it ends with its stdin
	local fifo="$OUT/mock.in" i
	rm -f "$fifo" "$OUT/mock.out"
	mkfifo "$fifo"
	exec {MOCK_FD}<>"$fifo"
	"${PIN_LOADGEN[@]}" "$MOCK_BIN" --brokers 1 --topic sio.out:1 --topic sio.in:1 --topic sio.reply.gw-bench:1 \
		<"$fifo" >"$OUT/mock.out" 2>"$OUT/mock.err" &
	MOCK_PID=$!
	for ((i = 0; i < 100; i++)); do
		MOCK_BOOTSTRAP=$(grep -m1 -oE '^127\.0\.0\.1:[0-9]+' "$OUT/mock.out" 2>/dev/null || true)
		[[ -n $MOCK_BOOTSTRAP ]] && return 0
		sleep 0.1
	done
	log "the mock cluster did not start; $(tail -3 "$OUT/mock.err" 2>/dev/null)"
	mock_stop
	return 1
}
mock_stop() {
	[[ -n $MOCK_PID ]] || return 0
	kill -TERM "$MOCK_PID" 2>/dev/null || true
	wait "$MOCK_PID" 2>/dev/null || true
	exec {MOCK_FD}>&-
	MOCK_PID=""
}

start_server() { # kind scenario
	local kind=$1 scen=$2
	SERVER_PORT=$(free_port)
	SERVER_LOG="$OUT/$kind-$scen.log"
	LOADGEN_EXTRA=()
	case $kind in
	gateway-nng) # the nng plugin: the loadgen's PUB dials the receive socket's listener
		local rport pport
		rport=$(free_port) pport=$(free_port)
		gateway_config "$OUT/gateway-$scen.yaml" "adapter:
  plugin: nng
  options:
    publish_listen: [\"tcp://127.0.0.1:$pport\"]
    receive_listen: [\"tcp://127.0.0.1:$rport\"]
    recv_buffer: 8192"
		LOADGEN_EXTRA=(--nng-url "tcp://127.0.0.1:$rport")
		"${PIN_SERVER[@]}" "$GATEWAY" -c "$OUT/gateway-$scen.yaml" >"$SERVER_LOG" 2>&1 &
		;;
	gateway-kafka) # the kafka plugin on a fresh mock cluster; the loadgen produces to sio.out
		mock_start || return 1
		gateway_config "$OUT/gateway-$scen.yaml" "adapter:
  plugin: kafka
  inbound_queue: 65536
  options:
    brokers: \"$MOCK_BOOTSTRAP\"
    create_topics: auto
    metadata_refresh: 500ms
    rdkafka_consumer.fetch.wait.max.ms: \"10\""
		LOADGEN_EXTRA=(--kafka-brokers "$MOCK_BOOTSTRAP")
		"${PIN_SERVER[@]}" "$GATEWAY" -c "$OUT/gateway-$scen.yaml" >"$SERVER_LOG" 2>&1 &
		;;
	nng-hop)
		local rport
		rport=$(free_port)
		LOADGEN_EXTRA=(--nng-url "tcp://127.0.0.1:$rport")
		"${PIN_SERVER[@]}" "$NNG_HOP" --port "$SERVER_PORT" --listen "tcp://127.0.0.1:$rport" >"$SERVER_LOG" 2>&1 &
		;;
	gateway)
		gateway_config "$OUT/gateway-$scen.yaml" \
			"adapter: {plugin: memory, options: {delivery: ${MEMORY_DELIVERY:-thread}}}"
		"${PIN_SERVER[@]}" "$GATEWAY" -c "$OUT/gateway-$scen.yaml" >"$SERVER_LOG" 2>&1 &
		;;
	gateway-w1 | gateway-w2) # engine.workers 1 or 2, not pinned (nor is the loadgen: run_loadgen)
		GW_WORKERS=${kind#gateway-w} gateway_config "$OUT/$kind-$scen.yaml" \
			"adapter: {plugin: memory, options: {delivery: ${MEMORY_DELIVERY:-thread}}}"
		"$GATEWAY" -c "$OUT/$kind-$scen.yaml" >"$SERVER_LOG" 2>&1 &
		;;
	node) "${PIN_SERVER[@]}" node "$HERE/node-server.js" --port "$SERVER_PORT" >"$SERVER_LOG" 2>&1 & ;;
	ceiling) "${PIN_SERVER[@]}" "$CEIL_BIN" --port "$SERVER_PORT" >"$SERVER_LOG" 2>&1 & ;;
	esac
	SERVER_PID=$!
	if ! "$LOADGEN" wait --port "$SERVER_PORT" --timeout 20; then
		log "$kind did not become healthy; log: $SERVER_LOG"
		tail -20 "$SERVER_LOG" >&2 || true
		stop_server "$kind" "$scen"
		return 1
	fi
}

stop_server() { # kind scenario: SIGTERM, and a clean exit is part of the result
	local kind=$1 scen=$2 rc=0 i
	[[ -n $SERVER_PID ]] || return 0
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		log "$kind ($scen) did not exit within 10 s of SIGTERM: killed"
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		rc=137
	fi
	wait "$SERVER_PID" 2>/dev/null || rc=$?
	if ((rc != 0)); then
		log "$kind ($scen) exited with status $rc after the run; log: $SERVER_LOG"
		tail -30 "$SERVER_LOG" >&2 || true
		FAILURES=$((FAILURES + 1))
		printf '{"tool":"compare","label":"%s","mode":"exit","scenario":"%s","status":%d}\n' "$kind" "$scen" "$rc" >>"$RESULTS"
	fi
	SERVER_PID=""
}
SPINNERS=()
trap '[[ -n $SERVER_PID ]] && kill -KILL $SERVER_PID 2>/dev/null; [[ -n $MOCK_PID ]] && kill -KILL $MOCK_PID 2>/dev/null; ((${#SPINNERS[@]})) && kill ${SPINNERS[@]} 2>/dev/null; true' EXIT

run_loadgen() { # kind scenario loadgen-args...
	local kind=$1 scen=$2
	shift 2
	local json="$OUT/$kind-$scen.json" rc=0 pin=("${PIN_LOADGEN[@]}")
	[[ $kind == gateway-w[12] ]] && pin=() # the workers runs: everything shares every core
	"${pin[@]}" "$LOADGEN" "$@" "${LOADGEN_EXTRA[@]}" --port "$SERVER_PORT" --label "$kind" \
		--rss-pid "$SERVER_PID" \
		>"$json" 2>"$OUT/$kind-$scen.loadgen.log" || rc=$?
	sed 's/^/   /' "$OUT/$kind-$scen.loadgen.log" >&2
	if [[ -s $json ]]; then
		cat "$json" >>"$RESULTS"
	else
		printf '{"tool":"compare","label":"%s","mode":"%s","ok":false,"error":"loadgen exit %d, no output"}\n' \
			"$kind" "$scen" "$rc" >>"$RESULTS"
	fi
	((rc == 0)) || FAILURES=$((FAILURES + 1))
}

busy_pct() { # how busy all CPUs are over one second, in %
	python3 - <<'PY'
import time
def rd():
    v = list(map(int, open("/proc/stat").readline().split()[1:9]))
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], sum(v)
b0, t0 = rd(); time.sleep(1); b1, t1 = rd()
print(int(round(100 * (b1 - b0) / max(1, t1 - t0))))
PY
}

wait_quiet() {
	((QUIET_WAIT > 0)) || return 0
	((${#SPINNERS[@]} == 0)) || return 0 # our own spinners keep the machine busy on purpose
	local waited=0 b
	for (( ; ; )); do
		b=$(busy_pct)
		((b <= QUIET_PCT)) && break
		if ((waited >= QUIET_WAIT)); then
			log "machine still ${b}% busy after ${waited} s: running anyway (see 'everything else' in the table)"
			break
		fi
		((waited == 0)) && log "machine ${b}% busy with other work: waiting up to ${QUIET_WAIT} s for it to calm down"
		sleep 4
		waited=$((waited + 5))
	done
}

writes_record() { # kind scenario: frames per write() of a fan-out run, from the server itself
	local kind=$1 scen=$2
	[[ $scen == fanout-* ]] || return 0
	python3 - "$kind" "$scen" "$SERVER_PORT" "$SERVER_LOG" >>"$RESULTS" <<'PY' || true
import json, re, sys, urllib.request
kind, scen, port, log = sys.argv[1:5]
frames = writes = None
if kind == "gateway":  # while it runs: its own counters
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = dict(re.findall(r"^(sio_packets_out_total|sio_websocket_writes_total) (\d+)$", text, re.M))
    frames, writes = m.get("sio_packets_out_total"), m.get("sio_websocket_writes_total")
elif kind == "ceiling":  # after it stopped: its summary line
    m = re.search(r"(\d+) frames .* in (\d+) write\(\) calls", open(log).read())
    frames, writes = m.groups() if m else (None, None)
if frames and writes and int(writes) > 0:
    print(json.dumps({"tool": "compare", "label": kind, "mode": "writes", "scenario": scen,
                      "frames": int(frames), "writes": int(writes)}))
PY
}

scenario() { # kind scenario loadgen-args...
	local kind=$1 scen=$2
	wait_quiet
	log "$kind: $scen"
	start_server "$kind" "$scen" || { FAILURES=$((FAILURES + 1)); return 0; }
	run_loadgen "$@"
	[[ $kind == gateway ]] && writes_record "$kind" "$scen"
	stop_server "$kind" "$scen"
	mock_stop
	[[ $kind == ceiling ]] && writes_record "$kind" "$scen"
	((SMOKE)) || sleep 1 # a quiet second between runs
}

TARGETS=(gateway)
((NODE)) && TARGETS+=(node)
spinners_start() { # a nice-19 busy loop on each pinned core: the vCPUs never go idle
	local cpu
	for cpu in "$SERVER_CPU" "$LOADGEN_CPU"; do
		taskset -c "$cpu" nice -n 19 sh -c 'while :; do :; done' &
		SPINNERS+=($!)
	done
}
spinners_stop() {
	((${#SPINNERS[@]})) && kill -KILL "${SPINNERS[@]}" 2>/dev/null
	wait "${SPINNERS[@]}" 2>/dev/null || true
	SPINNERS=()
}

fanout_runs() { # kind
	local i
	for ((i = 1; i <= FANOUT_RUNS; i++)); do
		scenario "$1" "fanout-$i" fanout --clients "$FANOUT_CLIENTS" --events "$FANOUT_EVENTS" --size "$EVENT_SIZE" \
			--window "$FANOUT_WINDOW" --posters "$FANOUT_POSTERS"
	done
}
ROOMS_CEILING=$CEILING # the rooms floor runs with --rooms-only too
((ROOMS_ONLY || WORKERS_ONLY)) && TARGETS=() CEILING=0
((WORKERS_ONLY)) && ROOMS=0 ROOMS_CEILING=0
for kind in "${TARGETS[@]}"; do
	fanout_runs "$kind"
	backend=none
	[[ $kind == gateway ]] && backend=sse
	scenario "$kind" ack ack --clients "$ACK_CLIENTS" --duration "$ACK_SECONDS" --backend "$backend" \
		--posters "$ACK_POSTERS"
	scenario "$kind" ack-paced ack --clients "$ACK_CLIENTS" --duration "$ACK_SECONDS" --backend "$backend" \
		--posters "$ACK_POSTERS" --interval "$ACK_INTERVAL_MS"
	if ((TUNED_RUNS)); then
		scenario "$kind" ack-paced-polling ack --clients "$ACK_CLIENTS" --duration "$ACK_SECONDS" \
			--backend "$backend" --posters "$ACK_POSTERS" --interval "$ACK_INTERVAL_MS" --busy-poll --tag polling
		if [[ $kind == gateway ]]; then
			MEMORY_DELIVERY=inline BUSY_POLL_US=2000 scenario "$kind" ack-paced-tuned ack \
				--clients "$ACK_CLIENTS" --duration "$ACK_SECONDS" --backend "$backend" \
				--posters "$ACK_POSTERS" --interval "$ACK_INTERVAL_MS" --busy-poll --tag tuned
		fi
	fi
	if ((AWAKE_RUNS)); then
		spinners_start
		scenario "$kind" ack-paced-awake ack --clients "$ACK_CLIENTS" --duration "$ACK_SECONDS" \
			--backend "$backend" --posters "$ACK_POSTERS" --interval "$ACK_INTERVAL_MS" --tag awake
		if [[ $kind == gateway ]]; then # and the memory plugin's inline delivery (no thread hop)
			MEMORY_DELIVERY=inline scenario "$kind" ack-paced-awake-inline ack --clients "$ACK_CLIENTS" \
				--duration "$ACK_SECONDS" --backend "$backend" --posters "$ACK_POSTERS" \
				--interval "$ACK_INTERVAL_MS" --tag awake-inline
		fi
		spinners_stop
	fi
	scenario "$kind" idle connect --clients "$MAX_STEP" --rss-at "$STEPS" --settle "$SETTLE_S" \
		--concurrency "$CONNECT_CONCURRENCY" --connect-timeout 120
	if [[ $kind == gateway ]] && ((!SMOKE && HOLD_MAX)); then
		# as many idle websockets as one process may open here (the loadgen has the same
		# limit); several source addresses, so earlier runs' TIME_WAIT ports do not matter
		scenario "$kind" maxconn connect --clients "$((FD_HARD - 200))" --rss-at "$((FD_HARD - 200))" \
			--settle "$SETTLE_S" --concurrency "$CONNECT_CONCURRENCY" --connect-timeout 120 --src-addrs 4 \
			--tag maxconn
	fi
done
if ((CEILING)); then
	fanout_runs ceiling
	scenario ceiling idle connect --clients "$MAX_STEP" --rss-at "$STEPS" --settle "$SETTLE_S" \
		--concurrency "$CONNECT_CONCURRENCY" --connect-timeout 120
fi

# rooms: many small rooms, many backend emits (loadgen rooms; the table's last section)
if ((ROOMS)); then
	rc_clients=$ROOMS_CLIENTS
	if ((rc_clients > FD_MAX)); then
		log "rooms: $rc_clients clients exceed the fd limit here; using $FD_MAX"
		rc_clients=$FD_MAX
	fi
	ROOMS_ARGS=(rooms --clients "$rc_clients" --room-size "$ROOMS_SIZE" --events "$ROOMS_EVENTS"
		--rate "$ROOMS_RATE" --paced-events "$ROOMS_PACED_EVENTS" --window "$ROOMS_WINDOW"
		--size "$ROOMS_EVENT_SIZE" --concurrency "$CONNECT_CONCURRENCY" --connect-timeout 120)
	HTTP_ARGS=(--batch "$ROOMS_BATCH" --posters "$ROOMS_POSTERS")
	scenario gateway rooms-http "${ROOMS_ARGS[@]}" --via http "${HTTP_ARGS[@]}" --tag http-batch
	scenario gateway rooms-http-single "${ROOMS_ARGS[@]}" --via http --batch 1 --posters "$ROOMS_POSTERS" \
		--tag http-single
	if ((NNG)); then
		scenario gateway-nng rooms-nng "${ROOMS_ARGS[@]}" --via nng --tag nng
	fi
	if ((KAFKA)); then
		scenario gateway-kafka rooms-kafka "${ROOMS_ARGS[@]}" --via kafka --tag kafka
	fi
	if ((NODE)); then
		scenario node rooms-node "${ROOMS_ARGS[@]}" --via node "${HTTP_ARGS[@]}" --tag node-batch
	fi
	if ((NNG)) && [[ -x $NNG_HOP ]]; then
		scenario nng-hop rooms-hop "${ROOMS_ARGS[@]}" --via nng --hop --tag hop
	fi
	if ((ROOMS_CEILING)); then # the floor: a bare epoll server that keeps the rooms itself
		scenario ceiling rooms-ceiling "${ROOMS_ARGS[@]}" --via http "${HTTP_ARGS[@]}" --tag ceiling
	fi
fi

# engine.workers 1 vs 2: the same fan-out and rooms-over-HTTP runs with nothing pinned, so the
# server may use both cores and the loadgen competes with it for them
if ((WORKERS)); then
	for kind in gateway-w1 gateway-w2; do
		scenario "$kind" fanout fanout --clients "$FANOUT_CLIENTS" --events "$FANOUT_EVENTS" --size "$EVENT_SIZE" \
			--window "$FANOUT_WINDOW" --posters "$FANOUT_POSTERS"
		w_clients=$ROOMS_CLIENTS
		((w_clients > FD_MAX)) && w_clients=$FD_MAX
		scenario "$kind" rooms rooms --clients "$w_clients" --room-size "$ROOMS_SIZE" --events "$ROOMS_EVENTS" \
			--rate "$ROOMS_RATE" --paced-events "$ROOMS_PACED_EVENTS" --window "$ROOMS_WINDOW" \
			--size "$ROOMS_EVENT_SIZE" --concurrency "$CONNECT_CONCURRENCY" --connect-timeout 120 \
			--via http --batch "$ROOMS_BATCH" --posters "$ROOMS_POSTERS" --tag "${kind#gateway-}"
	done
fi

export SKIPPED FD_HARD
python3 "$HERE/report.py" "$OUT/machine.json" "$RESULTS" ${SMOKE:+--smoke=$SMOKE} | tee "$OUT/table.md"
rc=${PIPESTATUS[0]}
log "results: $OUT"
if ((FAILURES)); then
	log "$FAILURES run(s) failed (see above)"
	rc=1
fi
if ((SMOKE)) && ((rc == 0)); then
	rm -rf "$OUT"
fi
exit "$rc"
