'use strict';
/*
 * The backend contract (DESIGN §1.2) exercised through the HTTP API
 * (§1.4): the test plays the backend, reading sio.in over SSE and publishing
 * to sio.out / sio.reply.gw-test, while real socket.io clients connect.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

/* A metric line whose name contains this counts dropped malformed envelopes. */
const MALFORMED_METRIC = /malformed/;

function malformedCount(text) {
  let sum = 0;
  let found = false;
  for (const s of h.parseMetrics(text)) {
    if (MALFORMED_METRIC.test(s.name)) {
      found = true;
      sum += s.value;
    }
  }
  return found ? sum : null;
}

/* Both ways the memory bus can hand messages over (adapter.options.delivery): from its
 * delivery thread, or inside publish() on the service loop. */
for (const delivery of ['thread', 'inline']) describe(`bus envelopes (memory delivery: ${delivery})`, () => {
  let gw;
  let sin; // SSE on sio.in
  before(async () => {
    gw = await h.startGateway({ adapter: { options: { delivery } } });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  const isConnect = (sid) => (e) => e.type === 'connect' && e.sid === sid;
  const isEvent = (sid, event) => (e) => e.type === 'event' && e.sid === sid && e.event === event;
  const isDisconnect = (sid) => (e) => e.type === 'disconnect' && e.sid === sid;

  /* The next event envelope from sid that asks for an ack; answer it with data. */
  async function answer(sid, event, data) {
    const e = await sin.next(isEvent(sid, event));
    assert.ok(e.ack, `event ${event} should carry an ack request: ${JSON.stringify(e)}`);
    await gw.reply({ type: 'ack', id: e.ack.id, data });
    return e;
  }

  describe('gateway → backends (sio.in)', () => {
    it('connect: nsp, sid (= socket.id), node, handshake with auth and query', async () => {
      const s = await gw.connect('/', { auth: { token: 'x' }, query: { a: '1' } });
      const e = await sin.next(isConnect(s.id));
      assert.equal(e.nsp, '/');
      assert.equal(e.sid, s.id);
      assert.equal(e.node, 'gw-test');
      const hs = e.handshake;
      assert.ok(hs && typeof hs === 'object', 'handshake object');
      assert.deepEqual(hs.auth, { token: 'x' });
      assert.equal(hs.query.a, '1');
      assert.equal(hs.query.EIO, '4');
      // the rest of socket.io's handshake shape
      assert.equal(typeof hs.headers, 'object');
      assert.ok(hs.headers.host, 'headers.host');
      assert.equal(typeof hs.address, 'string');
      assert.equal(typeof hs.time, 'string');
      assert.equal(typeof hs.issued, 'number');
      assert.ok(Math.abs(hs.issued - Date.now()) < 60000, 'issued is a ms timestamp');
      assert.equal(typeof hs.url, 'string');
      assert.ok(hs.url.startsWith(gw.enginePath), hs.url);
      assert.equal(typeof hs.xdomain, 'boolean');
      assert.equal(hs.secure, false);
    });

    it('connect: the handshake keeps odd query values and headers as sent, the last of a query name wins', async () => {
      const odd = 'he said "hi" \\ and\tleft';
      const w = await gw.ws(`EIO=4&transport=websocket&a=1&q=${encodeURIComponent(odd)}&a=2&bare`, {
        headers: { referer: 'http://x/"y"\\z', origin: 'http://elsewhere.example' },
      });
      const open = await w.next();
      assert.equal(open[0], '0', open);
      w.send('40');
      const reply = await w.nextMatching((m) => typeof m === 'string' && m.startsWith('40'));
      const sid = JSON.parse(reply.slice(2)).sid;
      const e = await sin.next(isConnect(sid));
      const hs = e.handshake;
      assert.equal(hs.query.q, odd);
      assert.equal(hs.query.a, '2');
      assert.equal(hs.query.bare, '');
      assert.equal(hs.query.EIO, '4');
      assert.equal(hs.headers.referer, 'http://x/"y"\\z');
      assert.equal(hs.headers.origin, 'http://elsewhere.example');
      assert.equal(hs.xdomain, true);
      assert.ok(hs.url.startsWith(`${gw.enginePath}?EIO=4&transport=websocket&a=1&q=`), hs.url);
      assert.ok(hs.url.endsWith('&a=2&bare'), hs.url);
    });

    it('connect to /chat carries nsp "/chat" and its own auth', async () => {
      const s = await gw.connect('/chat', { auth: { room: 'r1' }, transports: ['websocket'] });
      const e = await sin.next(isConnect(s.id));
      assert.equal(e.nsp, '/chat');
      assert.deepEqual(e.handshake.auth, { room: 'r1' });
    });

    it('event without ack: {type,nsp,sid,node,event,data} and no ack field', async () => {
      const s = await gw.connect('/');
      s.emit('order', { id: 7, items: ['a', 'b'] }, 'x', 3.5, null, true);
      const e = await sin.next(isEvent(s.id, 'order'));
      assert.deepEqual(e, {
        type: 'event',
        nsp: '/',
        sid: s.id,
        node: 'gw-test',
        event: 'order',
        data: [{ id: 7, items: ['a', 'b'] }, 'x', 3.5, null, true],
      });
      assert.equal('ack' in e, false);
    });

    it('event without arguments has data []', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      s.emit('ping-me');
      const e = await sin.next(isEvent(s.id, 'ping-me'));
      assert.deepEqual(e.data, []);
    });

    it('events from one socket arrive in order', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      for (let i = 0; i < 20; i++) s.emit('seq', i);
      const got = [];
      for (let i = 0; i < 20; i++) got.push((await sin.next(isEvent(s.id, 'seq'))).data[0]);
      assert.deepEqual(got, [...Array(20).keys()]);
    });

    it('event with ack: ack.id and ack.reply_to; an ack on sio.reply.gw-test resolves emitWithAck', async () => {
      const s = await gw.connect('/');
      const p = s.timeout(4000).emitWithAck('pay', 10);
      const e = await answer(s.id, 'pay', ['ok', 1]);
      assert.deepEqual(e.data, [10]);
      assert.ok(e.ack.id !== undefined && e.ack.id !== null && e.ack.id !== '', 'ack.id');
      assert.equal(e.ack.reply_to, 'sio.reply.gw-test');
      assert.equal(await p, 'ok'); // emitWithAck resolves with the first argument
    });

    it('an ack reaches the callback with every argument ("ok", 1)', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const p = new Promise((resolve) => s.emit('pay', 11, (...args) => resolve(args)));
      await answer(s.id, 'pay', ['ok', 1]);
      assert.deepEqual(await h.withTimeout(p, 3000, 'ack callback'), ['ok', 1]);
    });

    it('acks in /chat and concurrent acks from several sockets go to the right callbacks', async () => {
      const a = await gw.connect('/chat', { transports: ['websocket'] });
      const b = await gw.connect('/chat');
      const pa = a.timeout(4000).emitWithAck('q', 'A');
      const pb = b.timeout(4000).emitWithAck('q', 'B');
      const ea = await sin.next(isEvent(a.id, 'q'));
      const eb = await sin.next(isEvent(b.id, 'q'));
      assert.equal(ea.nsp, '/chat');
      assert.notEqual(String(ea.ack.id) + ea.sid, String(eb.ack.id) + eb.sid);
      // answer in reverse order
      await gw.reply({ type: 'ack', id: eb.ack.id, data: ['for-B'] });
      await gw.reply({ type: 'ack', id: ea.ack.id, data: ['for-A'] });
      assert.deepEqual(await Promise.all([pa, pb]), ['for-A', 'for-B']);
    });

    it('disconnect: reason "client namespace disconnect" when socket.disconnect() is called; rooms include the sid', async () => {
      const s = await gw.connect('/');
      const sid = s.id;
      s.disconnect();
      const e = await sin.next(isDisconnect(sid));
      assert.equal(e.nsp, '/');
      assert.equal(e.node, 'gw-test');
      assert.equal(e.reason, 'client namespace disconnect');
      assert.ok(Array.isArray(e.rooms) && e.rooms.includes(sid), `rooms ${JSON.stringify(e.rooms)} should include ${sid}`);
    });

    it('disconnect: reason "transport close" when the client closes its connection', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const sid = s.id;
      s.io.engine.close();
      const e = await sin.next(isDisconnect(sid));
      assert.equal(e.reason, 'transport close');
    });

    it('disconnect: reason "transport close" when the TCP connection dies (both namespaces reported)', async () => {
      const w = await gw.wsSocketIO('/');
      w.send('40/chat,');
      const c = await w.nextMatching((m) => typeof m === 'string' && m.startsWith('40/chat,'));
      const chatSid = JSON.parse(c.slice('40/chat,'.length)).sid;
      await sin.next(isConnect(chatSid));
      w.terminate();
      const e1 = await sin.next(isDisconnect(w.sioSid));
      const e2 = await sin.next(isDisconnect(chatSid));
      assert.equal(e1.reason, 'transport close');
      assert.equal(e1.nsp, '/');
      assert.equal(e2.reason, 'transport close');
      assert.equal(e2.nsp, '/chat');
    });
  });

  describe('backends → gateway (sio.out)', () => {
    /* Three clients: A and B in "/", C in "/chat", each recording what it gets. */
    async function trio() {
      const A = await gw.connect('/', { transports: ['websocket'] });
      const B = await gw.connect('/');
      const C = await gw.connect('/chat', { transports: ['websocket'] });
      return { A, B, C, rA: h.recorder(A), rB: h.recorder(B), rC: h.recorder(C) };
    }

    it('emit to the whole namespace reaches every socket in it and none elsewhere', async () => {
      const { rA, rB, rC } = await trio();
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'news', data: [1, 'two', { three: [3] }] });
      await h.waitFor(() => rA.of('news').length && rB.of('news').length, 3000, { message: 'A and B get "news"' });
      assert.deepEqual(rA.of('news'), [[1, 'two', { three: [3] }]]);
      assert.deepEqual(rB.of('news'), [[1, 'two', { three: [3] }]]);
      // positive control for C, sent after: once C has it, "news" would have arrived too
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', event: 'control', data: [] });
      await h.waitFor(() => rC.of('control').length, 3000, { message: 'C gets the control' });
      assert.equal(rC.of('news').length, 0, 'a socket in /chat must not receive an emit to /');
    });

    it('nsp defaults to "/" and rooms [] means the whole namespace', async () => {
      const { rA, rB, rC } = await trio();
      await gw.emitEnvelope({ type: 'emit', event: 'hello', data: ['all'], rooms: [] });
      await h.waitFor(() => rA.of('hello').length && rB.of('hello').length, 3000, { message: 'A and B get "hello"' });
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', event: 'control', data: [] });
      await h.waitFor(() => rC.of('control').length, 3000, { message: 'C gets the control' });
      assert.equal(rC.of('hello').length, 0);
    });

    it('a socket id is a room: rooms [A.id] reaches A only', async () => {
      const { A, rA, rB } = await trio();
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [A.id], event: 'only-a', data: ['secret'] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'marker', data: [] });
      await h.waitFor(() => rA.of('marker').length && rB.of('marker').length, 3000, { message: 'both get the marker' });
      assert.deepEqual(rA.of('only-a'), [['secret']]);
      assert.deepEqual(rB.events.map((e) => e.event), ['marker'], 'B got only the marker');
      // A got it before the marker (one socket's packets stay in order)
      assert.deepEqual(rA.events.map((e) => e.event), ['only-a', 'marker']);
    });

    it('except [A.id] reaches everyone in the namespace but A', async () => {
      const { A, rA, rB } = await trio();
      const D = await gw.connect('/');
      const rD = h.recorder(D);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', except: [A.id], event: 'not-a', data: [1] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'marker', data: [] });
      await h.waitFor(() => rA.of('marker').length && rB.of('marker').length && rD.of('marker').length, 3000, {
        message: 'everyone gets the marker',
      });
      assert.deepEqual(rB.of('not-a'), [[1]]);
      assert.deepEqual(rD.of('not-a'), [[1]]);
      assert.deepEqual(rA.events.map((e) => e.event), ['marker'], 'A got only the marker');
    });

    it('rooms and except combine: rooms [A,B] except [B] reaches A only, each socket once', async () => {
      const { A, B, rA, rB } = await trio();
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [A.id, B.id, A.id], except: [B.id], event: 'x', data: [] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'marker', data: [] });
      await h.waitFor(() => rA.of('marker').length && rB.of('marker').length, 3000, { message: 'marker' });
      assert.equal(rA.of('x').length, 1, 'A receives it exactly once');
      assert.equal(rB.of('x').length, 0);
    });

    it('join / leave change room membership; the room then targets emits', async () => {
      const { A, rA, rB } = await trio();
      await gw.emitEnvelope({ type: 'join', nsp: '/', rooms: [A.id], join: ['vip'] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: ['vip'], event: 'vip-news', data: [1] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'marker', data: [] });
      await h.waitFor(() => rA.of('marker').length && rB.of('marker').length, 3000, { message: 'marker 1' });
      assert.deepEqual(rA.of('vip-news'), [[1]]);
      assert.equal(rB.of('vip-news').length, 0);
      await gw.emitEnvelope({ type: 'leave', nsp: '/', rooms: [A.id], leave: ['vip'] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: ['vip'], event: 'vip-news', data: [2] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'marker', data: [] });
      await h.waitFor(() => rA.of('marker').length === 2, 3000, { message: 'marker 2' });
      assert.deepEqual(rA.of('vip-news'), [[1]], 'no delivery after leave');
    });

    it('disconnect envelope disconnects the targeted socket only', async () => {
      const { A, B } = await trio();
      const aid = A.id; // socket.io-client forgets its id on disconnect
      const reason = h.once(A, 'disconnect', 3000);
      await gw.emitEnvelope({ type: 'disconnect', nsp: '/', rooms: [aid] });
      assert.equal((await reason)[0], 'io server disconnect');
      const d = await sin.next(isDisconnect(aid));
      assert.equal(d.reason, 'server namespace disconnect');
      assert.equal(B.connected, true);
      const p = B.timeout(3000).emitWithAck('still', 1);
      await answer(B.id, 'still', ['yes']);
      assert.equal(await p, 'yes');
    });

    for (const transports of [['websocket'], ['polling']]) {
      it(`disconnect with close tells every socket of the connection, none reconnects (${transports[0]})`, async () => {
        const m = gw.manager({ transports });
        const main = h.managerSocket(m, '/');
        const chat = h.managerSocket(m, '/chat');
        await Promise.all([h.awaitConnect(main), h.awaitConnect(chat)]);
        const other = await gw.connect('/', { transports: ['websocket'] });
        const [mid, cid] = [main.id, chat.id];
        let reconnects = 0;
        main.on('connect', () => reconnects++);
        chat.on('connect', () => reconnects++);
        const rm = h.once(main, 'disconnect', 3000);
        const rc = h.once(chat, 'disconnect', 3000);
        await gw.emitEnvelope({ type: 'disconnect', nsp: '/chat', rooms: [cid], close: true });
        assert.equal((await rc)[0], 'io server disconnect');
        assert.equal((await rm)[0], 'io server disconnect', 'the other namespace of the connection too');
        for (const sid of [mid, cid]) {
          const d = await sin.next(isDisconnect(sid));
          assert.equal(d.reason, 'server namespace disconnect');
        }
        // a later barrier, then: nobody reconnected, the unrelated client still works
        await gw.fetchSockets();
        assert.equal(reconnects, 0);
        assert.equal(other.connected, true);
        const p = other.timeout(3000).emitWithAck('still', 2);
        await answer(other.id, 'still', ['ok']);
        assert.equal(await p, 'ok');
      });
    }

    it('emit with ack: one ack per answering client on reply_to, then ack_done', async () => {
      const { A } = await trio();
      A.on('ask', (x, cb) => cb('answer', x));
      const replies = await gw.subscribe('test.acks');
      await gw.emitEnvelope({
        type: 'emit',
        nsp: '/',
        rooms: [A.id],
        event: 'ask',
        data: [5],
        ack: { reply_to: 'test.acks', id: 'q7', timeout_ms: 2000 },
      });
      const a = await replies.next((m) => m.type === 'ack' && m.id === 'q7');
      assert.deepEqual(a, { type: 'ack', id: 'q7', sid: A.id, data: ['answer', 5] });
      const done = await replies.next((m) => m.type === 'ack_done' && m.id === 'q7');
      assert.equal(done.node, 'gw-test');
      assert.equal(done.acked, 1);
      assert.equal(done.timed_out, 0);
    });

    it('emit with ack: a client that does not answer counts as timed_out', async () => {
      const { A } = await trio();
      const replies = await gw.subscribe('test.acks2');
      await gw.emitEnvelope({
        type: 'emit',
        nsp: '/',
        rooms: [A.id],
        event: 'nobody-answers',
        data: [],
        ack: { reply_to: 'test.acks2', id: 'q8', timeout_ms: 300 },
      });
      const done = await replies.next((m) => m.type === 'ack_done' && m.id === 'q8', 4000);
      assert.equal(done.acked, 0);
      assert.equal(done.timed_out, 1);
      assert.equal(replies.all((m) => m.type === 'ack').length, 0);
    });

    it('fetch answers with the matching sockets and their rooms', async () => {
      const { A, B } = await trio();
      const replies = await gw.subscribe('test.fetch');
      await gw.emitEnvelope({ type: 'fetch', nsp: '/', rooms: [A.id, B.id], reply_to: 'test.fetch', id: 'f1' });
      const r = await replies.next((m) => m.type === 'sockets' && m.id === 'f1');
      assert.equal(r.node, 'gw-test');
      const ids = r.sockets.map((s) => s.id).sort();
      assert.deepEqual(ids, [A.id, B.id].sort());
      for (const s of r.sockets) assert.ok(s.rooms.includes(s.id), 'each socket is in its own room');
    });
  });

  describe('malformed envelopes', () => {
    it('are dropped and counted, and the gateway keeps working', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const rec = h.recorder(s);
      const before = malformedCount(await gw.metricsText());
      assert.notEqual(before, null, 'expected a metric whose name contains "malformed" on /metrics');
      await gw.publish(gw.topics.out, 'this is not json {');
      await gw.publish(gw.topics.out, { nsp: '/', event: 'no-type', data: [] });
      await gw.publish(gw.topics.out, { type: 'emit', nsp: '/', data: ['no event name'] });
      await gw.publish(gw.topics.out, '[1,2,3]');
      await gw.publish(gw.topics.reply, 'not json either');
      // an ack for an id nobody waits for is not an error: ignored
      await gw.reply({ type: 'ack', id: 'no-such-ack', data: [] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [s.id], event: 'after', data: ['ok'] });
      await h.waitFor(() => rec.of('after').length, 3000, { message: 'a valid emit after the malformed ones' });
      assert.deepEqual(rec.events.map((e) => e.event), ['after'], 'nothing but the valid emit reached the client');
      const now = await h.waitFor(
        async () => {
          const v = malformedCount(await gw.metricsText());
          return v >= before + 4 ? v : false;
        },
        3000,
        { message: 'malformed counter to grow by at least 4' },
      );
      assert.ok(now >= before + 4);
      assert.ok(gw.running, 'gateway still running');
      // logged, but rate-limited ("logged once per interval"): fewer lines than drops
      const logged = gw.stderr.split('\n').filter((l) => MALFORMED_METRIC.test(l)).length;
      assert.ok(logged >= 1, 'a malformed envelope is logged');
      assert.ok(logged < 5, `malformed envelopes are logged rate-limited, got ${logged} lines for 5 drops`);
    });
  });
});

describe('inbound topics per namespace and per event (topic_in, event_topics)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({
      namespaces: [
        { name: '/' },
        { name: '/orders', topic_in: 'orders.in', event_topics: [{ event: 'payment.*', topic: 'payments.in' }] },
      ],
    });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it("a namespace's envelopes go to its topic, matching events to theirs; the rest stays on sio.in", async () => {
    const [sioIn, orders, payments] = [await gw.subscribe('sio.in'), await gw.subscribe('orders.in'), await gw.subscribe('payments.in')];
    const o = await gw.connect('/orders');
    const conn = await orders.next((m) => m.type === 'connect');
    assert.equal(conn.sid, o.id);
    o.emit('payment.card', { eur: 5 });
    o.emit('cart', { n: 1 });
    const pay = await payments.next((m) => m.type === 'event');
    assert.equal(pay.event, 'payment.card');
    assert.deepEqual(pay.data, [{ eur: 5 }]);
    const cart = await orders.next((m) => m.type === 'event');
    assert.equal(cart.event, 'cart');
    const root = await gw.connect('/');
    root.emit('hello', 1);
    const hello = await sioIn.next((m) => m.type === 'event');
    assert.equal(hello.event, 'hello');
    o.disconnect();
    assert.equal((await orders.next((m) => m.type === 'disconnect')).sid, conn.sid);
    // nothing of /orders reached sio.in, nothing but payments reached payments.in
    assert.deepEqual(sioIn.all((m) => m.nsp === '/orders'), []);
    assert.deepEqual(payments.all((m) => m.event !== 'payment.card'), []);
  });
});
