'use strict';
/*
 * Limits and operator knobs: the bounded per-connection send queue (a slow consumer
 * is closed with the counted reason "queue overflow" while everyone else keeps
 * working), extra response headers from engine.headers, chunked POST bodies decoded
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

  it('a websocket client that stops reading is closed as a slow consumer; others are served', async () => {
    const healthy = await gw.connect('/', { transports: ['websocket'] });
    let got = 0;
    healthy.on('big', () => got++);

    // A raw websocket client joins "/" and then stops reading: the kernel's buffers
    // fill, and the gateway must keep the rest in the bounded queue, not in lws's.
    const u = new URL(gw.url);
    const slow = net.connect(Number(u.port), u.hostname);
    let text = '';
    const seen = (re) => h.waitFor(() => re.test(text), 5000, { message: `${re} (got ${JSON.stringify(text.slice(0, 200))})` });
    slow.on('data', (d) => { text += d.toString('latin1'); });
    slow.on('error', () => {});
    slow.write(`GET ${gw.enginePath}?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${u.host}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      'Sec-WebSocket-Version: 13\r\n\r\n');
    await seen(/^HTTP\/1\.1 101[\s\S]*0\{"sid"/);
    slow.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x34, 0x30])); // masked text frame "40"
    await seen(/40\{"sid"/);
    slow.pause();

    const overflows = () => gw.metric('sio_closes_total', { reason: 'queue overflow' });
    const before = await overflows();
    const pad = 'x'.repeat(256 * 1024);
    let sent = 0;
    while (sent < 200 && (await overflows()) === before) { // 200 × 256 KiB: far beyond any socket buffer
      await gw.emitEnvelope({ type: 'emit', event: 'big', data: [pad] });
      sent++;
    }
    assert.equal(await overflows(), before + 1, `queue overflow after ${sent} events of 256 KiB`);
    await h.waitFor(() => got === sent, 10000, { message: `the healthy client got ${got} of ${sent}` });
    assert.equal(healthy.connected, true);
    slow.destroy();
  });

  it('engine.headers are added to Engine.IO and API responses', async () => {
    const hs = await h.httpRequest(`${gw.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(hs.status, 200);
    assert.equal(hs.headers['x-served-by'], 'sio-gateway-test');
    const health = await gw.http('/healthz');
    assert.equal(health.headers['x-served-by'], 'sio-gateway-test');
  });

  it('a chunked POST is decoded (RFC 9112 §7.1) and the session gets its packets', async () => {
    const p = gw.polling();
    await p.handshake();
    const u = new URL(p.url());
    const reply = await new Promise((resolve, reject) => {
      const sock = net.connect(Number(u.port), u.hostname, () => {
        sock.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
          'Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n4\r\n1\r\n0\r\n0\r\n\r\n');
      });
      let buf = '';
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer: ${JSON.stringify(buf)}`)); }, 3000);
      sock.on('data', (d) => {
        buf += d;
        if (/\r\n\r\nok$/.test(buf)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(buf);
        }
      });
      sock.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 200/);
    // the decoded body "40" was the session's CONNECT
    const conn = await p.pollUntil((x) => x.startsWith('40'));
    assert.ok(conn.packet.startsWith('40{"sid":'));
  });
});

/* CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/* CPU seconds the gateway uses over the next second (an idle one: ~0). */
async function cpuOverOneSecond(gw) {
  const c0 = cpuSeconds(gw.proc.pid);
  await h.sleep(1000);
  return cpuSeconds(gw.proc.pid) - c0;
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

/* A raw TCP connection that is accepted (the kernel's side) and stays open. */
function openTcp(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/* The ceiling is the process's, whichever loop accepts (engine.workers: one count). */
for (const workers of [1, 2]) describe(`connection ceiling (listen.max_connections: 4, workers: ${workers})`, () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ listen: { max_connections: 4 }, engine: { workers } });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('beyond the ceiling: 503 with Retry-After, counted, logged; the open ones keep working; a freed slot is reused', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    await gw.backend(); // answers "echo" over an SSE stream: the second connection
    // fill the ceiling with raw connections: a connection of before that is still going
    // away (one the harness or the backend closed) frees its slot a little later, so
    // hold one more whenever a request still gets in
    const held = [];
    let refused;
    await h.waitFor(async () => {
      refused = await h.httpRequest(`${gw.url}/healthz`);
      if (refused.status === 503) return true;
      held.push(await openTcp(gw.port));
      return false;
    }, 5000, { message: 'a connection beyond the ceiling is refused' });
    assert.equal(refused.headers['retry-after'], '5');
    assert.deepEqual(JSON.parse(refused.text), { error: 'connection limit reached' });
    // a socket.io client cannot get in either, and says so
    const late = gw.socket('/', { transports: ['websocket'], reconnection: false });
    await new Promise((resolve) => late.once('connect_error', resolve));
    late.close();
    held.forEach((x) => x.destroy());
    // the client connected before is unaffected (its ack travels over the backend's POST)
    assert.equal(await s.timeout(3000).emitWithAck('echo', 'still here'), 'still here');
    await h.waitFor(async () => (await h.httpRequest(`${gw.url}/healthz`)).status === 200, 3000,
      { message: 'a freed slot is usable again' });
    assert.ok((await gw.metric('sio_tcp_refused_total')) >= 2);
    assert.equal(await gw.metric('sio_tcp_connections_max'), 4);
    assert.match(gw.stderr, /connection limit 4 reached: refusing new connections with 503/);
  });
});

describe('connection ceiling from the fd limit (hard limit 160)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({}, { wrap: ['prlimit', '--nofile=160:160', '--'] });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('the gateway logs the ceiling it derived, and refuses cleanly (no crash, no spin) at it', async () => {
    assert.match(gw.stderr, /fd limit 160: at most 96 concurrent connections/);
    assert.equal(await gw.metric('sio_tcp_connections_max'), 96);
    const held = [];
    for (let i = 0; i < 110; i++) held.push(await openTcp(gw.port));
    // the ones over the ceiling were answered 503 and closed by the gateway
    const closed = await Promise.all(held.map((x) => new Promise((resolve) => {
      let buf = '';
      x.on('data', (d) => { buf += d; });
      const t = setTimeout(() => resolve(null), 1500);
      x.on('close', () => { clearTimeout(t); resolve(buf); });
    })));
    const refusedReplies = closed.filter((b) => b !== null);
    assert.ok(refusedReplies.length >= 14, `${refusedReplies.length} of 110 refused`);
    for (const b of refusedReplies) assert.match(b, /^HTTP\/1.1 503 /);
    held.forEach((x) => x.destroy());
    await h.waitFor(async () => (await gw.http('/healthz')).status === 200, 3000, { message: 'serving again' });
    assert.equal(gw.running, true);
  });
});

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

describe('latency tuning (engine.busy_poll_us: 2000, memory delivery: inline)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ engine: { busy_poll_us: 2000 }, adapter: { options: { delivery: 'inline' } } });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('serves a round trip through the backend, then stops polling when the traffic stops', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    await gw.backend();
    for (let i = 0; i < 20; i++) assert.equal(await s.timeout(3000).emitWithAck('echo', i), i);
    const used = await cpuOverOneSecond(gw);
    assert.ok(used < 0.5, `an idle gateway used ${used} CPU seconds in 1 s (still polling?)`);
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
    const used = await cpuOverOneSecond(gw);
    assert.ok(used < 0.5, `an idle gateway used ${used} CPU seconds in 1 s (a spinning loop?)`);
  });

  it('an SSE subscriber: the stream is dropped and the loop stays idle', async () => {
    await hangUpAfter(`${gw.url}/api/subscribe?topic=sio.out`, (b) => b.includes(': subscribed'));
    await gw.emitEnvelope({ type: 'emit', event: 'x', data: [1] }); // something to (not) deliver
    await gw.fetchSockets(); // barrier: the out topic was applied
    const used = await cpuOverOneSecond(gw);
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

describe('a websocket client that sends but never reads', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ engine: { echo_path: '/echo/', ping_interval_ms: 300, ping_timeout_ms: 200 } });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('does not make the loop spin, and its connection is closed once the session has timed out', async () => {
    const crypto = require('node:crypto');
    const sock = net.connect(gw.port, '127.0.0.1');
    await new Promise((r) => sock.on('connect', r));
    sock.on('error', () => {});
    sock.write(`GET /echo/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
      'Sec-WebSocket-Version: 13\r\n\r\n');
    sock.pause(); // read nothing: the echoes pile up in the gateway
    const payload = Buffer.concat([Buffer.from('4'), Buffer.alloc(60000, 'x')]);
    const head = Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]);
    for (let i = 0; i < 500; i++) sock.write(Buffer.concat([head, payload])); // 30 MB, zero mask
    // the gateway holds output it cannot write; it must not poll the socket meanwhile
    await h.waitFor(async () => (await gw.metric('sio_closes_total', { reason: 'ping timeout' })) >= 1, 5000,
      { message: 'the session timed out (no pong from a client that reads nothing)' });
    const used = await cpuOverOneSecond(gw);
    assert.ok(used < 0.5, `the gateway used ${used} CPU seconds in 1 s (spinning on a readable socket?)`);
    // (a paused client would not see the close: count the gateway's open connections,
    // the /metrics request itself being one)
    await h.waitFor(async () => (await gw.metric('sio_tcp_connections')) === 1, 5000,
      { message: 'the gateway closed the connection' });
    sock.destroy();
  });
});
