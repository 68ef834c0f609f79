'use strict';
/*
 * The rest of the backend contract (DESIGN §1.2, issue 3), with the test as
 * the backend (SSE on sio.in, POST /api/publish to sio.out / sio.reply.gw-test
 * and to raw route topics) and real socket.io clients (raw Engine.IO where
 * the client library hides the case):
 *
 *   auth: backend      connect envelope id/reply_to, connect_result ok/error,
 *                      auth timeout, late results, no events before admission
 *   events allowlist   dropped and counted (sio_events_rejected_total), "*"
 *   volatile emits     reach an idle client; dropped for a busy queue / mid-upgrade
 *   room events        join-room/leave-room/create-room/delete-room when on; none when off
 *   raw topic routes   {room} routes, whole-namespace and fixed-room routes,
 *                      body as JSON / string / binary
 *
 * Every negative check ("must not receive / be admitted / be published") is
 * made after a later positive control has arrived on the same path, never
 * after a bare sleep. The out topic is applied in order, so a fetch answer
 * (gw.fetchSockets) proves that every envelope published before it was
 * applied; the memory bus keeps one total order across topics.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

const REJECTED = 'sio_events_rejected_total';
const DROPPED_VOLATILE = 'sio_dropped_volatile_total';
const SHORT = 3000; // deadline for things that should happen at once

const ROUTES = [
  { topic: 'chat.room.{room}', event: 'message' },
  { topic: 'chat.all', event: 'news' },
  { topic: 'chat.fixed', event: 'fx', room: 'lobby' },
];

let uniq = 0;
const unique = (p) => `${p}-${process.pid}-${++uniq}`;

describe('backend contract', () => {
  let gw;
  let sin; // SSE on sio.in
  before(async () => {
    gw = await h.startGateway({
      namespaces: [
        { name: '/', events: ['*'] },
        { name: '/chat', routes: ROUTES },
        { name: '/auth', auth: 'backend', auth_timeout_ms: 3000 },
        { name: '/slow', auth: 'backend', auth_timeout_ms: 300 },
        { name: '/strict', events: ['a', 'b'] },
        { name: '/rooms', room_events: true },
      ],
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  const isConnect = (sid) => (e) => e.type === 'connect' && e.sid === sid;
  const isEvent = (sid, event) => (e) => e.type === 'event' && e.sid === sid && e.event === event;
  const eventsOf = (sid) => sin.all((e) => e.type === 'event' && e.sid === sid).map((e) => e.event);

  /* Emit `event` to rooms [sid] of nsp and wait until the recorder has it. */
  async function control(nsp, sock, rec, event = unique('ctl')) {
    await gw.emitEnvelope({ type: 'emit', nsp, rooms: [sock.id], event, data: [] });
    await h.waitFor(() => rec.of(event).length, SHORT, { message: `control "${event}" to reach ${sock.id}` });
  }

  /* ------------------------------------------------------------------ (a) auth: backend */

  describe('auth: backend', () => {
    const isAuthConnect = (nsp, tag) => (e) =>
      e.type === 'connect' && e.nsp === nsp && e.handshake && e.handshake.auth && e.handshake.auth.tag === tag;

    /* A client socket to nsp (not awaited) and the connect envelope it caused. */
    async function pending(nsp, opts = {}) {
      const tag = unique('tag');
      const s = gw.socket(nsp, { auth: { tag }, ...opts });
      const errors = [];
      let connects = 0;
      s.on('connect_error', (e) => errors.push(e));
      s.on('connect', () => connects++);
      const env = await sin.next(isAuthConnect(nsp, tag), SHORT);
      return { s, env, tag, errors, get connects() { return connects; } };
    }

    const admit = (env, data) => gw.reply({ type: 'connect_result', id: env.id, ok: true, ...(data ? { data } : {}) });

    it('connect envelope carries id and reply_to; connect_result ok admits with the envelope sid; fetch returns its data', async () => {
      const p = await pending('/auth', { transports: ['websocket'] });
      assert.equal(p.env.reply_to, 'sio.reply.gw-test');
      assert.ok(p.env.id !== undefined && p.env.id !== null && p.env.id !== '', `connect envelope id: ${JSON.stringify(p.env)}`);
      assert.equal(typeof p.env.sid, 'string');
      assert.equal(p.env.node, 'gw-test');
      assert.equal(p.s.connected, false, 'not admitted before connect_result');
      await admit(p.env, { user: 'u1', roles: ['admin'], n: 3 });
      await h.awaitConnect(p.s, SHORT);
      assert.equal(p.s.id, p.env.sid, 'the admitted socket id is the sid of the connect envelope');
      const r = await gw.fetchSockets({ nsp: '/auth', rooms: [p.s.id] });
      assert.equal(r.sockets.length, 1, JSON.stringify(r));
      assert.deepEqual(r.sockets[0].data, { user: 'u1', roles: ['admin'], n: 3 });
      assert.equal(r.sockets[0].handshake.auth.tag, p.tag);
      // an admitted socket's events are published
      p.s.emit('hello', 1);
      assert.deepEqual((await sin.next(isEvent(p.s.id, 'hello'), SHORT)).data, [1]);
    });

    it('connect_result ok:false → connect_error with the backend message and data; the socket is not admitted', async () => {
      const good = await pending('/auth');
      const bad = await pending('/auth', { transports: ['websocket'] });
      await gw.reply({
        type: 'connect_result',
        id: bad.env.id,
        ok: false,
        error: { message: 'not allowed', data: { code: 4031, reason: 'banned' } },
      });
      await admit(good.env, { user: 'ok' });
      await h.awaitConnect(good.s, SHORT); // positive control, answered after the refusal
      await h.waitFor(() => bad.errors.length, SHORT, { message: 'connect_error for the refused socket' });
      assert.equal(bad.errors[0].message, 'not allowed');
      assert.deepEqual(bad.errors[0].data, { code: 4031, reason: 'banned' });
      assert.equal(bad.s.connected, false);
      assert.equal(bad.connects, 0);
      const r = await gw.fetchSockets({ nsp: '/auth', rooms: [bad.env.sid, good.s.id] });
      assert.deepEqual(r.sockets.map((s) => s.id), [good.s.id], 'only the admitted socket exists in /auth');
    });

    it('no connect_result within auth_timeout_ms → connect_error "auth timeout"', async () => {
      const t0 = Date.now();
      const p = await pending('/slow');
      await h.waitFor(() => p.errors.length, SHORT, { message: 'connect_error "auth timeout"' });
      const elapsed = Date.now() - t0;
      assert.equal(p.errors[0].message, 'auth timeout');
      assert.ok(elapsed >= 250, `connect_error after ${elapsed} ms, auth_timeout_ms is 300`);
      assert.equal(p.connects, 0);
      assert.equal(p.s.connected, false);
    });

    it('a connect_result after the auth timeout does not admit', async () => {
      const w = await gw.wsOpen();
      const tag = unique('late');
      w.send(`40/slow,${JSON.stringify({ tag })}`);
      const env = await sin.next(isAuthConnect('/slow', tag), SHORT);
      const err = await w.nextMatching((m) => typeof m === 'string' && m.startsWith('44/slow,'), { timeout: SHORT });
      assert.equal(JSON.parse(err.slice('44/slow,'.length)).message, 'auth timeout');
      await admit(env, { late: true }); // too late
      // positive control on the same reply topic, applied after the late result
      const ctl = await pending('/auth');
      await admit(ctl.env);
      await h.awaitConnect(ctl.s, SHORT);
      const r = await gw.fetchSockets({ nsp: '/slow', rooms: [env.sid] });
      assert.deepEqual(r.sockets, [], 'the timed-out socket is not in /slow');
      const seen = w.messages.filter((m) => typeof m === 'string' && m.startsWith('40/slow,'));
      assert.deepEqual(seen, [], 'no CONNECT for /slow after the timeout');
    });

    it('events sent before admission are not published; events after it are', async () => {
      const w = await gw.wsOpen();
      const tag = unique('early');
      w.send(`40/auth,${JSON.stringify({ tag })}`);
      const env = await sin.next(isAuthConnect('/auth', tag), SHORT);
      const early = unique('early-ev');
      w.send(`42/auth,${JSON.stringify([early, 1])}`);
      // Barrier on the same connection: a CONNECT to /chat (no auth) is handled after the early event.
      w.send('40/chat,');
      let closed = false;
      try {
        await w.nextMatching((m) => typeof m === 'string' && m.startsWith('40/chat,'), { timeout: SHORT });
      } catch (e) {
        // socket.io closes a connection that sends an EVENT for a namespace it has not joined; allowed too
        if (!w.closeInfo) throw e;
        closed = true;
      }
      if (closed) {
        await sin.sync(); // anything the gateway published for the early event is before this marker
      } else {
        await admit(env);
        const c = await w.nextMatching((m) => typeof m === 'string' && m.startsWith('40/auth,'), { timeout: SHORT });
        assert.equal(JSON.parse(c.slice('40/auth,'.length)).sid, env.sid);
        const late = unique('late-ev');
        w.send(`42/auth,${JSON.stringify([late, 2])}`);
        assert.deepEqual((await sin.next(isEvent(env.sid, late), SHORT)).data, [2]);
      }
      assert.deepEqual(
        sin.all((e) => e.type === 'event' && e.event === early),
        [],
        'an event from a socket not yet admitted must not be published',
      );
    });
  });

  /* ------------------------------------------------------------------ (b) events allowlist */

  describe('events allowlist', () => {
    it('events not in the namespace allowlist are dropped and counted in sio_events_rejected_total', async () => {
      const s = await gw.connect('/strict', { transports: ['websocket'] });
      const before = await gw.metric(REJECTED);
      assert.notEqual(before, null, `expected ${REJECTED} on /metrics`);
      s.emit('c', 1);
      s.emit('a', 2);
      s.emit('zz', Buffer.from([1, 2, 3])); // a binary event is filtered too
      s.emit('A'); // names are case-sensitive
      s.emit('b', 3);
      await sin.next(isEvent(s.id, 'b'), SHORT);
      assert.deepEqual(eventsOf(s.id), ['a', 'b']);
      assert.equal((await sin.next(isEvent(s.id, 'a'))).data[0], 2);
      assert.equal((await gw.metric(REJECTED)) - before, 3, 'three rejected events counted');
    });

    it('"*" lets every event through (and counts none)', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const before = await gw.metric(REJECTED);
      s.emit('c', 1);
      s.emit('anything-at-all', 2);
      await sin.next(isEvent(s.id, 'anything-at-all'), SHORT);
      assert.deepEqual(eventsOf(s.id), ['c', 'anything-at-all']);
      assert.equal(await gw.metric(REJECTED), before);
    });
  });

  /* ------------------------------------------------------------------ (c) volatile */

  describe('volatile emits', () => {
    /* A raw polling session joined to "/", with nothing in flight (no GET pending, queue empty). */
    async function idlePolling() {
      const p = gw.polling();
      await p.handshake();
      assert.equal((await p.post('40')).status, 200);
      const { packet } = await p.pollUntil((m) => m.startsWith('40{'), { timeout: SHORT });
      p.sioSid = JSON.parse(packet.slice(2)).sid;
      return p;
    }

    it('a volatile emit reaches an idle websocket client (nothing dropped)', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const rec = h.recorder(s);
      const before = await gw.metric(DROPPED_VOLATILE);
      assert.notEqual(before, null, `expected ${DROPPED_VOLATILE} on /metrics`);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [s.id], event: 'v', data: ['x', 1], volatile: true });
      await h.waitFor(() => rec.of('v').length, SHORT, { message: 'volatile emit to arrive' });
      assert.deepEqual(rec.of('v'), [['x', 1]]);
      assert.equal(await gw.metric(DROPPED_VOLATILE), before);
    });

    it('dropped for a connection whose send queue is not empty; delivered to an idle one by the same emit', async () => {
      const p = await idlePolling();
      const idle = await gw.connect('/', { transports: ['websocket'] });
      const rec = h.recorder(idle);
      const before = await gw.metric(DROPPED_VOLATILE);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [p.sioSid], event: 'first', data: [1] }); // queued: no GET pending
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [p.sioSid, idle.id], event: 'vol', data: [2], volatile: true });
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [p.sioSid], event: 'last', data: [3] });
      await gw.fetchSockets({ nsp: '/', rooms: [p.sioSid] }); // all three applied
      const { packets } = await p.pollUntil((m) => m.startsWith('42["last"'), { timeout: SHORT });
      assert.deepEqual(packets, ['42["first",1]', '42["last",3]'], 'the volatile packet was dropped for the busy connection');
      await h.waitFor(() => rec.of('vol').length, SHORT, { message: 'the idle connection gets the volatile emit' });
      assert.deepEqual(rec.of('vol'), [[2]]);
      assert.equal((await gw.metric(DROPPED_VOLATILE)) - before, 1);
    });

    it('dropped for a connection in the middle of an upgrade', async () => {
      const p = await idlePolling();
      const w = await gw.ws(`EIO=4&transport=websocket&sid=${encodeURIComponent(p.sid)}`);
      w.send('2probe');
      assert.equal(await w.next({ timeout: SHORT }), '3probe');
      const before = await gw.metric(DROPPED_VOLATILE);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [p.sioSid], event: 'vol-up', data: [1], volatile: true });
      await gw.fetchSockets({ nsp: '/', rooms: [p.sioSid] }); // applied while upgrading
      w.send('5');
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [p.sioSid], event: 'after-up', data: [2] });
      const seen = [];
      await w.nextMatching(
        (m) => {
          seen.push(m);
          return typeof m === 'string' && m.startsWith('42["after-up"');
        },
        { timeout: SHORT },
      );
      assert.ok(!seen.some((m) => String(m).includes('vol-up')), `volatile packet delivered mid-upgrade: ${JSON.stringify(seen)}`);
      assert.equal((await gw.metric(DROPPED_VOLATILE)) - before, 1);
    });
  });

  /* ------------------------------------------------------------------ (d) room events */

  describe('room events', () => {
    const ROOM_TYPES = ['join-room', 'leave-room', 'create-room', 'delete-room'];
    const isRoomEv = (type, nsp, room, sid) => (e) =>
      e.type === type && e.nsp === nsp && e.room === room && (sid === undefined || e.sid === sid);
    const roomEvs = (pred = () => true) => sin.all((e) => ROOM_TYPES.includes(e.type) && pred(e));

    /* Join sock to a fresh room and wait for its create-room: every room event caused before is in sin. */
    async function barrier(sock) {
      const room = unique('barrier');
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [sock.id], join: [room] });
      await sin.next(isRoomEv('create-room', '/rooms', room), SHORT);
      await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [sock.id], leave: [room] });
      await sin.next(isRoomEv('delete-room', '/rooms', room), SHORT);
    }

    it('join-room / leave-room per socket, create-room / delete-room for the first / last local member', async () => {
      const A = await gw.connect('/rooms', { transports: ['websocket'] });
      const B = await gw.connect('/rooms');
      await sin.next(isConnect(A.id), SHORT);
      await sin.next(isConnect(B.id), SHORT);
      const r = unique('room');
      const count = (type, sid) => roomEvs((e) => e.type === type && e.room === r && (sid === undefined || e.sid === sid)).length;

      // A joins: the room is created
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [A.id], join: [r] });
      const created = await sin.next(isRoomEv('create-room', '/rooms', r), SHORT);
      assert.equal(created.nsp, '/rooms');
      assert.equal(created.room, r);
      const joined = await sin.next(isRoomEv('join-room', '/rooms', r, A.id), SHORT);
      assert.equal(joined.sid, A.id);

      // no room events for the sockets' own id rooms at connect
      await barrier(A);
      assert.deepEqual(roomEvs((e) => e.room === A.id || e.room === B.id), [], 'no room events for a socket id room');

      // B joins: join-room, but the room already exists
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [B.id], join: [r] });
      await sin.next(isRoomEv('join-room', '/rooms', r, B.id), SHORT);
      // joining again changes nothing
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [A.id], join: [r] });
      await barrier(A);
      assert.equal(count('create-room'), 1, 'one create-room for the first member only');
      assert.equal(count('join-room', A.id), 1, 'no second join-room for a socket already in the room');

      // A leaves: leave-room, the room still has B
      await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [A.id], leave: [r] });
      await sin.next(isRoomEv('leave-room', '/rooms', r, A.id), SHORT);
      // leaving a room one is not in changes nothing
      await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [A.id], leave: [r] });
      await barrier(B);
      assert.equal(count('delete-room'), 0, 'no delete-room while B is still in the room');
      assert.equal(count('leave-room', A.id), 1, 'no leave-room for a socket not in the room');

      // B leaves: the room is deleted
      await gw.emitEnvelope({ type: 'leave', nsp: '/rooms', rooms: [B.id], leave: [r] });
      await sin.next(isRoomEv('leave-room', '/rooms', r, B.id), SHORT);
      await sin.next(isRoomEv('delete-room', '/rooms', r), SHORT);
    });

    it('a join targeting a room affects only its members', async () => {
      const A = await gw.connect('/rooms', { transports: ['websocket'] });
      const B = await gw.connect('/rooms', { transports: ['websocket'] });
      const src = unique('src');
      const dst = unique('dst');
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [A.id], join: [src] });
      await sin.next(isRoomEv('join-room', '/rooms', src, A.id), SHORT);
      await gw.emitEnvelope({ type: 'join', nsp: '/rooms', rooms: [src], join: [dst] }); // socketsJoin on a room
      await sin.next(isRoomEv('join-room', '/rooms', dst, A.id), SHORT);
      await barrier(B);
      assert.deepEqual(roomEvs((e) => e.sid === B.id && !e.room.startsWith('barrier')), [], 'B joined nothing');
    });

    it('off by default: no room envelopes for a namespace without room_events', async () => {
      const A = await gw.connect('/chat', { transports: ['websocket'] });
      const rec = h.recorder(A);
      const r = unique('quiet');
      await gw.emitEnvelope({ type: 'join', nsp: '/chat', rooms: [A.id], join: [r] });
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [r], event: 'in-room', data: [] });
      await h.waitFor(() => rec.of('in-room').length, SHORT, { message: 'the join was applied' });
      await gw.emitEnvelope({ type: 'leave', nsp: '/chat', rooms: [A.id], leave: [r] });
      await control('/chat', A, rec); // the leave was applied
      // a positive control on sio.in, published after anything the join/leave caused
      A.emit('after-rooms');
      await sin.next(isEvent(A.id, 'after-rooms'), SHORT);
      assert.deepEqual(roomEvs((e) => e.nsp === '/chat'), []);
    });
  });

  /* ------------------------------------------------------------------ (e) raw topic routes */

  describe('raw topic routes', () => {
    /*
     * A and B in /chat, C in "/"; A joins room `room` of /chat (via a backend
     * join), C joins the same room name in "/" (another namespace).
     */
    async function setup(room) {
      const A = await gw.connect('/chat', { transports: ['websocket'] });
      const B = await gw.connect('/chat');
      const C = await gw.connect('/', { transports: ['websocket'] });
      const rA = h.recorder(A);
      const rB = h.recorder(B);
      const rC = h.recorder(C);
      await gw.emitEnvelope({ type: 'join', nsp: '/chat', rooms: [A.id], join: [room] });
      await gw.emitEnvelope({ type: 'join', nsp: '/', rooms: [C.id], join: [room] });
      await gw.fetchSockets({ nsp: '/chat', rooms: [room] }); // both joins applied
      return { A, B, C, rA, rB, rC };
    }

    /* Wait for the controls to B and C: whatever the route delivered to them arrived before. */
    async function settle({ B, C, rB, rC }) {
      await control('/chat', B, rB);
      await control('/', C, rC);
    }

    it('chat.room.{room}: a publish reaches the sockets that joined the room, no one else', async () => {
      const room = unique('room');
      const t = await setup(room);
      await gw.publishRaw(`chat.room.${room}`, '{"text":"hi","n":1}');
      await h.waitFor(() => t.rA.of('message').length, SHORT, { message: 'A gets the routed message' });
      assert.deepEqual(t.rA.of('message'), [[{ text: 'hi', n: 1 }]]);
      await settle(t);
      assert.deepEqual(t.rB.of('message'), [], 'B (same namespace, not in the room) gets nothing');
      assert.deepEqual(t.rC.of('message'), [], 'C (same room name, another namespace) gets nothing');
    });

    it('the route follows the room: lobby after a join, nothing after the leave', async () => {
      const t = await setup('lobby');
      await gw.publishRaw('chat.room.lobby', '"one"');
      await h.waitFor(() => t.rA.of('message').length, SHORT, { message: 'A gets the lobby message' });
      assert.deepEqual(t.rA.of('message'), [['one']]);
      await gw.emitEnvelope({ type: 'leave', nsp: '/chat', rooms: [t.A.id], leave: ['lobby'] });
      await gw.fetchSockets({ nsp: '/chat' }); // the leave applied
      await gw.publishRaw('chat.room.lobby', '"two"');
      await gw.publishRaw('chat.all', '"after"'); // control, later on the bus
      await h.waitFor(() => t.rA.of('news').length, SHORT, { message: 'A gets the control' });
      assert.deepEqual(t.rA.of('message'), [['one']], 'nothing from chat.room.lobby after leaving it');
      await settle(t);
      assert.deepEqual(t.rB.of('message'), []);
      assert.deepEqual(t.rC.of('message'), []);
    });

    it('{room} takes the rest of the topic, dots included; another room gets nothing', async () => {
      const room = `${unique('a')}.b.c`;
      const t = await setup(room);
      await gw.publishRaw(`chat.room.${room}.x`, '"deeper"'); // room "<room>.x": nobody there
      await gw.publishRaw(`chat.room.${room.split('.')[0]}`, '"prefix"'); // room "<first part>": nobody there
      await gw.publishRaw(`chat.room.${room}`, '"exact"');
      await h.waitFor(() => t.rA.of('message').length, SHORT, { message: 'A gets the message for its dotted room' });
      assert.deepEqual(t.rA.of('message'), [['exact']]);
      await settle(t);
      assert.deepEqual(t.rA.of('message'), [['exact']]);
      assert.deepEqual(t.rB.of('message'), []);
    });

    it('the body: valid JSON is parsed (one argument), other text is a string, non-UTF-8 bytes are binary', async () => {
      const room = unique('body');
      const t = await setup(room);
      const topic = `chat.room.${room}`;
      const bodies = [
        ['{"a":[1,{"b":null}]}', { a: [1, { b: null }] }],
        ['[1,"two",3]', [1, 'two', 3]], // an array is one argument, not spread
        ['42', 42],
        ['true', true],
        ['"quoted"', 'quoted'],
        ['hello, not json {', 'hello, not json {'],
        ['héllo wörld ✓', 'héllo wörld ✓'],
      ];
      for (const [body] of bodies) await gw.publishRaw(topic, Buffer.from(body, 'utf8'), { headers: { 'content-type': 'text/plain' } });
      const bin = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]);
      await gw.publishRaw(topic, bin, { headers: { 'content-type': 'application/octet-stream' } });
      await h.waitFor(() => t.rA.of('message').length === bodies.length + 1, SHORT, {
        message: `A gets ${bodies.length + 1} messages`,
      });
      const got = t.rA.of('message');
      for (const args of got) assert.equal(args.length, 1, `one argument: ${JSON.stringify(args)}`);
      assert.deepEqual(
        got.slice(0, bodies.length).map((a) => a[0]),
        bodies.map((b) => b[1]),
      );
      const last = got[bodies.length][0];
      assert.ok(Buffer.isBuffer(last) || last instanceof ArrayBuffer, `binary argument, got ${typeof last}: ${JSON.stringify(last)}`);
      assert.deepEqual(Buffer.from(last), bin);
      await settle(t);
      assert.deepEqual(t.rB.of('message'), []);
    });

    it('chat.all reaches the whole namespace and no other namespace', async () => {
      const t = await setup(unique('any'));
      await gw.publishRaw('chat.all', '{"headline":"x"}');
      await h.waitFor(() => t.rA.of('news').length && t.rB.of('news').length, SHORT, { message: 'A and B get news' });
      assert.deepEqual(t.rA.of('news'), [[{ headline: 'x' }]]);
      assert.deepEqual(t.rB.of('news'), [[{ headline: 'x' }]]);
      await settle(t);
      assert.deepEqual(t.rC.of('news'), [], 'a socket in "/" gets nothing');
    });

    it('a fixed-room route (chat.fixed → room lobby) reaches only that room', async () => {
      const t = await setup('lobby');
      await gw.publishRaw('chat.fixed', 'fixed text');
      await h.waitFor(() => t.rA.of('fx').length, SHORT, { message: 'A (in lobby) gets fx' });
      assert.deepEqual(t.rA.of('fx'), [['fixed text']]);
      await settle(t);
      assert.deepEqual(t.rB.of('fx'), [], 'B (not in lobby) gets nothing');
      assert.deepEqual(t.rC.of('fx'), [], 'C (lobby of "/") gets nothing');
    });
  });
});

describe('ack: broker (the bus acks a client event once it is stored)', () => {
  let gw;
  let sin;
  before(async () => {
    gw = await h.startGateway({
      adapter: { plugin: 'memory', options: { max_message: '2k' } },
      namespaces: [{ name: '/' }, { name: '/stored', ack: 'broker' }],
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('the client is acked without any backend, and the envelope asks nobody for an ack', async () => {
    const s = await gw.connect('/stored', { transports: ['websocket'] });
    const res = await s.timeout(3000).emitWithAck('order', { n: 1 });
    assert.equal(res, undefined, 'an empty ack');
    const env = await sin.next((e) => e.type === 'event' && e.sid === s.id && e.event === 'order');
    assert.deepEqual(env.data, [{ n: 1 }]);
    assert.equal(env.ack, undefined, 'no ack field: backends must not answer');
  });

  it('an event the bus refuses is never acked; the next one is', async () => {
    const s = await gw.connect('/stored', { transports: ['websocket'] });
    const errors = await gw.metric('sio_bus_publish_errors_total');
    await assert.rejects(s.timeout(700).emitWithAck('order', 'x'.repeat(4096)), /timed out/);
    assert.equal(await gw.metric('sio_bus_publish_errors_total'), errors + 1);
    assert.equal(await s.timeout(3000).emitWithAck('order', 'small'), undefined);
  });

  it('a namespace without ack: broker still leaves the ack to a backend', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    s.emit('order', 1, () => {});
    const env = await sin.next((e) => e.type === 'event' && e.sid === s.id);
    assert.equal(env.ack.reply_to, gw.topics.reply);
  });
});
