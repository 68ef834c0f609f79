'use strict';
/*
 * namespaces[].match: dynamic namespaces (socket.io's io.of(/regex/)), with the real
 * socket.io-client@4: made on first use, addressed by backends by their real name, freed
 * with their last socket; a listed name wins; a name no entry takes is "Invalid namespace".
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers/gateway');

const MATCH = '^/tenant-[a-z0-9]+$';

/* with one loop and with two (a name alive on both loops is one namespace, counted once) */
for (const workers of [1, 2]) describe(`dynamic namespaces (namespaces[].match, workers: ${workers})`, () => {
  let gw;
  let sin;
  before(async () => {
    gw = await h.startGateway({
      engine: { workers },
      namespaces: [{ name: '/' }, { name: '/tenant-vip', events: ['only'] }, { match: MATCH, room_events: true }],
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const live = () => gw.metric('sio_dynamic_namespaces', { nsp: MATCH });

  it('a matching name is a namespace of its own: envelopes carry it, backends emit and fetch by it', async () => {
    const a1 = await gw.connect('/tenant-a1', { transports: ['websocket'] });
    const a2 = await gw.connect('/tenant-a1', { transports: ['polling'] });
    const b = await gw.connect('/tenant-b2', { transports: ['websocket'] });
    const root = await gw.connect('/', { transports: ['websocket'] });
    assert.equal(await live(), 2);
    const c = await sin.next((e) => e.type === 'connect' && e.sid === a1.id);
    assert.equal(c.nsp, '/tenant-a1');
    a1.emit('hello', { n: 1 });
    const ev = await sin.next((e) => e.type === 'event' && e.sid === a1.id);
    assert.equal(ev.nsp, '/tenant-a1');
    assert.deepEqual(ev.data, [{ n: 1 }]);

    const got = { a1: [], a2: [], b: [], root: [] };
    for (const [k, s] of Object.entries({ a1, a2, b, root })) s.on('news', (x) => got[k].push(x));
    await gw.emitEnvelope({ type: 'emit', nsp: '/tenant-a1', event: 'news', data: ['for a'] });
    await gw.emitEnvelope({ type: 'emit', nsp: '/tenant-b2', event: 'news', data: ['for b'] });
    await gw.emitEnvelope({ type: 'emit', nsp: '/tenant-zz', event: 'news', data: ['nobody'] });
    await h.waitFor(() => got.a1.length && got.a2.length && got.b.length, 5000, { message: 'the emits delivered' });
    // a join in the dynamic namespace, then a room emit (room_events from the match entry)
    await gw.emitEnvelope({ type: 'join', nsp: '/tenant-a1', rooms: [a2.id], join: ['ops'] });
    const j = await sin.next((e) => e.type === 'join-room' && e.sid === a2.id);
    assert.equal(j.nsp, '/tenant-a1');
    await gw.emitEnvelope({ type: 'emit', nsp: '/tenant-a1', rooms: ['ops'], event: 'news', data: ['ops only'] });
    await h.waitFor(() => got.a2.length === 2, 5000, { message: 'the room emit' });
    const r = await gw.fetchSockets({ nsp: '/tenant-a1' }); // also a barrier for the emits
    assert.deepEqual(r.sockets.map((s) => s.id).sort(), [a1.id, a2.id].sort());
    assert.deepEqual(got, { a1: ['for a'], a2: ['for a', 'ops only'], b: ['for b'], root: [] });
    for (const s of [a1, a2, b, root]) s.close();
  });

  it('freed with its last socket, and made again on the next connect', async () => {
    const s = await gw.connect('/tenant-c3', { transports: ['websocket'] });
    await h.waitFor(async () => (await live()) === 1, 5000, { message: 'only /tenant-c3 left' });
    s.close();
    await h.waitFor(async () => (await live()) === 0, 5000, { message: 'freed once empty' });
    assert.equal(await gw.metric('sio_sockets', { nsp: MATCH }), 0);
    const again = await gw.connect('/tenant-c3', { transports: ['websocket'] });
    assert.equal(await live(), 1);
    assert.equal((await gw.fetchSockets({ nsp: '/tenant-c3' })).sockets.length, 1);
    again.close();
  });

  it('a listed name wins over the match; a name nothing takes is "Invalid namespace"', async () => {
    const v = await gw.connect('/tenant-vip', { transports: ['websocket'] });
    v.emit('other', 1); // not in /tenant-vip's events allowlist: dropped
    v.emit('only', 2);
    const e = await sin.next((x) => x.type === 'event' && x.sid === v.id);
    assert.equal(e.event, 'only', 'the listed entry\'s allowlist applies, not the match entry\'s "*"');
    v.close();
    for (const nsp of ['/tenant-UPPER', '/tenant-', '/x/tenant-a1']) {
      const s = gw.socket(nsp, { transports: ['websocket'] });
      const [err] = await h.once(s, 'connect_error', 5000);
      assert.equal(err.message, 'Invalid namespace', nsp);
      s.close();
    }
  });
});
