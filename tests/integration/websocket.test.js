'use strict';
/*
 * WebSocket as RFC 6455 says, byte by byte from a raw TCP client: the gateway fails a
 * connection that breaks the protocol with the close code the RFC names (1002, 1007),
 * answers pings, echoes a close, and handles a second websocket for an upgraded
 * session as engine.io does. Also: every request header reaches handshake.headers.
 */
const { describe, before, after, it: plainIt } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');
const h = require('./helpers/gateway');

/* A client frame: masked unless mask === false. */
function frame(opcode, payload, { mask = true, fin = true, rsv = 0 } = {}) {
  const p = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (p.length < 126) head.push(m | p.length);
  else head.push(m | 126, p.length >> 8, p.length & 0xff);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(p);
  if (mask) for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

const closeFrame = (code, reason = Buffer.alloc(0)) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return frame(0x8, Buffer.concat([b, Buffer.from(reason)]));
};

/* Raw websocket: handshake by hand; frames() parses what the server sent. */
class Raw {
  static async open(port, path) {
    const r = new Raw();
    r.sock = net.connect(port, '127.0.0.1');
    r.buf = Buffer.alloc(0);
    r.closed = false;
    r.sock.on('data', (d) => { r.buf = Buffer.concat([r.buf, d]); });
    r.sock.on('close', () => { r.closed = true; });
    r.sock.on('error', () => { r.closed = true; });
    await new Promise((res) => r.sock.on('connect', res));
    const key = crypto.randomBytes(16).toString('base64');
    r.sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: req-42\r\n\r\n`);
    await h.waitFor(() => r.buf.indexOf('\r\n\r\n') >= 0, 3000, { message: 'handshake reply' });
    const end = r.buf.indexOf('\r\n\r\n');
    r.head = r.buf.slice(0, end).toString();
    r.buf = r.buf.slice(end + 4);
    const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    if (r.head.startsWith('HTTP/1.1 101')) assert.match(r.head, new RegExp(`Sec-WebSocket-Accept: ${want.replace(/[+/]/g, '\\$&')}`, 'i'));
    return r;
  }

  frames() {
    const out = [];
    let b = this.buf;
    while (b.length >= 2) {
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (b.length < 4) break; len = b.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (b.length < 10) break; len = Number(b.readBigUInt64BE(2)); off = 10; }
      if (b.length < off + len) break;
      out.push({ op: b[0] & 0xf, payload: b.slice(off, off + len) });
      b = b.slice(off + len);
    }
    return out;
  }

  async waitClose(ms = 3000) {
    await h.waitFor(() => this.frames().some((f) => f.op === 0x8), ms, { message: 'a close frame' });
    const f = this.frames().find((x) => x.op === 0x8);
    await h.waitFor(() => this.closed, ms, { message: 'the TCP close' });
    return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
  }

  send(b) { this.sock.write(b); }
  close() { this.sock.destroy(); }
}

describe('WebSocket (RFC 6455) from a raw client', () => {
  let gw;
  const path = '/socket.io/?EIO=4&transport=websocket';
  before(async () => { gw = await h.startGateway(); });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  const opened = async () => {
    const r = await Raw.open(gw.port, path);
    assert.match(r.head, /^HTTP\/1\.1 101/);
    await h.waitFor(() => r.frames().length >= 1, 3000, { message: 'open packet' });
    assert.equal(r.frames()[0].payload.toString()[0], '0');
    return r;
  };

  it('a text frame that is not UTF-8 closes with 1007', async () => {
    const r = await opened();
    r.send(frame(0x1, Buffer.from([0x34, 0x32, 0xc3, 0x28])));
    assert.equal(await r.waitClose(), 1007);
    assert.ok(await gw.metric('sio_websocket_protocol_errors_total') >= 1);
  });

  it('invalid UTF-8 split across fragments closes with 1007', async () => {
    const r = await opened();
    r.send(frame(0x1, Buffer.from([0x34, 0xe2, 0x82]), { fin: false }));
    r.send(frame(0x0, Buffer.from([0x41]), { fin: true }));
    assert.equal(await r.waitClose(), 1007);
  });

  it('an unmasked client frame closes with 1002', async () => {
    const r = await opened();
    r.send(frame(0x1, '42["x"]', { mask: false }));
    assert.equal(await r.waitClose(), 1002);
  });

  it('reserved bits without an extension close with 1002', async () => {
    const r = await opened();
    r.send(frame(0x1, '3', { rsv: 4 }));
    assert.equal(await r.waitClose(), 1002);
  });

  it('close code 5000 is refused with 1002; a reason that is not UTF-8 with 1007', async () => {
    const a = await opened();
    a.send(closeFrame(5000));
    assert.equal(await a.waitClose(), 1002);
    const b = await opened();
    b.send(closeFrame(1000, Buffer.from([0xff, 0xfe])));
    assert.equal(await b.waitClose(), 1007);
  });

  it('a message over engine.max_payload closes with 1009 and the session as "payload too large"', async () => {
    const before = await gw.metric('sio_closes_total', { reason: 'payload too large' });
    const r = await opened();
    const big = Buffer.alloc(1000001, 'a');
    big[0] = 0x34;
    const head = Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x41, 0, 0, 0, 0]); // 1000001, zero mask
    r.send(Buffer.concat([head, big]));
    assert.equal(await r.waitClose(), 1009);
    await h.waitFor(async () => (await gw.metric('sio_closes_total', { reason: 'payload too large' })) === before + 1,
      3000, { message: 'the close reason counted' });
  });

  it('a proper close (1000) is echoed', async () => {
    const r = await opened();
    r.send(closeFrame(1000, 'bye'));
    assert.equal(await r.waitClose(), 1000);
  });

  it('a ping is answered with a pong carrying its payload', async () => {
    const r = await opened();
    r.send(frame(0x9, 'hello'));
    await h.waitFor(() => r.frames().some((f) => f.op === 0xa), 3000, { message: 'pong' });
    assert.equal(r.frames().find((f) => f.op === 0xa).payload.toString(), 'hello');
    r.close();
  });

  it('an unsupported Sec-WebSocket-Version gets 426 with the version we speak', async () => {
    const sock = net.connect(gw.port, '127.0.0.1');
    let buf = '';
    sock.on('data', (d) => { buf += d; });
    await new Promise((res) => sock.on('connect', res));
    sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n');
    await h.waitFor(() => buf.includes('\r\n\r\n'), 3000, { message: 'reply' });
    assert.match(buf, /^HTTP\/1\.1 426/);
    assert.match(buf, /Sec-WebSocket-Version: 13/i);
    sock.destroy();
  });

  it("a second websocket for an upgraded session is accepted, then closed; the session carries on", async () => {
    const s = await gw.connect('/', { transports: ['polling', 'websocket'] });
    await h.waitFor(() => s.io.engine.transport.name === 'websocket', 5000, { message: 'upgrade' });
    const r = await Raw.open(gw.port, `/socket.io/?EIO=4&transport=websocket&sid=${s.io.engine.id}`);
    assert.match(r.head, /^HTTP\/1\.1 101/);
    await r.waitClose();
    assert.ok(s.connected, 'the first websocket still serves the session');
  });

  it('a polling payload that is not UTF-8 is refused with 400 and closes the session', async () => {
    const p = gw.polling();
    await p.handshake();
    const u = new URL(p.url());
    const body = Buffer.from([0x34, 0x30, 0xff]);
    const res = await h.httpRequest(`${gw.url}${u.pathname}${u.search}`, { method: 'POST', body });
    assert.equal(res.status, 400);
  });

  it('every request header, custom ones included, reaches handshake.headers', async () => {
    const sub = await gw.subscribe('sio.in');
    const r = await opened();
    r.send(frame(0x1, '40'));
    const env = await sub.next((m) => m.type === 'connect');
    assert.equal(env.handshake.headers['x-request-id'], 'req-42');
    assert.equal(env.handshake.headers['sec-websocket-version'], '13');
    r.close();
  });
});

describe('SIGTERM: the last words go out before the process exits', () => {
  plainIt('a websocket gets a close frame (1001) and a held poll its close packet', async () => {
    const gw = await h.startGateway();
    try {
      const r = await Raw.open(gw.port, '/socket.io/?EIO=4&transport=websocket');
      await h.waitFor(() => r.frames().length >= 1, 3000, { message: 'open packet' });
      const p = gw.polling();
      await p.handshake();
      // the next GET is held (nothing queued); /metrics counts itself too
      const m0 = await gw.metric('sio_http_requests_total');
      const held = p.get({ timeout: 5000 });
      await h.waitFor(async () => (await gw.metric('sio_http_requests_total')) >= m0 + 2, 3000, { message: 'the held poll' });
      gw.proc.kill('SIGTERM');
      assert.equal(await r.waitClose(), 1001);
      const res = await held;
      assert.equal(res.status, 200);
      assert.deepEqual(res.packets, ['1'], 'the close packet');
    } finally {
      assert.equal(await gw.stop(), 0, 'a clean exit');
    }
  });
});
