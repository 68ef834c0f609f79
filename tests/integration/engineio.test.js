'use strict';
/*
 * Raw Engine.IO v4 (and Socket.IO v5 packet errors) over plain HTTP and raw
 * websockets, against the reference server's behaviour (engine.io 6.x,
 * socket.io 4.x).
 *
 * Behaviours of the official protocol test suites covered here (our own
 * code; see socketio/engine.io-protocol and socketio/socket.io-protocol,
 * folder test-suite/):
 *   engine.io-protocol test-suite
 *     handshake/polling:   opens a session (open packet keys, sid, upgrades
 *                          ["websocket"], pingInterval, pingTimeout, maxPayload);
 *                          fails with an invalid EIO; fails with an invalid
 *                          transport; fails with an invalid method (POST, PUT)
 *     handshake/websocket: opens a session (upgrades []); invalid EIO and
 *                          invalid transport are refused
 *     message/polling:     one text packet; several packets joined by 0x1e;
 *                          text + binary ("b<base64>") packets; closes the
 *                          session upon an invalid packet; closes the session
 *                          upon duplicate poll requests
 *     message/websocket:   text packet; binary packet; closes upon an invalid packet
 *     close:               polling close packet answers the pending poll with a
 *                          noop and ends the session; websocket close packet
 *     upgrade:             upgrades polling → websocket (2probe/3probe, pending
 *                          poll released with "6", then "5"); ignores HTTP
 *                          requests with the same sid after upgrade; ignores a
 *                          second websocket with the same sid after upgrade
 *     heartbeat:           in heartbeat.test.js (needs the 300/200 ms config)
 *   socket.io-protocol test-suite
 *     connect:             main and custom namespace, with payload, unknown
 *                          namespace → CONNECT_ERROR (namespaces.test.js);
 *                          invalid handshake closes the connection (here)
 *     disconnect:          from main namespace / from a custom namespace
 *                          (namespaces.test.js, heartbeat.test.js)
 *     message:             closes upon an unknown packet type, an invalid
 *                          payload format, an invalid ack id, an unexpected
 *                          binary frame (here); plain/binary events and acks
 *                          go through the bus (bus.test.js, binary.test.js)
 * Beyond the suites: error codes and messages (0..5), CORS preflight and
 * headers, the io cookie, max_payload over polling and websocket, and that a
 * misbehaving connection never disturbs another one.
 *
 * Pure Engine.IO echo tests use the gateway's diagnostic echo endpoint
 * (engine.echo_path: /engine.io/); everything else uses /socket.io/.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

const ECHO = '/engine.io/';
const ERR = {
  0: 'Transport unknown',
  1: 'Session ID unknown',
  2: 'Bad handshake method',
  3: 'Bad request',
  4: 'Forbidden',
  5: 'Unsupported protocol version',
};

/* Assert an Engine.IO error reply: HTTP 400 and {"code":code,"message":...}. */
function assertEioError(res, code, what = '') {
  assert.equal(res.status, 400, `${what}: expected HTTP 400, got ${res.status} ${res.text.slice(0, 100)}`);
  assert.match(String(res.headers['content-type'] || ''), /^application\/json/, `${what}: content-type`);
  assert.deepEqual(res.json(), { code, message: ERR[code] }, what);
}

describe('Engine.IO protocol (raw)', () => {
  let gw;
  let sin;
  before(async () => {
    // long ping interval: no ping ever lands in the middle of a test's exchange
    gw = await h.startGateway({ engine: { ping_interval_ms: 10000, ping_timeout_ms: 5000, echo_path: ECHO } });
    sin = await gw.subscribe(gw.topics.in);
    await gw.backend(); // acks "echo" events (sin above sees the same envelopes)
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const sioPath = () => gw.enginePath;

  describe('handshake', () => {
    it('polling: open packet with exactly sid, upgrades ["websocket"], pingInterval, pingTimeout, maxPayload', async () => {
      const res = await gw.http(`${sioPath()}?EIO=4&transport=polling`);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
      assert.equal(res.text[0], '0');
      const open = JSON.parse(res.text.slice(1));
      assert.deepEqual(Object.keys(open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
      assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/, 'sid: 20 URL-safe characters');
      assert.deepEqual(open.upgrades, ['websocket']);
      assert.equal(open.pingInterval, 10000);
      assert.equal(open.pingTimeout, 5000);
      assert.equal(open.maxPayload, 1000000);
    });

    it('websocket: the first frame is the open packet, with upgrades []', async () => {
      const w = await gw.wsOpen();
      assert.deepEqual(Object.keys(w.open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
      assert.match(w.open.sid, /^[A-Za-z0-9_-]{20}$/);
      assert.deepEqual(w.open.upgrades, []);
      assert.equal(w.open.pingInterval, 10000);
      assert.equal(w.open.pingTimeout, 5000);
      assert.equal(w.open.maxPayload, 1000000);
      w.close();
    });

    it('query parameters may come in any order (and with extras such as t=)', async () => {
      for (const q of ['transport=polling&EIO=4', 't=abc&transport=polling&EIO=4', 'EIO=4&t=Pq3x&transport=polling&b64=1']) {
        const res = await gw.http(`${sioPath()}?${q}`);
        assert.equal(res.status, 200, `${q}: ${res.status} ${res.text.slice(0, 100)}`);
        assert.equal(res.text[0], '0', q);
      }
      const w = await gw.wsOpen('transport=websocket&EIO=4');
      assert.match(w.open.sid, /^[A-Za-z0-9_-]{20}$/);
      w.close();
    });

    it('every handshake gets a fresh sid', async () => {
      const sids = new Set();
      for (let i = 0; i < 10; i++) sids.add((await gw.polling().handshake()).sid);
      assert.equal(sids.size, 10);
    });

    it('no transport → 400 code 0; an unknown transport → 400 code 0', async () => {
      assertEioError(await gw.http(`${sioPath()}?EIO=4`), 0, 'no transport');
      assertEioError(await gw.http(`${sioPath()}?EIO=4&transport=abc`), 0, 'transport=abc');
      assertEioError(await gw.http(`${sioPath()}?transport=flashsocket&EIO=4`), 0, 'transport=flashsocket');
    });

    it('unknown sid → 400 code 1 (GET and POST)', async () => {
      assertEioError(await gw.http(`${sioPath()}?EIO=4&transport=polling&sid=doesnotexist12345678`), 1, 'GET');
      assertEioError(
        await gw.http(`${sioPath()}?EIO=4&transport=polling&sid=doesnotexist12345678`, { method: 'POST', body: '40' }),
        1,
        'POST',
      );
    });

    it('a handshake with POST or PUT → 400 code 2 "Bad handshake method"', async () => {
      assertEioError(await gw.http(`${sioPath()}?EIO=4&transport=polling`, { method: 'POST', body: '40' }), 2, 'POST');
      assertEioError(await gw.http(`${sioPath()}?EIO=4&transport=polling`, { method: 'PUT', body: '' }), 2, 'PUT');
    });

    it('bad requests → 400 code 3: transport=websocket without an upgrade; a polling request on a websocket session', async () => {
      // engine.io: TRANSPORT_HANDSHAKE_ERROR
      assertEioError(await gw.http(`${sioPath()}?EIO=4&transport=websocket`), 3, 'plain GET with transport=websocket');
      // engine.io: TRANSPORT_MISMATCH
      const w = await gw.wsOpen();
      assertEioError(await gw.http(`${sioPath()}?EIO=4&transport=polling&sid=${w.open.sid}`), 3, 'polling on a websocket sid');
      assert.ok(w.isOpen(), 'the websocket session is not affected');
      w.close();
    });

    it('EIO=3 → 400 code 5 "Unsupported protocol version"; a missing or invalid EIO → 400', async () => {
      assertEioError(await gw.http(`${sioPath()}?EIO=3&transport=polling`), 5, 'EIO=3');
      const noEio = await gw.http(`${sioPath()}?transport=polling`);
      assert.equal(noEio.status, 400, 'no EIO');
      const badEio = await gw.http(`${sioPath()}?EIO=abc&transport=polling`);
      assert.equal(badEio.status, 400, 'EIO=abc');
    });

    it('websocket handshakes with a bad EIO, transport or sid are refused (HTTP 400, never an open packet)', async () => {
      for (const q of [
        'transport=websocket',
        'EIO=abc&transport=websocket',
        'EIO=3&transport=websocket',
        'EIO=4',
        'EIO=4&transport=abc',
        'EIO=4&transport=websocket&sid=doesnotexist12345678',
      ]) {
        const r = await h.RawWs.attempt(gw.engineUrl(q));
        if (r.opened) {
          // the reference server upgrades some of these before checking the protocol
          // version and then drops the socket; never may a session open
          const frames = [];
          r.ws.on('message', (d) => frames.push(d.toString()));
          await h.withTimeout(new Promise((resolve) => r.ws.once('close', resolve)), 3000, `${q}: upgraded socket to be closed`);
          assert.ok(!frames.some((f) => f[0] === '0'), `${q}: an open packet was sent: ${JSON.stringify(frames)}`);
        } else {
          assert.equal(r.status, 400, `${q}: expected a 400 refusal, got ${JSON.stringify(r)}`);
        }
      }
    });
  });

  describe('messages (echo endpoint)', () => {
    it('polling: one text packet is echoed', async () => {
      const p = gw.polling({ path: ECHO });
      await p.handshake();
      const post = await p.post('4hello');
      assert.equal(post.status, 200);
      assert.equal(post.text, 'ok');
      const res = await p.get();
      assert.equal(res.status, 200);
      assert.equal(res.text, '4hello');
    });

    it('polling: several packets joined by 0x1e are echoed in order', async () => {
      const p = gw.polling({ path: ECHO });
      await p.handshake();
      assert.equal((await p.post(['4test1', '4test2', '4test3'])).status, 200);
      const { packets } = await p.pollUntil((x) => x === '4test3');
      assert.deepEqual(packets, ['4test1', '4test2', '4test3']);
    });

    it('polling: text and binary (b<base64>) packets are echoed', async () => {
      const p = gw.polling({ path: ECHO });
      await p.handshake();
      assert.equal((await p.post('4hello\x1ebAQIDBA==')).status, 200);
      const { packets } = await p.pollUntil((x) => x[0] === 'b');
      assert.deepEqual(packets, ['4hello', 'bAQIDBA==']);
    });

    it('websocket: a text packet and a binary frame are echoed', async () => {
      const w = await gw.wsOpen('EIO=4&transport=websocket', { path: ECHO });
      w.send('4hello');
      assert.equal(await w.next(), '4hello');
      w.send(Buffer.from([1, 2, 3, 4]));
      const b = await w.next();
      assert.ok(Buffer.isBuffer(b), 'a binary frame');
      assert.deepEqual([...b], [1, 2, 3, 4]);
      w.close();
    });

    it('an upgraded echo session keeps echoing over websocket', async () => {
      const p = gw.polling({ path: ECHO });
      await p.handshake();
      const pending = p.get();
      const w = await gw.ws(`EIO=4&transport=websocket&sid=${p.sid}`, { path: ECHO });
      w.send('2probe');
      assert.equal(await w.next(), '3probe');
      const released = await pending;
      assert.equal(released.status, 200);
      assert.equal(released.text, '6');
      w.send('5');
      w.send('4hello');
      assert.equal(await w.next(), '4hello');
      w.close();
    });
  });

  describe('polling sessions (/socket.io/)', () => {
    it('a POST with several Socket.IO packets joined by 0x1e is processed in order', async () => {
      const p = gw.polling();
      await p.handshake();
      assert.equal((await p.post('40')).status, 200);
      const { packet } = await p.pollUntil((x) => x.startsWith('40'));
      const sid = JSON.parse(packet.slice(2)).sid;
      await sin.next((e) => e.type === 'connect' && e.sid === sid);
      const post = await p.post(['42["a",1]', '42["b",2]', '42["c",3]']);
      assert.equal(post.status, 200);
      assert.equal(post.text, 'ok');
      const names = [];
      for (let i = 0; i < 3; i++) {
        const e = await sin.next((x) => x.type === 'event' && x.sid === sid);
        names.push([e.event, ...e.data]);
      }
      assert.deepEqual(names, [['a', 1], ['b', 2], ['c', 3]]);
    });

    it('an invalid Engine.IO packet closes the session', async () => {
      const p = gw.polling();
      await p.handshake();
      // the reference server answers this POST 400 or drops it: only the outcome is checked
      await p.post('abc').catch(() => null);
      const res = await p.get();
      assertEioError(res, 1, 'GET after an invalid packet');
    });

    it('an invalid Socket.IO packet on polling closes the session', async () => {
      const p = gw.polling();
      await p.handshake();
      await p.post('40');
      await p.pollUntil((x) => x.startsWith('40'));
      await p.post('4abc').catch(() => null);
      // the session is gone: a poll gets a close packet or 400
      const deadline = Date.now() + 3000;
      let res;
      do {
        res = await p.get({ timeout: 3000 });
      } while (res.status === 200 && !res.packets.includes('1') && Date.now() < deadline);
      if (res.status === 200) res = await p.get();
      assertEioError(res, 1, 'after 4abc');
    });

    it('a duplicate concurrent GET is answered 400, the pending one gets a close packet and the session ends', async () => {
      const p = gw.polling();
      await p.handshake();
      const first = p.get();
      await h.sleep(50); // let the first GET reach the server first
      const second = await p.get();
      assert.equal(second.status, 400, 'second GET');
      const r1 = await first;
      assert.equal(r1.status, 200, 'first GET');
      assert.equal(r1.text, '1', 'the pending GET is answered with a close packet');
      assertEioError(await p.get(), 1, 'GET after the duplicate');
    });

    it('a close packet ("1") answers the pending GET with a noop and ends the session', async () => {
      const p = gw.polling();
      await p.handshake();
      const pending = p.get();
      await h.sleep(50); // let the GET be pending first
      const post = await p.post('1');
      assert.equal(post.status, 200);
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.text, '6');
      assertEioError(await p.get(), 1, 'GET after close');
    });

    it('a GET with Origin gets Access-Control-Allow-Origin', async () => {
      const p = gw.polling({ headers: { origin: 'http://example.com' } });
      await p.handshake();
      const acao = p.handshakeResponse.headers['access-control-allow-origin'];
      assert.ok(acao === '*' || acao === 'http://example.com', `access-control-allow-origin: ${acao}`);
    });

    it('with origins ["*"] and no credentials the answer is "*" for everyone: no Vary: Origin', async () => {
      const res = await gw.http(`${sioPath()}?EIO=4&transport=polling`, { headers: { origin: 'http://example.com' } });
      assert.equal(res.headers['access-control-allow-origin'], '*');
      assert.doesNotMatch(String(res.headers.vary || ''), /origin/i);
    });

    it('a CORS preflight (OPTIONS) is answered 204 with allow-origin, -methods and -headers', async () => {
      const res = await gw.http(`${sioPath()}?EIO=4&transport=polling`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://example.com',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      assert.equal(res.status, 204);
      const acao = res.headers['access-control-allow-origin'];
      assert.ok(acao === '*' || acao === 'http://example.com', `allow-origin: ${acao}`);
      const methods = String(res.headers['access-control-allow-methods'] || '').toUpperCase();
      assert.match(methods, /\bGET\b/, `allow-methods: ${methods}`);
      assert.match(methods, /\bPOST\b/, `allow-methods: ${methods}`);
      const allowHeaders = String(res.headers['access-control-allow-headers'] || '').toLowerCase();
      assert.ok(allowHeaders === '*' || allowHeaders.includes('content-type'), `allow-headers: ${allowHeaders}`);
    });

    it('no io cookie when engine.cookie is false', async () => {
      const p = gw.polling();
      await p.handshake();
      assert.equal(p.handshakeResponse.headers['set-cookie'], undefined);
    });
  });

  describe('upgrade (/socket.io/)', () => {
    /* Polling session upgraded to websocket by hand: returns {p, w}. */
    async function upgraded() {
      const p = gw.polling();
      await p.handshake();
      const pending = p.get();
      const w = await gw.ws(`EIO=4&transport=websocket&sid=${p.sid}`);
      w.send('2probe');
      assert.equal(await w.next(), '3probe');
      const released = await pending;
      assert.equal(released.status, 200);
      assert.equal(released.text, '6', 'the pending poll is released with a noop');
      w.send('5');
      return { p, w };
    }

    it('2probe/3probe, the pending poll gets "6", then "5"; the session continues on websocket', async () => {
      const { p, w } = await upgraded();
      w.send('40');
      const c = await w.next();
      assert.match(c, /^40\{"sid":/);
      const sid = JSON.parse(c.slice(2)).sid;
      const e = await sin.next((x) => x.type === 'connect' && x.sid === sid);
      assert.equal(e.handshake.query.transport, 'polling', 'the handshake is the polling one');
      w.send('421["echo","up"]');
      assert.equal(await w.next(), '431["up"]');
      assert.ok(p.sid);
      w.close();
    });

    it('after the upgrade, polling GET and POST with the same sid are refused (400, code 3)', async () => {
      const { p, w } = await upgraded();
      w.send('40');
      await w.next();
      assertEioError(await p.get(), 3, 'GET after upgrade');
      assertEioError(await p.post('42["x"]'), 3, 'POST after upgrade');
      w.send('421["echo","still"]');
      assert.equal(await w.next(), '431["still"]');
      w.close();
    });

    it('a second websocket with the same sid after the upgrade is refused or closed; the first keeps working', async () => {
      const { p, w } = await upgraded();
      const r = await h.RawWs.attempt(gw.engineUrl(`EIO=4&transport=websocket&sid=${p.sid}`));
      if (r.opened) {
        await h.withTimeout(new Promise((resolve) => r.ws.once('close', resolve)), 3000, 'second websocket closed');
      } else {
        assert.ok(r.status === 400 || r.error, `refused: ${JSON.stringify({ ...r, ws: undefined })}`);
      }
      w.send('40');
      assert.match(await w.next(), /^40\{/);
      w.close();
    });

  });

  describe('garbage closes only the offending connection', () => {
    const cases = [
      ['unknown Engine.IO packet type', '9'],
      ['invalid Engine.IO packet', 'abc'],
      ['unknown Socket.IO packet type', '4abc'],
      ['truncated JSON payload', '42['],
      ['truncated JSON after a namespace', '42/chat,{'],
      ['payload that is not an array', '42{}'],
      ['invalid ack id', '42abc["x",1]'],
      ['EVENT with an empty array (no event name)', '42[]'],
      ['binary frame with no BINARY_EVENT pending', Buffer.from([1, 2, 3, 4])],
    ];
    for (const [name, garbage] of cases) {
      it(`${name}: ${JSON.stringify(Buffer.isBuffer(garbage) ? [...garbage] : garbage)}`, async () => {
        const bystander = await gw.connect('/', { transports: ['websocket'] });
        const w = await gw.wsSocketIO('/');
        w.send(garbage);
        await w.waitClose(3000);
        assert.equal(bystander.connected, true, 'the other client is still connected');
        assert.equal(await bystander.timeout(3000).emitWithAck('echo', 'fine'), 'fine');
        // and a new connection still works
        const w2 = await gw.wsSocketIO('/');
        w2.close();
      });
    }

    it('invalid Socket.IO handshake (first packet "4abc" before any CONNECT) closes the connection', async () => {
      const w = await gw.wsOpen();
      w.send('4abc');
      await w.waitClose(3000);
    });
  });

  it('a websocket close packet ("1") ends the session', async () => {
    const w = await gw.wsOpen();
    w.send('1');
    await w.waitClose(3000);
  });
});

describe('Engine.IO limits, CORS and cookie (max_payload 1000, restricted origins, cookie on)', () => {
  let gw;
  let sin;
  before(async () => {
    gw = await h.startGateway({
      engine: {
        max_payload: 1000,
        cors: { origins: ['http://allowed.example'], credentials: true },
        cookie: true,
        echo_path: ECHO,
      },
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('the open packet announces maxPayload 1000', async () => {
    const open = await gw.polling().handshake();
    assert.equal(open.maxPayload, 1000);
  });

  it('a polling POST within max_payload is accepted', async () => {
    const p = gw.polling({ path: ECHO });
    await p.handshake();
    const msg = `4${'x'.repeat(900)}`;
    assert.equal((await p.post(msg)).status, 200);
    assert.equal((await p.get()).text, msg);
  });

  it('a polling POST over max_payload is answered 413 and the session is closed', async () => {
    const p = gw.polling();
    await p.handshake();
    const res = await p.post(`42["big","${'x'.repeat(2000)}"]`);
    assert.equal(res.status, 413);
    // DESIGN §1.1: payloads over maxPayload close the session (engine.io only refuses the POST)
    const after = await p.get({ timeout: 2000 }).catch((e) => ({ status: 0, text: e.message, headers: {} }));
    assertEioError(after, 1, 'GET after the oversized POST');
  });

  it('a websocket message over max_payload closes the websocket (and only it)', async () => {
    const bystander = await gw.wsSocketIO('/');
    const w = await gw.wsSocketIO('/');
    w.send(`42["big","${'x'.repeat(2000)}"]`);
    await w.waitClose(3000);
    const d = await sin.next((e) => e.type === 'disconnect' && e.sid === w.sioSid);
    assert.equal(typeof d.reason, 'string');
    assert.equal(sin.all((e) => e.type === 'event' && e.sid === w.sioSid).length, 0, 'the oversized event is not forwarded');
    bystander.send('42["small"]');
    await sin.next((e) => e.type === 'event' && e.sid === bystander.sioSid && e.event === 'small');
    bystander.close();
  });

  it('an allowed Origin is echoed with Access-Control-Allow-Credentials: true', async () => {
    const p = gw.polling({ headers: { origin: 'http://allowed.example' } });
    await p.handshake();
    assert.equal(p.handshakeResponse.headers['access-control-allow-origin'], 'http://allowed.example');
    assert.equal(p.handshakeResponse.headers['access-control-allow-credentials'], 'true');
    const pre = await gw.http(`${gw.enginePath}?EIO=4&transport=polling`, {
      method: 'OPTIONS',
      headers: { origin: 'http://allowed.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'http://allowed.example');
  });

  it('an Origin not in engine.cors.origins gets no Access-Control-Allow-Origin', async () => {
    const res = await gw.http(`${gw.enginePath}?EIO=4&transport=polling`, { headers: { origin: 'http://evil.example' } });
    const acao = res.headers['access-control-allow-origin'];
    assert.ok(acao === undefined, `access-control-allow-origin must be absent, got ${acao}`);
  });

  it('every response says Vary: Origin (allowed, refused or no Origin, API too): it depends on it', async () => {
    const paths = [`${gw.enginePath}?EIO=4&transport=polling`, '/healthz'];
    for (const p of paths)
      for (const origin of ['http://allowed.example', 'http://evil.example', undefined]) {
        const res = await gw.http(p, { headers: origin ? { origin } : {} });
        assert.match(String(res.headers.vary || ''), /\bOrigin\b/i, `${p} with origin ${origin}: vary ${res.headers.vary}`);
      }
  });

  it('engine.cookie: the handshake sets the io cookie to the sid (Path=/, HttpOnly, SameSite=Lax)', async () => {
    const p = gw.polling();
    await p.handshake();
    const cookies = [].concat(p.handshakeResponse.headers['set-cookie'] || []);
    const io = cookies.find((c) => c.startsWith('io='));
    assert.ok(io, `set-cookie: ${JSON.stringify(cookies)}`);
    assert.equal(io.split(';')[0], `io=${p.sid}`);
    assert.match(io, /;\s*Path=\//i);
    assert.match(io, /;\s*HttpOnly/i);
    assert.match(io, /;\s*SameSite=Lax/i);
  });
});
