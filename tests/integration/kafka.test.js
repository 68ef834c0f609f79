'use strict';
/*
 * The Kafka bus end to end: two (and for flow control, three) gateway nodes on
 * librdkafka's mock cluster, a backend written with librdkafka (a consumer
 * on sio.in, a producer), real socket.io clients. No JVM: see helpers/kafka.js.
 *
 * Skipped when the build has no Kafka plugin (librdkafka-dev missing).
 */
const assert = require('node:assert/strict');
const { describe, before, after, it: plainIt } = require('node:test');
const h = require('./helpers/gateway');
const K = require('./helpers/kafka');

const { startNginx, NGINX } = require('./helpers/nginx');
const { soak } = require('./helpers/soak');

const TOPICS = [
  'sio.in:4',
  'sio.out:4',
  'sio.reply.gw-a:1',
  'sio.reply.gw-b:1',
  'sio.reply.gw-c:1',
  'svc.replies:1',
  'chat.room.lobby:2',
];

function nodeConfig(bootstrap, nodeId, extra = {}, adapterExtra = {}) {
  return h.mergeConfig(
    {
      node_id: nodeId,
      adapter: K.gatewayAdapter(bootstrap, { max_message: '64k' }, adapterExtra),
      namespaces: [
        { name: '/' },
        { name: '/chat', routes: [{ topic: 'chat.room.{room}', event: 'message' }] },
        { name: '/stored', ack: 'broker' },
      ],
    },
    extra,
  );
}

async function healthStatus(gw) {
  try {
    return (await gw.http('/healthz', { timeout: 1000 })).status;
  } catch {
    return 0;
  }
}

describe('kafka bus (mock cluster, two gateway nodes)', { skip: !K.available() && 'no Kafka plugin in this build' }, () => {
  let mock;
  let be;
  let gwA;
  let gwB;
  let seq = 0;
  const uniq = (p) => `${p}-${process.pid}-${++seq}`;

  before(async () => {
    mock = await K.MockCluster.start({ topics: TOPICS });
    be = await K.Backend.start(mock.bootstrap, { topics: ['sio.in', 'svc.replies'] });
    [gwA, gwB] = await Promise.all([
      h.startGateway(nodeConfig(mock.bootstrap, 'gw-a')),
      /* node B runs two service loops (engine.workers): every test below also covers them */
      h.startGateway(nodeConfig(mock.bootstrap, 'gw-b', { engine: { workers: 2 } })),
      be.waitAssigned(),
    ]);
  });
  after(async () => {
    const stops = [gwA, gwB].filter(Boolean).map((g) => g.stopChecked());
    await Promise.all(stops);
    if (be) await be.stop();
    if (mock) await mock.stop();
  });
  const it = h.gatewayIt(() => [gwA, gwB]);

  const eventFrom = (sid, name) => (m) =>
    m.topic === 'sio.in' && m.json && m.json.type === 'event' && m.json.sid === sid && m.json.event === name;

  it('a client event reaches the backend on sio.in, keyed by the socket id', async () => {
    const s = await gwA.connect('/');
    const tag = uniq('order');
    s.emit('order', { tag, n: 1 });
    const conn = await be.next((m) => m.topic === 'sio.in' && m.json && m.json.type === 'connect' && m.json.sid === s.id);
    assert.equal(conn.key, s.id);
    const m = await be.next(eventFrom(s.id, 'order'));
    assert.equal(m.key, s.id, 'sio.in is keyed by socket id');
    assert.equal(m.json.node, 'gw-a');
    assert.deepEqual(m.json.data, [{ tag, n: 1 }]);
    assert.ok(!m.json.ack, 'no ack was asked');
  });

  it('a backend emit to a room reaches its members on both nodes, and nobody else', async () => {
    const [a1, a2] = [await gwA.connect('/chat'), await gwA.connect('/chat')];
    const b1 = await gwB.connect('/chat');
    const ra2 = h.recorder(a2);
    const room = uniq('r');
    const key = uniq('k'); // one key: join, emit and the control emit stay in order
    const gotA1 = h.once(a1, 'news');
    const gotB1 = h.once(b1, 'news');
    be.produce('sio.out', { type: 'join', nsp: '/chat', rooms: [a1.id, b1.id], join: [room] }, key);
    be.produce('sio.out', { type: 'emit', nsp: '/chat', rooms: [room], event: 'news', data: [{ room }] }, key);
    assert.deepEqual(await gotA1, [{ room }]);
    assert.deepEqual(await gotB1, [{ room }]);
    // positive control on a2's path: it gets the next emit and only that one
    const gotA2 = h.once(a2, 'news');
    be.produce('sio.out', { type: 'emit', nsp: '/chat', rooms: [a2.id], event: 'news', data: ['control'] }, key);
    assert.deepEqual(await gotA2, ['control']);
    assert.deepEqual(ra2.of('news'), [['control']]);
  });

  it("a client's ack goes out with node B's reply topic; the backend's answer reaches node B only", async () => {
    const b = await gwB.connect('/');
    const replyA = await gwA.metric('sio_bus_messages_in_total', { kind: 'reply' });
    const replyB = await gwB.metric('sio_bus_messages_in_total', { kind: 'reply' });
    const p = b.timeout(5000).emitWithAck('echo', { v: 7 });
    const m = await be.next(eventFrom(b.id, 'echo'));
    assert.equal(m.json.ack.reply_to, 'sio.reply.gw-b');
    assert.equal(m.json.node, 'gw-b');
    be.produce(m.json.ack.reply_to, { type: 'ack', id: m.json.ack.id, data: [{ ok: true, v: 7 }] });
    assert.deepEqual(await p, { ok: true, v: 7 });
    assert.equal(await gwB.metric('sio_bus_messages_in_total', { kind: 'reply' }), replyB + 1);
    assert.equal(await gwA.metric('sio_bus_messages_in_total', { kind: 'reply' }), replyA);
  });

  it('fetch: exactly one sockets reply per node', async () => {
    const a = await gwA.connect('/');
    const b = await gwB.connect('/');
    const fid = uniq('f');
    be.produce('sio.out', { type: 'fetch', nsp: '/', reply_to: 'svc.replies', id: fid });
    const isReply = (id) => (m) => m.topic === 'svc.replies' && m.json && m.json.type === 'sockets' && m.json.id === id;
    const r1 = await be.next(isReply(fid));
    await be.waitLine((l) => l && l.event === 'message' && isReply(fid)(l) && l !== r1, 5000);
    // barrier: a second fetch's two replies come after any late duplicate of the first
    const fid2 = uniq('f');
    be.produce('sio.out', { type: 'fetch', nsp: '/', reply_to: 'svc.replies', id: fid2 });
    await h.waitFor(() => be.messages.filter(isReply(fid2)).length === 2, 5000, { message: 'second fetch replies' });
    const replies = be.messages.filter(isReply(fid));
    assert.equal(replies.length, 2);
    const byNode = Object.fromEntries(replies.map((m) => [m.json.node, m.json.sockets.map((s) => s.id)]));
    assert.deepEqual(Object.keys(byNode).sort(), ['gw-a', 'gw-b']);
    assert.ok(byNode['gw-a'].includes(a.id) && !byNode['gw-a'].includes(b.id));
    assert.ok(byNode['gw-b'].includes(b.id) && !byNode['gw-b'].includes(a.id));
  });

  it('the replies to one emit-with-ack (acks, then ack_done) share its id as key: one partition, in order', async () => {
    const clients = await Promise.all([gwA.connect('/'), gwA.connect('/'), gwA.connect('/')]);
    for (const c of clients) c.on('q', (n, cb) => cb({ from: c.id, n }));
    const rid = uniq('q');
    be.produce('sio.out', {
      type: 'emit', nsp: '/', rooms: clients.map((c) => c.id), event: 'q', data: [1],
      ack: { reply_to: 'svc.replies', id: rid, timeout_ms: 5000 },
    });
    const mine = (m) => m.topic === 'svc.replies' && m.json && m.json.id === rid;
    const doneOf = (node) => be.messages.find((m) => mine(m) && m.json.type === 'ack_done' && m.json.node === node);
    // every node answers with its ack_done (gw-b's counts none)
    await h.waitFor(() => doneOf('gw-a') && doneOf('gw-b'), 10000, { message: "both nodes' ack_done" });
    const all = be.messages.filter(mine);
    assert.equal(all.length, 5, 'three acks and two ack_done');
    assert.equal(doneOf('gw-a').json.acked, 3);
    assert.ok(all.every((m) => m.key === rid), 'keyed by the request id');
    assert.equal(new Set(all.map((m) => m.partition)).size, 1, 'one partition');
    const acks = all.filter((m) => m.json.type === 'ack');
    assert.ok(acks.every((m) => m.offset < doneOf('gw-a').offset), "gw-a's ack_done after its acks");
  });

  it("one HTTP API publisher's messages to a topic keep their order (keyed by the topic); key= spreads them", async () => {
    const tag = uniq('api');
    for (let i = 0; i < 20; i++) await gwA.publish('svc.replies', { type: 'x', tag, i });
    const mine = (m) => m.topic === 'svc.replies' && m.json && m.json.tag === tag;
    await h.waitFor(() => be.messages.filter(mine).length === 20, 5000, { message: '20 messages' });
    const got = be.messages.filter(mine);
    assert.ok(got.every((m) => m.key === 'svc.replies'));
    assert.deepEqual(got.map((m) => m.json.i), [...Array(20).keys()], 'in publish order');
    const res = await h.httpRequest(`${gwA.url}/api/publish?topic=svc.replies&key=k-${tag}`, {
      method: 'POST', body: JSON.stringify({ tag: `${tag}-k` }),
    });
    assert.equal(res.status, 200);
    const k = await be.next((m) => m.topic === 'svc.replies' && m.json && m.json.tag === `${tag}-k`);
    assert.equal(k.key, `k-${tag}`);
  });

  /* Until gw's consumer reads its node topic (created when it subscribed): an idempotent
   * probe emit to a socket of gw, sent again until it has arrived. Returns the socket. */
  async function nodeTopicLive(gw) {
    const s = await gw.connect('/');
    const topic = `sio.node.${s.id.slice(0, 4)}`;
    let probes = 0;
    s.on('probe', () => probes++);
    await h.waitFor(() => {
      if (!probes) be.produce(topic, { type: 'emit', rooms: [s.id], event: 'probe', data: [] }, s.id);
      return probes > 0;
    }, 10000, { interval: 300, message: `${gw.config.node_id} reads ${topic}` });
    const fence = h.once(s, 'fence'); /* one key, one partition: the probes are in before it */
    be.produce(topic, { type: 'emit', rooms: [s.id], event: 'fence', data: [] }, s.id);
    await fence;
    return s;
  }

  it('no sticky sessions: two nodes behind nginx round-robin, polling-only and upgrading clients, acks, broadcasts, 15 s, no error',
    { skip: !NGINX && 'nginx not installed' }, async () => {
      (await nodeTopicLive(gwA)).close();
      (await nodeTopicLive(gwB)).close();
      const lb = await startNginx([gwA.port, gwB.port], { balance: 'round-robin' });
      try {
        const r = await soak({
          url: lb.url,
          backend: {
            events: (fn) => be.onMessage((m) => m.topic === 'sio.in' && m.json && fn(m.json)),
            reply: (topic, env) => be.produce(topic, env),
            broadcast: (env) => be.produce('sio.out', env, 'soak'),
          },
          clients: { polling: 10, websocket: 10 },
          ms: 15000,
        });
        assert.deepEqual(r.errors, []);
        assert.ok(r.acked > 100, `acked ${r.acked}`);
        assert.ok((await gwA.metric('sio_relay_requests_total', { side: 'front' })) > 0);
        assert.ok((await gwB.metric('sio_relay_requests_total', { side: 'front' })) > 0);
        assert.equal(await gwA.metric('sio_relay_timeouts_total'), 0);
        assert.equal(await gwB.metric('sio_relay_timeouts_total'), 0);
        console.log(`# relay soak (kafka): ${JSON.stringify(r.summary)}`);
      } finally {
        await lb.stop();
      }
    });

  it('targeted delivery: a node topic is consumed by its node only; route=nodes sends socket-addressed envelopes there', async () => {
    const a = await nodeTopicLive(gwA); /* gw-a's consumer reads its node topic */
    const b = await gwB.connect('/');
    const recB = h.recorder(b);
    const topicA = `sio.node.${a.id.slice(0, 4)}`;
    const nodeB = await gwB.metric('sio_bus_messages_in_total', { kind: 'node' });
    const outB = await gwB.metric('sio_bus_messages_in_total', { kind: 'out' });
    const nodeA = await gwA.metric('sio_bus_messages_in_total', { kind: 'node' });
    /* the backend's own producer */
    const dm = h.once(a, 'dm');
    be.produce(topicA, { type: 'emit', rooms: [a.id], event: 'dm', data: ['from the backend'] });
    assert.deepEqual(await dm, ['from the backend']);
    /* node B's HTTP API routes an envelope for a's socket to a's node topic */
    const dm2 = h.once(a, 'dm2');
    const res = await gwB.http('/api/publish?route=nodes', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'emit', rooms: [a.id], event: 'dm2', data: ['via node b'] }),
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text).to, [topicA]);
    assert.deepEqual(await dm2, ['via node b']);
    /* node B read none of it: its consumer has no node topic of A; a control on sio.out
     * is the one message it gets */
    const ctl = h.once(b, 'ctl');
    be.produce('sio.out', { type: 'emit', event: 'ctl', data: [] });
    await ctl;
    assert.equal(await gwB.metric('sio_bus_messages_in_total', { kind: 'node' }), nodeB);
    assert.equal(await gwB.metric('sio_bus_messages_in_total', { kind: 'out' }), outB + 1);
    assert.equal(await gwA.metric('sio_bus_messages_in_total', { kind: 'node' }), nodeA + 2);
    assert.deepEqual(recB.of('dm').concat(recB.of('dm2')), []);
  });

  it('a raw route topic (chat.room.{room}) feeds the room on both nodes', async () => {
    const a = await gwA.connect('/chat');
    const b = await gwB.connect('/chat');
    const key = uniq('lobby');
    be.produce('sio.out', { type: 'join', nsp: '/chat', rooms: [a.id, b.id], join: ['lobby'] }, key);
    // the nodes subscribe chat.room.lobby when the room gets its first local member:
    // probe until both deliver, then the real message
    const ra = h.recorder(a);
    const rb = h.recorder(b);
    await h.waitFor(
      () => {
        be.produce('chat.room.lobby', 'probe');
        return ra.of('message').length > 0 && rb.of('message').length > 0;
      },
      8000,
      { interval: 200, message: 'route subscription live on both nodes' },
    );
    const text = uniq('hello');
    be.produce('chat.room.lobby', JSON.stringify({ text }));
    await h.waitFor(
      () => [ra, rb].every((r) => r.of('message').some((args) => args[0] && args[0].text === text)),
      5000,
      { message: 'route message on both nodes' },
    );
  });

  it('ack: broker — the client is acked once Kafka stored the event; an event Kafka refuses is never acked', async () => {
    const s = await gwA.connect('/stored', { transports: ['websocket'] });
    const tag = uniq('stored');
    assert.equal(await s.timeout(5000).emitWithAck('order', { tag }), undefined, 'an empty ack');
    const m = await be.next(eventFrom(s.id, 'order'));
    assert.deepEqual(m.json.data, [{ tag }]);
    assert.equal(m.json.ack, undefined, 'nobody else is asked to ack');
    // larger than max_message (64k): librdkafka refuses it, the client is never acked
    const errors = await gwA.metric('sio_bus_publish_errors_total');
    await assert.rejects(s.timeout(1000).emitWithAck('order', 'x'.repeat(100000)), /timed out/);
    assert.equal(await gwA.metric('sio_bus_publish_errors_total'), errors + 1);
    assert.equal(await s.timeout(5000).emitWithAck('order', 'small'), undefined);
  });

  it('two nodes behind nginx with sticky sessions: polling-only clients keep working across many requests', { skip: !NGINX && 'nginx not installed' }, async () => {
    const ngx = await startNginx([gwA.port, gwB.port], { balance: 'sticky' });
    try {
      const pollA = await gwA.metric('sio_sessions_opened_total');
      const pollB = await gwB.metric('sio_sessions_opened_total');
      const clients = [];
      for (let i = 0; i < 8; i++) {
        clients.push(
          await h.connectClient(`${ngx.url}/stored`, { transports: ['polling'], extraHeaders: { 'x-sticky': `client-${i}` } }),
        );
      }
      const disconnects = [];
      for (const c of clients) c.on('disconnect', (why) => disconnects.push(why));
      // each ack: a POST with the event, Kafka's delivery report, a held GET with the ack
      for (let round = 0; round < 10; round++) {
        const acks = await Promise.all(clients.map((c) => c.timeout(5000).emitWithAck('order', { round })));
        assert.deepEqual(acks, clients.map(() => undefined));
      }
      // and backend emits reach each of them through its node
      const got = clients.map((c) => h.once(c, 'hello', 5000));
      be.produce('sio.out', { type: 'emit', nsp: '/stored', event: 'hello', data: ['all'] });
      for (const g of got) assert.deepEqual(await g, ['all']);
      assert.deepEqual(disconnects, []);
      assert.ok(clients.every((c) => c.connected && c.io.engine.transport.name === 'polling'));
      // the clients were spread over both nodes
      assert.ok((await gwA.metric('sio_sessions_opened_total')) > pollA, 'some sessions on gw-a');
      assert.ok((await gwB.metric('sio_sessions_opened_total')) > pollB, 'some sessions on gw-b');
      for (const c of clients) c.close();
    } finally {
      await ngx.stop();
    }
  });

  it('flow control: a full inbound queue pauses the partition and redelivers, nothing lost', async () => {
    const gwC = await h.startGateway(
      nodeConfig(mock.bootstrap, 'gw-c', { engine: { send_queue: 100000, workers: 2 }, adapter: { options: { pause_backoff: '1ms' } } }, { inbound_queue: 4 }),
    );
    try {
      const c = await gwC.connect('/');
      const got = [];
      c.on('seq', (n) => got.push(n));
      const N = 3000;
      const key = uniq('flow'); // one partition: order is checked too
      // make sure gw-c consumes sio.out (assigned at its end at startup) before the burst
      await h.waitFor(
        async () => {
          be.produce('sio.out', { type: 'emit', rooms: [c.id], event: 'ready', data: [] }, key);
          return (await gwC.metric('sio_bus_messages_in_total', { kind: 'out' })) > 0;
        },
        5000,
        { interval: 100, message: 'gw-c consuming sio.out' },
      );
      // (two loops: a message goes to both queues or, when one is full, to neither and
      // comes again)
      // A burst overflows the queue of 4; whether the plugin's in-place retry (1 ms)
      // finds room, or it has to pause the partition, depends on how fast the loop
      // drains: bursts until one paused (at most 5), every message checked each time.
      let sent = 0;
      let text;
      for (let burst = 0; burst < 5; burst++) {
        for (let i = 0; i < N; i++, sent++) be.produce('sio.out', { type: 'emit', rooms: [c.id], event: 'seq', data: [sent] }, key);
        await h.waitFor(() => got.length >= sent, 20000, { interval: 50, message: `${sent} emits on gw-c (got ${got.length})` });
        text = await gwC.metricsText();
        if (h.metricValue(text, 'sio_kafka_pauses_total') > 0) break;
      }
      assert.equal(got.length, sent);
      assert.ok(
        got.every((v, i) => v === i),
        'in order, no gap, no duplicate',
      );
      const pauses = h.metricValue(text, 'sio_kafka_pauses_total');
      const refused = h.metricValue(text, 'sio_kafka_refused_total');
      assert.ok(refused > 0 && pauses > 0, `the queue of 4 overflowed and paused (refused ${refused}, pauses ${pauses})`);
      assert.equal(h.metricValue(text, 'sio_kafka_dropped_total'), 0);
      assert.ok(c.connected);
    } finally {
      await gwC.stopChecked();
    }
  });

  it('broker outage: clients stay, /healthz says unhealthy, buffered events and emits flow again after', async () => {
    const x = await gwA.connect('/');
    const y = await gwB.connect('/');
    const z = await gwB.connect('/stored', { transports: ['websocket'] });
    const disconnects = [];
    for (const s of [x, y, z]) s.on('disconnect', (why) => disconnects.push(why));
    await mock.down();
    const t0 = Date.now();
    await h.waitFor(async () => (await healthStatus(gwA)) === 503 && (await healthStatus(gwB)) === 503, 5000, {
      message: 'both nodes unhealthy',
    });
    const health = (await gwA.http('/healthz')).json();
    assert.match(health.reason || '', /broker/);
    const N = 20;
    for (let i = 0; i < N; i++) x.emit('outage', i);
    // ack: broker — nothing is acked while Kafka cannot store it
    const acked = [];
    const zAcks = [];
    for (let i = 0; i < 5; i++) zAcks.push(z.timeout(20000).emitWithAck('stored', i).then(() => acked.push(i)));
    await h.waitFor(async () => (await gwA.metric('sio_kafka_outq_messages')) >= N, 3000, {
      message: 'events buffered in the producer',
    });
    await h.waitFor(async () => (await gwB.metric('sio_kafka_outq_messages')) >= 5, 3000, {
      message: 'acked events buffered in the producer',
    });
    // keep the brokers away for a few seconds in all, then bring them back
    await h.waitFor(() => Date.now() - t0 >= 3000, 4000, { interval: 100, message: 'outage lasted 3 s' });
    assert.deepEqual(acked, [], 'no ack while the brokers are down');
    await mock.up();
    await h.waitFor(async () => (await healthStatus(gwA)) === 200 && (await healthStatus(gwB)) === 200, 10000, {
      message: 'both nodes healthy again',
    });
    await h.waitFor(() => be.messages.filter(eventFrom(x.id, 'outage')).length >= N, 15000, {
      message: 'the events emitted during the outage reached the backend',
    });
    const vals = be.messages.filter(eventFrom(x.id, 'outage')).map((m) => m.json.data[0]);
    assert.deepEqual(vals, [...Array(N).keys()], 'all of them, in order, once (idempotent producer)');
    await Promise.all(zAcks);
    assert.deepEqual(acked, [0, 1, 2, 3, 4], 'acked after the brokers came back, in order');
    // every event acked to the client is on the topic
    await h.waitFor(() => be.messages.filter(eventFrom(z.id, 'stored')).length >= 5, 10000, {
      message: 'the acked events on sio.in',
    });
    assert.deepEqual(
      be.messages.filter(eventFrom(z.id, 'stored')).map((m) => m.json.data[0]),
      [0, 1, 2, 3, 4],
    );
    // the consuming side flows again
    const gx = h.once(x, 'after', 10000);
    const gy = h.once(y, 'after', 10000);
    be.produce('sio.out', { type: 'emit', rooms: [x.id, y.id], event: 'after', data: ['ok'] });
    assert.deepEqual(await gx, ['ok']);
    assert.deepEqual(await gy, ['ok']);
    assert.ok(x.connected && y.connected && z.connected);
    assert.deepEqual(disconnects, [], 'no client was disconnected');
  });
});

describe('kafka plugin: startup errors are clear', { skip: !K.available() && 'no Kafka plugin in this build' }, () => {
  let mock;
  before(async () => {
    mock = await K.MockCluster.start({ topics: ['sio.in:1', 'sio.out:1'] });
  });
  after(async () => {
    if (mock) await mock.stop();
  });

  async function startFails(adapterOptions) {
    const cfg = h.mergeConfig(h.baseConfig(await h.freePort()), {
      listen: { host: '127.0.0.1' },
      adapter: K.gatewayAdapter(mock.bootstrap, adapterOptions),
    });
    const file = h.writeConfig(h.toYaml(cfg));
    const r = await h.runGateway(['-c', file], { timeout: 10000 });
    assert.notEqual(r.code, 0, `the gateway should not start:\n${r.stderr}`);
    return r.stderr;
  }

  plainIt('a librdkafka property librdkafka refuses, with its own message', async () => {
    const err = await startFails({ 'rdkafka.no.such.property': 'x' });
    assert.match(err, /rdkafka\.no\.such\.property: No such configuration property: "no\.such\.property"/);
  });

  plainIt('a required topic that is missing while create_topics is off', async () => {
    const err = await startFails({ create_topics: 'off', topics: ['sio.in', 'sio.missing.topic'] });
    assert.match(err, /topic sio\.missing\.topic does not exist and create_topics is off/);
  });

  plainIt('no broker answering within connect_timeout', async () => {
    const port = await h.freePort(); // nothing listens there
    const err = await startFails({ brokers: `127.0.0.1:${port}`, connect_timeout: '500ms' });
    assert.match(err, /no answer from brokers 127\.0\.0\.1:\d+ within 500 ms/);
  });

  plainIt('--check accepts the options without contacting the brokers', async () => {
    const cfg = h.mergeConfig(h.baseConfig(await h.freePort()), {
      adapter: K.gatewayAdapter('127.0.0.1:1', { topics: ['sio.in'], 'topic.sio.in': 'partitions=3' }),
    });
    const r = await h.runGateway(['-c', h.writeConfig(h.toYaml(cfg)), '--check'], { timeout: 5000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration ok \(plugin kafka/);
  });
});
