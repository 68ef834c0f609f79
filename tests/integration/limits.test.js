'use strict';
/*
 * Limits and operator knobs: the bounded per-connection send queue (a slow consumer
 * is closed with the counted reason "queue overflow" while everyone else keeps
 * working), extra response headers from engine.headers, chunked POST bodies refused
 * cleanly, and permessage-deflate when engine.per_message_deflate is on.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

describe('send queue bound (engine.send_queue: 8)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({
      engine: { send_queue: 8, headers: { 'X-Served-By': 'sio-gateway-test' } },
    });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('a polling session that stops polling is closed as a slow consumer; others are served', async () => {
    const healthy = await gw.connect('/', { transports: ['websocket'] });
    const got = [];
    healthy.on('burst', (n) => got.push(n));

    // A raw polling client joins "/" and then never polls again.
    const slow = gw.polling();
    await slow.handshake();
    assert.equal((await slow.post('40')).status, 200);
    const conn = await slow.pollUntil((p) => p.startsWith('40'));
    const sid = JSON.parse(conn.packet.slice(2)).sid;

    const before = await gw.metric('sio_closes_total', { reason: 'queue overflow' });
    for (let i = 0; i < 12; i++) await gw.emitEnvelope({ type: 'emit', event: 'burst', data: [i] });

    // The healthy client got all 12, in order: the slow one did not hold it back.
    await h.waitFor(() => got.length === 12, 5000, { message: `12 bursts (got ${got.length})` });
    assert.deepEqual(got, [...Array(12).keys()]);
    await h.waitFor(async () => (await gw.metric('sio_closes_total', { reason: 'queue overflow' })) === before + 1,
      3000, { message: 'queue overflow counted once' });
    // The slow session is gone: its socket left and its sid is unknown.
    const replies = await gw.fetchSockets({ rooms: [sid] });
    assert.equal(replies.sockets.length, 0, 'the slow socket was disconnected');
    const res = await slow.get({ timeout: 3000 });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.text).code, 1);
    assert.equal(healthy.connected, true);
  });

  it('engine.headers are added to Engine.IO and API responses', async () => {
    const hs = await h.httpRequest(`${gw.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(hs.status, 200);
    assert.equal(hs.headers['x-served-by'], 'sio-gateway-test');
    const health = await gw.http('/healthz');
    assert.equal(health.headers['x-served-by'], 'sio-gateway-test');
  });

  it('a chunked POST is refused with 400 Bad request, and the session keeps working', async () => {
    const p = gw.polling();
    await p.handshake();
    const u = new URL(p.url());
    const reply = await new Promise((resolve, reject) => {
      const sock = net.connect(Number(u.port), u.hostname, () => {
        sock.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
          'Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n40/\r\n0\r\n\r\n');
      });
      let buf = '';
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer: ${JSON.stringify(buf)}`)); }, 3000);
      sock.on('data', (d) => {
        buf += d;
        if (/\r\n\r\n[\s\S]*\}/.test(buf)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(buf);
        }
      });
      sock.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.[01] 400/);
    assert.match(reply, /"code":3/);
    // the session itself was not harmed: a normal POST and GET still work
    assert.equal((await p.post('40')).status, 200);
    const conn = await p.pollUntil((x) => x.startsWith('40'));
    assert.ok(conn.packet.startsWith('40{"sid":'));
  });
});

/* CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/* Open a raw HTTP request and destroy the socket once `ready(buf)` says it is held. */
function hangUpAfter(url, ready) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
    });
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(); }, 300); // held: nothing comes
    sock.on('data', (d) => {
      buf += d;
      if (ready(buf)) { clearTimeout(timer); sock.destroy(); resolve(); }
    });
    sock.on('error', reject);
  });
}

describe('a websocket client that stops reading', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({});
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('gets every packet intact and in order once it reads again (short writes); others are not held back', async () => {
    const healthy = await gw.connect('/', { transports: ['websocket'] });
    const stalled = await gw.connect('/', { transports: ['websocket'] });
    const seen = { healthy: [], stalled: [] };
    const N = 600;
    const pad = 'y'.repeat(32 * 1024); // 600 × 32 KB = 19 MB: more than both socket buffers hold (tcp_wmem + tcp_rmem max 10 MB)
    healthy.on('big', (i, p) => seen.healthy.push([i, p.length]));
    stalled.on('big', (i, p) => seen.stalled.push([i, p === pad ? p.length : -1]));
    const sock = stalled.io.engine.transport.ws._socket; // the client's TCP socket
    sock.pause();
    for (let i = 0; i < N; i++) await gw.emitEnvelope({ type: 'emit', event: 'big', data: [i, pad] });
    await h.waitFor(() => seen.healthy.length === N, 10000, { message: `healthy got ${seen.healthy.length}/${N}` });
    assert.ok(seen.stalled.length < N, 'the stalled client could not have read everything yet');
    sock.resume();
    await h.waitFor(() => seen.stalled.length === N, 10000, { message: `stalled got ${seen.stalled.length}/${N}` });
    assert.deepEqual(seen.stalled, [...Array(N).keys()].map((i) => [i, pad.length]));
    assert.equal(stalled.connected, true);
  });
});

describe('held requests whose client hangs up', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({});
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('a held long-poll: the session closes as a transport error and the loop stays idle', async () => {
    const p = gw.polling();
    await p.handshake();
    const before = await gw.metric('sio_closes_total', { reason: 'transport error' });
    await hangUpAfter(p.url(), () => false); // the GET is held (no data), then the client vanishes
    await h.waitFor(async () => (await gw.metric('sio_closes_total', { reason: 'transport error' })) === before + 1,
      3000, { message: 'the session was closed' });
    const res = await p.get({ timeout: 3000 });
    assert.equal(res.status, 400, 'the sid is gone');
    const c0 = cpuSeconds(gw.proc.pid);
    await h.sleep(1000);
    const used = cpuSeconds(gw.proc.pid) - c0;
    assert.ok(used < 0.5, `an idle gateway used ${used} CPU seconds in 1 s (a spinning loop?)`);
  });

  it('an SSE subscriber: the stream is dropped and the loop stays idle', async () => {
    await hangUpAfter(`${gw.url}/api/subscribe?topic=sio.out`, (b) => b.includes(': subscribed'));
    await gw.emitEnvelope({ type: 'emit', event: 'x', data: [1] }); // something to (not) deliver
    await gw.fetchSockets(); // barrier: the out topic was applied
    const c0 = cpuSeconds(gw.proc.pid);
    await h.sleep(1000);
    const used = cpuSeconds(gw.proc.pid) - c0;
    assert.ok(used < 0.5, `an idle gateway used ${used} CPU seconds in 1 s (a spinning loop?)`);
  });
});

describe('permessage-deflate (engine.per_message_deflate: true)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ engine: { per_message_deflate: true } });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('a client offering deflate gets it, and large messages round-trip', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    const ws = s.io.engine.transport.ws;
    assert.match(ws.extensions || '', /permessage-deflate/, 'the extension was negotiated');
    await gw.backend();
    const big = 'x'.repeat(64 * 1024);
    assert.equal(await s.timeout(3000).emitWithAck('echo', big), big);
  });
});
