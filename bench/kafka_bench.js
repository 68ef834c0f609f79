#!/usr/bin/env node
'use strict';
/*
 * Kafka bus figures through librdkafka's mock cluster (one process, loopback):
 *
 *   1. latency: a librdkafka backend produces emits to sio.out (one every --interval ms);
 *      each carries the time it was handed to the backend; C websocket clients on one
 *      gateway record the arrival. Reports p50 / p99 / max over every (emit, client).
 *   2. throughput: C clients emit E events each, as fast as socket.io-client sends them;
 *      the gateway publishes them to sio.in (keyed by socket id). Reports events/s
 *      stored by Kafka (the gateway's delivery reports, sio_kafka_delivered_total) and
 *      the time until the backend has read them all.
 *
 *   node bench/kafka_bench.js [--clients 10] [--emits 2000] [--interval 2]
 *                             [--senders 20] [--events 5000]
 *
 * For rates use bench/kafka_rates.sh (the C loadgen as the clients): here the Node client
 * generator, not the gateway, limits the client-events figure (bench/kafka.md).
 *
 * Uses the test helpers (tests/integration/helpers, npm ci there first) and the build in
 * build/ (SIOGW_BIN=... for another binary, e.g. a release build). Not a test: no
 * assertion, only numbers; bounded in time and count, loopback only.
 */
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
process.env.SIOGW_BIN = process.env.SIOGW_BIN || path.join(ROOT, 'build', 'gateway', 'sio-gateway');
const h = require(path.join(ROOT, 'tests', 'integration', 'helpers', 'gateway'));
const K = require(path.join(ROOT, 'tests', 'integration', 'helpers', 'kafka'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CLIENTS = arg('clients', 10);
const EMITS = arg('emits', 2000);
const INTERVAL = arg('interval', 2);
const SENDERS = arg('senders', 20);
const EVENTS = arg('events', 5000);

const nowMs = () => performance.timeOrigin + performance.now();
function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  if (!K.available()) throw new Error('no Kafka plugin/helpers in the build');
  const mock = await K.MockCluster.start({ topics: ['sio.in:6', 'sio.out:6', 'sio.reply.gw-bench:1'] });
  const be = await K.Backend.start(mock.bootstrap, { topics: ['sio.in'], quiet: true });
  const gw = await h.startGateway({
    node_id: 'gw-bench',
    adapter: K.gatewayAdapter(mock.bootstrap, { linger: '1ms' }, { inbound_queue: 65536 }),
    engine: { send_queue: 100000, workers: 1 }, // one loop, as the figures in kafka.md
    namespaces: [{ name: '/' }],
    log: { level: 'warn' },
  });
  await be.waitAssigned();
  try {
    // ---- 1. backend emit → client latency
    const clients = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await gw.connect('/', { transports: ['websocket'] }));
    const samples = [];
    let warm = 0;
    for (const c of clients) {
      c.on('lat', (t) => samples.push(nowMs() - t));
      c.on('warm', () => warm++);
    }
    // warm up until every client receives (sio.out assigned, connections up)
    await h.waitFor(
      () => {
        be.produce('sio.out', { type: 'emit', event: 'warm', data: [] });
        return warm >= CLIENTS;
      },
      10000,
      { interval: 100, message: 'warm-up' },
    );
    for (let i = 0; i < EMITS; i++) {
      be.produce('sio.out', { type: 'emit', event: 'lat', data: [nowMs()] }, 'bench');
      await h.sleep(INTERVAL);
    }
    await h.waitFor(() => samples.length >= EMITS * CLIENTS, 20000, { interval: 50, message: 'latency samples' });
    samples.sort((a, b) => a - b);
    console.log(
      `latency backend emit -> client (mock cluster, ${CLIENTS} websocket clients, ${EMITS} emits every ${INTERVAL} ms): ` +
        `p50 ${pct(samples, 50).toFixed(2)} ms, p99 ${pct(samples, 99).toFixed(2)} ms, max ${samples[samples.length - 1].toFixed(2)} ms`,
    );
    for (const c of clients) c.close();

    // ---- 2. client events → Kafka
    const senders = [];
    for (let i = 0; i < SENDERS; i++) senders.push(await gw.connect('/', { transports: ['websocket'] }));
    const base = await gw.metric('sio_kafka_delivered_total');
    const consumedBase = await be.count();
    const total = SENDERS * EVENTS;
    const payload = { text: 'x'.repeat(64) };
    const t0 = nowMs();
    for (let k = 0; k < EVENTS; k += 100) {
      for (const s of senders) for (let j = k; j < Math.min(EVENTS, k + 100); j++) s.emit('ev', j, payload);
      await new Promise((r) => setImmediate(r)); // let the sockets write
    }
    const tSent = nowMs();
    await h.waitFor(async () => (await gw.metric('sio_kafka_delivered_total')) - base >= total, 60000, {
      interval: 20,
      message: 'events stored',
    });
    const tStored = nowMs();
    await h.waitFor(async () => (await be.count()) - consumedBase >= total, 60000, {
      interval: 50,
      message: 'events consumed by the backend',
    });
    const tConsumed = nowMs();
    console.log(
      `client events -> Kafka (${SENDERS} websocket clients x ${EVENTS} events, ~100 B envelopes): ` +
        `${Math.round(total / ((tStored - t0) / 1000))} events/s stored (delivery reports; clients done sending after ` +
        `${Math.round(tSent - t0)} ms, stored after ${Math.round(tStored - t0)} ms), ` +
        `backend had all after ${Math.round(tConsumed - t0)} ms`,
    );
  } finally {
    await gw.stop();
    await be.stop();
    await mock.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  },
);
