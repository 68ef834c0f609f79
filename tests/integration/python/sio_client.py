"""python-socketio (Debian's python3-socketio, not written by this project) against the
gateway: connect, an event acked by a backend, then a server emit to this socket.

    sio_client.py URL sync|async polling|websocket|upgrade [msgpack]

msgpack: python-socketio's MessagePack serializer (a gateway with engine.parser: msgpack).

Prints one JSON line: {"ok": true, "transport": ..., "ack": [...], "news": [...]}.
"""
import asyncio
import json
import sys

import socketio

URL, MODE, TRANSPORT = sys.argv[1], sys.argv[2], sys.argv[3]
SERIALIZER = sys.argv[4] if len(sys.argv) > 4 else "default"
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}[TRANSPORT]
TIMEOUT = 10


def run_sync():
    sio = socketio.Client(reconnection=False, serializer=SERIALIZER)
    news = []
    got = __import__("threading").Event()

    @sio.on("news")
    def on_news(*args):
        news.append(list(args))
        got.set()

    sio.connect(URL, transports=TRANSPORTS, wait_timeout=TIMEOUT)
    ack = sio.call("echo", {"n": 1, "s": "é"}, timeout=TIMEOUT)
    sio.emit("ready", {"mode": MODE})
    if not got.wait(TIMEOUT):
        raise SystemExit("no news event")
    transport = sio.transport()
    sio.disconnect()
    return {"ok": True, "transport": transport, "ack": ack if isinstance(ack, list) else [ack], "news": news[0]}


async def run_async():
    sio = socketio.AsyncClient(reconnection=False, serializer=SERIALIZER)
    got = asyncio.Event()
    news = []

    @sio.on("news")
    async def on_news(*args):
        news.append(list(args))
        got.set()

    await sio.connect(URL, transports=TRANSPORTS, wait_timeout=TIMEOUT)
    ack = await sio.call("echo", {"n": 1, "s": "é"}, timeout=TIMEOUT)
    await sio.emit("ready", {"mode": MODE})
    await asyncio.wait_for(got.wait(), TIMEOUT)
    transport = sio.transport()
    await sio.disconnect()
    return {"ok": True, "transport": transport, "ack": ack if isinstance(ack, list) else [ack], "news": news[0]}


result = run_sync() if MODE == "sync" else asyncio.run(run_async())
print(json.dumps(result), flush=True)
