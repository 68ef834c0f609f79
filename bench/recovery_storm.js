#!/usr/bin/env node
'use strict';
/*
 * Recovery storm (issue 14): N socket.io-client@4 clients lose their transport at the
 * same instant while a backend emits K events to all of them, and come back together
 * (reconnection delay D, no jitter). Reports the time from the loss until every client
 * has recovered (same id, socket.recovered) and holds the K missed events, how many
 * recovered, the gateway's RSS before, at the peak and after, and its recovery metrics.
 *
 *   node bench/recovery_storm.js [--clients 1000] [--events 3] [--delay 1000]
 *                                [--transport websocket|polling] [--runs 3] [--bus memory|kafka]
 *
 * --bus kafka: one node on librdkafka's mock cluster (tests/integration/helpers/kafka),
 * the emits produced to sio.out by a librdkafka backend, offsets are sio.out positions
 * and snapshots go to sio.sessions.
 *
 * Uses the test helpers (tests/integration/helpers, npm ci there first) and the build in
 * build/ (SIOGW_BIN=... for another binary). Not a test: numbers only; 127.0.0.1 only.
 */
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
process.env.SIOGW_BIN = process.env.SIOGW_BIN || path.join(ROOT, 'build', 'gateway', 'sio-gateway');
const h = require(path.join(ROOT, 'tests', 'integration', 'helpers', 'gateway'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const CLIENTS = Number(arg('clients', 1000));
const EVENTS = Number(arg('events', 3));
const DELAY = Number(arg('delay', 1000));
const TRANSPORT = arg('transport', 'websocket');
const RUNS = Number(arg('runs', 3));
const BUS = arg('bus', 'memory');

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function run(gw, emit) {
  const clients = [];
  for (let i = 0; i < CLIENTS; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(CLIENTS, i + 100); j++) {
      const s = h.openClient(gw.url, {
        transports: [TRANSPORT],
        reconnection: true,
        reconnectionDelay: DELAY,
        reconnectionDelayMax: DELAY,
        randomizationFactor: 0,
      });
      s.got = 0;
      s.on('ev', () => s.got++);
      clients.push(s);
      batch.push(h.once(s, 'connect', 15000));
    }
    await Promise.all(batch);
  }
  const ids = new Map(clients.map((s) => [s, s.id]));
  // one event each, so every client holds an offset
  await emit({ type: 'emit', nsp: '/', event: 'ev', data: ['first'] });
  await h.waitFor(() => clients.every((s) => s.got === 1), 15000, { message: 'first event everywhere' });
  const rssBefore = rssKiB(gw.proc.pid);
  const r0 = await gw.metric('sio_recoveries_total', { result: 'recovered' });

  const back = clients.map((s) => h.once(s, 'connect', DELAY + 30000));
  const t0 = performance.now();
  for (const s of clients) s.io.engine.close();
  await h.waitFor(async () => (await gw.metric('sio_recovery_sessions')) === CLIENTS, 15000, { message: 'all lost' });
  for (let k = 0; k < EVENTS; k++) await emit({ type: 'emit', nsp: '/', event: 'ev', data: [k] });
  let peak = rssKiB(gw.proc.pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(gw.proc.pid))), 20);
  await Promise.all(back);
  await h.waitFor(() => clients.every((s) => s.got === 1 + EVENTS), 30000, { message: 'missed events everywhere' });
  const ms = performance.now() - t0 - DELAY;
  clearInterval(sampler);
  const recovered = clients.filter((s) => s.recovered && s.id === ids.get(s)).length;
  const out = {
    clients: CLIENTS,
    transport: TRANSPORT,
    bus: BUS,
    recovered,
    recovered_metric: (await gw.metric('sio_recoveries_total', { result: 'recovered' })) - r0,
    ms_after_reconnect_delay: Math.round(ms),
    rss_kib_before: rssBefore,
    rss_kib_peak: Math.max(peak, rssKiB(gw.proc.pid)),
    rss_kib_after: rssKiB(gw.proc.pid),
    log_bytes: await gw.metric('sio_recovery_log_bytes'),
  };
  for (const s of clients) s.close();
  await h.waitFor(async () => (await gw.metric('sio_sockets', { nsp: '/' })) === 0, 15000, { message: 'all closed' });
  return out;
}

(async () => {
  let mock = null;
  let be = null;
  const config = { engine: { workers: 1 }, recovery: { max_disconnection_ms: 120000 }, namespaces: [{ name: '/' }], log: { level: 'warn' } };
  if (BUS === 'kafka') {
    const K = require(path.join(ROOT, 'tests', 'integration', 'helpers', 'kafka'));
    mock = await K.MockCluster.start({ topics: ['sio.in:2', 'sio.out:3', 'sio.sessions:1', 'sio.reply.gw-test:1'] });
    be = await K.Backend.start(mock.bootstrap, { topics: ['sio.in'], quiet: true });
    config.adapter = K.gatewayAdapter(mock.bootstrap, { max_message: '64k' });
  }
  const gw = await h.startGateway(config);
  const emit = be ? async (env) => be.produce('sio.out', env, 'k') : (env) => gw.emitEnvelope(env);
  try {
    if (be) await be.waitAssigned();
    for (let i = 0; i < RUNS; i++) console.log(JSON.stringify(await run(gw, emit)));
  } finally {
    h.closeAllClients();
    await gw.stop();
    if (be) await be.stop();
    if (mock) await mock.stop();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
