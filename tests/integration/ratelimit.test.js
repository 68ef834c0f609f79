'use strict';
/*
 * namespaces[].limits: token buckets per socket over its client events. Driven with
 * socket.io-client@4; what passes is read on the bus (sio.in), what does not is counted
 * in sio_events_rate_limited_total{nsp,policy}; other sockets are not affected.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers/gateway');

describe('rate limits (namespaces[].limits)', () => {
  let gw;
  let sin;
  before(async () => {
    gw = await h.startGateway({
      namespaces: [
        { name: '/' },
        {
          name: '/flood',
          limits: { events_per_s: 5, burst: 5, on_exceed: 'drop', events: [{ event: 'typing', events_per_s: 1, burst: 1 }] },
        },
        { name: '/strict', limits: { events_per_s: 2, burst: 2, on_exceed: 'disconnect' } },
        { name: '/bytes', limits: { bytes_per_s: '1k', bytes_burst: '1k' } },
        { name: '/allow', events: ['ok'], limits: { events_per_s: 1, burst: 2, on_exceed: 'drop' } },
        { match: '^/dyn-[0-9]+$', limits: { events_per_s: 1, burst: 2, on_exceed: 'disconnect' } },
      ],
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  const events = (sid, name) => sin.all((e) => e.type === 'event' && e.sid === sid && (!name || e.event === name));

  it('drop: a burst beyond the bucket is dropped and counted; another socket is not affected', async () => {
    const a = await gw.connect('/flood', { transports: ['websocket'] });
    const b = await gw.connect('/flood', { transports: ['websocket'] });
    for (let i = 0; i < 30; i++) a.emit('msg', i);
    for (let i = 0; i < 3; i++) b.emit('msg', i);
    // b's three and a's first five arrive; then a's later ones are dropped
    await sin.next((e) => e.type === 'event' && e.sid === b.id && e.data[0] === 2);
    await h.waitFor(async () => (await gw.metric('sio_events_rate_limited_total', { nsp: '/flood', policy: 'drop' })) >= 24, 5000, {
      message: 'the dropped events counted',
    });
    const got = events(a.id, 'msg').map((e) => e.data[0]);
    assert.ok(got.length >= 5 && got.length <= 6, `a: ${got.length} passed (${got})`); // 5, and maybe one refilled
    assert.deepEqual(got.slice(0, 5), [0, 1, 2, 3, 4], 'the first ones pass, in order');
    assert.equal(events(b.id, 'msg').length, 3, 'b is not affected');
    assert.equal(a.connected, true, 'drop keeps the socket');
    a.close();
    b.close();
  });

  it('events outside the namespace allowlist take no tokens', async () => {
    const rejected0 = (await gw.metric('sio_events_rejected_total')) || 0;
    const a = await gw.connect('/allow', { transports: ['websocket'] });
    for (let i = 0; i < 10; i++) a.emit('nope', i); // dropped by the allowlist, before the bucket
    a.emit('ok', 1);
    a.emit('ok', 2); // the burst of 2 is still whole
    await sin.next((e) => e.type === 'event' && e.sid === a.id && e.event === 'ok' && e.data[0] === 2);
    assert.equal((await gw.metric('sio_events_rejected_total')) - rejected0, 10);
    assert.equal((await gw.metric('sio_events_rate_limited_total', { nsp: '/allow', policy: 'drop' })) || 0, 0);
    assert.equal(events(a.id, 'nope').length, 0);
    a.close();
  });

  it('a dynamic namespace (match entry) takes its limits: each socket its own bucket', async () => {
    const a = await gw.connect('/dyn-1', { transports: ['websocket'] });
    const b = await gw.connect('/dyn-2', { transports: ['websocket'] });
    const sid = a.id;
    const gone = new Promise((resolve) => a.on('disconnect', resolve));
    for (let i = 0; i < 3; i++) a.emit('x', i);
    assert.equal(await gone, 'io server disconnect');
    const d = await sin.next((e) => e.type === 'disconnect' && e.sid === sid);
    assert.equal(d.nsp, '/dyn-1');
    assert.equal(events(sid, 'x').length, 2, 'the burst of 2 passed');
    b.emit('x', 'b');
    await sin.next((e) => e.type === 'event' && e.sid === b.id && e.nsp === '/dyn-2');
    assert.equal(b.connected, true, 'the other namespace\'s socket is not affected');
    a.close();
    b.close();
  });

  it('a per-event override has its own bucket', async () => {
    const a = await gw.connect('/flood', { transports: ['websocket'] });
    for (let i = 0; i < 3; i++) a.emit('typing', i);
    a.emit('msg', 'after');
    await sin.next((e) => e.type === 'event' && e.sid === a.id && e.event === 'msg');
    assert.equal(events(a.id, 'typing').length, 1, 'typing: 1 per second, burst 1');
    a.close();
  });

  it('disconnect: the socket over its limit is disconnected from the namespace (io server disconnect)', async () => {
    const before = (await gw.metric('sio_events_rate_limited_total', { nsp: '/strict', policy: 'disconnect' })) || 0;
    const lateBefore = (await gw.metric('sio_packets_not_connected_total', { nsp: '/strict' })) || 0;
    const s = await gw.connect('/strict', { transports: ['websocket'] });
    const sid = s.id; // the client forgets it on disconnect
    const gone = new Promise((resolve) => s.on('disconnect', resolve));
    for (let i = 0; i < 5; i++) s.emit('x', i);
    assert.equal(await gone, 'io server disconnect');
    const d = await sin.next((e) => e.type === 'disconnect' && e.sid === sid);
    assert.equal(d.nsp, '/strict');
    assert.equal(d.reason, 'server namespace disconnect');
    assert.equal(events(sid, 'x').length, 2, 'the burst of 2 passed');
    assert.equal((await gw.metric('sio_events_rate_limited_total', { nsp: '/strict', policy: 'disconnect' })) - before, 1);
    // the 4th and 5th were on the way when the server disconnected the namespace: dropped,
    // counted, and the connection was not closed for them
    assert.equal((await gw.metric('sio_packets_not_connected_total', { nsp: '/strict' })) - lateBefore, 2);
    s.close();
  });

  it('bytes: events beyond bytes_burst are dropped, small ones still pass', async () => {
    const s = await gw.connect('/bytes', { transports: ['websocket'] });
    s.emit('big', 'x'.repeat(800));
    s.emit('big', 'y'.repeat(800)); // over the 1k bucket
    s.emit('small', 'z');
    await sin.next((e) => e.type === 'event' && e.sid === s.id && e.event === 'small');
    assert.equal(events(s.id, 'big').length, 1);
    s.close();
  });

  it('a namespace without limits is not limited and shows no rate-limit series', async () => {
    const s = await gw.connect('/', { transports: ['websocket'] });
    for (let i = 0; i < 50; i++) s.emit('m', i);
    await sin.next((e) => e.type === 'event' && e.sid === s.id && e.data[0] === 49);
    assert.equal(events(s.id, 'm').length, 50);
    assert.equal(await gw.metric('sio_events_rate_limited_total', { nsp: '/' }), null);
    s.close();
  });
});
