#!/usr/bin/env python3
"""bench/report.py — the table of bench/compare.sh (and the smoke run's checks).

    report.py MACHINE.json RESULTS.jsonl [--smoke=0|1]

RESULTS.jsonl holds one loadgen JSON line per run (label = gateway | node | ceiling,
mode = fanout | ack | connect; mode = rooms also with label gateway-nng | nng-hop, the
variant in its tag) and compare.sh's own lines (mode = exit: a server that did
not exit 0 after SIGTERM). Prints a Markdown table; with --smoke=1 it also checks that
every run completed with sane numbers (all clients connected, every event delivered, acks
answered) and exits 1 when one did not. No timing is ever checked.
"""
import json
BUSY_WARN = 40  # % of one core used by other work during a run: the run's numbers are suspect
import os
import sys


def load(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"tool": "compare", "ok": False, "error": "unparsable line: " + line[:80]})
    return out


def fmt_num(v, unit=""):
    if v is None:
        return "—"
    if abs(v) >= 1e6:
        s = f"{v / 1e6:.2f} M"
    elif abs(v) >= 1e4:
        s = f"{v / 1e3:.1f} k"
    elif abs(v) >= 100:
        s = f"{v:.0f}"
    else:
        s = f"{v:.2f}"
    return f"{s}{unit}" if unit else s


def fmt_us(v):
    if v is None:
        return "—"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def fmt_bytes(v):
    if v is None:
        return "—"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(v) >= div:
            return f"{v / div:.1f} {unit}"
    return f"{v:.0f} B"


def main():
    machine = json.load(open(sys.argv[1]))
    results = load(sys.argv[2])
    smoke = any(a == "--smoke=1" for a in sys.argv[3:])
    runs = {}  # (label, mode) -> every run; mode "ack_paced" for an ack run with --interval
    for r in results:
        if r.get("tool") == "loadgen":
            mode = r.get("mode")
            if mode == "ack" and (r.get("interval_ms") or 0) > 0:
                mode = {"awake": "ack_paced_awake", "awake-inline": "ack_paced_awake_inline",
                        "polling": "ack_paced_polling", "tuned": "ack_paced_tuned"}.get(r.get("tag"), "ack_paced")
            if mode == "connect" and r.get("tag") == "maxconn":
                mode = "connect_max"
            runs.setdefault((r.get("label"), mode), []).append(r)
        elif r.get("tool") == "compare" and r.get("mode") == "writes":
            runs.setdefault((r.get("label"), "writes"), []).append(r)

    def median_run(rs):
        # fan-out runs vary a lot on a shared VM: show the median run (by deliveries/s)
        ok = sorted((r for r in rs if r.get("deliveries_per_s") is not None), key=lambda r: r["deliveries_per_s"])
        return ok[(len(ok) - 1) // 2] if ok else rs[-1]
    by = {k: median_run(v) if k[1] == "fanout" else v[-1] for k, v in runs.items()}

    def get(label, mode, key):
        r = by.get((label, mode))
        if not r or key not in r:
            return None
        return r[key]

    def idle(label):
        r = by.get((label, "connect"))
        if not r or not r.get("rss_kb"):
            return None
        pts = sorted((p["clients"], p["kb"] * 1024) for p in r["rss_kb"] if p["kb"] >= 0)
        if not pts:
            return None
        base = pts[0][1] if pts[0][0] == 0 else None
        top_n, top = pts[-1]
        bpc = (top - base) / top_n if base is not None and top_n > 0 else None
        return {"pts": dict(pts), "base": base, "bpc": bpc, "n": top_n,
                "proj": base + 1e6 * bpc if bpc is not None else None}

    labels = ["gateway", "node", "ceiling"]
    have = {l: any(k[0] == l for k in by) for l in labels}
    idl = {l: idle(l) for l in labels}
    s = machine["sizes"]
    steps = sorted({n for l in labels if idl[l] for n in idl[l]["pts"]})

    # rows: (section, metric, {label: value}, formatter, higher_is_better, target text, target check)
    rows = []
    cpu = lambda v: "—" if v is None else f"{max(v, 0):.0f} %"  # noqa: E731 (tick rounding can go below 0)

    def other(v):
        if v is None:
            return "—"
        return f"{max(v, 0):.0f} %" + (" ⚠" if v > BUSY_WARN else "")
    fan = f"fan-out: {s['fanout_clients']:,} clients × {s['fanout_events']:,} events of ~{s['event_size']} B"
    rows.append((fan, "deliveries/s", {l: get(l, "fanout", "deliveries_per_s") for l in labels}, fmt_num, True,
                 "≥ 10× node, ≥ 60 % of ceiling"))
    if s.get("runs", 1) > 1:
        each = {l: [r.get("deliveries_per_s") for r in runs.get((l, "fanout"), [])] for l in labels}
        rows.append((fan, f"deliveries/s of each run (median above)", {l: each[l] or None for l in labels},
                     lambda v: "—" if not v else " / ".join(fmt_num(x) for x in v if x is not None), None, ""))
    fpw = {l: [r["frames"] / r["writes"] for r in runs.get((l, "writes"), [])] for l in labels}
    if any(fpw.values()):
        rows.append((fan, "frames per write() (each run; gateway: sio_packets_out_total / sio_websocket_writes_total)",
                     {l: fpw[l] or None for l in labels},
                     lambda v: "—" if not v else " / ".join(f"{x:.1f}" for x in v), None, ""))
    rows.append((fan, "latency p50", {l: get(l, "fanout", "lat_p50_us") for l in labels}, fmt_us, False, ""))
    rows.append((fan, "latency p99", {l: get(l, "fanout", "lat_p99_us") for l in labels}, fmt_us, False, ""))
    rows.append((fan, "server CPU (of one core)", {l: get(l, "fanout", "server_cpu_pct") for l in labels}, cpu, None, ""))
    rows.append((fan, "server CPU per delivery", {l: get(l, "fanout", "server_cpu_ns_per_delivery") for l in labels},
                 lambda v: "—" if v is None else f"{v:.0f} ns", False, ""))
    rows.append((fan, "loadgen CPU (of one core)", {l: get(l, "fanout", "loadgen_cpu_pct") for l in labels},
                 cpu, None, ""))
    rows.append((fan, "everything else", {l: get(l, "fanout", "other_cpu_pct") for l in labels}, other, None, ""))
    mem = "idle memory (websocket clients, server RSS)"
    for n in steps:
        rows.append((mem, f"RSS with {n:,} clients", {l: idl[l]["pts"].get(n) if idl[l] else None for l in labels},
                     fmt_bytes, False, ""))
    skipped = [x for x in os.environ.get("SKIPPED", "").split(",") if x]
    for n in skipped:
        rows.append((mem, f"RSS with {int(n):,} clients",
                     {l: None for l in labels}, fmt_bytes, None,
                     f"not possible here: hard fd limit {os.environ.get('FD_HARD', '?')} per process"))
    top = max(steps) if steps else 0
    rows.append((mem, f"bytes per connection (RSS({top:,}) − RSS(0)) / {top:,}",
                 {l: idl[l]["bpc"] if idl[l] else None for l in labels}, fmt_bytes, False, "≤ 4 KiB"))
    rows.append((mem, "projected RSS for 1M connections", {l: idl[l]["proj"] if idl[l] else None for l in labels},
                 fmt_bytes, False, ""))
    mx = by.get(("gateway", "connect_max"))
    if mx and mx.get("rss_kb"):
        g = idl["gateway"]
        n, kb = mx["rss_kb"][-1]["clients"], mx["rss_kb"][-1]["kb"] * 1024
        sec = f"held at the fd limit (gateway only): {mx['clients']:,} idle websocket clients"
        rows.append((sec, "clients connected", {"gateway": mx.get("connected"), "node": None, "ceiling": None},
                     lambda v: "—" if v is None else f"{v:,}", None, "as many as one process may open"))
        rows.append((sec, "server RSS", {"gateway": kb, "node": None, "ceiling": None}, fmt_bytes, None, ""))
        if g and g["base"] is not None and n > 0:
            rows.append((sec, "bytes per connection (RSS − RSS(0)) / clients",
                         {"gateway": (kb - g["base"]) / n, "node": None, "ceiling": None}, fmt_bytes, None, ""))
    con = f"connect: {top:,} clients, {s['connect_concurrency']} handshakes in flight"
    rows.append((con, "connections/s", {l: get(l, "connect", "connect_rate") for l in labels}, fmt_num, True,
                 "≥ 5× node"))
    rows.append((con, "handshake p99", {l: get(l, "connect", "connect_p99_us") for l in labels}, fmt_us, False, ""))
    rows.append((con, "server CPU", {l: get(l, "connect", "connect_server_cpu_pct") for l in labels}, cpu, None, ""))
    rows.append((con, "everything else", {l: get(l, "connect", "connect_other_cpu_pct") for l in labels}, other, None, ""))
    ack = (f"ack round trip, closed loop: {s['ack_clients']} clients, one ack in flight each, the next one "
           f"as soon as the answer is in, {s['ack_seconds']} s")
    rows.append((ack, "requests/s", {l: get(l, "ack", "requests_per_s") for l in labels}, fmt_num, True, ""))
    rows.append((ack, "RTT p50", {l: get(l, "ack", "rtt_p50_us") for l in labels}, fmt_us, False, ""))
    rows.append((ack, "RTT p99", {l: get(l, "ack", "rtt_p99_us") for l in labels}, fmt_us, False,
                 "(= clients / requests/s: Little's law)"))
    rows.append((ack, "server CPU (of one core)", {l: get(l, "ack", "server_cpu_pct") for l in labels}, cpu, None, ""))
    rows.append((ack, "server CPU per request", {l: get(l, "ack", "server_cpu_us_per_request") for l in labels},
                 lambda v: "—" if v is None else f"{v:.0f} µs", False, ""))
    rows.append((ack, "loadgen + backend CPU", {l: get(l, "ack", "loadgen_cpu_pct") for l in labels}, cpu, None, ""))
    rows.append((ack, "everything else", {l: get(l, "ack", "other_cpu_pct") for l in labels}, other, None, ""))
    iv = s.get("ack_interval_ms") or 0
    if iv:
        rate = s["ack_clients"] * 1000.0 / iv
        pac = (f"ack round trip, paced: {s['ack_clients']} clients, each one request every {iv:g} ms "
               f"(≈ {fmt_num(rate)} req/s), one in flight each, {s['ack_seconds']} s")
        halves = lambda v: "—" if not v or v[0] is None else f"{fmt_us(v[0])} / {fmt_us(v[1])}"  # noqa: E731

        def paced_rows(sec, mode, extra=True, target=""):
            """The rows of one paced ack run (mode as keyed in runs)."""
            if not any(get(l, mode, "rtt_p99_us") is not None for l in labels):
                return
            if extra:
                rows.append((sec, "requests/s", {l: get(l, mode, "requests_per_s") for l in labels}, fmt_num, None, ""))
            rows.append((sec, "RTT p50", {l: get(l, mode, "rtt_p50_us") for l in labels}, fmt_us, False, ""))
            rows.append((sec, "RTT p99", {l: get(l, mode, "rtt_p99_us") for l in labels}, fmt_us, False, target))
            if extra:
                rows.append((sec, "RTT max", {l: get(l, mode, "rtt_max_us") for l in labels}, fmt_us, False, ""))
                rows.append((sec, "first half p50 / p99 (client → gateway → backend reads the event)",
                             {l: (get(l, mode, "in_p50_us"), get(l, mode, "in_p99_us")) for l in labels}, halves,
                             None, ""))
                rows.append((sec, "server CPU (of one core)", {l: get(l, mode, "server_cpu_pct") for l in labels},
                             cpu, None, ""))
                rows.append((sec, "everything else", {l: get(l, mode, "other_cpu_pct") for l in labels}, other,
                             None, ""))

        polled = any(get(l, "ack_paced_polling", "rtt_p99_us") is not None for l in labels)
        paced_rows(pac.replace("ack round trip, paced", "ack round trip, paced, the loadgen sleeping between "
                               "requests (its own vCPU wake-ups included)"), "ack_paced",
                   target="" if polled else "≤ 1 ms (gateway)")
        paced_rows(pac.replace("ack round trip, paced", "ack round trip, paced, the loadgen polling instead of "
                               "sleeping (servers at their defaults)"), "ack_paced_polling",
                   target="≤ 1 ms (gateway)")
        paced_rows(pac.replace("ack round trip, paced", "the same, gateway latency-tuned (memory `delivery: inline`, "
                               "`engine.busy_poll_us: 2000`; one core spent while traffic lasts)"),
                   "ack_paced_tuned", target="")
        awk = pac.replace("ack round trip, paced", "ack round trip, paced, both cores kept out of idle "
                          "(a nice-19 spinner each: no vCPU wake-up latency)")
        paced_rows(awk, "ack_paced_awake")
        paced_rows(awk.replace("ack round trip, paced, both cores", "the same with the memory plugin's "
                               "`delivery: inline` (gateway only), both cores"), "ack_paced_awake_inline", extra=False)

    all_rooms = [r for r in results if r.get("tool") == "loadgen" and r.get("mode") == "rooms"]
    rooms = [r for r in all_rooms if r.get("label") not in WORKER_LABELS]

    def ratio(a, b, higher):
        if a is None or b is None or higher is None or a <= 0 or b <= 0:
            return "—"
        r = a / b if higher else b / a
        return f"{r:.2f}×"

    def pct(a, b, higher):
        if a is None or b is None or higher is not True or b <= 0:
            return "—"
        return f"{100 * a / b:.0f} %"

    print()
    title = "sio-gateway vs Node.js socket.io" + (f" {machine['socketio']}" if machine.get("socketio") else "")
    print(f"### {title} — {machine['date']}" + (" (SMOKE: tiny sizes, numbers mean nothing)" if smoke else ""))
    print()
    print(f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['ram_gib']} GiB RAM, "
          f"Linux {machine['kernel']}; {machine['pinning']}")
    loads = [r.get("load1_before") for r in results if r.get("load1_before") is not None]
    loads += [r.get("load1_after") for r in results if r.get("load1_after") is not None]
    print(f"- load average (1 min) before the runs {machine['load_before'][0]}, "
          f"during the runs {min(loads) if loads else '?'}–{max(loads) if loads else '?'} "
          "(the pinned server and loadgen themselves add up to 2)")
    print(f"- sio-gateway {machine.get('rev', '?')} ({machine['gateway']}); node {machine['node'] or '(not run)'}")
    print(f"- fan-out publisher: bench/loadgen POSTs each event as an emit envelope to "
          f"`/api/publish?topic=sio.out` over {s.get('posters', 1)} keep-alive connection(s), at most "
          f"{s['window']} events in flight (published, not yet delivered to every client); "
          f"{s.get('runs', 1)} run(s) per server, the median shown. "
          "sio-gateway: HTTP API → memory bus plugin (delivery: " + s.get("memory_delivery", "thread") + ") → sio.out → fan-out; node: the same "
          "POST, `io.emit()` in-process; ceiling: the same POST, the frames of one epoll turn written to every "
          "client with one write().")
    print("- ack: the client emits `echo` with an ack. sio-gateway: sio.in on the memory bus → SSE "
          "`/api/subscribe?topic=sio.in` → bench/loadgen as the backend (same process and core as the clients; "
          f"answers over {s.get('ack_posters', 1)} keep-alive connection(s)) → POST to `sio.reply.gw-bench` → "
          "ack; node: answered in-process by the ack callback (no backend, no bus).")
    print()
    hdr = ["scenario", "metric", "sio-gateway", "node socket.io", "gateway vs node", "ceiling (bare epoll)",
           "gateway / ceiling", "target (issue 6)"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    last = None
    for sec, metric, vals, f, higher, target in rows:
        if not any(v is not None for v in vals.values()) and not target.startswith("not possible"):
            continue
        cells = [sec if sec != last else "", metric,
                 f(vals["gateway"]) if have["gateway"] else "—",
                 f(vals["node"]) if have["node"] else "not run",
                 ratio(vals["gateway"], vals["node"], higher),
                 f(vals["ceiling"]) if have["ceiling"] else "not run",
                 pct(vals["gateway"], vals["ceiling"], higher), target]
        if target.startswith("not possible"):
            cells[2:8] = ["—", "—", "—", "—", "—", target]
        last = sec
        print("| " + " | ".join(cells) + " |")
    print()
    print("\"gateway vs node\": how many times better the gateway is (rates: gateway/node; latencies, "
          "memory, CPU: node/gateway); below 1× the gateway is worse. CPU rows are % of one core during the "
          "measured phase; \"everything else\": CPU used by neither server nor loadgen: other processes, and "
          f"softirq work (loopback TCP) the kernel charged to no process; ⚠ above {BUSY_WARN} %: perhaps "
          "not a quiet machine, compare with a rerun. The ceiling coalesces like the gateway (one write() per "
          "client per turn; `bench/ceiling --per-frame` writes each frame on its own).")

    if rooms:
        print_rooms(rooms, s)
    wk = {l: {"fanout": by.get((l, "fanout")),
              "rooms": next((r for r in all_rooms if r.get("label") == l), None)} for l in WORKER_LABELS}
    if any(v["fanout"] or v["rooms"] for v in wk.values()):
        print_workers(wk, machine)

    problems = []
    for r in results:
        label = r.get("label", "?")
        if r.get("mode") == "exit":
            problems.append(f"{label} ({r.get('scenario')}): exited with status {r.get('status')} after SIGTERM")
        elif r.get("ok") is False:
            problems.append(f"{label} {r.get('mode')}: {r.get('error')}")
        for reason in r.get("reasons", []) or []:
            problems.append(f"{label} {r.get('mode')}: {reason['count']} × {reason['reason']}")
        if r.get("mode") == "fanout" and r.get("out_of_order"):
            problems.append(f"{label} fanout: {r['out_of_order']} events arrived out of order")
    if smoke:
        for label in ["gateway"] + (["ceiling"] if have["ceiling"] else []):
            f = by.get((label, "fanout"))
            if not f:
                problems.append(f"{label}: no fanout result")
                continue
            if f["connected"] != f["clients"] or f["clients"] <= 0:
                problems.append(f"{label} fanout: {f['connected']} of {f['clients']} clients connected")
            if f["deliveries"] <= 0 or f["deliveries"] != f["expected"]:
                problems.append(f"{label} fanout: {f['deliveries']} of {f['expected']} deliveries")
        a = by.get(("gateway", "ack"))
        if not a or a["acks"] <= 0 or a["connected"] != a["clients"]:
            problems.append("gateway ack: no acks or not every client connected")
        c = by.get(("gateway", "connect"))
        if not c or c["connected"] != c["clients"] or not c.get("rss_kb"):
            problems.append("gateway connect: not every client connected or no RSS reading")
        problems += rooms_problems(all_rooms, ("http-batch", "http-single"))
        for l in WORKER_LABELS:
            f = by.get((l, "fanout"))
            if s.get("workers_runs") and (not f or f["deliveries"] <= 0 or f["deliveries"] != f["expected"]):
                problems.append(f"{l} fanout: {f and f['deliveries']} of {f and f['expected']} deliveries")
    if problems:
        print()
        print("Problems:")
        for p in dict.fromkeys(problems):
            print(f"- {p}")
    return 1 if smoke and problems else 0


ROOMS_NAMES = {  # (label, tag) -> the row's name
    ("gateway", "http-batch"): "sio-gateway: HTTP, NDJSON batches → memory bus",
    ("gateway", "http-single"): "sio-gateway: HTTP, one envelope per POST → memory bus",
    ("gateway-nng", "nng"): "sio-gateway: nng PUB → nng plugin",
    ("gateway-kafka", "kafka"): "sio-gateway: Kafka producer → mock cluster → kafka plugin",
    ("node", "node-batch"): "node socket.io: HTTP, NDJSON batches, in-process `io.to(room).emit`",
    ("nng-hop", "hop"): "bare nng hop (bench/nng_hop: a SUB that counts; no clients, open loop)",
    ("ceiling", "ceiling"): "ceiling: bare epoll server keeping the rooms itself, HTTP NDJSON batches",
}


def rooms_name(r):
    name = ROOMS_NAMES.get((r.get("label"), r.get("tag")), f"{r.get('label')} {r.get('tag') or ''}")
    if r.get("via") not in ("nng", "kafka"):
        name += f" ({r.get('batch')}/request, {r.get('posters')} conn.)"
    return name


def print_rooms(rooms, s):
    """The rooms scenario: one row per server and publisher."""
    r0 = rooms[0]
    print()
    print(f"#### rooms: {r0.get('clients_requested', 0):,} clients in rooms of {r0.get('room_size')} "
          f"({r0.get('rooms', 0):,} rooms), emits to uniformly random rooms, ~{r0.get('size')} B per client packet")
    print()
    print(f"- max rate: {s.get('rooms_events', '?'):,} emits as fast as the publisher may, at most "
          f"{s.get('rooms_window', '?')} emits in flight (the nng hop: open loop, nothing to wait for); "
          f"paced: {s.get('rooms_paced_events', '?'):,} emits at {fmt_num(s.get('rooms_rate'))}/s. "
          "An emit counts as delivered when every member of its room got it; emits/s = those / "
          "(first publish … last delivery). Latency: publish (the loadgen's clock) → client receipt. "
          "Lost = expected deliveries − received (duplicates counted apart). "
          "CPU per emit: the server process (all threads) during the run / emits published.")
    print()
    hdr = ["server / publisher", "max: emits/s", "max: deliveries/s", "max: lost", "max: server CPU per emit",
           "paced: emits/s", "paced: p50", "paced: p99", "paced: lost", "paced: server CPU", "paced: CPU per emit"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    us_emit = lambda v: "—" if v is None else f"{v:.1f} µs"  # noqa: E731
    cpu = lambda v: "—" if v is None else f"{max(v, 0):.0f} %"  # noqa: E731

    def lost(r, p):
        v, e = r.get(p + "_lost"), r.get(p + "_expected")
        if v is None:
            return "—"
        text = f"{v:,}" + (f" ({100 * v / e:.1f} %)" if e and v else "")
        d = r.get(p + "_duplicates")
        return text + (f", {d:,} dup" if d else "")
    for r in rooms:
        cells = [rooms_name(r), fmt_num(r.get("max_emits_per_s")), fmt_num(r.get("max_deliveries_per_s")),
                 lost(r, "max"), us_emit(r.get("max_server_cpu_us_per_emit")),
                 fmt_num(r.get("paced_emits_per_s")), fmt_us(r.get("paced_lat_p50_us")),
                 fmt_us(r.get("paced_lat_p99_us")), lost(r, "paced"), cpu(r.get("paced_server_cpu_pct")),
                 us_emit(r.get("paced_server_cpu_us_per_emit"))]
        if r.get("ok") is False:
            cells[0] += f" — FAILED: {r.get('error')}"
        print("| " + " | ".join(cells) + " |")
    print()
    print("The nng hop's max-rate loss is the publisher's PUB queue overflowing (nng drops the oldest, "
          "uncounted by nng): the publisher outruns one nng connection. Node's joins and emits run "
          "in-process (no bus); the gateway's go through its bus.")


WORKER_LABELS = ("gateway-w1", "gateway-w2")


def print_workers(wk, machine):
    """engine.workers 1 vs 2, nothing pinned: the server may take every core, the loadgen too."""
    f1 = wk["gateway-w1"]["fanout"] or {}
    r1 = wk["gateway-w1"]["rooms"] or {}
    print()
    print(f"#### engine.workers: 1 vs 2 service loops ({machine['nproc']} CPUs, neither the server nor the "
          "loadgen pinned)")
    print()
    print(f"- the same fan-out ({f1.get('clients', '?')} clients) and rooms-over-HTTP runs as above (one run each), "
          "but the gateway may use every core and bench/loadgen (clients and publisher, one process) competes "
          "with it for them: on a 2-core machine a second loop mostly takes the loadgen's core. "
          "bench/scale.sh measures loops against load generators on a machine with more cores.")
    print()
    hdr = ["metric", "workers: 1", "workers: 2", "2 vs 1"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    rows = [("fan-out deliveries/s", "fanout", "deliveries_per_s", fmt_num, True),
            ("fan-out latency p50", "fanout", "lat_p50_us", fmt_us, False),
            ("fan-out latency p99", "fanout", "lat_p99_us", fmt_us, False),
            ("fan-out server CPU (% of one core)", "fanout", "server_cpu_pct",
             lambda v: "—" if v is None else f"{max(v, 0):.0f} %", None),
            ("fan-out loadgen CPU (% of one core)", "fanout", "loadgen_cpu_pct",
             lambda v: "—" if v is None else f"{max(v, 0):.0f} %", None),
            (f"rooms of {r1.get('room_size', '?')}, {r1.get('clients_requested', 0):,} clients: max emits/s",
             "rooms", "max_emits_per_s", fmt_num, True),
            ("rooms: paced p50", "rooms", "paced_lat_p50_us", fmt_us, False),
            ("rooms: paced p99", "rooms", "paced_lat_p99_us", fmt_us, False)]
    for name, kind, key, f, higher in rows:
        a = (wk["gateway-w1"][kind] or {}).get(key)
        b = (wk["gateway-w2"][kind] or {}).get(key)
        ratio = "—"
        if a and b and higher is not None and a > 0 and b > 0:
            ratio = f"{(b / a if higher else a / b):.2f}×"
        print(f"| {name} | {f(a) if a is not None else '—'} | {f(b) if b is not None else '—'} | {ratio} |")


def rooms_problems(rooms, required_tags):
    """Smoke checks of the rooms runs: everything connected, joined, delivered once."""
    problems = []
    tags = {r.get("tag") for r in rooms}
    for t in required_tags:
        if t not in tags:
            problems.append(f"rooms {t}: no result")
    for r in rooms:
        who = f"rooms {r.get('label')} {r.get('tag')}"
        if not r.get("hop") and (r.get("connected") != r.get("clients") or not r.get("clients")):
            problems.append(f"{who}: {r.get('connected')} of {r.get('clients')} clients connected")
        if not r.get("hop") and r.get("rooms_synced") != r.get("rooms"):
            problems.append(f"{who}: {r.get('rooms_synced')} of {r.get('rooms')} rooms joined")
        for p in ("max", "paced"):
            if p + "_expected" not in r:
                problems.append(f"{who}: no {p} run")
                continue
            for k in ("lost", "duplicates", "misdelivered", "publish_errors"):
                if r.get(f"{p}_{k}"):
                    problems.append(f"{who} {p}: {r[p + '_' + k]} {k.replace('_', ' ')}")
            if not r.get(p + "_deliveries"):
                problems.append(f"{who} {p}: nothing delivered")
    return problems


if __name__ == "__main__":
    sys.exit(main())
