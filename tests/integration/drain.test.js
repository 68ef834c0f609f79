'use strict';
/*
 * shutdown.drain_ms — graceful drain on POST /api/drain and on SIGTERM, with the real
 * socket.io-client@4: /healthz turns 503 "draining" at once, new sessions get 503, the
 * open sessions are closed spread over drain_ms with an Engine.IO close (websocket close
 * frame, held polls answered), so clients see "transport close" (they would reconnect
 * elsewhere, not "io server disconnect"); a pending emit-with-ack gets its ack_done; the
 * process exits 0.
 */
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers/gateway');

async function clients(gw, n, transports) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = await gw.connect('/', { transports });
    s.lost = null;
    s.on('disconnect', (reason) => (s.lost = { reason, at: Date.now() }));
    out.push(s);
  }
  return out;
}

async function exitCode(gw, ms) {
  const code = await h.withTimeout(gw.exited.then(() => gw.exitCode()), ms, 'gateway exit');
  return code;
}

describe('graceful drain (shutdown.drain_ms)', () => {
  it('POST /api/drain: healthz 503 draining, new sessions 503, closes spread over drain_ms, ack_done, exit 0', async () => {
    const DRAIN = 1500;
    const gw = await h.startGateway({ shutdown: { drain_ms: DRAIN } });
    try {
      const all = [...(await clients(gw, 20, ['websocket'])), ...(await clients(gw, 5, ['polling']))];
      // an emit-with-ack nobody answers: its ack_done must still come
      const replies = await gw.subscribe('test.drain.replies');
      await gw.emitEnvelope({
        type: 'emit', nsp: '/', event: 'quiz', data: [1], ack: { reply_to: replies.topic, id: 'q-drain', timeout_ms: 60000 },
      });
      await gw.fetchSockets(); // applied
      assert.equal((await gw.http('/healthz')).status, 200);

      const t0 = Date.now();
      const r = await gw.http('/api/drain', { method: 'POST' });
      assert.equal(r.status, 202);
      assert.deepEqual(r.json(), { draining: true });
      const hz = await gw.http('/healthz');
      assert.equal(hz.status, 503);
      assert.equal(hz.json().status, 'draining');
      // a new session is refused: raw handshake and the real client
      const hs = await gw.http('/socket.io/?EIO=4&transport=polling');
      assert.equal(hs.status, 503);
      assert.equal(hs.headers['retry-after'], '1');
      assert.deepEqual(hs.json(), { code: 3, message: 'Server draining' });
      const late = gw.socket('/', { transports: ['websocket'] });
      await h.once(late, 'connect_error', 4000);
      late.close();

      await h.waitFor(() => all.every((s) => s.lost), DRAIN + 3000, { message: 'every client closed' });
      for (const s of all) assert.equal(s.lost.reason, 'transport close', 'an Engine.IO close: the client would reconnect');
      const times = all.map((s) => s.lost.at).sort((a, b) => a - b);
      const spread = times[times.length - 1] - times[0];
      assert.ok(spread >= DRAIN / 2, `closes spread over ${spread} ms`);
      const perWindow = new Map();
      for (const t of times) perWindow.set(Math.floor((t - t0) / 200), (perWindow.get(Math.floor((t - t0) / 200)) || 0) + 1);
      assert.ok(Math.max(...perWindow.values()) <= 8, `at most 8 closes per 200 ms: ${JSON.stringify([...perWindow])}`);
      const done = await replies.next((m) => m.type === 'ack_done' && m.id === 'q-drain');
      assert.equal(done.acked, 0);
      assert.equal(done.timed_out, 25);
      assert.equal(await exitCode(gw, 3000), 0);
      assert.match(gw.tail(), /draining: 25 sessions closed over 1500 ms/);
    } finally {
      await gw.stop();
    }
  });

  it('SIGTERM drains (a second SIGTERM lets it go on); SIGINT stops at once', async () => {
    const gw = await h.startGateway({ shutdown: { drain_ms: 1200 } });
    try {
      const all = await clients(gw, 6, ['websocket']);
      gw.proc.kill('SIGTERM');
      await h.waitFor(async () => (await gw.http('/healthz')).status === 503, 2000, { message: 'draining' });
      gw.proc.kill('SIGTERM');
      await h.waitFor(() => all.every((s) => s.lost), 4000, { message: 'every client closed' });
      const times = all.map((s) => s.lost.at).sort((a, b) => a - b);
      assert.ok(times[5] - times[0] >= 400, `spread ${times[5] - times[0]} ms`);
      assert.equal(await exitCode(gw, 3000), 0);
    } finally {
      await gw.stop();
    }
    const fast = await h.startGateway({ shutdown: { drain_ms: 60000 } });
    try {
      const all = await clients(fast, 3, ['websocket']);
      const t0 = Date.now();
      fast.proc.kill('SIGINT');
      assert.equal(await exitCode(fast, 3000), 0);
      await h.waitFor(() => all.every((s) => s.lost), 2000, { message: 'closed' });
      assert.ok(Date.now() - t0 < 2500);
      for (const s of all) assert.equal(s.lost.reason, 'transport close');
    } finally {
      await fast.stop();
    }
  });

  it('POST /api/drain needs the API token', async () => {
    const gw = await h.startGateway({ http_api: { token: 'sekret' } });
    try {
      const r = await gw.http('/api/drain', { method: 'POST', headers: { authorization: 'Bearer wrong' } });
      assert.equal(r.status, 401);
      assert.equal((await gw.http('/api/drain')).status, 401);
      assert.equal((await gw.http('/healthz')).status, 200);
    } finally {
      await gw.stopChecked();
    }
  });
});
