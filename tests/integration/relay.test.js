'use strict';
/*
 * No sticky sessions (bus/relay.h): a request for a session another node holds is
 * relayed over the bus to that node, and its answer back. Two gateway nodes on an nng
 * mesh (each dials the other's publish socket and the backend's), a backend on real nng
 * sockets that answers acks, real socket.io clients; nginx with plain round-robin in
 * front when it is installed. The Kafka variant is in kafka.test.js.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');
const NG = require('./helpers/nng');
const { startNginx, NGINX } = require('./helpers/nginx');
const { soak } = require('./helpers/soak');

const skip = !NG.available() && 'no NNG plugin in this build';

describe('no sticky sessions: two nodes on an nng mesh', { skip }, () => {
  let dir;
  let gwA;
  let gwB;
  let be;
  let lb;
  const it = h.gatewayIt(() => [gwA, gwB]);
  const node = (id, self, other) => ({
    node_id: id,
    adapter: NG.adapter({
      publish_listen: [NG.url(dir, `${self}-pub`)],
      receive_dial: [NG.url(dir, `${other}-pub`), NG.url(dir, 'be-out')],
    }),
    engine: { ping_interval_ms: 2000, ping_timeout_ms: 3000 },
    namespaces: [{ name: '/' }],
  });

  before(async () => {
    dir = NG.tempDir();
    be = await NG.Peer.start({
      pubListen: [NG.url(dir, 'be-out')],
      subDial: [NG.url(dir, 'a-pub'), NG.url(dir, 'b-pub')],
      subscribe: ['sio.in ', 'be.replies '],
    });
    [gwA, gwB] = await Promise.all([
      h.startGateway(node('gw-a', 'a', 'b'), NG.gatewayOpts()),
      h.startGateway(node('gw-b', 'b', 'a'), NG.gatewayOpts()),
    ]);
    await be.waitPipes({ pub: 2, sub: 2 });
    for (const gw of [gwA, gwB]) {
      await h.waitFor(async () => (await gw.metric('sio_nng_receive_peers')) === 2, 5000, {
        message: `${gw.config.node_id} dialed the other node and the backend`,
      });
    }
  });

  after(async () => {
    if (lb) await lb.stop();
    h.closeAllClients();
    if (be) await be.stop();
    await Promise.all([gwA && gwA.stopChecked(), gwB && gwB.stopChecked()]);
  });

  it('a session made on node A is served on node B: POST, held GET, a ping, the websocket upgrade', async () => {
    const eio = new h.EioPolling(gwA.url);
    await eio.handshake();
    assert.notEqual(eio.sid.slice(0, 4), (await new h.EioPolling(gwB.url).handshake()).sid.slice(0, 4));
    const onB = new h.EioPolling(gwB.url);
    onB.sid = eio.sid;
    /* the CONNECT posted to B reaches A's session; A's answer comes back on a GET to B */
    const post = await onB.post('40');
    assert.equal(post.status, 200);
    assert.equal(post.text, 'ok');
    const { packet } = await onB.pollUntil((p) => p.startsWith('40'));
    assert.match(packet, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    /* a held GET on B is released by A's ping; the pong goes through B as well */
    const t0 = Date.now();
    const held = await onB.get({ timeout: 8000 });
    assert.deepEqual(held.packets, ['2']);
    assert.ok(Date.now() - t0 >= 500, 'held until the ping');
    assert.equal((await onB.post('3')).status, 200);
    /* an unknown session of A's, asked on B: A's own answer */
    const ghost = new h.EioPolling(gwB.url);
    ghost.sid = `${eio.sid.slice(0, 16)}${eio.sid.slice(16) === 'AAAA' ? 'BBBB' : 'AAAA'}`; /* a bad check: not relayed */
    assert.equal((await ghost.get()).status, 400);
    assert.ok((await gwB.metric('sio_relay_requests_total', { side: 'front' })) >= 3);
    assert.ok((await gwA.metric('sio_relay_requests_total', { side: 'owner' })) >= 3);
    /* the upgrade on B: probe, the held poll (on B) released with a noop, upgrade */
    const ws = await h.RawWs.connect(`${gwB.wsUrl}/socket.io/?EIO=4&transport=websocket&sid=${eio.sid}`);
    const pending = onB.get({ timeout: 5000 });
    ws.send('2probe');
    assert.equal(await ws.next(), '3probe');
    assert.deepEqual((await pending).packets, ['6']);
    ws.send('5');
    /* from now on A pings over the relayed websocket */
    assert.equal(await ws.next({ timeout: 4000 }), '2');
    ws.send('3');
    assert.equal(await gwA.metric('sio_upgrades_total'), 1);
    ws.close();
    await h.waitFor(async () => (await gwA.metric('sio_relay_open', { side: 'owner' })) === 0, 5000, {
      message: 'node A let the relayed websocket go',
    });
  });

  it('behind nginx with plain round-robin: polling-only and upgrading clients, events with acks, broadcasts, 15 s, no error',
    { skip: !NGINX && 'nginx not installed' }, async () => {
      lb = await startNginx([gwA.port, gwB.port], { balance: 'round-robin' });
      const r = await soak({
        url: lb.url,
        backend: {
          events: (fn) => be.onMessage((m) => m.topic === 'sio.in' && m.json && fn(m.json)),
          reply: (topic, env) => be.publish(topic, env),
          broadcast: (env) => be.publish('sio.out', env),
        },
        clients: { polling: 10, websocket: 10 },
        ms: 15000,
      });
      assert.deepEqual(r.errors, []);
      assert.ok(r.acked > 100, `acked ${r.acked}`);
      assert.equal(r.missedBroadcasts, 0);
      assert.ok((await gwA.metric('sio_relay_requests_total', { side: 'front' })) > 0);
      assert.ok((await gwB.metric('sio_relay_requests_total', { side: 'front' })) > 0);
      console.log(`# relay soak (nng): ${JSON.stringify(r.summary)}`);
      await lb.stop();
      lb = null;
    });
});
