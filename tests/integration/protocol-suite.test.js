'use strict';
/*
 * The official Socket.IO v5 protocol test suite (socketio/socket.io-protocol,
 * test-suite/test-suite.js), re-implemented with our own code: raw Engine.IO /
 * Socket.IO packets over raw websockets (`ws`) and raw HTTP long-polling
 * (node:http), exact packet strings where the suite has them.
 *
 * The suite expects a server with pingInterval 300, pingTimeout 200,
 * maxPayload 1000000, connectTimeout 1000, namespaces "/" and "/custom", and
 * the reference server's behaviour:
 *   on connection to "/" or "/custom":  emit "auth" with handshake.auth
 *   "/" on "message":                   emit "message-back" with the same args
 *   "/" on "message-with-ack":          ack with the same args
 * The gateway holds no application logic, so that behaviour comes from a
 * backend in this process that speaks only the HTTP API of the bus (SSE on
 * sio.in, POST to sio.out and sio.reply.<node>): ReferenceBackend below.
 *
 * Checks (every one of the suite, plus the Socket.IO part again over
 * polling, plus server → client acks, which the suite does not exercise):
 *   Engine.IO  handshake  polling opens a session (keys, upgrades ["websocket"],
 *                         300/200/1000000); invalid EIO → 400; invalid
 *                         transport → 400; invalid method (POST, PUT) → 400;
 *                         websocket opens a session (upgrades []); websocket
 *                         with invalid EIO / transport refused
 *              heartbeat  polling ping/pong ×3; polling session closed upon
 *                         ping timeout; websocket ping/pong ×3; websocket
 *                         closed upon ping timeout
 *              close      polling "1" answers the pending poll with "6" and ends
 *                         the session; websocket "1" closes
 *              upgrade    polling → websocket (2probe/3probe/5); HTTP requests
 *                         with the same sid ignored after upgrade; a second
 *                         websocket with the same sid refused after upgrade
 *   Socket.IO  connect    main namespace, with payload, custom namespace, with
 *   (websocket            payload (40<nsp>{"sid"} then 42<nsp>["auth",<auth>]);
 *    and polling)         unknown namespace → 44/random,{"message":"Invalid namespace"};
 *                         invalid handshake "4abc" closes; no handshake →
 *                         closed after the connect timeout
 *              disconnect "41" leaves the Engine.IO session open (next packet is
 *                         a ping); connect + disconnect /custom, then "/" still
 *                         echoes
 *              message    plain event, binary event (452-… + 2 attachments),
 *                         plain ack (43456[…]), binary ack (462-789[…] + 2
 *                         attachments); connection closed upon an unknown
 *                         packet type, an invalid payload, an invalid ack id
 *   beyond     server → client ack, plain and binary: the backend emits with
 *   the suite  an ack request, the client answers 43<id>/46<id>, the backend
 *                         gets ack + ack_done on its reply_to
 */
const assert = require('node:assert/strict');
const http = require('node:http');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const CONNECT_TIMEOUT = 1000; // the reference server's connectTimeout
const T = 3000; // deadline for one expected packet / close
const SLACK = 2000; // scheduling slack on a loaded 2-core CI machine

const ACK_TOPIC = 'protocol.backend.acks';
const PH2 = '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}';
const BIN1 = () => Buffer.from([1, 2, 3]);
const BIN2 = () => Buffer.from([4, 5, 6]);

/* ---------------------------------------------------------------- the reference backend */

/*
 * The reference server's behaviour, over the HTTP API only. Publishes go out
 * one after the other (in the order the envelopes arrived); a failed publish
 * is recorded in `errors`, checked by the last test.
 */
class ReferenceBackend {
  constructor(gw) {
    this.gw = gw;
    this.chain = Promise.resolve();
    this.errors = [];
    this.seq = 0;
  }

  async start() {
    this.sin = await this.gw.subscribe(this.gw.topics.in);
    this.acks = await this.gw.subscribe(ACK_TOPIC);
    this.sin.onMessage((env) => this.onIn(env));
    this.acks.onMessage((m) => this.onAckReply(m));
    return this;
  }

  publish(topic, env) {
    this.chain = this.chain
      .then(() => this.gw.publish(topic, env))
      .catch((e) => {
        this.errors.push(`${topic} ${JSON.stringify(env)}: ${e.message}`);
      });
    return this.chain;
  }

  emitTo(nsp, sid, event, data, extra = {}) {
    return this.publish(this.gw.topics.out, { type: 'emit', nsp, rooms: [sid], event, data, ...extra });
  }

  onIn(env) {
    if (!env || typeof env !== 'object') return;
    if (env.type === 'connect' && (env.nsp === '/' || env.nsp === '/custom')) {
      // socket.emit("auth", socket.handshake.auth)
      this.emitTo(env.nsp, env.sid, 'auth', [env.handshake ? env.handshake.auth : undefined]);
      return;
    }
    if (env.type !== 'event' || env.nsp !== '/') return;
    if (env.event === 'message') {
      // socket.emit("message-back", ...args)
      this.emitTo('/', env.sid, 'message-back', env.data);
    } else if (env.event === 'message-with-ack' && env.ack) {
      // ack(...args)
      this.publish(env.ack.reply_to || this.gw.topics.reply, { type: 'ack', id: env.ack.id, data: env.data });
    } else if (env.event === 'emit-with-ack') {
      // beyond the suite: ask the client for an ack with the same args; its
      // answer is sent back to it as "ack-back" (onAckReply)
      const id = `b${++this.seq}`;
      this.emitTo('/', env.sid, 'ack-request', env.data, { ack: { reply_to: ACK_TOPIC, id, timeout_ms: 2000 } });
    }
  }

  onAckReply(m) {
    if (m && m.type === 'ack') this.emitTo('/', m.sid, 'ack-back', m.data);
  }
}

/* ---------------------------------------------------------------- raw peers */

/*
 * Both peers offer the same surface:
 *   open             the parsed Engine.IO open packet
 *   send(...pkts)    strings are text packets, Buffers binary packets (websocket:
 *                    one frame each; polling: one POST, 0x1e-joined, binary as b<base64>)
 *   next()           the next packet that is not a ping ("2")
 *   nextRaw()        the next packet, pings included
 *   dropPings()      forget pings already received
 *   waitClosed()     resolves when the server ended the session
 * Pings are answered with a pong unless {pong:false}.
 */
class WsPeer {
  static async open(gw, { pong = true, query = 'EIO=4&transport=websocket' } = {}) {
    const w = await gw.ws(query);
    const p = new WsPeer(w);
    const first = await w.next({ timeout: T });
    assert.equal(typeof first, 'string', 'open packet is text');
    assert.equal(first[0], '0', `open packet, got ${JSON.stringify(first)}`);
    p.open = JSON.parse(first.slice(1));
    p.openedAt = Date.now();
    if (pong) w.autoPong();
    return p;
  }

  constructor(w) {
    this.w = w;
    this.kind = 'websocket';
  }

  send(...packets) {
    for (const pk of packets) this.w.send(pk);
  }

  next(timeout = T) {
    return this.w.next({ timeout, skip: (m) => m === '2' });
  }

  nextRaw(timeout = T) {
    return this.w.next({ timeout });
  }

  dropPings() {
    this.w.messages = this.w.messages.filter((m) => m !== '2');
  }

  isClosed() {
    return this.w.closeInfo !== null;
  }

  async waitClosed(timeout = T) {
    await this.w.waitClose(timeout);
    return Date.now();
  }

  close() {
    this.w.close();
  }
}

class PollPeer {
  static async open(gw, { pong = true } = {}) {
    const p = new PollPeer(gw, pong);
    p.open = await p.eio.handshake({ timeout: T });
    p.openedAt = Date.now();
    gw.track(p);
    p._loop();
    return p;
  }

  constructor(gw, pong) {
    this.kind = 'polling';
    this.eio = gw.polling();
    this.pong = pong;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.stopped = false;
    this.posts = Promise.resolve();
    this.closed = new Promise((resolve) => {
      this._resolveClosed = resolve;
    });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  _ended(info) {
    if (this.closeInfo) return;
    this.closeInfo = { ...info, at: Date.now() };
    this._wake();
    this._resolveClosed(this.closeInfo);
  }

  /* One GET at a time, for as long as the session lives. */
  async _loop() {
    while (!this.closeInfo) {
      let res;
      try {
        res = await this.eio.get({ timeout: 10000 });
      } catch (e) {
        this._ended({ error: e.message });
        return;
      }
      if (res.status !== 200) {
        this._ended({ status: res.status, body: res.text });
        return;
      }
      for (const raw of res.packets) {
        const pk = raw[0] === 'b' ? Buffer.from(raw.slice(1), 'base64') : raw;
        if (pk === '2' && this.pong && !this.stopped) this._post('3');
        this.queue.push(pk);
        if (pk === '1') {
          this._ended({ closePacket: true });
          return;
        }
      }
      this._wake();
    }
  }

  /* POSTs never overlap (engine.io closes a session on concurrent POSTs). */
  _post(body) {
    const p = this.posts.then(() => this.eio.post(body, { timeout: T }));
    this.posts = p.catch(() => {});
    return p;
  }

  send(...packets) {
    const enc = packets.map((pk) => (Buffer.isBuffer(pk) ? `b${pk.toString('base64')}` : pk));
    return this._post(enc.join(h.SEP));
  }

  async nextRaw(timeout = T, skip = null) {
    const deadline = Date.now() + timeout;
    for (;;) {
      while (this.queue.length) {
        const m = this.queue.shift();
        if (skip && skip(m)) continue;
        return m;
      }
      if (this.closeInfo) throw new Error(`polling session ended (${JSON.stringify(this.closeInfo)}) while waiting for a packet`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`polling: no packet within ${timeout} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  next(timeout = T) {
    return this.nextRaw(timeout, (m) => m === '2');
  }

  dropPings() {
    this.queue = this.queue.filter((m) => m !== '2');
  }

  isClosed() {
    return this.closeInfo !== null;
  }

  async waitClosed(timeout = T) {
    const info = await h.withTimeout(this.closed, timeout, `polling session ${this.eio.sid} to be closed`);
    return info.at;
  }

  close() {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.closeInfo) this._post('1').catch(() => {});
  }
}

/* ---------------------------------------------------------------- helpers */

const PEERS = { websocket: WsPeer, polling: PollPeer };

function hasExactlyKeys(obj, keys, what) {
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), `${what}: keys`);
}

/* A GET that resolves `sent` once the request is written, and `done` with the answer. */
function startGet(url) {
  let sentResolve;
  const sent = new Promise((resolve) => {
    sentResolve = resolve;
  });
  const done = new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'GET', headers: { connection: 'close' }, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url} timed out`)), T);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('finish', sentResolve);
    req.end();
  });
  return { sent, done };
}

/* ---------------------------------------------------------------- the suite */

describe('socket.io-protocol test suite (ping 300/200, connect timeout 1000, "/" and "/custom")', () => {
  let gw;
  let backend;
  before(async () => {
    gw = await h.startGateway({
      engine: {
        ping_interval_ms: PING_INTERVAL,
        ping_timeout_ms: PING_TIMEOUT,
        max_payload: MAX_PAYLOAD,
        connect_timeout_ms: CONNECT_TIMEOUT,
      },
      namespaces: [{ name: '/' }, { name: '/custom' }],
    });
    backend = await new ReferenceBackend(gw).start();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const enginePath = () => gw.enginePath;

  /* ------------------------------------------------------------ Engine.IO part */

  describe('Engine.IO protocol', () => {
    describe('handshake / HTTP long-polling', () => {
      it('should successfully open a session', async () => {
        const res = await gw.http(`${enginePath()}?EIO=4&transport=polling`);
        assert.equal(res.status, 200);
        assert.ok(res.text.startsWith('0'), `open packet, got ${JSON.stringify(res.text)}`);
        assert.ok(!res.text.includes(h.SEP), 'one packet only');
        const value = JSON.parse(res.text.slice(1));
        hasExactlyKeys(value, ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'], 'open packet');
        assert.equal(typeof value.sid, 'string');
        assert.deepEqual(value.upgrades, ['websocket']);
        assert.equal(value.pingInterval, PING_INTERVAL);
        assert.equal(value.pingTimeout, PING_TIMEOUT);
        assert.equal(value.maxPayload, MAX_PAYLOAD);
      });

      it("should fail with an invalid 'EIO' query parameter", async () => {
        assert.equal((await gw.http(`${enginePath()}?transport=polling`)).status, 400);
        assert.equal((await gw.http(`${enginePath()}?EIO=abc&transport=polling`)).status, 400);
      });

      it("should fail with an invalid 'transport' query parameter", async () => {
        assert.equal((await gw.http(`${enginePath()}?EIO=4`)).status, 400);
        assert.equal((await gw.http(`${enginePath()}?EIO=4&transport=abc`)).status, 400);
      });

      it('should fail with an invalid request method', async () => {
        assert.equal((await gw.http(`${enginePath()}?EIO=4&transport=polling`, { method: 'POST' })).status, 400);
        assert.equal((await gw.http(`${enginePath()}?EIO=4&transport=polling`, { method: 'PUT' })).status, 400);
      });
    });

    describe('handshake / WebSocket', () => {
      it('should successfully open a session', async () => {
        const w = await gw.ws();
        const data = await w.next({ timeout: T });
        assert.ok(data.startsWith('0'), `open packet, got ${JSON.stringify(data)}`);
        const value = JSON.parse(data.slice(1));
        hasExactlyKeys(value, ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'], 'open packet');
        assert.equal(typeof value.sid, 'string');
        assert.deepEqual(value.upgrades, []);
        assert.equal(value.pingInterval, PING_INTERVAL);
        assert.equal(value.pingTimeout, PING_TIMEOUT);
        assert.equal(value.maxPayload, MAX_PAYLOAD);
        w.close();
      });

      for (const [what, queries] of [
        ["an invalid 'EIO' query parameter", ['transport=websocket', 'EIO=abc&transport=websocket']],
        ["an invalid 'transport' query parameter", ['EIO=4', 'EIO=4&transport=abc']],
      ]) {
        it(`should fail with ${what}`, async () => {
          for (const q of queries) {
            const r = await h.RawWs.attempt(gw.engineUrl(q), { timeout: T });
            if (r.opened) r.ws.terminate();
            assert.equal(r.status, 400, `?${q}: expected the upgrade refused with HTTP 400, got ${JSON.stringify({ ...r, ws: undefined })}`);
          }
        });
      }
    });

    describe('heartbeat / HTTP long-polling', () => {
      it('should send ping/pong packets', async () => {
        const p = gw.polling();
        await p.handshake();
        for (let i = 0; i < 3; i++) {
          const poll = await p.get({ timeout: PING_INTERVAL + SLACK });
          assert.equal(poll.status, 200);
          assert.equal(poll.text, '2', `poll ${i}`);
          const push = await p.post('3');
          assert.equal(push.status, 200, `pong ${i}`);
        }
      });

      it('should close the session upon ping timeout', async () => {
        const p = gw.polling();
        await p.handshake();
        // the suite's timing: ping at 300 ms, no pong, closed at 300 + 200 ms (+ margin)
        await h.sleep(PING_INTERVAL + PING_TIMEOUT + 150);
        const poll = await p.get({ timeout: T });
        assert.equal(poll.status, 400, `expected the session gone, got ${poll.status} ${JSON.stringify(poll.text)}`);
      });
    });

    describe('heartbeat / WebSocket', () => {
      it('should send ping/pong packets', async () => {
        const w = await gw.wsOpen();
        for (let i = 0; i < 3; i++) {
          assert.equal(await w.next({ timeout: PING_INTERVAL + SLACK }), '2', `ping ${i}`);
          w.send('3');
        }
        assert.ok(w.isOpen());
        w.close();
      });

      it('should close the session upon ping timeout', async () => {
        const w = await gw.wsOpen();
        const t0 = Date.now();
        await w.waitClose(PING_INTERVAL + PING_TIMEOUT + SLACK);
        const took = Date.now() - t0;
        assert.ok(took >= PING_INTERVAL + PING_TIMEOUT - 50, `closed after ${took} ms, before the ping timeout`);
      });
    });

    describe('close', () => {
      it('HTTP long-polling: should forcefully close the session', async () => {
        const p = gw.polling();
        await p.handshake();
        const get = startGet(p.url());
        await get.sent;
        // the poll must be pending when the close packet arrives: the request
        // is written; give the gateway a moment to read it
        await h.sleep(50);
        const push = await p.post('1');
        assert.equal(push.status, 200);
        const poll = await get.done;
        assert.equal(poll.status, 200);
        assert.equal(poll.text, '6');
        const poll2 = await p.get({ timeout: T });
        assert.equal(poll2.status, 400);
      });

      it('WebSocket: should forcefully close the session', async () => {
        const w = await gw.wsOpen();
        w.send('1');
        await w.waitClose(T);
      });
    });

    describe('upgrade', () => {
      /* polling session upgraded to websocket; the upgrade is known complete
         when a Socket.IO CONNECT is answered over the websocket. */
      async function upgraded() {
        const p = gw.polling();
        await p.handshake();
        const w = await gw.ws(`EIO=4&transport=websocket&sid=${encodeURIComponent(p.sid)}`);
        w.send('2probe');
        assert.equal(await w.next({ timeout: T }), '3probe');
        w.send('5');
        return { p, w };
      }

      it('should successfully upgrade from HTTP long-polling to WebSocket', async () => {
        const { w } = await upgraded();
        w.autoPong();
        w.send('40');
        const hs = await w.nextMatching((m) => m !== '2', { timeout: T });
        assert.match(hs, /^40\{"sid":"[^"]+"\}$/);
        assert.equal(await w.nextMatching((m) => m !== '2', { timeout: T }), '42["auth",{}]');
        w.close();
      });

      it('should ignore HTTP requests with same sid after upgrade', async () => {
        const { p, w } = await upgraded();
        w.autoPong();
        w.send('40');
        assert.match(await w.nextMatching((m) => m !== '2', { timeout: T }), /^40\{/);
        const poll = await p.get({ timeout: T });
        assert.equal(poll.status, 400, `GET after upgrade: ${poll.status} ${JSON.stringify(poll.text)}`);
        assert.ok(w.isOpen(), 'the websocket stays open');
        w.close();
      });

      it('should ignore WebSocket connection with same sid after upgrade', async () => {
        const { p, w } = await upgraded();
        w.autoPong();
        w.send('40');
        assert.match(await w.nextMatching((m) => m !== '2', { timeout: T }), /^40\{/);
        const r = await h.RawWs.attempt(gw.engineUrl(`EIO=4&transport=websocket&sid=${encodeURIComponent(p.sid)}`), { timeout: T });
        if (r.opened) {
          // accepted at the HTTP level: it must then be closed
          await h.withTimeout(new Promise((resolve) => r.ws.once('close', resolve)), T, 'second websocket to be closed');
        } else {
          assert.equal(r.status, 400, `second websocket: ${JSON.stringify(r)}`);
        }
        assert.ok(w.isOpen(), 'the first websocket stays open');
        w.close();
      });
    });
  });

  /* ------------------------------------------------------------ Socket.IO part */

  for (const kind of ['websocket', 'polling']) {
    const Peer = PEERS[kind];
    const open = (opts) => Peer.open(gw, opts);

    /* Engine.IO session + CONNECT to "/" + the "auth" packet (the suite's initSocketIOConnection). */
    async function initSocketIOConnection() {
      const p = await open();
      p.send('40');
      const hs = await p.next();
      assert.ok(hs.startsWith('40{'), `CONNECT answer, got ${JSON.stringify(hs)}`);
      p.sid = JSON.parse(hs.slice(2)).sid;
      assert.equal(await p.next(), '42["auth",{}]');
      return p;
    }

    describe(`Socket.IO protocol over ${kind}`, () => {
      describe('connect', () => {
        for (const [title, send, prefix, auth] of [
          ['the main namespace', '40', '40', '42["auth",{}]'],
          ['the main namespace with a payload', '40{"token":"123"}', '40', '42["auth",{"token":"123"}]'],
          ['a custom namespace', '40/custom,', '40/custom,', '42/custom,["auth",{}]'],
          ['a custom namespace with a payload', '40/custom,{"token":"abc"}', '40/custom,', '42/custom,["auth",{"token":"abc"}]'],
        ]) {
          it(`should allow connection to ${title}`, async () => {
            const p = await open();
            p.send(send);
            const data = await p.next();
            assert.ok(data.startsWith(prefix), `expected ${prefix}…, got ${JSON.stringify(data)}`);
            const handshake = JSON.parse(data.slice(prefix.length));
            hasExactlyKeys(handshake, ['sid'], 'CONNECT payload');
            assert.equal(typeof handshake.sid, 'string');
            assert.equal(await p.next(), auth);
            p.close();
          });
        }

        it('should disallow connection to an unknown namespace', async () => {
          const p = await open();
          p.send('40/random');
          assert.equal(await p.next(), '44/random,{"message":"Invalid namespace"}');
          p.close();
        });

        it('should disallow connection with an invalid handshake', async () => {
          const p = await open();
          p.send('4abc');
          await p.waitClosed();
        });

        it('should close the connection if no handshake is received', async () => {
          // pongs are sent, so only the connect timeout can end the session
          const p = await open();
          const at = await p.waitClosed(CONNECT_TIMEOUT + SLACK);
          const took = at - p.openedAt;
          assert.ok(took >= CONNECT_TIMEOUT - 100, `closed after ${took} ms, before the connect timeout (${CONNECT_TIMEOUT} ms)`);
        });
      });

      describe('disconnect', () => {
        it('should disconnect from the main namespace', async () => {
          const p = await initSocketIOConnection();
          p.dropPings();
          p.send('41');
          // the Engine.IO session stays: the next packet is the next ping
          assert.equal(await p.nextRaw(PING_INTERVAL + SLACK), '2');
          assert.ok(!p.isClosed(), 'the Engine.IO session stays open');
          const env = await backend.sin.next((e) => e.type === 'disconnect' && e.sid === p.sid, T);
          assert.equal(env.nsp, '/');
          assert.equal(env.reason, 'client namespace disconnect');
          p.close();
        });

        it('should connect then disconnect from a custom namespace', async () => {
          const p = await initSocketIOConnection();
          assert.equal(await p.nextRaw(PING_INTERVAL + SLACK), '2'); // ping
          p.send('40/custom');
          assert.ok((await p.next()).startsWith('40/custom,'), 'Socket.IO handshake');
          assert.equal(await p.next(), '42/custom,["auth",{}]');
          p.send('41/custom');
          p.send('42["message","message to main namespace"]');
          assert.equal(await p.next(), '42["message-back","message to main namespace"]');
          p.close();
        });
      });

      describe('message', () => {
        it('should send a plain-text packet', async () => {
          const p = await initSocketIOConnection();
          p.send('42["message",1,"2",{"3":[true]}]');
          assert.equal(await p.next(), '42["message-back",1,"2",{"3":[true]}]');
          p.close();
        });

        it('should send a packet with binary attachments', async () => {
          const p = await initSocketIOConnection();
          p.send(`452-["message",${PH2}]`, BIN1(), BIN2());
          assert.equal(await p.next(), `452-["message-back",${PH2}]`);
          assert.deepEqual(await p.next(), BIN1());
          assert.deepEqual(await p.next(), BIN2());
          p.close();
        });

        it('should send a plain-text packet with an ack', async () => {
          const p = await initSocketIOConnection();
          p.send('42456["message-with-ack",1,"2",{"3":[false]}]');
          assert.equal(await p.next(), '43456[1,"2",{"3":[false]}]');
          p.close();
        });

        it('should send a packet with binary attachments and an ack', async () => {
          const p = await initSocketIOConnection();
          p.send(`452-789["message-with-ack",${PH2}]`, BIN1(), BIN2());
          assert.equal(await p.next(), `462-789[${PH2}]`);
          assert.deepEqual(await p.next(), BIN1());
          assert.deepEqual(await p.next(), BIN2());
          p.close();
        });

        for (const [what, pkt] of [
          ['unknown packet type', '4abc'],
          ['invalid payload format', '42{}'],
          ['invalid ack id', '42abc["message-with-ack",1,"2",{"3":[false]}]'],
        ]) {
          it(`should close the connection upon invalid format (${what})`, async () => {
            const p = await initSocketIOConnection();
            p.send(pkt);
            await p.waitClosed();
          });
        }
      });

      describe('server → client acks (beyond the suite)', () => {
        it('plain: 42<id>["ack-request",…] answered with 43<id>[…] reaches the backend (ack, ack_done)', async () => {
          const p = await initSocketIOConnection();
          p.send('42["emit-with-ack",1,"2",{"3":[false]}]');
          const req = await p.next();
          const m = /^42(\d+)\["ack-request",1,"2",\{"3":\[false\]\}\]$/.exec(req);
          assert.ok(m, `expected 42<id>["ack-request",1,"2",{"3":[false]}], got ${JSON.stringify(req)}`);
          p.send(`43${m[1]}["answer",{"n":[1,2]}]`);
          assert.equal(await p.next(), '42["ack-back","answer",{"n":[1,2]}]');
          const ack = await backend.acks.next((r) => r.type === 'ack' && r.sid === p.sid, T);
          assert.deepEqual(ack.data, ['answer', { n: [1, 2] }]);
          const done = await backend.acks.next((r) => r.type === 'ack_done' && r.id === ack.id, T);
          assert.deepEqual(
            { node: done.node, acked: done.acked, timed_out: done.timed_out },
            { node: 'gw-test', acked: 1, timed_out: 0 },
          );
          p.close();
        });

        it('binary: 452-<id>[…] + attachments answered with 462-<id>[…] + attachments', async () => {
          const p = await initSocketIOConnection();
          p.send(`452-["emit-with-ack",${PH2}]`, BIN1(), BIN2());
          const req = await p.next();
          const m = new RegExp(`^452-(\\d+)\\["ack-request",${PH2.replace(/[[\]{}]/g, '\\$&')}\\]$`).exec(req);
          assert.ok(m, `expected 452-<id>["ack-request",${PH2}], got ${JSON.stringify(req)}`);
          assert.deepEqual(await p.next(), BIN1());
          assert.deepEqual(await p.next(), BIN2());
          p.send(`462-${m[1]}[${PH2}]`, Buffer.from([7, 8, 9]), Buffer.from([10]));
          assert.equal(await p.next(), `452-["ack-back",${PH2}]`);
          assert.deepEqual(await p.next(), Buffer.from([7, 8, 9]));
          assert.deepEqual(await p.next(), Buffer.from([10]));
          const ack = await backend.acks.next((r) => r.type === 'ack' && r.sid === p.sid, T);
          assert.deepEqual(ack.data, [{ $binary: 'BwgJ' }, { $binary: 'Cg==' }]);
          const done = await backend.acks.next((r) => r.type === 'ack_done' && r.id === ack.id, T);
          assert.equal(done.acked, 1);
          assert.equal(done.timed_out, 0);
          p.close();
        });
      });
    });
  }

  it('the backend: every publish to the bus was accepted', async () => {
    await backend.chain;
    assert.deepEqual(backend.errors, []);
  });
});
