'use strict';
/*
 * admin_ui: the server side of @socket.io/admin-ui, driven with socket.io-client@4 as the
 * UI drives it (auth {username, password} then {sessionId}; the events it listens to; its
 * join / leave / _disconnect / emit actions). The shapes are compared with what Node's
 * socket.io 4.8 with the real instrument() (@socket.io/admin-ui 0.5.1, from npm) sends
 * for the same clients. The page itself in Chromium: admin_ui_browser.test.js.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const bcrypt = require('bcryptjs');
const h = require('./helpers/gateway');

const PASSWORD = 'correct horse battery staple';
const HASH = bcrypt.hashSync(PASSWORD, 8);
const LOGIN = { username: 'admin', password: PASSWORD };

/* An admin socket that records everything, connected (or refused: its connect_error). */
async function adminSocket(url, auth, opts = {}) {
  const s = h.openClient(`${url}/admin`, { auth, ...opts });
  const rec = h.recorder(s);
  const r = await Promise.race([h.once(s, 'connect', 5000).then(() => null), h.once(s, 'connect_error', 5000)]);
  return { s, rec, err: r && r[0] };
}

/* The first recorded args of `name` matching pred (polled with a deadline). */
function seen(rec, name, pred = () => true, ms = 5000) {
  return h.waitFor(() => rec.of(name).find((args) => pred(...args)), ms, { message: `admin event ${name}` });
}

/* Object keys, recursively, for comparing shapes (values differ between servers). */
function shape(v) {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = shape(v[k]);
    return o;
  }
  return typeof v;
}

/* The same protocol with one service loop and with two (engine.workers: the UI sees,
 * and acts on, every loop's sockets whichever loop its own connection landed on). */
for (const workers of [1, 2]) describe(`admin_ui: @socket.io/admin-ui protocol (workers: ${workers})`, () => {
  let gw;
  let sin;
  before(async () => {
    gw = await h.startGateway({
      engine: { workers },
      namespaces: [{ name: '/' }, { name: '/chat' }],
      admin_ui: { enabled: true, auth: { username: 'admin', password_hash: HASH }, server_id: 'node-a' },
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(async () => {
    await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);

  it('refuses a wrong password, a wrong username, no credentials and an unknown session id', async () => {
    for (const auth of [{ ...LOGIN, password: 'nope' }, { ...LOGIN, username: 'root' }, {}, { sessionId: '0123456789abcdef' }]) {
      const { s, err } = await adminSocket(gw.url, auth);
      assert.ok(err, `refused: ${JSON.stringify(auth)}`);
      assert.equal(err.message, 'invalid credentials');
      assert.equal(s.connected, false);
      s.close();
    }
    assert.ok((await gw.metric('sio_admin_logins_total', { result: 'refused' })) >= 4);
  });

  it('a login gets session, config and all_sockets with the sockets of every namespace', async () => {
    const c1 = await gw.connect('/', { transports: ['websocket'], auth: { user: 'u1' }, query: { app: 'test' } });
    const c2 = await gw.connect('/chat', { transports: ['polling'] });
    const { s, rec, err } = await adminSocket(gw.url, LOGIN);
    assert.equal(err, null);
    const [sessionId] = await seen(rec, 'session');
    assert.match(sessionId, /^[0-9a-f]{16}$/);
    const [config] = await seen(rec, 'config');
    assert.deepEqual(config.supportedFeatures, ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT',
      'AGGREGATED_EVENTS', 'ALL_EVENTS']);
    const [all] = await seen(rec, 'all_sockets');
    const a1 = all.find((x) => x.id === c1.id);
    const a2 = all.find((x) => x.id === c2.id);
    assert.ok(a1 && a2, 'both test clients are listed');
    assert.ok(all.find((x) => x.id === s.id && x.nsp === '/admin'), 'the admin socket itself too, as instrument() does');
    assert.equal(a1.nsp, '/');
    assert.equal(a1.transport, 'websocket');
    assert.equal(a2.nsp, '/chat');
    assert.equal(a2.transport, 'polling');
    assert.equal(a1.clientId, c1.io.engine.id.slice(0, 12));
    assert.deepEqual(a1.rooms, [c1.id]);
    assert.deepEqual(a1.data, {});
    assert.equal(a1.handshake.query.app, 'test');
    assert.equal(a1.handshake.address, '127.0.0.1');
    assert.equal(typeof a1.handshake.headers, 'object');
    assert.equal(a1.handshake.auth, undefined, 'auth (a login password, tokens) is not shown');
    const me = all.find((x) => x.id === s.id);
    assert.ok(!JSON.stringify(me).includes(PASSWORD), 'the password is nowhere');

    /* the session id logs in again without the password */
    const again = await adminSocket(gw.url, { sessionId });
    assert.equal(again.err, null);
    await seen(again.rec, 'config');
    assert.equal(again.rec.of('session').length, 0);
    assert.ok((await gw.metric('sio_admin_logins_total', { result: 'session' })) >= 1);
    assert.ok((await gw.metric('sio_admin_logins_total', { result: 'ok' })) >= 1);
    for (const x of [s, again.s, c1, c2]) x.close();
  });

  it('server_stats every 2 s: this node, its engine clients, namespaces and aggregated events', async () => {
    const c = await gw.connect('/chat', { transports: ['polling'] });
    const { s, rec } = await adminSocket(gw.url, LOGIN, { transports: ['websocket'] });
    /* (until counted: with several loops the second after the first admin came is not) */
    const pinging = setInterval(() => c.emit('ping-me', 1), 300);
    const [st] = await seen(rec, 'server_stats', (x) => x.aggregatedEvents.some((e) => e.type === 'packetsIn'), 7000)
      .finally(() => clearInterval(pinging));
    assert.equal(st.serverId, 'node-a');
    assert.equal(st.pid, gw.proc.pid);
    assert.equal(typeof st.hostname, 'string');
    assert.ok(st.uptime > 0);
    assert.ok(st.clientsCount >= 2);
    assert.ok(st.pollingClientsCount >= 1);
    const ns = Object.fromEntries(st.namespaces.map((n) => [n.name, n.socketsCount]));
    assert.ok(ns['/chat'] >= 1 && ns['/admin'] >= 1 && '/' in ns, JSON.stringify(st.namespaces));
    for (const e of st.aggregatedEvents) {
      assert.equal(e.timestamp % 1000, 0, 'per second');
      assert.ok(e.count > 0);
    }
    const t0 = Date.now();
    const n0 = rec.of('server_stats').length;
    await h.waitFor(() => rec.of('server_stats').length > n0, 4000, { message: 'the next server_stats' });
    assert.ok(Date.now() - t0 < 3500);
    s.close();
    c.close();
  });

  it('tells connects, upgrades, rooms, events and disconnects as they happen', async () => {
    const { s, rec } = await adminSocket(gw.url, LOGIN, { transports: ['websocket'] });
    await seen(rec, 'config');
    const c = await gw.connect('/chat', {}); /* polling, then the upgrade */
    const [sock, date] = await seen(rec, 'socket_connected', (x) => x.id === c.id);
    assert.equal(sock.nsp, '/chat');
    assert.ok(!Number.isNaN(Date.parse(date)) && date.endsWith('Z'));
    await seen(rec, 'socket_updated', (u) => u.id === c.id && u.transport === 'websocket');
    await gw.emitEnvelope({ type: 'join', nsp: '/chat', rooms: [c.id], join: ['lobby'] });
    const [nsp, room, id] = await seen(rec, 'room_joined', (n, r) => r === 'lobby');
    assert.deepEqual([nsp, room, id], ['/chat', 'lobby', c.id]);
    c.emit('chat message', 'hi', { n: 1 });
    const ev = await seen(rec, 'event_received', (n, i) => i === c.id);
    assert.deepEqual(ev.slice(0, 3), ['/chat', c.id, ['chat message', 'hi', { n: 1 }]]);
    const cid = c.id; /* the client forgets it on disconnect */
    c.disconnect();
    const [dn, did, reason] = await seen(rec, 'socket_disconnected', (n, i) => i === cid);
    assert.deepEqual([dn, did, reason], ['/chat', cid, 'client namespace disconnect']);
    await seen(rec, 'room_left', (n, r, i) => r === 'lobby' && i === cid);
    /* and the events still reached the bus */
    await sin.next((e) => e.type === 'event' && e.sid === cid && e.event === 'chat message');
    s.close();
  });

  it('the UI actions: join, leave, emit and _disconnect on this node', async () => {
    const { s, rec } = await adminSocket(gw.url, LOGIN, { transports: ['websocket'] });
    await seen(rec, 'config');
    const c = await gw.connect('/', { transports: ['websocket'] });
    const other = await gw.connect('/', { transports: ['websocket'] });
    s.emit('join', '/', 'vip', c.id);
    await h.waitFor(async () => (await gw.fetchSockets({ rooms: ['vip'] })).sockets.length === 1, 3000, { message: 'join' });
    const got = h.once(c, 'hello', 3000);
    s.emit('emit', '/', 'vip', 'hello', 1, { a: [2] });
    assert.deepEqual(await got, [1, { a: [2] }]);
    s.emit('leave', '/', 'vip', c.id);
    await h.waitFor(async () => (await gw.fetchSockets({ rooms: ['vip'] })).sockets.length === 0, 3000, { message: 'leave' });
    const bye = h.once(c, 'disconnect', 3000);
    const cid = c.id; // the client forgets it at the disconnect
    s.emit('_disconnect', '/', false, cid);
    assert.equal((await bye)[0], 'io server disconnect');
    // backends see the usual disconnect envelope, as for any server-side disconnect
    const gone = await sin.next((e) => e.type === 'disconnect' && e.sid === cid, 3000);
    assert.equal(gone.nsp, '/');
    assert.equal(gone.reason, 'server namespace disconnect');
    assert.equal(other.connected, true, 'only the filtered socket went');
    assert.equal(await gw.metric('sio_admin_actions_total', { action: 'join', result: 'done' }), 1);
    assert.equal(await gw.metric('sio_admin_actions_total', { action: '_disconnect', result: 'done' }), 1);
    s.close();
    other.close();
  });

  it('malformed actions are refused and counted, and hurt nobody', async () => {
    const { s, rec } = await adminSocket(gw.url, LOGIN, { transports: ['websocket'] });
    await seen(rec, 'config');
    const c = await gw.connect('/', { transports: ['websocket'] });
    const before = async (action) => gw.metric('sio_admin_actions_total', { action, result: 'refused' });
    const j0 = await before('join');
    const e0 = await before('emit');
    const d0 = await before('_disconnect');
    const u0 = await before('unknown');
    s.emit('join');
    s.emit('join', '/');
    s.emit('join', 5, 'r');
    s.emit('join', '/', { room: 1 });
    s.emit('emit', '/', null, 'connect', 1); /* a reserved name */
    s.emit('emit', '/', null, 7);
    s.emit('emit', '/', null, 'bin', Buffer.from([1, 2])); /* binary arguments */
    s.emit('_disconnect', null, true);
    s.emit('no such action', 1);
    s.emit('join', '/', 'after', c.id, (...ack) => ack); /* with an ack request: applied, not answered */
    await h.waitFor(async () => (await gw.fetchSockets({ rooms: ['after'] })).sockets.length === 1, 3000, { message: 'the last join' });
    assert.equal((await before('join')) - j0, 4);
    assert.equal((await before('emit')) - e0, 3);
    assert.equal((await before('_disconnect')) - d0, 1);
    assert.equal((await before('unknown')) - u0, 1);
    assert.equal(c.connected, true);
    assert.equal(s.connected, true);
    s.close();
    c.close();
  });

  it('the admin namespace is not on the bus: no envelopes from it, none to it', async () => {
    const { s, rec } = await adminSocket(gw.url, LOGIN, { transports: ['websocket'] });
    await seen(rec, 'config');
    s.emit('join', '/', 'x', 'nobody');
    const m0 = await gw.metric('sio_malformed_envelopes_total');
    await gw.emitEnvelope({ type: 'emit', nsp: '/admin', event: 'config', data: [{ supportedFeatures: ['EVIL'] }] });
    await h.waitFor(async () => (await gw.metric('sio_malformed_envelopes_total')) === m0 + 1, 3000, { message: 'refused' });
    await gw.fetchSockets(); /* a barrier on the out topic */
    assert.equal(rec.of('config').length, 1);
    const c = await gw.connect('/', { transports: ['websocket'] });
    await sin.next((e) => e.type === 'connect' && e.sid === c.id);
    assert.ok(!sin.messages.some((m) => m.data && m.data.nsp === '/admin'), 'no /admin envelope reached sio.in');
    s.close();
    c.close();
  });

  if (workers === 1) it('sends what instrument() sends, shape for shape (Node socket.io 4.8 + @socket.io/admin-ui 0.5.1)', async () => {
    const { Server } = require('socket.io');
    const { instrument } = require('@socket.io/admin-ui');
    const srv = http.createServer();
    const io = new Server(srv);
    instrument(io, { auth: { type: 'basic', username: 'admin', password: HASH }, serverId: 'node-ref' });
    io.of('/chat');
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const ref = `http://127.0.0.1:${srv.address().port}`;
    try {
      const run = async (url) => {
        const c = h.openClient(`${url}/chat`, { transports: ['websocket'] });
        await h.once(c, 'connect', 3000);
        const a = await adminSocket(url, LOGIN, { transports: ['websocket'] });
        assert.equal(a.err, null, `${url}: ${a.err && a.err.message}`);
        const out = {};
        for (const name of ['session', 'config', 'all_sockets']) out[name] = (await seen(a.rec, name))[0];
        out.server_stats = (await seen(a.rec, 'server_stats', () => true, 5000))[0];
        const c2 = h.openClient(`${url}/chat`, { transports: ['websocket'] });
        await h.once(c2, 'connect', 3000);
        out.socket_connected = await seen(a.rec, 'socket_connected', (x) => x.id === c2.id);
        c2.emit('e', 1);
        out.event_received = await seen(a.rec, 'event_received', (n, i) => i === c2.id);
        const id2 = c2.id;
        c2.disconnect();
        out.socket_disconnected = await seen(a.rec, 'socket_disconnected', (n, i) => i === id2);
        a.s.close();
        c.close();
        return out;
      };
      const mine = await run(gw.url);
      const theirs = await run(ref);
      assert.deepEqual(mine.config, theirs.config);
      for (const k of ['session', 'socket_connected', 'event_received', 'socket_disconnected']) {
        assert.deepEqual(shape(mine[k]), shape(theirs[k]), k);
      }
      const sock = (all) => all.find((x) => x.nsp === '/chat');
      assert.deepEqual(Object.keys(sock(mine.all_sockets)).sort(), Object.keys(sock(theirs.all_sockets)).sort());
      const hs = (all) => Object.keys(sock(all).handshake).sort();
      assert.deepEqual(hs(mine.all_sockets), hs(theirs.all_sockets));
      const keys = (st) => Object.keys(st).sort();
      assert.deepEqual(keys(mine.server_stats), keys(theirs.server_stats));
      assert.deepEqual(shape(mine.server_stats.namespaces), shape(theirs.server_stats.namespaces));
      assert.deepEqual(mine.socket_disconnected[2], theirs.socket_disconnected[2], 'the same reason');
    } finally {
      io.close();
      srv.close();
    }
  });
});

describe('admin_ui with 2 service loops: the whole process, whichever loop the UI is on', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({
      engine: { workers: 2 },
      namespaces: [{ name: '/' }],
      admin_ui: { enabled: true, auth: { username: 'admin', password_hash: HASH }, server_id: 'node-w' },
    });
  });
  after(async () => {
    h.closeAllClients();
    await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);
  const tag = (id) => id.slice(0, 4); /* a socket id names its loop */

  it('lists, tells, counts and acts on the sockets of both loops; a login session works on either', async () => {
    const clients = [];
    for (let i = 0; i < 16; i++) clients.push(await gw.connect('/', { transports: [i % 2 ? 'polling' : 'websocket'] }));
    assert.equal(new Set(clients.map((c) => tag(c.id))).size, 2, 'clients on both loops');
    const { s, rec, err } = await adminSocket(gw.url, LOGIN, { transports: ['websocket'] });
    assert.equal(err, null);
    const [sessionId] = await seen(rec, 'session');
    const [all] = await seen(rec, 'all_sockets');
    const listed = new Set(all.filter((x) => x.nsp === '/').map((x) => x.id));
    for (const c of clients) assert.ok(listed.has(c.id), `${c.id} (loop ${tag(c.id)}) is listed`);

    /* sockets that come later, on either loop, are told to this admin */
    const late = [];
    for (let i = 0; i < 8; i++) late.push(await gw.connect('/', { transports: ['websocket'] }));
    assert.equal(new Set(late.map((c) => tag(c.id))).size, 2, 'late clients on both loops');
    for (const c of late) await seen(rec, 'socket_connected', (x) => x.id === c.id);
    const everyone = [...clients, ...late];

    /* an action reaches the sockets of both loops */
    s.emit('join', '/', 'everyone');
    await h.waitFor(async () => (await gw.fetchSockets({ rooms: ['everyone'] })).sockets.length === everyone.length, 4000,
      { message: 'every socket joined' });
    for (const c of everyone) await seen(rec, 'room_joined', (n, r, i) => r === 'everyone' && i === c.id);
    const got = new Set();
    for (const c of everyone) c.on('hello', () => got.add(c.id));
    s.emit('emit', '/', 'everyone', 'hello', 1);
    await h.waitFor(() => got.size === everyone.length, 4000, { message: 'the emit reached both loops' });
    assert.equal(await gw.metric('sio_admin_actions_total', { action: 'join', result: 'done' }), 1, 'counted once');
    const victim = late.find((c) => tag(c.id) !== tag(s.id)) || late[0];
    const bye = h.once(victim, 'disconnect', 3000);
    s.emit('_disconnect', '/', false, victim.id);
    assert.equal((await bye)[0], 'io server disconnect');

    /* server_stats: the process (both loops' clients, one entry per namespace) */
    const [st] = await seen(rec, 'server_stats', (x) => x.clientsCount >= everyone.length, 7000);
    assert.equal(st.serverId, 'node-w');
    const ns = st.namespaces.filter((n) => n.name === '/');
    assert.equal(ns.length, 1, JSON.stringify(st.namespaces));
    assert.equal(ns[0].socketsCount, everyone.length - 1);
    assert.ok(st.pollingClientsCount >= 8);

    /* the session id logs in wherever the new connection lands */
    for (let i = 0; i < 8; i++) {
      const again = await adminSocket(gw.url, { sessionId }, { transports: ['websocket'] });
      assert.equal(again.err, null, `session login ${i}`);
      again.s.close();
    }
    assert.equal(await gw.metric('sio_admin_logins_total', { result: 'session' }), 8);
    s.close();
  });
});

describe('admin_ui: read_only, production mode, auth: false', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({
      admin_ui: { enabled: true, namespace: '/ops', auth: false, read_only: true, mode: 'production' },
    });
  });
  after(async () => {
    await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);

  it('anyone connects; no actions offered or applied; stats only', async () => {
    const c = await gw.connect('/', { transports: ['websocket'] });
    const s = h.openClient(`${gw.url}/ops`, { transports: ['websocket'] });
    const rec = h.recorder(s);
    await h.once(s, 'connect', 3000);
    const [config] = await seen(rec, 'config');
    assert.deepEqual(config.supportedFeatures, ['AGGREGATED_EVENTS']);
    s.emit('join', '/', 'vip', c.id);
    s.emit('_disconnect', '/', true);
    await h.waitFor(async () => (await gw.metric('sio_admin_actions_total', { action: '_disconnect', result: 'refused' })) === 1,
      3000, { message: 'refused and counted' });
    assert.equal(await gw.metric('sio_admin_actions_total', { action: 'join', result: 'refused' }), 1);
    assert.equal((await gw.fetchSockets({ rooms: ['vip'] })).sockets.length, 0);
    assert.equal(c.connected, true);
    await seen(rec, 'server_stats', () => true, 5000);
    const c2 = await gw.connect('/', { transports: ['websocket'] });
    c2.emit('x');
    c2.disconnect();
    await seen(rec, 'server_stats', (st) => st.namespaces.find((n) => n.name === '/').socketsCount === 1, 5000);
    for (const name of ['session', 'all_sockets', 'socket_connected', 'event_received', 'socket_disconnected']) {
      assert.equal(rec.of(name).length, 0, `${name} is not sent in production mode`);
    }
    s.close();
    c.close();
  });
});
