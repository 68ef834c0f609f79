#!/usr/bin/env node
'use strict';
/*
 * NNG bus figures: one publisher on a real nng PUB socket (tests/helpers/nng_peer, the
 * nngcat-like backend of the integration tests) → the gateway's receive socket →
 * socket.io-client@4 websocket clients.
 *
 *   1. paced: the publisher sends emits at fixed rates (--rates, msg/s, each for
 *      --seconds); reports, per rate, what the publisher achieved, what every client
 *      received, and the plugin's / gateway's drop counters. The highest rate with no
 *      loss is the sustained figure.
 *   2. overload: --flood emits as fast as nng takes them (PUB never blocks: it drops a
 *      slow peer's oldest beyond its send buffer); reports where the losses were:
 *      before the gateway (publisher's nng queue: invisible to the gateway), in the
 *      plugin (sio_nng_dropped_*), in the gateway (sio_inbound_dropped_total), and
 *      what the clients got.
 *
 *   node bench/nng_bench.js [--clients 2] [--rates 10000,20000,40000,80000]
 *                           [--seconds 3] [--flood 200000] [--transport ipc|tcp]
 *                           [--queue 65536] [--inbound 65536]
 *
 * Uses the test helpers (tests/integration/helpers, npm ci there first) and the build in
 * build/ (SIOGW_BIN=... for another binary). Not a test: no assertion, only numbers;
 * bounded in time and count; ipc in a temp dir or tcp on 127.0.0.1 only.
 */
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
process.env.SIOGW_BIN = process.env.SIOGW_BIN || path.join(ROOT, 'build', 'gateway', 'sio-gateway');
const h = require(path.join(ROOT, 'tests', 'integration', 'helpers', 'gateway'));
const NG = require(path.join(ROOT, 'tests', 'integration', 'helpers', 'nng'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const CLIENTS = Number(arg('clients', 2));
const RATES = String(arg('rates', '10000,20000,40000,80000')).split(',').map(Number);
const SECONDS = Number(arg('seconds', 3));
const FLOOD = Number(arg('flood', 200000));
const TRANSPORT = arg('transport', 'ipc');
const QUEUE = Number(arg('queue', 65536)); // the plugin's receive queue
const INBOUND = Number(arg('inbound', 65536)); // the gateway's adapter.inbound_queue

const now = () => performance.now();

async function counters(gw) {
  const t = await gw.metricsText();
  const v = (n) => h.metricValue(t, n) || 0;
  return {
    received: v('sio_nng_received_total'),
    delivered: v('sio_nng_delivered_total'),
    dropped_queue: v('sio_nng_dropped_queue_full_total'),
    dropped_refused: v('sio_nng_dropped_refused_total'),
    inbound_dropped: v('sio_inbound_dropped_total'),
  };
}

function diff(a, b) {
  return Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
}

async function main() {
  if (!NG.available()) throw new Error('no NNG plugin / nng_peer in the build');
  const dir = NG.tempDir();
  const recvUrl = TRANSPORT === 'tcp' ? `tcp://127.0.0.1:${await h.freePort()}` : NG.url(dir, 'gw-sub');
  const gw = await h.startGateway({
    node_id: 'gw-bench',
    adapter: {
      ...NG.adapter({ receive_listen: [recvUrl], loopback: true, recv_buffer: 8192, queue: QUEUE }),
      inbound_queue: INBOUND,
    },
    engine: { send_queue: 1000000, workers: 1 }, // one loop, as the figures in nng.md
    namespaces: [{ name: '/' }],
    log: { level: 'warn' },
  });
  const pub = await NG.Peer.start({ pubDial: [recvUrl] });
  const clients = [];
  const got = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const c = await gw.connect('/', { transports: ['websocket'] });
      const k = i;
      got.push(0);
      c.on('m', () => got[k]++);
      c.on('warm', () => {});
      clients.push(c);
    }
    await pub.waitPipes({ pub: 1 });
    // warm up: until a probe emit reaches a client (the connection is up on both sides)
    let warm = false;
    clients[0].on('warm', () => {
      warm = true;
    });
    await h.waitFor(
      () => {
        pub.publish('sio.out', { type: 'emit', event: 'warm', data: [] });
        return warm;
      },
      10000,
      { interval: 50, message: 'warm-up' },
    );
    const env = JSON.stringify({ type: 'emit', event: 'm', data: [{ text: 'x'.repeat(48) }] }); // ≈100 B frame
    console.log(
      `nng bench: ${TRANSPORT}, 1 publisher (nng_peer PUB, send buffer 8192) -> gateway (recv_buffer 8192, queue ${QUEUE}, ` +
        `inbound_queue ${INBOUND}) -> ` +
        `${CLIENTS} websocket clients; frames of ${'sio.out '.length + env.length} B`,
    );

    const settle = async (want) => {
      // wait until the clients stop receiving (or have everything)
      let last = -1;
      for (;;) {
        const total = got.reduce((a, b) => a + b, 0);
        if (total >= want || total === last) return;
        last = total;
        await h.sleep(300);
      }
    };

    // ---- 1. paced
    for (const rate of RATES) {
      const n = rate * SECONDS;
      got.fill(0);
      const before = await counters(gw);
      const t0 = now();
      const r = await pub.flood(n, rate, 'sio.out', env, 120000);
      await settle(n * CLIENTS);
      const t1 = now();
      const c = diff(before, await counters(gw));
      const minGot = Math.min(...got);
      console.log(
        `paced ${rate} msg/s x ${SECONDS} s: publisher sent ${n} in ${r.ms} ms (${Math.round(n / (r.ms / 1000))}/s); ` +
          `gateway took ${c.received} from the wire, plugin dropped ${c.dropped_queue + c.dropped_refused}, ` +
          `gateway queue dropped ${c.inbound_dropped}; every client got >= ${minGot} (${((100 * minGot) / n).toFixed(2)} %), ` +
          `${Math.round((got.reduce((a, b) => a + b, 0) / ((t1 - t0) / 1000)))} client deliveries/s`,
      );
    }

    // ---- 2. overload
    got.fill(0);
    const before = await counters(gw);
    const t0 = now();
    const r = await pub.flood(FLOOD, 0, 'sio.out', env, 120000);
    await settle(FLOOD * CLIENTS);
    const t1 = now();
    const c = diff(before, await counters(gw));
    const minGot = Math.min(...got);
    console.log(
      `overload: ${FLOOD} as fast as nng takes them: publisher done in ${r.ms} ms (${Math.round(FLOOD / (r.ms / 1000))}/s offered); ` +
        `lost before the gateway (publisher's nng queue, not countable by the gateway) ${FLOOD - c.received}; ` +
        `gateway took ${c.received} (${Math.round(c.received / ((t1 - t0) / 1000))}/s over ${Math.round(t1 - t0)} ms); ` +
        `sio_nng_dropped_queue_full_total +${c.dropped_queue}, sio_nng_dropped_refused_total +${c.dropped_refused}, ` +
        `sio_inbound_dropped_total +${c.inbound_dropped}; clients got ${got.join(', ')}`,
    );
  } finally {
    for (const c of clients) c.close();
    await pub.stop();
    await gw.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  },
);
