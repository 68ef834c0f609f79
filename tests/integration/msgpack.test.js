'use strict';
/*
 * engine.parser: msgpack — socket.io-client@4 with the npm socket.io-msgpack-parser,
 * over websocket and polling: events, binary both ways, acks both ways; envelopes to
 * backends stay JSON with bytes as $binary. A client with the other parser is closed,
 * and the log says why.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const parser = require('socket.io-msgpack-parser');
const h = require('./helpers/gateway');

describe('engine.parser: msgpack (socket.io-msgpack-parser)', () => {
  let gw;
  let be;
  let replies;
  before(async () => {
    gw = await h.startGateway({ engine: { parser: 'msgpack' }, namespaces: [{ name: '/' }, { name: '/chat' }] });
    be = await gw.backend();
    replies = await gw.subscribe('test.msgpack.replies');
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  for (const transports of [['websocket'], ['polling']]) {
    it(`events, binary and acks both ways (${transports[0]})`, async () => {
      const s = await gw.connect('/chat', { transports, parser });
      // client → backend: JSON envelope, bytes as $binary
      const bytes = Buffer.from([0, 1, 2, 250, 255]);
      s.emit('upload', { name: 'a.bin', bytes, n: 1.5, big: 2 ** 40, list: [true, null, 'é'] });
      const ev = await be.in.next((e) => e.type === 'event' && e.sid === s.id && e.event === 'upload');
      assert.equal(ev.nsp, '/chat');
      assert.deepEqual(ev.data, [{ name: 'a.bin', bytes: { $binary: bytes.toString('base64') }, n: 1.5, big: 2 ** 40, list: [true, null, 'é'] }]);
      // client ack answered by the backend, binary included
      const echoed = await new Promise((resolve, reject) =>
        s.timeout(5000).emit('echo', 'hi', Buffer.from('xyz'), (err, ...args) => (err ? reject(err) : resolve(args))),
      );
      assert.equal(echoed[0], 'hi');
      assert.ok(Buffer.isBuffer(echoed[1]) && echoed[1].toString() === 'xyz', `echoed: ${JSON.stringify(echoed)}`);
      // backend → client: a binary emit to a room, then an emit with ack answered by the client
      const got = h.once(s, 'file', 5000);
      await gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [s.id], event: 'file', data: [{ $binary: 'AAEC/w==' }, 'tail'] });
      const [b, tail] = await got;
      assert.deepEqual([...b], [0, 1, 2, 255]);
      assert.equal(tail, 'tail');
      s.on('quiz', (q, cb) => cb({ answer: q * 2, raw: Buffer.from([9]) }));
      const id = `q-${transports[0]}`;
      await gw.emitEnvelope({
        type: 'emit', nsp: '/chat', rooms: [s.id], event: 'quiz', data: [21],
        ack: { reply_to: replies.topic, id, timeout_ms: 5000 },
      });
      const ack = await replies.next((m) => m.type === 'ack' && m.id === id);
      assert.deepEqual(ack.data, [{ answer: 42, raw: { $binary: 'CQ==' } }]);
      await replies.next((m) => m.type === 'ack_done' && m.id === id);
      s.close();
    });
  }

  it('CONNECT_ERROR reaches a msgpack client; the default parser is refused and the log says why', async () => {
    const bad = gw.socket('/nope', { transports: ['websocket'], parser });
    const [err] = await h.once(bad, 'connect_error', 5000);
    assert.equal(err.message, 'Invalid namespace');
    bad.close();
    const before = await gw.metric('sio_closes_total', { reason: 'parse error' });
    const json = gw.socket('/', { transports: ['websocket'], reconnection: false }); // the default parser
    await h.waitFor(async () => (await gw.metric('sio_closes_total', { reason: 'parse error' })) > before, 5000, {
      message: 'the session closed as a parse error',
    });
    assert.equal(json.connected, false);
    json.close();
    assert.match(gw.tail(200), /a JSON text packet on a gateway with engine\.parser: msgpack/);
    // the gateway serves msgpack clients on as before
    const ok = await gw.connect('/', { transports: ['websocket'], parser });
    assert.equal(await ok.timeout(5000).emitWithAck('echo', 1), 1);
    ok.close();
  });
});

describe('engine.parser: json (the default) and a msgpack client', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('is closed, and the log names socket.io-msgpack-parser', async () => {
    const s = gw.socket('/', { transports: ['websocket'], parser, reconnection: false });
    await h.waitFor(async () => (await gw.metric('sio_closes_total', { reason: 'parse error' })) > 0, 5000, {
      message: 'the session closed as a parse error',
    });
    assert.equal(s.connected, false);
    s.close();
    assert.match(gw.tail(200), /a MessagePack packet on a gateway with engine\.parser: json .*socket\.io-msgpack-parser/);
  });
});
