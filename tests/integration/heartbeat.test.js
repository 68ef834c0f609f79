'use strict';
/*
 * Server-driven heartbeat (Engine.IO v4): the server pings every
 * ping_interval_ms and closes a session whose pong does not come within
 * ping_timeout_ms; a session that joins no namespace within
 * connect_timeout_ms is closed. Short intervals (300/200 ms, as in the
 * engine.io-protocol test suite) keep these tests fast.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const SLACK = 1000; // scheduling slack on a loaded 2-core CI machine

// The tests of this suite are independent (own connections, envelopes matched by sid)
// and mostly wait for timers: run them concurrently to keep the file short.
describe('heartbeat (ping_interval_ms 300, ping_timeout_ms 200)', { concurrency: true }, () => {
  let gw;
  let be;
  before(async () => {
    gw = await h.startGateway({ engine: { ping_interval_ms: PING_INTERVAL, ping_timeout_ms: PING_TIMEOUT } });
    be = await gw.backend();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('the open packet announces pingInterval 300 and pingTimeout 200', async () => {
    const w = await gw.wsOpen();
    assert.equal(w.open.pingInterval, PING_INTERVAL);
    assert.equal(w.open.pingTimeout, PING_TIMEOUT);
    w.close();
  });

  for (const transport of ['websocket', 'polling']) {
    it(`a socket.io client (${transport}) stays connected through several ping cycles`, async () => {
      const s = await gw.connect('/', { transports: [transport] });
      let disconnects = 0;
      s.on('disconnect', () => disconnects++);
      let pings = 0;
      s.io.on('ping', () => pings++);
      // 6 pings ≈ 1.8 s: several full interval + timeout windows
      await h.waitFor(() => pings >= 6, 6 * PING_INTERVAL + 3000, { message: `6 pings (got ${pings})` });
      assert.equal(disconnects, 0, 'no disconnect during the ping cycles');
      assert.equal(s.connected, true);
      assert.equal(await s.timeout(3000).emitWithAck('echo', 'alive'), 'alive');
    });
  }

  it('websocket: pings arrive about every ping_interval and pongs keep the session open', async () => {
    const w = await gw.wsOpen();
    const t0 = Date.now();
    const times = [];
    for (let i = 0; i < 3; i++) {
      const m = await w.next({ timeout: PING_INTERVAL + SLACK });
      assert.equal(m, '2', 'a ping');
      times.push(Date.now() - t0);
      w.send('3');
    }
    assert.ok(times[0] >= PING_INTERVAL - 100, `first ping too early (${times[0]} ms)`);
    assert.ok(w.isOpen(), 'still open after three ping/pong cycles');
    w.close();
  });

  it('websocket: a client that never answers pings is closed within ping_interval + ping_timeout', async () => {
    const w = await gw.wsOpen();
    const t0 = w.openedAt;
    assert.equal(await w.next({ timeout: PING_INTERVAL + SLACK }), '2');
    const info = await w.waitClose(PING_INTERVAL + PING_TIMEOUT + SLACK);
    const elapsed = info.at - t0;
    assert.ok(elapsed >= PING_INTERVAL + PING_TIMEOUT - 100, `closed too early: ${elapsed} ms`);
    assert.ok(elapsed <= PING_INTERVAL + PING_TIMEOUT + SLACK, `closed too late: ${elapsed} ms`);
  });

  it('a socket whose client stops answering is reported with reason "ping timeout"', async () => {
    const w = await gw.wsSocketIO('/');
    // never answer the pings
    const d = await be.in.next((e) => e.type === 'disconnect' && e.sid === w.sioSid, PING_INTERVAL + PING_TIMEOUT + SLACK + 1000);
    assert.equal(d.reason, 'ping timeout');
    await w.waitClose(1000);
  });

  it('polling: each poll after ping_interval gets a ping; a POSTed pong is accepted ("ok")', async () => {
    const p = gw.polling();
    await p.handshake();
    for (let i = 0; i < 3; i++) {
      const res = await p.get({ timeout: PING_INTERVAL + SLACK });
      assert.equal(res.status, 200);
      assert.equal(res.text, '2');
      const pong = await p.post('3');
      assert.equal(pong.status, 200);
      assert.equal(pong.text, 'ok');
    }
  });

  it('polling: a session that does not answer pings is closed (later requests get 400 "Session ID unknown")', async () => {
    const p = gw.polling();
    const t0 = Date.now();
    await p.handshake();
    let res;
    // keep polling without ever sending a pong: we get the ping, then (at most) a close packet, then 400
    for (;;) {
      res = await p.get({ timeout: PING_INTERVAL + PING_TIMEOUT + SLACK });
      if (res.status !== 200) break;
      assert.ok(
        res.packets.every((x) => x === '2' || x === '1' || x === '6'),
        `unexpected packets while waiting for the timeout: ${JSON.stringify(res.packets)}`,
      );
      assert.ok(Date.now() - t0 < PING_INTERVAL + PING_TIMEOUT + 2 * SLACK, 'session still alive long after the ping timeout');
    }
    assert.equal(res.status, 400);
    assert.deepEqual(res.json(), { code: 1, message: 'Session ID unknown' });
  });

  it('after DISCONNECT from its only namespace the session stays open and keeps getting pings', async () => {
    const w = await gw.wsSocketIO('/');
    w.autoPong();
    w.send('41');
    await be.in.next((e) => e.type === 'disconnect' && e.sid === w.sioSid);
    const base = w.pings;
    await h.waitFor(() => w.pings >= base + 2, 2 * PING_INTERVAL + SLACK, { message: 'two more pings after 41' });
    assert.ok(w.isOpen());
    w.close();
  });
});

describe('connect timeout (connect_timeout_ms 600)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({
      engine: { ping_interval_ms: PING_INTERVAL, ping_timeout_ms: PING_TIMEOUT, connect_timeout_ms: 600 },
    });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('a session that joins no namespace is closed after connect_timeout_ms even while answering pings', async () => {
    const w = await gw.wsOpen();
    w.autoPong();
    const info = await w.waitClose(600 + SLACK + 1000);
    const elapsed = info.at - w.openedAt;
    assert.ok(elapsed >= 500, `closed too early: ${elapsed} ms`);
  });

  it('a session that joined a namespace in time is not closed by the connect timeout', async () => {
    const w = await gw.wsSocketIO('/');
    w.autoPong();
    // past the connect timeout: 4 pings ≈ 1.2 s
    await h.waitFor(() => w.pings >= 4, 4 * PING_INTERVAL + SLACK + 1000, { message: '4 pings' });
    assert.ok(w.isOpen(), 'still open after the connect timeout');
    w.close();
  });
});
