#!/usr/bin/env node
'use strict';
/*
 * What a relayed request costs (no sticky sessions, bus/relay.h): two gateway nodes on
 * one bus, a polling session on node A, and the same requests made directly on A and
 * relayed through node B:
 *   post   a POST with one event packet, until its "ok"
 *   poll   a held GET (given 20 ms to arrive) released by an emit published through
 *          A's HTTP API to the session's node topic, from the publish to the GET's answer
 * Reports p50 / p99 / mean in ms of each, direct and relayed, and the difference.
 *
 *   node bench/relay_latency.js [--bus nng|kafka] [--rounds 300]
 *
 * nng: an ipc mesh (each node dials the other's publish socket). kafka: librdkafka's
 * mock cluster with the tests' consumer settings (fetch.wait.max.ms 10). Uses the test
 * helpers (tests/integration/helpers, npm ci there first) and the build in build/
 * (SIOGW_BIN=... for another binary). Not a test: numbers only; 127.0.0.1 only.
 */
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
process.env.SIOGW_BIN = process.env.SIOGW_BIN || path.join(ROOT, 'build', 'gateway', 'sio-gateway');
const H = path.join(ROOT, 'tests', 'integration', 'helpers');
const h = require(path.join(H, 'gateway'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const BUS = arg('bus', 'nng');
const ROUNDS = Number(arg('rounds', 300));

function stats(v) {
  const s = [...v].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: +q(0.5).toFixed(2), p99: +q(0.99).toFixed(2), mean: +(s.reduce((a, b) => a + b, 0) / s.length).toFixed(2) };
}

async function nodes() {
  if (BUS === 'kafka') {
    const K = require(path.join(H, 'kafka'));
    const mock = await K.MockCluster.start({ topics: ['sio.in:2', 'sio.out:2', 'sio.reply.gw-a:1', 'sio.reply.gw-b:1'] });
    const cfg = (id) => ({ node_id: id, engine: { workers: 1 }, adapter: K.gatewayAdapter(mock.bootstrap), log: { level: 'warn' } });
    const [a, b] = await Promise.all([h.startGateway(cfg('gw-a')), h.startGateway(cfg('gw-b'))]);
    return { a, b, stop: () => mock.stop() };
  }
  const NG = require(path.join(H, 'nng'));
  const dir = NG.tempDir();
  const cfg = (id, self, other) => ({
    node_id: id,
    engine: { workers: 1 },
    adapter: NG.adapter({ publish_listen: [NG.url(dir, `${self}-pub`)], receive_dial: [NG.url(dir, `${other}-pub`)] }),
    log: { level: 'warn' },
  });
  const [a, b] = await Promise.all([h.startGateway(cfg('gw-a', 'a', 'b'), NG.gatewayOpts()), h.startGateway(cfg('gw-b', 'b', 'a'), NG.gatewayOpts())]);
  for (const gw of [a, b]) await h.waitFor(async () => (await gw.metric('sio_nng_receive_peers')) === 1, 5000);
  return { a, b, stop: async () => {} };
}

async function main() {
  const { a, b, stop } = await nodes();
  try {
    const s = new h.EioPolling(a.url);
    await s.handshake();
    await s.post('40');
    const { packet } = await s.pollUntil((p) => p.startsWith('40'), { timeout: 10000 });
    const sioId = JSON.parse(packet.slice(2)).sid;
    const viaB = new h.EioPolling(b.url);
    viaB.sid = s.sid;
    /* warm up both paths (Kafka: the node topics' consumers are assigned) */
    await h.waitFor(async () => (await viaB.post('42["warm"]', { timeout: 2000 }).catch(() => ({ status: 0 }))).status === 200, 20000);
    const res = {};
    for (const [name, e] of [['direct', s], ['relayed', viaB]]) {
      const post = [];
      const poll = [];
      for (let i = 0; i < ROUNDS; i++) {
        let t0 = performance.now();
        const r = await e.post(`42["x",${i}]`);
        if (r.status !== 200) throw new Error(`post: ${r.status} ${r.text}`);
        post.push(performance.now() - t0);
        const held = e.get({ timeout: 10000 });
        /* the GET is held (20 ms is ample on loopback; a bench, not a test), then the emit */
        await new Promise((r2) => setTimeout(r2, 20));
        t0 = performance.now();
        await h.httpRequest(`${a.url}/api/publish?route=nodes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'emit', rooms: [sioId], event: 'y', data: [i] }),
        });
        const g = await held;
        poll.push(performance.now() - t0);
        for (const p of g.packets) if (p === '2') await e.post('3');
      }
      res[name] = { post: stats(post), poll: stats(poll) };
    }
    const d = (k, f) => +(res.relayed[k][f] - res.direct[k][f]).toFixed(2);
    res.extra = { post: { p50: d('post', 'p50'), mean: d('post', 'mean') }, poll: { p50: d('poll', 'p50'), mean: d('poll', 'mean') } };
    console.log(JSON.stringify({ bus: BUS, rounds: ROUNDS, ...res }));
  } finally {
    h.closeAllClients();
    await Promise.all([a.stop(), b.stop()]);
    await stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
