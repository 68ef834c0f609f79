'use strict';
/*
 * Namespaces multiplexed over one Engine.IO session (DESIGN §1.1), with the
 * real socket.io-client Manager, and the raw CONNECT / CONNECT_ERROR /
 * DISCONNECT packets the socket.io-protocol test suite checks.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

describe('namespaces', () => {
  let gw;
  let be;
  before(async () => {
    gw = await h.startGateway();
    be = await gw.backend();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  for (const transports of [['websocket'], ['polling']]) {
    it(`two namespaces on one Manager share one engine session (${transports[0]})`, async () => {
      const m = gw.manager({ transports });
      const main = h.managerSocket(m, '/');
      const chat = h.managerSocket(m, '/chat');
      await Promise.all([h.awaitConnect(main), h.awaitConnect(chat)]);
      assert.ok(main.connected && chat.connected);
      assert.equal(main.io, chat.io, 'both sockets use the same Manager');
      assert.ok(m.engine.id, 'engine id');
      assert.equal(main.io.engine.id, chat.io.engine.id, 'same Engine.IO session');
      assert.notEqual(main.id, chat.id, 'a socket id per namespace');
      // the gateway sees one Engine.IO session: both connect envelopes exist and name their namespace
      const cm = await be.in.next((e) => e.type === 'connect' && e.sid === main.id);
      const cc = await be.in.next((e) => e.type === 'connect' && e.sid === chat.id);
      assert.equal(cm.nsp, '/');
      assert.equal(cc.nsp, '/chat');
      // events are routed per namespace
      const evs = new Promise((resolve) => {
        const got = [];
        be.in.onMessage((e) => {
          if (e.type === 'event' && e.event === 'where' && (e.sid === main.id || e.sid === chat.id)) {
            got.push(e);
            if (got.length === 2) resolve(got);
          }
        });
      });
      main.emit('where', 'main');
      chat.emit('where', 'chat');
      const got = await h.withTimeout(evs, 3000, 'two "where" events');
      const bySid = Object.fromEntries(got.map((e) => [e.sid, e]));
      assert.equal(bySid[main.id].nsp, '/');
      assert.deepEqual(bySid[main.id].data, ['main']);
      assert.equal(bySid[chat.id].nsp, '/chat');
      assert.deepEqual(bySid[chat.id].data, ['chat']);
    });
  }

  it('an unknown namespace gets connect_error "Invalid namespace"', async () => {
    await assert.rejects(gw.connect('/nope'), (err) => {
      assert.equal(err.message, 'Invalid namespace');
      return true;
    });
  });

  it('an unknown namespace next to a good one on the same Manager: only the bad one fails', async () => {
    const m = gw.manager({ transports: ['websocket'] });
    const good = h.managerSocket(m, '/chat');
    const bad = h.managerSocket(m, '/does-not-exist');
    const [g, b] = await Promise.allSettled([h.awaitConnect(good), h.awaitConnect(bad)]);
    assert.equal(g.status, 'fulfilled', g.reason && g.reason.message);
    assert.equal(b.status, 'rejected');
    assert.equal(b.reason.message, 'Invalid namespace');
    assert.equal(good.connected, true);
    assert.equal(await good.timeout(3000).emitWithAck('echo', 'ok'), 'ok');
  });

  it('disconnecting one namespace keeps the other (and the engine session) alive', async () => {
    const m = gw.manager({ transports: ['websocket'] });
    const main = h.managerSocket(m, '/');
    const chat = h.managerSocket(m, '/chat');
    await Promise.all([h.awaitConnect(main), h.awaitConnect(chat)]);
    const engineId = m.engine.id;
    const chatId = chat.id;
    chat.disconnect();
    const d = await be.in.next((e) => e.type === 'disconnect' && e.sid === chatId);
    assert.equal(d.nsp, '/chat');
    assert.equal(d.reason, 'client namespace disconnect');
    assert.equal(main.connected, true);
    assert.equal(m.engine.id, engineId, 'same engine session');
    assert.equal(await main.timeout(3000).emitWithAck('echo', 'main-alive'), 'main-alive');
    // and the namespace can be joined again over the same session
    chat.connect();
    await h.awaitConnect(chat);
    assert.equal(m.engine.id, engineId, 'rejoined over the same session');
    assert.equal(await chat.timeout(3000).emitWithAck('echo', 'chat-again'), 'chat-again');
  });

  describe('raw Socket.IO packets (socket.io-protocol test-suite behaviours)', () => {
    it('CONNECT to "/" answers 40{"sid"} with only a sid', async () => {
      const w = await gw.wsOpen();
      w.send('40');
      const m = await w.next();
      assert.match(m, /^40\{/);
      const body = JSON.parse(m.slice(2));
      assert.deepEqual(Object.keys(body), ['sid']);
      assert.equal(typeof body.sid, 'string');
      w.close();
    });

    it('CONNECT to "/chat" with an auth payload answers 40/chat,{"sid"}', async () => {
      const w = await gw.wsOpen();
      w.send('40/chat,{"token":"abc"}');
      const m = await w.next();
      assert.ok(m.startsWith('40/chat,{'), m);
      const body = JSON.parse(m.slice('40/chat,'.length));
      assert.deepEqual(Object.keys(body), ['sid']);
      const c = await be.in.next((e) => e.type === 'connect' && e.sid === body.sid);
      assert.equal(c.nsp, '/chat');
      assert.deepEqual(c.handshake.auth, { token: 'abc' });
      w.close();
    });

    it('CONNECT to an unknown namespace answers 44/random,{"message":"Invalid namespace"}', async () => {
      const w = await gw.wsOpen();
      w.send('40/random,');
      const m = await w.next();
      assert.ok(m.startsWith('44/random,'), m);
      assert.deepEqual(JSON.parse(m.slice('44/random,'.length)), { message: 'Invalid namespace' });
      // the session survives a refused namespace
      w.send('40');
      assert.match(await w.next(), /^40\{/);
      w.close();
    });

    it('DISCONNECT from "/chat" keeps "/" usable on the same session', async () => {
      const w = await gw.wsSocketIO('/');
      w.send('40/chat,');
      const c = await w.next();
      assert.ok(c.startsWith('40/chat,'), c);
      const chatSid = JSON.parse(c.slice('40/chat,'.length)).sid;
      w.send('41/chat,');
      const d = await be.in.next((e) => e.type === 'disconnect' && e.sid === chatSid);
      assert.equal(d.reason, 'client namespace disconnect');
      w.send('421["echo","to-main"]');
      const ack = await w.nextMatching((m) => m !== '2');
      assert.equal(ack, '431["to-main"]');
      w.close();
    });

    it('DISCONNECT from the only namespace keeps the Engine.IO session open', async () => {
      const w = await gw.wsSocketIO('/');
      w.send('41');
      const d = await be.in.next((e) => e.type === 'disconnect' && e.sid === w.sioSid);
      assert.equal(d.reason, 'client namespace disconnect');
      // the session is still there: a new CONNECT on it succeeds
      w.send('40/chat,');
      const m = await w.nextMatching((x) => x !== '2');
      assert.ok(m.startsWith('40/chat,{'), m);
      assert.ok(w.isOpen());
      w.close();
    });

    it('a packet for a namespace the session has not joined closes that session only', async () => {
      // socket.io's server treats it as an invalid state and closes the connection
      const other = await gw.connect('/', { transports: ['websocket'] });
      const w = await gw.wsSocketIO('/');
      w.send('42/chat,["ghost",1]');
      await w.waitClose(3000);
      const d = await be.in.next((e) => e.type === 'disconnect' && e.sid === w.sioSid);
      assert.equal(d.nsp, '/');
      assert.equal(be.in.all((e) => e.type === 'event' && e.event === 'ghost').length, 0);
      assert.equal(await other.timeout(3000).emitWithAck('echo', 'unaffected'), 'unaffected');
    });
  });
});
