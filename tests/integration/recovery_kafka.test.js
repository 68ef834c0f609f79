'use strict';
/*
 * Connection state recovery across nodes on Kafka (librdkafka's mock cluster): a
 * socket.io-client@4 reaches node A through a TCP proxy (a load balancer); A is
 * SIGKILLed while a backend emits 3 events to the socket's room; the proxy now leads to
 * node B, where the client comes back with its id, its room and the 3 events, once and
 * in order. B knows the socket from A's snapshots on sio.sessions, and the events'
 * offsets are their positions in sio.out, which B read too. B runs two service loops.
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const { describe, before, after, it: plainIt } = require('node:test');
const h = require('./helpers/gateway');
const K = require('./helpers/kafka');

/* A TCP proxy on 127.0.0.1 to whichever port `to` says, for new connections. */
async function startProxy(to) {
  const socks = new Set();
  const srv = net.createServer((c) => {
    const up = net.connect(to.port, '127.0.0.1');
    socks.add(c);
    socks.add(up);
    c.pipe(up);
    up.pipe(c);
    const end = () => {
      c.destroy();
      up.destroy();
      socks.delete(c);
      socks.delete(up);
    };
    c.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    stop: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}

const TOPICS = ['sio.in:2', 'sio.out:3', 'sio.sessions:1', 'sio.reply.gw-r1:1', 'sio.reply.gw-r2:1'];

function nodeConfig(bootstrap, nodeId, more = {}) {
  return {
    node_id: nodeId,
    ...more,
    adapter: K.gatewayAdapter(bootstrap, { max_message: '64k' }),
    recovery: { max_disconnection_ms: 20000 },
    namespaces: [{ name: '/' }],
  };
}

describe('connection state recovery across Kafka nodes', { skip: !K.available() && 'no Kafka plugin in this build' }, () => {
  let mock;
  let be;
  let gwA;
  let gwB;
  let proxy;
  before(async () => {
    mock = await K.MockCluster.start({ topics: TOPICS });
    be = await K.Backend.start(mock.bootstrap, { topics: ['sio.in', 'sio.sessions'] });
    [gwA, gwB] = await Promise.all([
      h.startGateway(nodeConfig(mock.bootstrap, 'gw-r1')),
      /* node B runs two service loops: A's snapshots reach both, and the client comes
       * back on whichever the kernel gives its connection */
      h.startGateway(nodeConfig(mock.bootstrap, 'gw-r2', { engine: { workers: 2 } })),
      be.waitAssigned(),
    ]);
  });
  after(async () => {
    if (proxy) await proxy.stop();
    h.closeAllClients();
    for (const g of [gwA, gwB].filter(Boolean)) await g.stop();
    if (be) await be.stop();
    if (mock) await mock.stop();
  });

  plainIt('node A is SIGKILLed: the client recovers on node B with the 3 emits of the gap', async () => {
    const to = { port: gwA.port };
    proxy = await startProxy(to);
    const s = h.openClient(proxy.url, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 2000,
      reconnectionDelayMax: 2000,
      randomizationFactor: 0,
    });
    await h.once(s, 'connect', 10000);
    const id = s.id;
    await be.next((m) => m.topic === 'sio.in' && m.json && m.json.type === 'connect' && m.json.sid === id, 10000);
    const got = [];
    s.on('ev', (...a) => got.push(a));
    be.produce('sio.out', { type: 'join', nsp: '/', rooms: [id], join: ['game'] }, 'k');
    be.produce('sio.out', { type: 'emit', nsp: '/', rooms: ['game'], event: 'ev', data: [0] }, 'k');
    await h.waitFor(() => got.length === 1, 10000, { message: 'first event' });
    assert.match(got[0][1], /^k\d+\.\d+$/, 'the offset is a position in sio.out');
    // A's snapshot with the room is on sio.sessions (within 1 s of the join)
    await be.next(
      (m) => m.topic === 'sio.sessions' && m.json && m.json.sid === id && m.json.rooms.includes('game'),
      10000,
    );
    const logged = await gwB.metric('sio_recovery_log_packets');

    to.port = gwB.port; // the load balancer leads elsewhere from now on
    gwA.proc.kill('SIGKILL');
    for (const i of [1, 2, 3]) be.produce('sio.out', { type: 'emit', nsp: '/', rooms: ['game'], event: 'ev', data: [i] }, 'k');
    await h.waitFor(async () => (await gwB.metric('sio_recovery_log_packets')) >= logged + 3, 10000, {
      message: 'node B logged the gap',
    });

    await h.once(s, 'connect', 15000);
    assert.equal(s.recovered, true);
    assert.equal(s.id, id);
    const back = await be.next(
      (m) => m.topic === 'sio.in' && m.json && m.json.type === 'connect' && m.json.sid === id && m.json.recovered,
      10000,
    );
    assert.equal(back.json.node, 'gw-r2');
    await h.waitFor(() => got.length >= 4, 10000, { message: 'the missed events' });
    assert.deepEqual(got.map((a) => a[0]), [0, 1, 2, 3]);
    // its room came back on B
    be.produce('sio.out', { type: 'emit', nsp: '/', rooms: ['game'], event: 'ev', data: ['after'] }, 'k');
    await h.waitFor(() => got.length === 5, 10000, { message: 'a room emit on node B' });
    assert.equal(await gwB.metric('sio_recoveries_total', { result: 'recovered' }), 1);
    // its id still names node A (dead), and a node topic is not in the log other nodes
    // replay from: route=nodes keeps a recovering namespace's envelopes on sio.out
    const res = await gwB.http('/api/publish?route=nodes', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'emit', nsp: '/', rooms: [id], event: 'ev', data: ['routed'] }),
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text).to, ['sio.out']);
    await h.waitFor(() => got.length === 6, 10000, { message: 'the routed emit' });
    assert.equal(got[5][0], 'routed');
    s.close();
  });
});
