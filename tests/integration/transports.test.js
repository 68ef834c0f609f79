'use strict';
/*
 * The three ways socket.io-client@4 reaches the gateway (DESIGN §1.1): polling
 * only, websocket only, and polling upgraded to websocket; plus the
 * `engine.transports` config restricting them. Round trips go through the bus
 * (a tiny echo backend on the HTTP API acks "echo" events with their data).
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

describe('transports (default config: polling + websocket)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
    await gw.backend();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('polling only: connects, stays on polling, emit/ack round trip', async () => {
    const s = await gw.connect('/', { transports: ['polling'] });
    assert.equal(s.io.engine.transport.name, 'polling');
    const ack = await s.timeout(3000).emitWithAck('echo', 'hello', 42);
    assert.equal(ack, 'hello');
    // no upgrade is ever attempted: still polling after a round trip
    assert.equal(s.io.engine.transport.name, 'polling');
    const both = await new Promise((resolve) => s.emit('echo', 'a', { b: [1, 2] }, (...args) => resolve(args)));
    assert.deepEqual(both, ['a', { b: [1, 2] }]);
  });

  it('websocket only: connects directly over websocket, emit/ack round trip', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    assert.equal(s.io.engine.transport.name, 'websocket');
    const ack = await s.timeout(3000).emitWithAck('echo', 'over-ws');
    assert.equal(ack, 'over-ws');
  });

  it('default: starts on polling and upgrades to websocket; emit/ack works after the upgrade', async () => {
    const s = h.io(gw.url, { forceNew: true, reconnection: false, timeout: h.CONNECT_TIMEOUT_MS });
    gw.track({ close: () => s.disconnect() });
    const firstTransport = new Promise((resolve) => s.io.once('open', () => resolve(s.io.engine.transport.name)));
    await h.awaitConnect(s);
    assert.equal(await firstTransport, 'polling', 'the first transport must be polling');
    await h.waitFor(() => s.io.engine.transport.name === 'websocket', 5000, { message: 'upgrade to websocket' });
    assert.equal(s.io.engine.upgrading, false);
    const ack = await s.timeout(3000).emitWithAck('echo', 'after-upgrade');
    assert.equal(ack, 'after-upgrade');
    assert.equal(s.connected, true);
  });

  it('after the upgrade the session refuses a polling GET (400, code 3 "Bad request")', async () => {
    const s = await gw.connect('/');
    await h.waitFor(() => s.io.engine.transport.name === 'websocket', 5000, { message: 'upgrade to websocket' });
    const sid = s.io.engine.id;
    const res = await gw.http(`${gw.enginePath}?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
    assert.equal(res.status, 400);
    // engine.io answers a transport mismatch with BAD_REQUEST (3)
    assert.deepEqual(res.json(), { code: 3, message: 'Bad request' });
    // and the upgraded session itself is unharmed
    assert.equal(await s.timeout(3000).emitWithAck('echo', 'still-here'), 'still-here');
  });

  it('polling-only and websocket-only clients coexist and each gets its own engine session', async () => {
    const a = await gw.connect('/', { transports: ['polling'] });
    const b = await gw.connect('/', { transports: ['websocket'] });
    assert.notEqual(a.io.engine.id, b.io.engine.id);
    assert.notEqual(a.id, b.id);
    const [ra, rb] = await Promise.all([a.timeout(3000).emitWithAck('echo', 'A'), b.timeout(3000).emitWithAck('echo', 'B')]);
    assert.deepEqual([ra, rb], ['A', 'B']);
  });
});

describe('transports config: websocket only', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ engine: { transports: ['websocket'] } });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('refuses a polling handshake with 400 code 0 "Transport unknown"', async () => {
    const res = await gw.http(`${gw.enginePath}?EIO=4&transport=polling`);
    assert.equal(res.status, 400);
    assert.deepEqual(res.json(), { code: 0, message: 'Transport unknown' });
  });

  it('a websocket-only client connects', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    assert.equal(s.io.engine.transport.name, 'websocket');
  });

  it('the websocket open packet advertises no upgrades', async () => {
    const w = await gw.wsOpen();
    assert.deepEqual(w.open.upgrades, []);
    w.close();
  });
});

describe('transports config: polling only', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ engine: { transports: ['polling'] } });
    await gw.backend();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('the polling open packet advertises no upgrades', async () => {
    const p = gw.polling();
    const open = await p.handshake();
    assert.deepEqual(open.upgrades, []);
  });

  it('refuses a websocket handshake with HTTP 400', async () => {
    const r = await h.RawWs.attempt(gw.engineUrl());
    if (r.ws) r.ws.terminate();
    assert.equal(r.status, 400, `expected a 400 refusal, got ${JSON.stringify(r)}`);
  });

  it('a default client (polling + websocket) connects and stays on polling', async () => {
    const s = await gw.connect('/');
    assert.equal(s.io.engine.transport.name, 'polling');
    assert.equal(await s.timeout(3000).emitWithAck('echo', 'p'), 'p');
    assert.equal(s.io.engine.transport.name, 'polling');
  });
});
