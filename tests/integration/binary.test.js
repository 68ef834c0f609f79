'use strict';
/*
 * Binary data both ways (DESIGN §1.1, §1.2): client BINARY_EVENT / BINARY_ACK
 * attachments become {"$binary":"<base64>"} in envelopes at the place they
 * occupied, and {"$binary"} values in backend envelopes become real binary
 * attachments (Buffers in socket.io-client under Node). Over websocket
 * (binary frames) and polling (b<base64> packets).
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const bin = (bytes) => ({ $binary: b64(bytes) });

function assertBuffer(actual, expectedBytes, what) {
  assert.ok(Buffer.isBuffer(actual), `${what}: expected a Buffer, got ${Object.prototype.toString.call(actual)}`);
  assert.ok(actual.equals(Buffer.from(expectedBytes)), `${what}: bytes differ (${actual.length} vs ${Buffer.from(expectedBytes).length} bytes)`);
}

describe('binary payloads', () => {
  let gw;
  let sin;
  before(async () => {
    gw = await h.startGateway();
    sin = await gw.subscribe(gw.topics.in);
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const isEvent = (sid, event) => (e) => e.type === 'event' && e.sid === sid && e.event === event;

  for (const transport of ['websocket', 'polling']) {
    describe(`over ${transport}`, () => {
      const connect = (nsp = '/') => gw.connect(nsp, { transports: [transport] });

      it('client → backend: a Buffer argument becomes {"$binary"} in place', async () => {
        const s = await connect();
        s.emit('upload', Buffer.from([1, 2, 3]), 'name.bin');
        const e = await sin.next(isEvent(s.id, 'upload'));
        assert.deepEqual(e.data, [bin([1, 2, 3]), 'name.bin']);
        assert.equal('ack' in e, false);
      });

      it('client → backend: Buffers and Uint8Arrays nested in objects and arrays', async () => {
        const s = await connect('/chat');
        s.emit('nested', {
          a: Uint8Array.from([4, 5, 6]),
          list: [1, Buffer.from('hi'), { deep: Buffer.from([255, 0, 128]) }],
          text: 'plain',
        }, [Buffer.from([9])]);
        const e = await sin.next(isEvent(s.id, 'nested'));
        assert.equal(e.nsp, '/chat');
        assert.deepEqual(e.data, [
          { a: bin([4, 5, 6]), list: [1, bin(Buffer.from('hi')), { deep: bin([255, 0, 128]) }], text: 'plain' },
          [bin([9])],
        ]);
      });

      it('client → backend: a binary event with an ack keeps ack.id, and a $binary ack resolves to a Buffer', async () => {
        const s = await connect();
        const p = s.timeout(4000).emitWithAck('store', Buffer.from('payload'));
        const e = await sin.next(isEvent(s.id, 'store'));
        assert.deepEqual(e.data, [bin(Buffer.from('payload'))]);
        assert.ok(e.ack && e.ack.id !== undefined, 'ack requested');
        await gw.reply({ type: 'ack', id: e.ack.id, data: [bin([7, 7, 7])] });
        assertBuffer(await p, [7, 7, 7], 'binary ack');
      });

      it('backend → client: {"$binary"} in emit data arrives as Buffers with the right bytes', async () => {
        const s = await connect();
        const got = h.once(s, 'file', 3000);
        await gw.emitEnvelope({
          type: 'emit',
          nsp: '/',
          rooms: [s.id],
          event: 'file',
          data: [bin([0, 1, 2, 255]), { nested: bin(Buffer.from('héllo')), list: [bin([42])] }, 'text', 5],
        });
        const [first, obj, text, n] = await got;
        assertBuffer(first, [0, 1, 2, 255], 'first arg');
        assertBuffer(obj.nested, Buffer.from('héllo'), 'nested');
        assertBuffer(obj.list[0], [42], 'in array');
        assert.equal(text, 'text');
        assert.equal(n, 5);
      });

      it('backend → client → backend: a binary ack from the client becomes {"$binary"} in the ack reply', async () => {
        const s = await connect();
        s.on('need-bytes', (x, cb) => cb(Buffer.from([x, x + 1]), 'meta'));
        const replies = await gw.subscribe(`test.binack.${transport}`);
        await gw.emitEnvelope({
          type: 'emit',
          nsp: '/',
          rooms: [s.id],
          event: 'need-bytes',
          data: [10],
          ack: { reply_to: `test.binack.${transport}`, id: 'b1', timeout_ms: 2000 },
        });
        const a = await replies.next((m) => m.type === 'ack' && m.id === 'b1');
        assert.equal(a.sid, s.id);
        assert.deepEqual(a.data, [bin([10, 11]), 'meta']);
      });

      it('64 KiB of random bytes round-trip both ways unchanged', async () => {
        const s = await connect();
        const bytes = crypto.randomBytes(64 * 1024);
        s.emit('big', bytes);
        const e = await sin.next(isEvent(s.id, 'big'));
        assert.equal(e.data[0].$binary, bytes.toString('base64'));
        const got = h.once(s, 'big-back', 3000);
        await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [s.id], event: 'big-back', data: [{ $binary: bytes.toString('base64') }] });
        const [back] = await got;
        assertBuffer(back, bytes, 'big-back');
      });

      it('an empty Buffer survives both ways', async () => {
        const s = await connect();
        s.emit('empty', Buffer.alloc(0));
        const e = await sin.next(isEvent(s.id, 'empty'));
        assert.deepEqual(e.data, [{ $binary: '' }]);
        const got = h.once(s, 'empty-back', 3000);
        await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [s.id], event: 'empty-back', data: [{ $binary: '' }] });
        const [back] = await got;
        assertBuffer(back, [], 'empty-back');
      });
    });
  }

  describe('wire format', () => {
    const PLACEHOLDER = '{"_placeholder":true,"num":0}';

    it('websocket: BINARY_EVENT text frame then the attachment as a raw binary frame', async () => {
      const w = await gw.wsSocketIO('/');
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [w.sioSid], event: 'file', data: [bin([1, 2, 3])] });
      const notPing = (m) => m !== '2';
      assert.equal(await w.nextMatching(notPing), `451-["file",${PLACEHOLDER}]`);
      assertBuffer(await w.nextMatching(notPing), [1, 2, 3], 'attachment frame');
      // and the other way: a raw BINARY_EVENT with its attachment frame
      w.send(`451-["up",${PLACEHOLDER}]`);
      w.send(Buffer.from([4, 5, 6]));
      const e = await sin.next(isEvent(w.sioSid, 'up'));
      assert.deepEqual(e.data, [bin([4, 5, 6])]);
      w.close();
    });

    it('polling: the attachment travels as a "b<base64>" packet, both ways', async () => {
      const p = gw.polling();
      await p.handshake();
      assert.equal((await p.post('40')).status, 200);
      const { packet } = await p.pollUntil((x) => x.startsWith('40'));
      const sid = JSON.parse(packet.slice(2)).sid;
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [sid], event: 'file', data: [bin([1, 2, 3])] });
      const { packets } = await p.pollUntil((x) => x[0] === 'b');
      assert.deepEqual(packets.slice(-2), [`451-["file",${PLACEHOLDER}]`, `b${b64([1, 2, 3])}`]);
      assert.equal((await p.post([`451-["up",${PLACEHOLDER}]`, `b${b64([4, 5, 6])}`])).status, 200);
      const e = await sin.next(isEvent(sid, 'up'));
      assert.deepEqual(e.data, [bin([4, 5, 6])]);
    });
  });

  it('a broadcast with binary reaches a websocket and a polling client alike', async () => {
    const a = await gw.connect('/chat', { transports: ['websocket'] });
    const b = await gw.connect('/chat', { transports: ['polling'] });
    const ga = h.once(a, 'blob', 3000);
    const gb = h.once(b, 'blob', 3000);
    await gw.emitEnvelope({ type: 'emit', nsp: '/chat', rooms: [a.id, b.id], event: 'blob', data: [bin([1, 3, 3, 7])] });
    assertBuffer((await ga)[0], [1, 3, 3, 7], 'websocket client');
    assertBuffer((await gb)[0], [1, 3, 3, 7], 'polling client');
  });
});
