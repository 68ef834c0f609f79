'use strict';
/*
 * engine.allow_eio3 — Engine.IO v3 / Socket.IO v4 clients: the real socket.io-client
 * 2.5.0 from npm (socket.io-client-v2), over polling, websocket, the upgrade and with
 * forceBase64: connect with a query, events with acks answered by a backend, binary
 * both ways, emits from the backend, acks asked of the client, errors, server
 * disconnects, the heartbeat in v3's direction. Raw v3 polling is compared byte for
 * byte with Node's engine.io (socket.io 4.8 with allowEIO3) on the same requests.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const ioV2 = require('socket.io-client-v2');
const h = require('./helpers/gateway');

const open = new Set();
function v2(url, opts = {}) {
  const s = ioV2(url, { forceNew: true, reconnection: false, timeout: 3000, ...opts });
  open.add(s);
  return s;
}
function connected(s, ms = 4000) {
  return h.withTimeout(
    new Promise((resolve, reject) => {
      s.once('connect', () => resolve(s));
      s.once('connect_error', reject);
      s.once('error', (e) => reject(new Error(`error event: ${JSON.stringify(e)}`)));
    }),
    ms,
    'socket.io-client@2 connect',
  );
}
function ack(s, ...args) {
  return h.withTimeout(new Promise((resolve) => s.emit(...args, (...res) => resolve(res))), 4000, `ack of ${args[0]}`);
}

/* A raw v3 polling request: the status, content type and body as bytes. */
function raw(base, query, { method = 'GET', body, type } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { connection: 'close' };
    if (body) {
      headers['content-type'] = type || 'text/plain;charset=UTF-8';
      headers['content-length'] = String(body.length);
    }
    const req = http.request(`${base}/socket.io/?EIO=3&transport=polling&${query}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${query} timed out`)));
    if (body) req.write(body);
    req.end();
  });
}

describe('engine.allow_eio3 (socket.io-client@2)', () => {
  let gw;
  let be;
  let replies;
  before(async () => {
    gw = await h.startGateway({
      engine: { allow_eio3: true, ping_interval_ms: 300, ping_timeout_ms: 300 },
      namespaces: [
        { name: '/', events: ['*'] },
        { name: '/chat', events: ['*'] },
        { name: '/vip', auth: 'backend', auth_timeout_ms: 3000 },
      ],
    });
    be = await gw.backend();
    replies = await gw.subscribe('test.eio3.replies');
  });
  after(async () => {
    for (const s of open) s.close();
    await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);

  const modes = [
    { name: 'polling', opts: { transports: ['polling'] }, want: 'polling' },
    { name: 'websocket', opts: { transports: ['websocket'] }, want: 'websocket' },
    { name: 'upgrade', opts: {}, want: 'websocket' },
    { name: 'polling, forceBase64', opts: { transports: ['polling'], forceBase64: true }, want: 'polling' },
    { name: 'websocket, forceBase64', opts: { transports: ['websocket'], forceBase64: true }, want: 'websocket' },
  ];
  for (const m of modes) {
    it(`events, acks and binary both ways (${m.name})`, async () => {
      const s = await connected(v2(`${gw.url}/chat`, { query: { token: 'abc', n: '1' }, ...m.opts }));
      const sid = s.io.engine.id;
      assert.equal(s.id, `/chat#${sid}`);
      // the backend sees the socket as socket.io would: the id, the query as auth
      const con = await be.in.next((e) => e.type === 'connect' && e.nsp === '/chat' && e.sid === s.id);
      assert.deepEqual(con.handshake.auth, { token: 'abc', n: '1' });
      assert.equal(con.handshake.query.EIO, '3');
      // "/" too, without a CONNECT of the client's: socket.io puts v3 clients there
      await be.in.next((e) => e.type === 'connect' && e.nsp === '/' && e.sid === sid);
      if (m.want === 'websocket' && s.io.engine.transport.name !== 'websocket')
        await h.waitFor(() => s.io.engine.transport.name === 'websocket', 3000, { message: 'upgraded' });
      assert.equal(s.io.engine.transport.name, m.want);

      // client → backend, binary as $binary, an ack answered by the backend
      s.emit('up', 'w', Buffer.from([1, 2, 250]));
      const ev = await be.in.next((e) => e.type === 'event' && e.sid === s.id && e.event === 'up');
      assert.deepEqual(ev.data, ['w', { $binary: Buffer.from([1, 2, 250]).toString('base64') }]);
      const echoed = await ack(s, 'echo', { a: 1 }, Buffer.from('xyz'));
      assert.deepEqual(echoed[0], { a: 1 });
      assert.ok(Buffer.isBuffer(echoed[1]) && echoed[1].toString() === 'xyz', `echoed: ${JSON.stringify(echoed)}`);

      // backend → the socket's id room: text and binary; an emit with ack the client answers
      const got = h.once(s, 'file', 4000);
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [s.id], event: 'file', data: [{ $binary: 'AAEC/w==' }, 'tail'] });
      const [b, tail] = await got;
      assert.ok(Buffer.isBuffer(b), `got ${JSON.stringify(b)}`);
      assert.deepEqual([...b], [0, 1, 2, 255]);
      assert.equal(tail, 'tail');
      s.on('quiz', (q, cb) => cb(q * 2));
      const id = `q-${m.name}`;
      await gw.emitEnvelope({
        type: 'emit', nsp: '/chat', rooms: [s.id], event: 'quiz', data: [21],
        ack: { reply_to: replies.topic, id, timeout_ms: 4000 },
      });
      const a = await replies.next((r) => r.type === 'ack' && r.id === id);
      assert.deepEqual(a.data, [42]);
      assert.equal(a.sid, s.id);
      await replies.next((r) => r.type === 'ack_done' && r.id === id);

      // rooms: join by the backend, emit to the room
      await gw.emitEnvelope({ type: 'join', nsp: '/chat', rooms: [s.id], join: [`r-${m.name}`] });
      const inRoom = h.once(s, 'room', 4000);
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [`r-${m.name}`], event: 'room', data: ['ok'] });
      assert.deepEqual(await inRoom, ['ok']);

      // heartbeat: v3's client pings (every 300 ms here) keep the session for 3 intervals
      await h.sleep(1000);
      assert.equal(s.connected, true);
      const id0 = s.id; // (socket.io-client@2 deletes socket.id on close)
      const gone = be.in.next((e) => e.type === 'disconnect' && e.sid === id0);
      s.close();
      assert.equal((await gone).reason, 'client namespace disconnect');
    });
  }

  it('fetch lists v3 sockets by socket.io ids; a server disconnect reaches the client', async () => {
    const mgr = ioV2.Manager(gw.url, { reconnection: false, transports: ['websocket'] });
    const root = mgr.socket('/');
    const chat = mgr.socket('/chat');
    open.add(root);
    open.add(chat);
    await Promise.all([connected(root), connected(chat)]);
    const sid = mgr.engine.id;
    assert.equal(root.id, sid);
    const list = await gw.fetchSockets({ nsp: '/chat', rooms: [chat.id] });
    assert.deepEqual(list.sockets.map((x) => x.id), [`/chat#${sid}`]);
    const why = h.once(chat, 'disconnect', 4000);
    await gw.emitEnvelope({ type: 'disconnect', nsp: '/chat', rooms: [chat.id] });
    assert.deepEqual(await why, ['io server disconnect']);
    assert.equal(root.connected, true);
    root.close();
  });

  it('CONNECT_ERROR: the error data or message alone, as socket.io sends v3 clients', async () => {
    const bad = v2(`${gw.url}/nope`, { transports: ['websocket'] });
    const [err] = await h.once(bad, 'error', 4000);
    assert.deepEqual(err, { message: 'Invalid namespace' });

    const cases = [
      [{ message: 'not you' }, 'not you'],
      [{ message: 'not you', data: { code: 7 } }, { code: 7 }],
    ];
    for (const [error, want] of cases) {
      const s = v2(`${gw.url}/vip`, { transports: ['polling'], query: { user: 'x' } });
      const req = await be.in.next((e) => e.type === 'connect' && e.nsp === '/vip' && !e._seen);
      req._seen = true;
      assert.deepEqual(req.handshake.auth, { user: 'x' });
      const got = h.once(s, 'error', 4000);
      await gw.reply({ type: 'connect_result', id: req.id, ok: false, error });
      assert.deepEqual((await got)[0], want);
      s.close();
    }
    // admitted: connects, with the id socket.io gives it
    const s = v2(`${gw.url}/vip`, { transports: ['polling'] });
    const req = await be.in.next((e) => e.type === 'connect' && e.nsp === '/vip' && !e._seen);
    req._seen = true;
    const ok = connected(s);
    await gw.reply({ type: 'connect_result', id: req.id, ok: true });
    await ok;
    assert.equal(s.id, req.sid);
    assert.equal(s.id, `/vip#${s.io.engine.id}`);
    s.close();
  });

  it('a v3 session that stops pinging is closed after ping_interval + ping_timeout', async () => {
    const hs = await raw(gw.url, 't=1');
    assert.equal(hs.status, 200);
    const text = hs.body.toString();
    const m = /^(\d+):0(\{.*\})$/.exec(text);
    assert.ok(m, `v3 open payload: ${text}`);
    const open0 = JSON.parse(m[2]);
    assert.equal(Number(m[1]), m[2].length + 1);
    const t0 = Date.now();
    // the auto-connect of "/" waits in the queue; then the held poll ends with the close
    const first = await raw(gw.url, `sid=${open0.sid}`);
    assert.equal(first.body.toString(), '2:40');
    const last = await raw(gw.url, `sid=${open0.sid}`);
    const waited = Date.now() - t0;
    assert.equal(last.body.toString(), '1:1');
    assert.ok(waited >= 500 && waited < 3000, `closed after ${waited} ms`);
    const after = await raw(gw.url, `sid=${open0.sid}`);
    assert.equal(after.status, 400);
    assert.deepEqual(JSON.parse(after.body), { code: 1, message: 'Session ID unknown' });
  });

  it('a v4 request for a v3 session is refused; a pong from a v3 client is a transport error', async () => {
    const hs = await raw(gw.url, 't=2');
    const sid = JSON.parse(/^\d+:0(.*)$/.exec(hs.body.toString())[1]).sid;
    const v4 = await gw.http(`/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.equal(v4.status, 400);
    assert.equal(v4.json().code, 3);
    const bad = await raw(gw.url, `sid=${sid}`, { method: 'POST', body: Buffer.from('1:3') });
    assert.equal(bad.status, 200);
    const gone = await raw(gw.url, `sid=${sid}`);
    assert.equal(gone.status, 400);
    // malformed v3 payloads close the session with 400
    // (parser-v3 fails each of these too; engine.io then closes the session)
    for (const body of ['3:4', '2x:42', 'b4AQID', '1:']) {
      const s = JSON.parse(/^\d+:0(.*)$/.exec((await raw(gw.url, 't=3')).body.toString())[1]).sid;
      const r = await raw(gw.url, `sid=${s}`, { method: 'POST', body: Buffer.from(body) });
      assert.equal(r.status, 400, `POST ${JSON.stringify(body)}`);
      assert.equal((await raw(gw.url, `sid=${s}`)).status, 400, `session closed after ${JSON.stringify(body)}`);
    }
    // an empty packet is skipped, as parser-v3 does
    const e = JSON.parse(/^\d+:0(.*)$/.exec((await raw(gw.url, 't=4')).body.toString())[1]).sid;
    assert.equal((await raw(gw.url, `sid=${e}`, { method: 'POST', body: Buffer.from('0:1:1') })).status, 200);
    // JSONP polling is not served
    const j = await raw(gw.url, 'j=0');
    assert.equal(j.status, 400);
  });

  it('raw v3 polling answers packet for packet as Node engine.io with allowEIO3 does', async () => {
    const parserV3 = require('./node_modules/engine.io/build/parser-v3/index.js');
    const { Server } = require('socket.io');
    const srv = http.createServer();
    const io = new Server(srv, { allowEIO3: true, pingInterval: 300, pingTimeout: 300 });
    io.on('connection', (sock) => sock.on('bin', () => sock.emit('b', Buffer.from([7, 8]), 'é€😀')));
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const ref = `http://127.0.0.1:${srv.address().port}`;
    // the gateway's backend answers 'bin' the same way
    const sin = await gw.subscribe(gw.topics.in);
    sin.onMessage((e) => {
      if (e && e.type === 'event' && e.event === 'bin')
        gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [e.sid], event: 'b', data: [{ $binary: 'Bwg=' }, 'é€😀'] });
    });
    try {
      /* Every response decoded by engine.io's own parser-v3: the packets in order, and
       * each response's content type with whether it held binary. */
      const run = async (base, b64) => {
        const q = b64 ? 'b64=1&' : '';
        const packets = [];
        const forms = new Set();
        let sid = null;
        const take = (r) => {
          assert.equal(r.status, 200);
          const octet = r.type === 'application/octet-stream';
          let binary = false;
          parserV3.decodePayload(octet ? r.body : r.body.toString(), (p) => {
            if (p.type === 'error') throw new Error(`${base}: parser-v3 cannot decode ${r.body.toString('hex')}`);
            binary ||= typeof p.data !== 'string' && p.data !== undefined;
            if (p.type === 'open') sid = JSON.parse(p.data).sid;
            packets.push([p.type, p.type === 'open' ? p.data.replace(sid, 'SID') : Buffer.isBuffer(p.data) ? p.data.toString('hex') : p.data]);
          });
          forms.add(`${r.type} binary=${binary}`);
        };
        take(await raw(base, `${q}t=x`));
        while (!packets.some((p) => p[0] === 'message' && p[1] === '0')) take(await raw(base, `${q}sid=${sid}`));
        const post = await raw(base, `${q}sid=${sid}`, { method: 'POST', body: Buffer.from('1:29:42["bin"]') });
        assert.equal(post.status, 200);
        const want = packets.length + 3; // the pong, the binary event, its attachment
        for (let i = 0; i < 5 && packets.length < want; i++) take(await raw(base, `${q}sid=${sid}`));
        await raw(base, `${q}sid=${sid}`, { method: 'POST', body: Buffer.from('1:1') });
        return { packets, forms: [...forms].sort() };
      };
      for (const b64 of [false, true]) {
        const mine = await run(gw.url, b64);
        const theirs = await run(ref, b64);
        assert.deepEqual(mine, theirs, `b64=${b64}`);
      }
    } finally {
      io.close();
      srv.close();
    }
  });
});

describe('engine.allow_eio3 off (the default)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({});
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  it('socket.io-client@2 gets 400 code 5', async () => {
    const r = await raw(gw.url, 't=1');
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.body), { code: 5, message: 'Unsupported protocol version' });
    const s = v2(gw.url, { transports: ['polling'] });
    const [err] = await h.once(s, 'connect_error', 4000);
    assert.match(String(err && (err.description || err.message)), /xhr poll error|400/);
    s.close();
  });
});
