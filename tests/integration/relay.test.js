'use strict';
/*
 * No sticky sessions (bus/relay.h): a request for a session another node holds is
 * relayed over the bus to that node, and its answer back. Two gateway nodes on an nng
 * mesh (each dials the other's publish socket and the backend's), a backend on real nng
 * sockets that answers acks, real socket.io clients; nginx with plain round-robin in
 * front when it is installed. The Kafka variant is in kafka.test.js.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');
const NG = require('./helpers/nng');
const { startNginx, NGINX } = require('./helpers/nginx');
const { soak } = require('./helpers/soak');

const skip = !NG.available() && 'no NNG plugin in this build';

const { pyOk, runPy } = require('./helpers/python');

const CHROMIUM = process.env.SIOGW_CHROMIUM || '/usr/bin/chromium';

describe('no sticky sessions: two nodes on an nng mesh', { skip }, () => {
  let dir;
  let gwA;
  let gwB;
  let be;
  let lb;
  const it = h.gatewayIt(() => [gwA, gwB]);
  /* node B runs two service loops (engine.workers): relayed requests between the nodes
   * reach the loop a socket id names, and B's loops relay to each other as well */
  const node = (id, self, other) => ({
    node_id: id,
    adapter: NG.adapter({
      publish_listen: [NG.url(dir, `${self}-pub`)],
      receive_dial: [NG.url(dir, `${other}-pub`), NG.url(dir, 'be-out')],
      max_message: '64k',
    }),
    engine: {
      ping_interval_ms: 2000, ping_timeout_ms: 3000, send_queue: 32, allow_eio3: true, serve_client: true,
      workers: id === 'gw-b' ? 2 : 1,
    },
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
    /* a POST the bus cannot carry (over max_message): 503 saying so, the session goes on */
    const big = await onB.post(`42["big","${'x'.repeat(100000)}"]`);
    assert.equal(big.status, 503);
    assert.match(big.text, /relay to the session's node failed/);
    assert.ok((await gwB.metric('sio_relay_publish_errors_total')) >= 1);
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

  it('a relayed websocket whose client stops reading is closed as a slow consumer after engine.send_queue messages', async () => {
    const eio = new h.EioPolling(gwA.url);
    await eio.handshake();
    await eio.post('40');
    const { packet } = await eio.pollUntil((p) => p.startsWith('40'));
    const sioId = JSON.parse(packet.slice(2)).sid;
    /* a raw websocket to node B for A's session: probe and upgrade, then it stops reading */
    const u = new URL(gwB.url);
    const slow = net.connect(Number(u.port), u.hostname);
    let text = '';
    const seen = (re) => h.waitFor(() => re.test(text), 5000, { message: `${re} (got ${JSON.stringify(text.slice(-200))})` });
    slow.on('data', (d) => { text += d.toString('latin1'); });
    slow.on('error', () => {});
    slow.write(`GET /socket.io/?EIO=4&transport=websocket&sid=${eio.sid} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      'Sec-WebSocket-Version: 13\r\n\r\n');
    await seen(/^HTTP\/1\.1 101/);
    const frame = (t) => Buffer.concat([Buffer.from([0x81, 0x80 | t.length, 0, 0, 0, 0]), Buffer.from(t)]); /* masked, key 0 */
    slow.write(frame('2probe'));
    await seen(/3probe/);
    slow.write(frame('5'));
    await h.waitFor(async () => (await gwA.metric('sio_upgrades_total')) >= 1, 5000, { message: 'upgraded on A' });
    slow.pause();
    const slowBefore = await gwB.metric('sio_relay_slow_consumers_total');
    const pad = 'x'.repeat(32 * 1024);
    let sent = 0;
    while (sent < 2000 && (await gwB.metric('sio_relay_slow_consumers_total')) === slowBefore) {
      const body = Array.from({ length: 20 }, () => JSON.stringify({ type: 'emit', rooms: [sioId], event: 'big', data: [pad] })).join('\n');
      const r = await h.httpRequest(`${gwA.url}/api/publish?route=nodes`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      assert.equal(r.status, 200);
      sent += 20;
    }
    assert.equal(await gwB.metric('sio_relay_slow_consumers_total'), slowBefore + 1, `closed after ${sent} emits of 32 KiB`);
    /* and the session on A goes with it */
    await h.waitFor(async () => (await gwA.metric('sio_relay_open', { side: 'owner' })) === 0, 5000, { message: 'A let it go' });
    slow.destroy();
  });

  it('socket.io-client@2 (Engine.IO v3) behind nginx round-robin: polling-only and upgrading, acks and a broadcast',
    { skip: !NGINX && 'nginx not installed' }, async () => {
      const ioV2 = require('socket.io-client-v2');
      const rr = await startNginx([gwA.port, gwB.port], { balance: 'round-robin' });
      const answer = (m) => {
        const e = m.json;
        if (m.topic === 'sio.in' && e && e.type === 'event' && e.event === 'v2q' && e.ack) {
          be.publish(e.ack.reply_to, { type: 'ack', id: e.ack.id, data: [e.data[0]] });
        }
      };
      be.onMessage(answer);
      const clients = [];
      const fronts = async () => (await gwA.metric('sio_relay_requests_total', { side: 'front' })) +
        (await gwB.metric('sio_relay_requests_total', { side: 'front' }));
      const before_ = await fronts();
      try {
        for (const transports of [['polling'], ['polling', 'websocket']]) {
          for (let i = 0; i < 3; i++) clients.push(ioV2(rr.url, { forceNew: true, reconnection: false, timeout: 5000, transports }));
        }
        const errors = [];
        for (const s of clients) {
          s.on('disconnect', (why) => errors.push(`disconnect ${why}`));
          s.on('connect_error', (e) => errors.push(`connect_error ${e.message}`));
        }
        await Promise.all(clients.map((s) => h.once(s, 'connect', 8000)));
        for (let round = 0; round < 10; round++) {
          const acks = await Promise.all(clients.map((s, k) => h.withTimeout(new Promise((res) => s.emit('v2q', { round, k }, res)), 5000, 'v2 ack')));
          assert.deepEqual(acks, clients.map((_, k) => ({ round, k })));
        }
        const got = clients.map((s) => h.once(s, 'v2b', 5000));
        be.publish('sio.out', { type: 'emit', event: 'v2b', data: ['all'] });
        for (const g of got) assert.deepEqual(await g, ['all']);
        assert.deepEqual(errors, []);
        assert.ok(clients.slice(3).every((s) => s.io.engine.transport.name === 'websocket'), 'the upgrading ones upgraded');
        assert.ok((await fronts()) > before_, 'some of their requests were relayed');
      } finally {
        for (const s of clients) s.close();
        be.listeners.splice(be.listeners.indexOf(answer), 1);
        await rr.stop();
      }
    });

  it('a real browser (headless Chromium) behind nginx round-robin: the bundle, polling-only and upgrading sockets, acks, a broadcast',
    { skip: (!NGINX && 'nginx not installed') || (!fs.existsSync(CHROMIUM) && 'chromium not installed') }, async () => {
      const { chromium } = require('playwright-core');
      const rr = await startNginx([gwA.port, gwB.port], { balance: 'round-robin' });
      /* the page on an origin of its own; socket.io through the balancer */
      const page = `<!doctype html><script src="${rr.url}/socket.io/socket.io.js"></script><script>
        window.result = (async () => {
          const one = (transports) => new Promise((resolve, reject) => {
            const s = io(${JSON.stringify(rr.url)}, { transports, reconnection: false, forceNew: true });
            s.on('connect', () => resolve(s));
            s.on('connect_error', (e) => reject(new Error('connect_error ' + e.message)));
          });
          const sockets = [await one(['polling']), await one(['polling', 'websocket'])];
          const errors = [];
          sockets.forEach((s) => s.on('disconnect', (why) => errors.push('disconnect ' + why)));
          const acks = [];
          for (let n = 0; n < 20; n++) {
            for (const s of sockets) acks.push(await s.timeout(5000).emitWithAck('bq', n));
          }
          const news = Promise.all(sockets.map((s) => new Promise((r) => s.once('bnews', r))));
          window.ready = true;
          const got = await news;
          return { acks, got, errors, transports: sockets.map((s) => s.io.engine.transport.name) };
        })();
      </script>`;
      const srv = require('node:http').createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(page);
      });
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      const answer = (m) => {
        const e = m.json;
        if (m.topic === 'sio.in' && e && e.type === 'event' && e.event === 'bq' && e.ack) {
          be.publish(e.ack.reply_to, { type: 'ack', id: e.ack.id, data: [e.data[0] * 2] });
        }
      };
      be.onMessage(answer);
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync'],
      });
      try {
        const fronts = async () => (await gwA.metric('sio_relay_requests_total', { side: 'front' })) +
          (await gwB.metric('sio_relay_requests_total', { side: 'front' }));
        const before_ = await fronts();
        const tab = await browser.newPage();
        const problems = [];
        tab.on('pageerror', (e) => problems.push(e.message));
        await tab.goto(`http://127.0.0.1:${srv.address().port}/`);
        await tab.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
        be.publish('sio.out', { type: 'emit', event: 'bnews', data: ['to the browser'] });
        const r = await tab.evaluate(() => window.result);
        assert.deepEqual(problems, []);
        assert.deepEqual(r.errors, []);
        assert.deepEqual(r.acks, Array.from({ length: 40 }, (_, i) => 2 * Math.floor(i / 2)));
        assert.deepEqual(r.got, ['to the browser', 'to the browser']);
        assert.deepEqual(r.transports, ['polling', 'websocket']);
        assert.ok((await fronts()) > before_, 'some of its requests were relayed');
      } finally {
        await browser.close();
        srv.close();
        be.listeners.splice(be.listeners.indexOf(answer), 1);
        await rr.stop();
      }
    });

  it("python-socketio (Debian's) behind nginx round-robin: sync and asyncio clients, each transport mode",
    { skip: (!NGINX && 'nginx not installed') || (!pyOk && 'python3-socketio missing') }, async () => {
      const rr = await startNginx([gwA.port, gwB.port], { balance: 'round-robin' });
      const answer = (m) => {
        const e = m.json;
        if (m.topic !== 'sio.in' || !e || e.type !== 'event') return;
        if (e.event === 'echo' && e.ack) be.publish(e.ack.reply_to, { type: 'ack', id: e.ack.id, data: [e.data[0]] });
        if (e.event === 'ready') be.publish('sio.out', { type: 'emit', rooms: [e.sid], event: 'news', data: [e.data[0], 1764763262123456] });
      };
      be.onMessage(answer);
      try {
        const front = (await gwA.metric('sio_relay_requests_total', { side: 'front' })) + (await gwB.metric('sio_relay_requests_total', { side: 'front' }));
        for (const mode of ['sync', 'async']) {
          for (const transport of ['polling', 'websocket', 'upgrade']) {
            const r = await runPy('sio_client.py', [rr.url, mode, transport]);
            assert.equal(r.ok, true, `${mode} ${transport}`);
            assert.deepEqual(r.ack, [{ n: 1, s: 'é' }]);
            assert.deepEqual(r.news[0], { mode });
            assert.equal(r.transport, transport === 'polling' ? 'polling' : 'websocket');
          }
        }
        const after_ = (await gwA.metric('sio_relay_requests_total', { side: 'front' })) + (await gwB.metric('sio_relay_requests_total', { side: 'front' }));
        assert.ok(after_ > front, 'some of their requests were relayed');
      } finally {
        be.listeners.splice(be.listeners.indexOf(answer), 1);
        await rr.stop();
      }
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

describe('the node holding a relayed session dies', { skip }, () => {
  let dir;
  let gwA;
  let gwB;
  const it = h.gatewayIt(() => [gwB]);
  /* node B runs two service loops (engine.workers): relayed requests between the nodes
   * reach the loop a socket id names, and B's loops relay to each other as well */
  const node = (id, self, other) => ({
    node_id: id,
    adapter: NG.adapter({ publish_listen: [NG.url(dir, `${self}-pub`)], receive_dial: [NG.url(dir, `${other}-pub`)] }),
    engine: { ping_interval_ms: 1500, ping_timeout_ms: 1500 },
    namespaces: [{ name: '/' }],
  });
  before(async () => {
    dir = NG.tempDir();
    [gwA, gwB] = await Promise.all([
      h.startGateway(node('gw-a', 'a', 'b'), NG.gatewayOpts()),
      h.startGateway(node('gw-b', 'b', 'a'), NG.gatewayOpts()),
    ]);
    for (const gw of [gwA, gwB]) {
      await h.waitFor(async () => (await gw.metric('sio_nng_receive_peers')) === 1, 5000, { message: 'the mesh' });
    }
  });
  after(async () => {
    h.closeAllClients();
    await Promise.all([gwA && !gwA.exitCode() && gwA.stop(), gwB && gwB.stopChecked()]);
  });

  it('a held poll and a POST on node B get 400 "Session ID unknown" within the ping timeout; B counts the timeouts', async () => {
    const eio = new h.EioPolling(gwA.url);
    await eio.handshake();
    const onB = new h.EioPolling(gwB.url);
    onB.sid = eio.sid;
    assert.equal((await onB.post('40')).status, 200);
    await onB.pollUntil((p) => p.startsWith('40'));
    gwA.proc.kill('SIGKILL');
    await gwA.exited;
    const t0 = Date.now();
    const [held, post] = await Promise.all([onB.get({ timeout: 8000 }), onB.post('42["late"]', { timeout: 8000 })]);
    const took = Date.now() - t0;
    for (const r of [held, post]) {
      assert.equal(r.status, 400);
      assert.deepEqual(JSON.parse(r.text), { code: 1, message: 'Session ID unknown' });
    }
    assert.ok(took < 1500 + 1500 + 1000, `answered after ${took} ms`);
    assert.equal(await gwB.metric('sio_relay_timeouts_total'), 2);
    assert.equal(await gwB.metric('sio_relay_open', { side: 'front' }), 0);
  });
});

describe('drain behind nginx: node A drains, its clients reconnect to node B', { skip: (skip || (!NGINX && 'nginx not installed')) }, () => {
  let dir;
  let gwA;
  let gwB;
  let be;
  let lb;
  const it = h.gatewayIt(() => [gwA, gwB].filter((g) => g && !g.exitCode()));
  const N = 1000;
  const node = (id, self, other, extra = {}) => ({
    node_id: id,
    adapter: NG.adapter({
      publish_listen: [NG.url(dir, `${self}-pub`)],
      receive_dial: [NG.url(dir, `${other}-pub`), NG.url(dir, 'be-out')],
    }),
    namespaces: [{ name: '/' }],
    ...extra,
  });

  before(async () => {
    dir = NG.tempDir();
    be = await NG.Peer.start({
      pubListen: [NG.url(dir, 'be-out')],
      subDial: [NG.url(dir, 'a-pub'), NG.url(dir, 'b-pub')],
      subscribe: ['sio.in '],
    });
    [gwA, gwB] = await Promise.all([
      h.startGateway(node('gw-a', 'a', 'b', { shutdown: { drain_ms: 2000 } }), NG.gatewayOpts()),
      h.startGateway(node('gw-b', 'b', 'a'), NG.gatewayOpts()),
    ]);
    await be.waitPipes({ pub: 2, sub: 2 });
    /* A serves, B stands by: a 503 from A (draining) sends the request to B */
    lb = await startNginx([gwA.port], { balance: 'round-robin', backup: [gwB.port], retry503: true });
  });

  after(async () => {
    if (lb) await lb.stop();
    h.closeAllClients();
    if (be) await be.stop();
    await Promise.all([gwA && !gwA.exitCode() && gwA.stop(), gwB && gwB.stopChecked()]);
  });

  it(`${N} clients on A; SIGTERM with drain_ms 2000: A exits 0 within 4 s, every client is back on B, no acked event lost`, async () => {
    const received = new Set(); /* what the backend got: "<sid>:<n>" */
    be.onMessage((m) => {
      const e = m.json;
      if (m.topic === 'sio.in' && e && e.type === 'event' && e.event === 'q') {
        received.add(`${e.data[0].id}:${e.data[0].n}`);
        if (e.ack) be.publish(e.ack.reply_to, { type: 'ack', id: e.ack.id, data: [e.data[0].n] });
      }
    });
    const clients = [];
    for (let i = 0; i < N; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + 100); j++) {
        const s = h.openClient(lb.url, { transports: ['websocket'], reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 2000 });
        s.key = `c${j}`;
        s.acked = [];
        s.reconnected = false;
        clients.push(s);
        batch.push(h.once(s, 'connect', 20000));
      }
      await Promise.all(batch);
    }
    assert.equal(await gwA.metric('sio_sockets', { nsp: '/' }), N);
    for (const s of clients) s.once('connect', () => (s.reconnected = true));
    /* every client sends an event with an ack every 1 s, before, during and after the drain */
    let stop = false;
    const errors = [];
    const loops = clients.map(async (s, k) => {
      for (let n = 0; !stop; n++) {
        if (s.connected) {
          try {
            s.acked.push(await s.timeout(3000).emitWithAck('q', { id: s.key, n }));
          } catch {
            /* lost with its connection, or not acked in time: not counted as acked */
          }
        }
        await new Promise((r) => setTimeout(r, 1000 + (k % 10))); /* a pace, not a wait for a condition */
      }
    });
    const t0 = Date.now();
    gwA.proc.kill('SIGTERM');
    const code = await h.withTimeout(gwA.exited.then(() => gwA.exitCode()), 4000, 'gw-a exit');
    const took = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(took <= 4000, `gw-a exited after ${took} ms`);
    let onB = 0;
    await h.waitFor(async () => {
      onB = await gwB.metric('sio_sockets', { nsp: '/' });
      return clients.every((s) => s.reconnected && s.connected) && onB === N;
    }, 20000).catch((e) => {
      const back = clients.filter((s) => s.reconnected && s.connected).length;
      throw new Error(`${e.message}: ${back} of ${N} clients back, ${onB} sockets on gw-b; nginx: ${lb.errorLog().slice(-1500)}; gw-b: ${gwB.tail().slice(-1500)}; client: ${clients[0].connected} ${clients[0].io._readyState}`);
    });
    /* a round of acks on B for everyone, then stop */
    await h.waitFor(() => clients.every((s) => s.acked.length >= 2), 10000, { message: 'acks on gw-b' });
    stop = true;
    await Promise.all(loops);
    let acked = 0;
    for (const s of clients) {
      for (const n of s.acked) {
        acked++;
        if (!received.has(`${s.key}:${n}`)) errors.push(`${s.key}: event ${n} acked, never received`);
      }
    }
    assert.deepEqual(errors.slice(0, 10), []);
    assert.ok(acked >= 2 * N, `acked ${acked}`);
    console.log(`# drain behind nginx: ${N} clients, gw-a exited 0 after ${took} ms, ${acked} acked events, none lost`);
  });
});
