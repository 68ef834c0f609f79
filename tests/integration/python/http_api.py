"""Python requests (not written by this project) against the HTTP API: 20 publishes on
one keep-alive session, and an SSE stream read with iter_lines().

    http_api.py URL TOPIC

Prints one JSON line: {"statuses": [...], "lines": [...]} (the SSE lines of the first
message, read while the stream stays open).
"""
import json
import sys
import threading

import requests

URL, TOPIC = sys.argv[1], sys.argv[2]
lines = []
ready = threading.Event()
done = threading.Event()


def reader():
    with requests.get(f"{URL}/api/subscribe", params={"topic": TOPIC}, stream=True, timeout=10) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith(":"):
                ready.set()
                continue
            if line:
                lines.append(line)
            elif lines:
                done.set()
                return


t = threading.Thread(target=reader, daemon=True)
t.start()
if not ready.wait(10):
    raise SystemExit("SSE: no greeting")
s = requests.Session()
statuses = [s.post(f"{URL}/api/publish", params={"topic": TOPIC}, json={"i": i}, timeout=10).status_code for i in range(20)]
if not done.wait(10):
    raise SystemExit(f"SSE: no whole message read by iter_lines (got {lines!r})")
print(json.dumps({"statuses": statuses, "lines": lines}), flush=True)
