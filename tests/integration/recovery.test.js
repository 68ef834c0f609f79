'use strict';
/*
 * recovery — connection state recovery in process (memory bus), with the real
 * socket.io-client@4 (its connectionStateRecovery side: pid, offsets, socket.recovered).
 * The transport is killed, not the client: the client reconnects by itself and comes
 * back with its id, rooms, data and the emits it missed, once and in order; volatile
 * emits, emits excepting it and emits with ack are not replayed; past the window it gets
 * a fresh session; a namespace with recovery: false never recovers.
 */
const { describe, it: plainIt, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers/gateway');

const WINDOW_MS = 3000;

/* A client that reconnects after delayMs when its transport dies. */
function client(gw, nsp, transports, delayMs, extra = {}) {
  return h.openClient(`${gw.url}${nsp}`, {
    transports,
    reconnection: true,
    reconnectionDelay: delayMs,
    reconnectionDelayMax: delayMs,
    randomizationFactor: 0,
    ...extra,
  });
}

function events(s, name) {
  const got = [];
  s.on(name, (...args) => got.push(args));
  return got;
}

describe('connection state recovery (in process)', () => {
  let gw;
  let be;
  before(async () => {
    gw = await h.startGateway({
      recovery: { max_disconnection_ms: WINDOW_MS },
      namespaces: [
        { name: '/' },
        { name: '/chat', routes: [{ topic: 'test.feed', event: 'feed' }] },
        { name: '/norec', recovery: false },
      ],
    });
    be = await gw.backend();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const emit = (room, event, data, more = {}) => gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [room], event, data, ...more });

  for (const transports of [['websocket'], ['polling']]) {
    it(`the transport dies: the client comes back with its id, rooms and the 3 emits it missed (${transports[0]})`, async () => {
      const s = client(gw, '/chat', transports, 800);
      await h.once(s, 'connect', 4000);
      const id = s.id;
      assert.equal(s.recovered, false);
      const con = await be.in.next((e) => e.type === 'connect' && e.sid === id);
      assert.equal(con.recovered, undefined);
      const room = `r-${transports[0]}`;
      await gw.emitEnvelope({ type: 'join', nsp: '/chat', rooms: [id], join: [room] });
      const got = events(s, 'ev');
      await emit(room, 'ev', ['before']);
      await h.waitFor(() => got.length === 1, 3000, { message: 'first event' });
      // the client's listener sees the offset as a last string argument, as with socket.io
      assert.equal(got[0][0], 'before');
      assert.equal(typeof got[0][1], 'string');

      s.io.engine.close(); // the transport, not the socket: the client will reconnect
      const lost = await be.in.next((e) => e.type === 'disconnect' && e.sid === id);
      assert.equal(lost.recoverable, true);
      assert.deepEqual(lost.rooms.sort(), [id, room].sort());
      for (const i of [1, 2, 3]) await emit(room, 'ev', [i]);
      await emit(room, 'ev', ['volatile'], { volatile: true });
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [room], except: [id], event: 'ev', data: ['excepted'] });
      await gw.emitEnvelope({
        type: 'emit', nsp: '/chat', rooms: [room], event: 'ev', data: ['with-ack'],
        ack: { reply_to: 'test.recovery.acks', id: `a-${transports[0]}`, timeout_ms: 500 },
      });
      await emit('elsewhere', 'ev', ['not-its-room']);

      await h.once(s, 'connect', 4000);
      assert.equal(s.recovered, true);
      assert.equal(s.id, id);
      const back = await be.in.next((e) => e.type === 'connect' && e.sid === id);
      assert.equal(back.recovered, true);
      await h.sleep(200); // (nothing more may come)
      assert.deepEqual(got.map((a) => a[0]), ['before', 1, 2, 3]);
      // every replayed packet has its offset too; the rooms came back
      assert.ok(got.every((a) => typeof a[1] === 'string'));
      await emit(room, 'ev', ['after']);
      await h.waitFor(() => got.length === 5, 3000, { message: 'room emit after recovery' });
      const list = await gw.fetchSockets({ nsp: '/chat', rooms: [id] });
      assert.deepEqual(list.sockets[0].rooms.sort(), [id, room].sort());
      s.close();
    });
  }

  it('raw route messages in the gap are replayed like emits', async () => {
    const s = client(gw, '/chat', ['websocket'], 800);
    await h.once(s, 'connect', 4000);
    const id = s.id;
    const got = events(s, 'feed');
    await gw.publish('test.feed', { n: 0 });
    await h.waitFor(() => got.length === 1, 3000, { message: 'first route message' });
    s.io.engine.close();
    await be.in.next((e) => e.type === 'disconnect' && e.sid === id && e.recoverable);
    await gw.publish('test.feed', { n: 1 });
    await gw.publish('test.feed', { n: 2 });
    await h.once(s, 'connect', 4000);
    assert.equal(s.recovered, true);
    await h.waitFor(() => got.length === 3, 3000, { message: 'the missed route messages' });
    assert.deepEqual(got.map((a) => a[0].n), [0, 1, 2]);
    s.close();
  });

  it('past the window: a fresh session, a new id; the snapshot expired', async () => {
    const e0 = await gw.metric('sio_recovery_expired_total');
    const s = client(gw, '/chat', ['websocket'], WINDOW_MS + 1500);
    await h.once(s, 'connect', 4000);
    const id = s.id;
    const got = events(s, 'ev');
    await emit(id, 'ev', ['x']);
    await h.waitFor(() => got.length === 1, 3000, { message: 'event' });
    s.io.engine.close();
    const lost = await be.in.next((e) => e.type === 'disconnect' && e.sid === id);
    assert.equal(lost.recoverable, true);
    await emit(id, 'ev', ['gap']);
    await h.once(s, 'connect', WINDOW_MS + 5000);
    assert.equal(s.recovered, false);
    assert.notEqual(s.id, id);
    assert.deepEqual(got.map((a) => a[0]), ['x']);
    assert.ok((await gw.metric('sio_recovery_expired_total')) >= e0 + 1);
    s.close();
  });

  it('a client that got no event yet, a namespace with recovery: false and a client disconnect are not recovered', async () => {
    const s = client(gw, '/chat', ['websocket'], 300);
    await h.once(s, 'connect', 4000);
    const id = s.id;
    s.io.engine.close();
    await h.once(s, 'connect', 4000);
    assert.equal(s.recovered, false, 'no offset: socket.io-client sends no pid');
    assert.notEqual(s.id, id);
    s.close();

    const n = client(gw, '/norec', ['websocket'], 300);
    await h.once(n, 'connect', 4000);
    const nid = n.id;
    const lost = be.in.next((e) => e.type === 'disconnect' && e.sid === nid);
    n.io.engine.close();
    assert.equal((await lost).recoverable, undefined);
    await h.once(n, 'connect', 4000);
    assert.ok(!n.recovered, 'no pid in its CONNECT: socket.io-client leaves recovered unset');
    n.close();

    const c = client(gw, '/chat', ['websocket'], 300);
    await h.once(c, 'connect', 4000);
    const cid = c.id;
    const bye = be.in.next((e) => e.type === 'disconnect' && e.sid === cid);
    c.disconnect();
    const d = await bye;
    assert.equal(d.reason, 'client namespace disconnect');
    assert.equal(d.recoverable, undefined);
  });

  it('a pid or offset that is not one is a fresh connect, counted as failed', async () => {
    const f0 = await gw.metric('sio_recoveries_total', { result: 'failed' });
    for (const auth of [{ pid: 'nope', offset: 'nope' }, { pid: 'x'.repeat(5000), offset: '"' }]) {
      const s = await gw.connect('/chat', { transports: ['websocket'], auth });
      assert.equal(s.recovered, false);
      assert.equal(s.id.length, 20);
      s.close();
    }
    assert.equal(await gw.metric('sio_recoveries_total', { result: 'failed' }), f0 + 2);
    // the log holds what was emitted within the window, and what it costs is shown
    await emit('nobody', 'ev', ['logged']);
    assert.ok((await gw.metric('sio_recovery_log_bytes')) > 0);
    assert.ok((await gw.metric('sio_recovery_log_packets')) >= 1);
  });
});

const NG = require('./helpers/nng');

describe('connection state recovery over the nng bus', { skip: !NG.available() && 'no NNG plugin in this build' }, () => {
  let dir;
  let gw;
  let be;
  const it = h.gatewayIt(() => gw);
  before(async () => {
    dir = NG.tempDir();
    gw = await h.startGateway(
      {
        node_id: 'gw-rec',
        recovery: { max_disconnection_ms: WINDOW_MS },
        adapter: NG.adapter({ publish_listen: [NG.url(dir, 'pub')], receive_listen: [NG.url(dir, 'sub')] }),
        namespaces: [{ name: '/' }],
      },
      NG.gatewayOpts(),
    );
    be = await NG.Peer.start({ subDial: [NG.url(dir, 'pub')], pubDial: [NG.url(dir, 'sub')], subscribe: ['sio.in '] });
    await be.waitPipes({ pub: 1, sub: 1 });
    await h.waitFor(async () => (await gw.metric('sio_nng_publish_peers')) === 1, 5000, { message: 'gateway sees the backend' });
  });
  after(async () => {
    if (be) await be.stop();
    if (gw) await gw.stopChecked();
  });

  it('a backend on nng emits 3 events into the gap: they arrive once, in order, after the recovery', async () => {
    const s = client(gw, '', ['websocket'], 800);
    await h.once(s, 'connect', 4000);
    const id = s.id;
    await be.next((m) => m.topic === 'sio.in' && m.json && m.json.type === 'connect' && m.json.sid === id);
    const got = events(s, 'ev');
    be.publish('sio.out', { type: 'join', nsp: '/', rooms: [id], join: ['game'] });
    be.publish('sio.out', { type: 'emit', nsp: '/', rooms: ['game'], event: 'ev', data: [0] });
    await h.waitFor(() => got.length === 1, 3000, { message: 'first event' });
    s.io.engine.close();
    const lost = await be.next((m) => m.topic === 'sio.in' && m.json && m.json.type === 'disconnect' && m.json.sid === id);
    assert.equal(lost.json.recoverable, true);
    for (const i of [1, 2, 3]) be.publish('sio.out', { type: 'emit', nsp: '/', rooms: ['game'], event: 'ev', data: [i] });
    await h.once(s, 'connect', 4000);
    assert.equal(s.recovered, true);
    assert.equal(s.id, id);
    const back = await be.next((m) => m.topic === 'sio.in' && m.json && m.json.type === 'connect' && m.json.sid === id);
    assert.equal(back.json.recovered, true);
    await h.waitFor(() => got.length >= 4, 3000, { message: 'the missed events' });
    await h.sleep(200);
    assert.deepEqual(got.map((a) => a[0]), [0, 1, 2, 3]);
    s.close();
  });
});

describe('connection state recovery: msgpack clients, and skip_auth: false', () => {
  plainIt('a socket.io-msgpack-parser client recovers with its missed emits (binary included)', async () => {
    const parser = require('socket.io-msgpack-parser');
    const gw = await h.startGateway({
      engine: { parser: 'msgpack' },
      recovery: { max_disconnection_ms: WINDOW_MS },
      namespaces: [{ name: '/' }],
    });
    try {
      const s = client(gw, '', ['websocket'], 600, { parser });
      await h.once(s, 'connect', 4000);
      const id = s.id;
      const got = events(s, 'ev');
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [id], event: 'ev', data: [0] });
      await h.waitFor(() => got.length === 1, 3000, { message: 'first event' });
      assert.equal(typeof got[0][1], 'string');
      s.io.engine.close();
      await h.waitFor(async () => (await gw.metric('sio_recovery_sessions')) === 1, 3000, { message: 'lost' });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [id], event: 'ev', data: [1, { $binary: 'AAE=' }] });
      await h.once(s, 'connect', 4000);
      assert.equal(s.recovered, true);
      await h.waitFor(() => got.length === 2, 3000, { message: 'missed event' });
      assert.equal(got[1][0], 1);
      assert.deepEqual([...got[1][1]], [0, 1]);
      assert.equal(typeof got[1][2], 'string');
      s.close();
    } finally {
      await gw.stopChecked();
    }
  });

  plainIt('skip_auth: false asks the backend again (recovered: true in the connect envelope)', async () => {
    const gw = await h.startGateway({
      recovery: { max_disconnection_ms: WINDOW_MS, skip_auth: false },
      namespaces: [{ name: '/', auth: 'backend' }],
    });
    try {
      const be = await gw.backend();
      const s = client(gw, '', ['websocket'], 600, { auth: { token: 't' } });
      const first = await be.in.next((e) => e.type === 'connect' && !e.recovered);
      await gw.reply({ type: 'connect_result', id: first.id, ok: true, data: { user: 1 } });
      await h.once(s, 'connect', 4000);
      const id = s.id;
      const got = events(s, 'ev');
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [id], event: 'ev', data: [0] });
      await h.waitFor(() => got.length === 1, 3000, { message: 'first event' });
      s.io.engine.close();
      await be.in.next((e) => e.type === 'disconnect' && e.sid === id && e.recoverable);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [id], event: 'ev', data: [1] });
      const again = await be.in.next((e) => e.type === 'connect' && e.recovered === true, 5000);
      assert.equal(again.sid, id);
      assert.equal(again.handshake.auth.token, 't');
      assert.equal(typeof again.handshake.auth.pid, 'string');
      await gw.reply({ type: 'connect_result', id: again.id, ok: true });
      await h.once(s, 'connect', 4000);
      assert.equal(s.recovered, true);
      assert.equal(s.id, id);
      await h.waitFor(() => got.length === 2, 3000, { message: 'missed event' });
      const list = await gw.fetchSockets({ nsp: '/', rooms: [id] });
      assert.deepEqual(list.sockets[0].data, { user: 1 }, 'no new data from the backend: the old data stays');
      s.close();
    } finally {
      await gw.stopChecked();
    }
  });
});
