'use strict';
/*
 * engine.workers: several service loops in one process, each with the connections it
 * accepted (SO_REUSEPORT: the kernel spreads new connections), one bus plugin shared.
 * With the real socket.io-client@4 (websocket and polling-only), raw Engine.IO
 * polling on a fresh connection per request (so requests of one session land on
 * either loop), and envelopes over the HTTP API:
 *   - a socket id names its loop (its first 4 characters): both loops get clients;
 *   - a broadcast reaches every client once and in order, whichever loop holds it;
 *   - join / leave / disconnect envelopes reach sockets on every loop; a fetch and an
 *     emit with ack are answered once for the node (every loop's sockets, one ack_done);
 *   - a poll, a POST and a websocket upgrade that land on the other loop are passed
 *     to the session's loop (steered) and counted, not relayed; a kept-alive
 *     connection's requests for the other loop's session are relayed in process;
 *   - /metrics and /healthz sum the loops;
 *   - with recovery, clients whose transport died come back on whichever loop the
 *     kernel gives them, with their id, rooms and the missed emits once and in order;
 *     acks and emits routed by their id still reach them there;
 *   - POST /api/drain drains every loop, and the process exits 0.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./helpers/gateway');

const tag = (id) => id.slice(0, 4);

async function connectMany(gw, n, transports) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await gw.connect('/', { transports }));
  return out;
}

describe('engine.workers: 2 service loops', () => {
  let gw;
  let clients = [];
  const it = h.gatewayIt(() => gw);

  before(async () => {
    gw = await h.startGateway({
      engine: { workers: 2, ping_interval_ms: 2000, ping_timeout_ms: 3000 },
      namespaces: [{ name: '/' }, { name: '/rooms', room_events: true }],
    });
    clients = [...(await connectMany(gw, 100, ['websocket'])), ...(await connectMany(gw, 100, ['polling']))];
  });

  after(async () => {
    h.closeAllClients();
    if (gw) await gw.stopChecked();
  });

  it('clients land on both loops; metrics and /healthz count every loop', async () => {
    const tags = new Set(clients.map((s) => tag(s.id)));
    assert.equal(tags.size, 2, `socket ids name two loops: ${[...tags]}`);
    assert.equal(await gw.metric('sio_sockets', { nsp: '/' }), clients.length);
    assert.equal(await gw.metric('sio_workers'), 2);
    const per = [await gw.metric('sio_loop_connections', { loop: '0' }), await gw.metric('sio_loop_connections', { loop: '1' })];
    assert.ok(per[0] > 0 && per[1] > 0, `both loops hold connections: ${per}`);
    const hz = await gw.http('/healthz');
    assert.equal(hz.status, 200);
    assert.equal(hz.json().sessions, clients.length);
  });

  it('a broadcast reaches every client of every loop once, in order', async () => {
    const got = clients.map(() => []);
    clients.forEach((s, i) => s.on('news', (n) => got[i].push(n)));
    for (let n = 0; n < 30; n++) await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'news', data: [n] });
    const want = [...Array(30).keys()];
    await h.waitFor(() => got.every((g) => g.length >= 30), 8000, { message: 'every client got 30 broadcasts' });
    await gw.fetchSockets(); // everything before it was applied on every loop
    got.forEach((g, i) => assert.deepEqual(g, want, `client ${i} (${clients[i].id})`));
    clients.forEach((s) => s.off('news'));
  });

  it('join, emit to the room, leave, on sockets of both loops; fetch answered once with every loop\'s sockets', async () => {
    const byTag = {};
    for (const s of clients) (byTag[tag(s.id)] ||= []).push(s);
    const members = Object.values(byTag).flatMap((v) => v.slice(0, 3)); // 3 of each loop
    const ids = members.map((s) => s.id);
    await gw.emitEnvelope({ type: 'join', nsp: '/', rooms: ids, join: ['vip'] });
    const got = new Map();
    for (const s of clients) s.on('vip-only', (x) => got.set(s.id, x));
    await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: ['vip'], event: 'vip-only', data: ['hi'] });

    const replies = await gw.subscribe('test.workers.fetch');
    await gw.emitEnvelope({ type: 'fetch', nsp: '/', rooms: ['vip'], reply_to: replies.topic, id: 'f1' });
    const f1 = await replies.next((m) => m && m.id === 'f1', 5000);
    assert.equal(f1.type, 'sockets');
    assert.deepEqual(f1.sockets.map((x) => x.id).sort(), [...ids].sort());
    for (const x of f1.sockets) assert.ok(x.rooms.includes('vip'), `${x.id} is in vip`);
    // a second fetch as a barrier: the node answers it after f1 on every loop, so a
    // second f1 answer would have come before it
    await gw.emitEnvelope({ type: 'fetch', nsp: '/', reply_to: replies.topic, id: 'f2' });
    const f2 = await replies.next((m) => m && m.id === 'f2', 5000);
    assert.equal(f2.sockets.length, clients.length);
    assert.equal(replies.messages.map((x) => x.data).filter((m) => m && m.id === 'f1').length, 1, 'one answer to f1');
    assert.equal(replies.messages.map((x) => x.data).filter((m) => m && m.id === 'f2').length, 1, 'one answer to f2');

    await h.waitFor(() => got.size === ids.length, 5000, { message: 'every member got the room emit' });
    assert.deepEqual([...got.keys()].sort(), [...ids].sort(), 'only the members');

    await gw.emitEnvelope({ type: 'leave', nsp: '/', rooms: ['vip'], leave: ['vip'] });
    const left = await gw.fetchSockets({ rooms: ['vip'] });
    assert.deepEqual(left.sockets, []);
    clients.forEach((s) => s.off('vip-only'));
  });

  it('room events mean the node: one create-room for the first member of any loop, one delete-room for the last', async () => {
    const sin = await gw.subscribe(gw.topics.in);
    const byTag = {};
    for (let i = 0; i < 40 && Object.keys(byTag).length < 2; i++) {
      const s = await gw.connect('/rooms', { transports: ['websocket'] });
      (byTag[tag(s.id)] ||= []).push(s);
    }
    const [A, B] = Object.values(byTag).map((v) => v[0]);
    assert.ok(A && B, 'a /rooms socket on each loop');
    const room = `r-${Date.now()}`;
    const evs = (type) => sin.all((e) => e.type === type && e.room === room);
    const barrier = async (id) => { // a fresh room's create-room: what came before is in sin
      const b = `b-${Math.random()}`;
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [id], join: [b] });
      await sin.next((e) => e.type === 'create-room' && e.room === b, 5000);
    };
    await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [A.id], join: [room] });
    await sin.next((e) => e.type === 'join-room' && e.room === room && e.sid === A.id, 5000);
    await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [B.id], join: [room] });
    await sin.next((e) => e.type === 'join-room' && e.room === room && e.sid === B.id, 5000);
    await barrier(A.id);
    await barrier(B.id);
    assert.equal(evs('create-room').length, 1, 'one create-room for the node');
    await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [A.id], leave: [room] });
    await sin.next((e) => e.type === 'leave-room' && e.room === room && e.sid === A.id, 5000);
    await barrier(A.id);
    await barrier(B.id);
    assert.equal(evs('delete-room').length, 0, 'no delete-room while the other loop holds a member');
    await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [B.id], leave: [room] });
    await sin.next((e) => e.type === 'delete-room' && e.room === room, 5000);
    // and again from the other loop first: the room is created once more, then deleted once more
    const joins = (sid) => sin.all((e) => e.type === 'join-room' && e.room === room && e.sid === sid).length;
    await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [B.id, A.id], join: [room] });
    await h.waitFor(() => joins(A.id) === 2 && joins(B.id) === 2, 5000, { message: 'both joined again' });
    await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [A.id, B.id], leave: [room] });
    await h.waitFor(() => evs('delete-room').length === 2, 5000, { message: 'the second delete-room' });
    await barrier(A.id);
    await barrier(B.id);
    assert.deepEqual(sin.all((e) => (e.type === 'create-room' || e.type === 'delete-room') && e.room === room).map((e) => e.type),
      ['create-room', 'delete-room', 'create-room', 'delete-room']);
    for (const v of Object.values(byTag)) for (const s of v) s.disconnect();
  });

  it('an emit with ack to every socket: one ack per socket, then one ack_done for the node, last', async () => {
    clients.forEach((s) => s.on('quiz', (q, cb) => cb(`${q}:${s.id}`)));
    const replies = await gw.subscribe('test.workers.acks');
    await gw.emitEnvelope({
      type: 'emit', nsp: '/', event: 'quiz', data: ['q'], ack: { reply_to: replies.topic, id: 'q1', timeout_ms: 5000 },
    });
    const done = await replies.next((m) => m && m.type === 'ack_done' && m.id === 'q1', 8000);
    assert.equal(done.acked, clients.length);
    assert.equal(done.timed_out, 0);
    const msgs = replies.messages.map((x) => x.data).filter((m) => m && m.id === 'q1');
    const acks = msgs.filter((m) => m.type === 'ack');
    assert.equal(acks.length, clients.length);
    assert.deepEqual(acks.map((a) => a.sid).sort(), clients.map((s) => s.id).sort());
    for (const a of acks) assert.deepEqual(a.data, [`q:${a.sid}`]);
    assert.equal(msgs[msgs.length - 1].type, 'ack_done', 'ack_done comes last');
    // barrier, then: still one ack_done
    await gw.fetchSockets();
    assert.equal(replies.messages.map((x) => x.data).filter((m) => m && m.type === 'ack_done').length, 1);
    clients.forEach((s) => s.off('quiz'));
  });

  it('a session is served on its own loop whichever loop accepts the request: POST, held GET, ping, on fresh connections (steered, not relayed)', async () => {
    const steered0 = await gw.metric('sio_loop_steered_total');
    const front0 = await gw.metric('sio_relay_requests_total', { side: 'front' });
    for (let k = 0; k < 4; k++) {
      const eio = new h.EioPolling(gw.url);
      await eio.handshake();
      const post = await eio.post('40');
      assert.equal(post.status, 200);
      assert.equal(post.text, 'ok');
      const { packet } = await eio.pollUntil((p) => p.startsWith('40'));
      assert.match(packet, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
      assert.equal(tag(JSON.parse(packet.slice(2)).sid), tag(eio.sid), 'the socket is on its session\'s loop');
      for (let i = 0; i < 6; i++) {
        const r = await eio.post(`42["hello",${i}]`);
        assert.equal(r.status, 200, `POST ${i}: ${r.status} ${r.text}`);
      }
      /* a held GET is released by a ping; the pong goes by any loop too */
      await eio.pollUntil((p) => p === '2', { timeout: 5000, answerPings: false });
      assert.equal((await eio.post('3')).status, 200);
      const close = await eio.post('1');
      assert.equal(close.status, 200);
    }
    const steered1 = await gw.metric('sio_loop_steered_total');
    const front1 = await gw.metric('sio_relay_requests_total', { side: 'front' });
    assert.ok(steered1 > steered0, `connections were passed to their session's loop (${steered0} → ${steered1})`);
    assert.equal(front1, front0, 'no request was relayed: each fresh connection went to its session\'s loop');
  });

  it('websocket upgrades that land on the other loop are passed to the session\'s loop and complete there', async () => {
    const steered0 = await gw.metric('sio_loop_steered_total');
    const owner0 = await gw.metric('sio_relay_requests_total', { side: 'owner' });
    for (let k = 0; k < 16; k++) {
      const eio = new h.EioPolling(gw.url);
      await eio.handshake();
      const ws = await gw.ws(`EIO=4&transport=websocket&sid=${encodeURIComponent(eio.sid)}`);
      ws.send('2probe');
      assert.equal(await ws.next({ timeout: 3000 }), '3probe');
      ws.send('5');
      ws.send('40');
      const open = await ws.next({ timeout: 3000 });
      assert.match(open, /^40\{"sid":/, `upgrade ${k}`);
      assert.equal(tag(JSON.parse(open.slice(2)).sid), tag(eio.sid));
      ws.close();
    }
    assert.ok((await gw.metric('sio_loop_steered_total')) > steered0, 'some upgrades were passed to the other loop');
    assert.equal(await gw.metric('sio_relay_requests_total', { side: 'owner' }), owner0, 'no upgrade was relayed');
    assert.equal(await gw.metric('sio_relay_open', { side: 'owner' }), 0, 'no websocket is relayed');
  });

  it('a keep-alive connection carrying requests for sessions of both loops: the other loop\'s are relayed in process', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(gw.url);
    const get = (path, { method = 'GET', body } = {}) => new Promise((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path, method, agent,
        headers: body ? { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode, text, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.end(body);
    });
    try {
      const path = '/socket.io/?EIO=4&transport=polling';
      const first = await get(path);
      assert.equal(first.status, 200);
      const here = tag(JSON.parse(first.text.slice(1)).sid); // the loop holding this connection
      let other;
      for (let i = 0; i < 40 && !other; i++) {
        const e = new h.EioPolling(gw.url);
        await e.handshake();
        if (tag(e.sid) !== here) other = e;
      }
      assert.ok(other, 'a session on the other loop');
      const front0 = await gw.metric('sio_relay_requests_total', { side: 'front' });
      const q = `${path}&sid=${encodeURIComponent(other.sid)}`;
      const post = await get(q, { method: 'POST', body: '40' });
      assert.equal(post.status, 200);
      assert.equal(post.text, 'ok');
      assert.equal(post.reused, true, 'the POST went on the kept-alive connection');
      const poll = await get(q);
      assert.equal(poll.status, 200);
      assert.equal(poll.reused, true);
      assert.match(poll.text, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
      assert.ok((await gw.metric('sio_relay_requests_total', { side: 'front' })) >= front0 + 2, 'both were relayed');
      assert.equal((await get(q, { method: 'POST', body: '1' })).status, 200);
    } finally {
      agent.destroy();
    }
  });
});

describe('engine.workers: 2 loops with connection state recovery', () => {
  let gw;
  let be;
  const it = h.gatewayIt(() => gw);
  before(async () => {
    gw = await h.startGateway({
      engine: { workers: 2 },
      recovery: { max_disconnection_ms: 6000 },
      namespaces: [{ name: '/', routes: [{ topic: 'test.workers.feed', event: 'feed' }] }],
    });
    be = await gw.backend();
  });
  after(async () => {
    h.closeAllClients();
    if (gw) await gw.stopChecked();
  });

  /* A client that reconnects by itself 300 ms after its transport dies. */
  const client = (transports) => gw.socket('/', {
    transports, reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0,
  });

  it('clients come back on either loop: same id, rooms, the missed emits and route messages once and in order; acks and targeted emits reach them there', async () => {
    const all = [...Array(12)].map(() => client(['websocket'])).concat([...Array(12)].map(() => client(['polling'])));
    await Promise.all(all.map((s) => h.once(s, 'connect', 8000)));
    const ids = all.map((s) => s.id);
    const loopsBefore = all.map((s) => tag(s.io.engine.id));
    assert.equal(new Set(ids.map(tag)).size, 2, 'sockets on both loops');
    await gw.emitEnvelope({ type: 'join', nsp: '/', rooms: ids, join: ['team'] });
    const got = all.map(() => []);
    const feed = all.map(() => []);
    all.forEach((s, i) => s.on('ev', (x) => got[i].push(x)));
    all.forEach((s, i) => s.on('feed', (x) => feed[i].push(x.n)));
    await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: ['team'], event: 'ev', data: ['before'] });
    await h.waitFor(() => got.every((g) => g.length === 1), 5000, { message: 'every client got the first emit' });
    // the last packet before the gap is a route message: its offset is what the
    // clients come back with
    await gw.publish('test.workers.feed', { n: 0 });
    await h.waitFor(() => feed.every((g) => g.length === 1), 5000, { message: 'every client got the first route message' });

    const lost = ids.map((id) => be.in.next((e) => e.type === 'disconnect' && e.sid === id, 8000));
    const back = ids.map((id) => be.in.next((e) => e.type === 'connect' && e.sid === id && e.recovered, 12000));
    all.forEach((s) => s.io.engine.close()); // the transports, not the sockets
    for (const l of await Promise.all(lost)) assert.equal(l.recoverable, true);
    await h.waitFor(async () => (await gw.metric('sio_recovery_sessions')) >= ids.length, 5000, { message: 'lost' });
    await gw.fetchSockets(); // a barrier: every loop has every other loop's snapshots
    assert.equal(await gw.metric('sio_recovery_sessions'), ids.length, 'each lost socket counted once');
    for (const n of [1, 2, 3]) await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: ['team'], event: 'ev', data: [n] });
    for (const n of [1, 2]) await gw.publish('test.workers.feed', { n });
    await Promise.all(back);
    await h.waitFor(() => all.every((s) => s.connected), 5000, { message: 'every client reconnected' });
    await gw.fetchSockets(); // a barrier on every loop
    all.forEach((s, i) => {
      assert.equal(s.recovered, true, `client ${i} recovered`);
      assert.equal(s.id, ids[i]);
      assert.deepEqual(got[i], ['before', 1, 2, 3], `client ${i}: the missed emits once, in order`);
      assert.deepEqual(feed[i], [0, 1, 2], `client ${i}: the missed route messages once, in order`);
    });
    // every loop holds a copy of each snapshot; the process counts each once
    assert.equal(await gw.metric('sio_recovery_sessions'), 0);
    assert.equal(await gw.metric('sio_recovery_expired_total'), 0);
    // the kernel spread the new connections: some came back on the other loop
    const moved = all.filter((s, i) => tag(s.io.engine.id) !== loopsBefore[i]);
    assert.ok(moved.length > 0, 'a client came back on the other loop');
    assert.ok(moved.some((s) => tag(s.io.engine.id) !== tag(s.id)), 'a socket lives on a loop its id does not name');
    assert.equal(await gw.metric('sio_recoveries_total', { result: 'recovered' }), all.length);

    const list = await gw.fetchSockets({ rooms: ['team'] });
    assert.deepEqual(list.sockets.map((x) => x.id).sort(), [...ids].sort(), 'each socket once, in its room again');
    for (const s of moved) {
      // a backend's ack (sio.reply, routed by the socket id to the loop it names) and an
      // emit to the socket id reach it where it lives now
      assert.equal(await s.timeout(4000).emitWithAck('echo', s.id), s.id);
      const own = [];
      s.on('own', (x) => own.push(x));
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [s.id], event: 'own', data: ['x'] });
      await h.waitFor(() => own.length === 1, 3000, { message: 'the emit to its id' });
    }
    await gw.fetchSockets();
    for (const s of moved) assert.equal(s.listeners('own').length, 1);
    all.forEach((s) => s.close());
  });
});

describe('engine.workers: drain and config', () => {
  let gw;
  const it = h.gatewayIt(() => gw);
  it('POST /api/drain drains every loop: healthz 503 at once, every client closed, exit 0', async () => {
    gw = await h.startGateway({ engine: { workers: 2 }, shutdown: { drain_ms: 800 } });
    try {
      const all = await connectMany(gw, 24, ['websocket']);
      assert.equal(new Set(all.map((s) => tag(s.id))).size, 2);
      const lost = new Set();
      all.forEach((s) => {
        const id = s.id; // (the client forgets it at the disconnect)
        s.on('disconnect', (reason) => lost.add(`${id} ${reason}`));
      });
      const r = await gw.http('/api/drain', { method: 'POST' });
      assert.equal(r.status, 202);
      for (let i = 0; i < 4; i++) { // fresh connections: both loops say so
        const hz = await gw.http('/healthz');
        assert.equal(hz.status, 503);
        assert.equal(hz.json().status, 'draining');
      }
      await h.waitFor(() => lost.size === all.length, 5000, { message: 'every client closed' });
      for (const l of lost) assert.match(l, / transport close$/);
      const code = await h.withTimeout(gw.exited.then(() => gw.exitCode()), 5000, 'gateway exit');
      assert.equal(code, 0);
    } finally {
      h.closeAllClients();
      await gw.stop();
    }
  });

  it('without engine.workers: one loop per online CPU (auto); with node topics off, one', async () => {
    const cpus = require('node:os').availableParallelism();
    gw = await h.startGateway({});
    try {
      assert.equal(await gw.metric('sio_workers'), cpus);
      if (cpus > 1) assert.match(gw.stderr, new RegExp(`${cpus} service loops \\(engine\\.workers\\)`));
    } finally {
      assert.equal(await gw.stop(), 0);
    }
    gw = await h.startGateway({ topics: { node: '' } });
    try {
      assert.equal(await gw.metric('sio_workers'), 1);
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });

  it('--check: workers auto and 3 pass, with recovery and admin_ui too; 0, too many or without node topics are refused with file:line', async () => {
    for (const w of ['auto', 3]) {
      const yaml = `engine:\n  workers: ${w}\nrecovery:\n  max_disconnection_ms: 1000\nadmin_ui:\n  enabled: true\n  auth: false\n`;
      const r = await h.runGateway(['--check', '-c', h.writeConfig(yaml)]);
      assert.equal(r.code, 0, r.stderr);
    }
    const bad = [
      ['engine:\n  workers: 0\n', /gateway\.yaml:2:\d+: engine\.workers: .*auto/],
      ['engine:\n  workers: 257\n', /gateway\.yaml:2:\d+: engine\.workers: .*auto/],
      ['engine:\n  workers: 2\ntopics:\n  node: ""\n', /gateway\.yaml:2:\d+: engine\.workers: .*topics\.node/],
    ];
    for (const [yaml, re] of bad) {
      const r = await h.runGateway(['--check', '-c', h.writeConfig(yaml)]);
      assert.equal(r.code, 1, yaml);
      assert.match(r.stderr, re);
    }
  });
});
