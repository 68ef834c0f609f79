'use strict';
/*
 * HTTP/1.1 as RFC 9112 says, on every path (Engine.IO, API, health): pipelining,
 * `Connection: close` both ways, chunked bodies, smuggling shapes, the header limit,
 * the request deadline, HEAD, Expect. Driven with raw sockets (bytes exactly as
 * written) and with Node's own http agent, a client this project did not write.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const http = require('node:http');
const h = require('./helpers/gateway');

/* Write `bytes` on a fresh connection; collect what comes back until the peer closes
 * (closed: true) or `quietMs` pass without the predicate `done` being true. */
function exchange(port, bytes, { done = () => false, timeout = 4000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (closed) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: buf.toString('latin1'), buf, closed });
    };
    const timer = setTimeout(() => finish(false), timeout);
    sock.on('connect', () => {
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) sock.write(b);
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (done(buf.toString('latin1'))) finish(false);
    });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => (e.code === 'ECONNRESET' ? finish(true) : reject(e)));
  });
}

/* The HTTP responses in a byte stream (status, headers, body by Content-Length). */
function responses(text) {
  const out = [];
  let rest = text;
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end).split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const l of head.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] || 0);
    out.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

const publishReq = (host, topic, body, extra = '') =>
  `POST /api/publish?topic=${topic} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('HTTP/1.1 framing (RFC 9112)', () => {
  let gw;
  let host;
  before(async () => {
    gw = await h.startGateway({ listen: { request_timeout_ms: 700, max_header_bytes: 4096 } });
    host = `127.0.0.1:${gw.port}`;
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('pipelined requests on one connection are all answered, in order, and the loop keeps serving', async () => {
    const sub = await gw.subscribe('pipe.t');
    const reqs = publishReq(host, 'pipe.t', '{"n":1}') + publishReq(host, 'pipe.t', '{"n":2}') +
      `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    const r = await exchange(gw.port, reqs, { done: (t) => responses(t).length === 3 });
    const rs = responses(r.text);
    assert.deepEqual(rs.map((x) => x.status), [200, 200, 200], r.text);
    assert.match(rs[2].body, /"status":"ok"/);
    assert.deepEqual([(await sub.next()).n, (await sub.next()).n], [1, 2], 'published in order');
    // the loop is not stuck: a fresh request is answered at once
    assert.equal((await gw.http('/healthz')).status, 200);
  });

  it('a pipelined request split across writes mid-header is answered', async () => {
    const two = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /healthz HTTP/1.1\r\nHo`;
    const r = await exchange(gw.port, [two, `st: ${host}\r\n\r\n`], { done: (t) => responses(t).length === 2 });
    assert.deepEqual(responses(r.text).map((x) => x.status), [200, 200]);
  });

  it('Connection: close is answered with Connection: close, then the connection closes', async () => {
    const r = await exchange(gw.port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.ok(r.closed, 'the server closed');
    const [res] = responses(r.text);
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'close');
  });

  it('HTTP/1.0 closes unless it asks for keep-alive', async () => {
    const r = await exchange(gw.port, 'GET /healthz HTTP/1.0\r\n\r\n');
    assert.ok(r.closed);
    assert.equal(responses(r.text)[0].status, 200);
    const k = await exchange(gw.port, 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', {
      done: (t) => responses(t).length === 1, timeout: 2000,
    });
    assert.equal(k.closed, false, 'kept alive');
    assert.equal(responses(k.text)[0].headers.connection, 'keep-alive');
  });

  it("Node's keep-alive agent sending Connection: close loses none of 20 publishes", async () => {
    const sub = await gw.subscribe('agent.t');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const one = (i) => new Promise((resolve, reject) => {
      const body = JSON.stringify({ i });
      const req = http.request({
        host: '127.0.0.1', port: gw.port, method: 'POST', path: '/api/publish?topic=agent.t', agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' },
      }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(body);
    });
    const codes = [];
    for (let i = 0; i < 20; i++) codes.push(await one(i));
    agent.destroy();
    assert.deepEqual(codes, Array(20).fill(200));
    for (let i = 0; i < 20; i++) assert.equal((await sub.next()).i, i);
  });

  it('a chunked body is decoded (API publish, with Node http.request + write())', async () => {
    const sub = await gw.subscribe('chunk.t');
    const status = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'POST', path: '/api/publish?topic=chunk.t' },
        (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      req.on('error', reject);
      req.write('{"a":');
      setImmediate(() => req.end('[1,2,3]}'));
    });
    assert.equal(status, 200);
    assert.deepEqual(await sub.next(), { a: [1, 2, 3] });
  });

  it('a chunked polling POST is decoded and reaches the session', async () => {
    const p = gw.polling();
    await p.handshake();
    const u = new URL(p.url());
    const r = await exchange(gw.port,
      `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\n` +
      'Transfer-Encoding: chunked\r\n\r\n1;ext=1\r\n4\r\n1\r\n0\r\n0\r\nX-Trailer: y\r\n\r\n',
      { done: (t) => responses(t).length === 1 });
    const [res] = responses(r.text);
    assert.equal(res.status, 200, r.text);
    assert.equal(res.body, 'ok');
    const conn = await p.pollUntil((x) => x.startsWith('40'));
    assert.ok(conn.packet.startsWith('40{"sid":'));
  });

  for (const [name, head] of [
    ['Content-Length with Transfer-Encoding', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'],
    ['two different Content-Lengths', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
    ['Content-Length: +5', 'Content-Length: +5\r\n'],
    ['Content-Length: 0x10', 'Content-Length: 0x10\r\n'],
    ['Transfer-Encoding not ending in chunked', 'Transfer-Encoding: chunked, identity\r\n'],
  ]) {
    it(`smuggling shape refused with 400 and a close: ${name}`, async () => {
      const smuggled = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
      const r = await exchange(gw.port,
        `POST /api/publish?topic=smug.t HTTP/1.1\r\nHost: ${host}\r\n${head}\r\n0\r\n\r\n${smuggled}`);
      assert.ok(r.closed, 'closed');
      const rs = responses(r.text);
      assert.equal(rs.length, 1, `one answer only (the smuggled request is not answered): ${r.text}`);
      assert.equal(rs[0].status, 400);
      assert.equal(rs[0].headers.connection, 'close');
    });
  }

  it('request headers over listen.max_header_bytes get 431 and a close; under it they are served', async () => {
    const big = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nCookie: ${'a'.repeat(5000)}\r\n\r\n`;
    const r = await exchange(gw.port, big);
    assert.ok(r.closed);
    assert.equal(responses(r.text)[0].status, 431);
    const ok = await exchange(gw.port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nCookie: ${'a'.repeat(3000)}\r\n\r\n`, {
      done: (t) => responses(t).length === 1,
    });
    assert.equal(responses(ok.text)[0].status, 200);
  });

  it('a body trickled past listen.request_timeout_ms gets 408 and a close', async () => {
    const t0 = Date.now();
    const r = await exchange(gw.port,
      `POST /api/publish?topic=slow.t HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100\r\n\r\n{"x"`, { timeout: 5000 });
    assert.ok(r.closed, 'closed by the server');
    assert.equal(responses(r.text)[0].status, 408);
    assert.ok(Date.now() - t0 < 3000, 'within the deadline, not the test timeout');
    assert.ok(await gw.metric('sio_http_timeouts_total') >= 1);
  });

  it('an idle keep-alive connection is closed after the deadline without an answer', async () => {
    const r = await exchange(gw.port, [], { timeout: 4000 });
    assert.ok(r.closed);
    assert.equal(r.text, '');
  });

  it('HTTP/1.0 with Transfer-Encoding is answered, then closed (RFC 9112 §6.1)', async () => {
    const r = await exchange(gw.port, 'POST /api/publish?topic=t10 HTTP/1.0\r\nConnection: keep-alive\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n');
    assert.ok(r.closed);
    const rs = responses(r.text);
    assert.equal(rs.length, 1, r.text);
    assert.equal(rs[0].headers.connection, 'close');
  });

  it('a CORS preflight gets 204 without Content-Length (RFC 9110 §8.6)', async () => {
    const r = await exchange(gw.port, `OPTIONS /socket.io/ HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://a.example\r\n` +
      'Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-a\r\n\r\n',
    { done: (t) => t.includes('\r\n\r\n') });
    const [res] = responses(r.text);
    assert.equal(res.status, 204);
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['access-control-allow-headers'], 'x-a');
  });

  it('HEAD /healthz: the GET head, no body', async () => {
    const r = await exchange(gw.port, `HEAD /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      { done: (t) => /\r\n\r\n[\s\S]*\r\n\r\n\{[^}]*\}$/.test(t) });
    const headEnd = r.text.indexOf('\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 200/);
    assert.match(r.text.slice(0, headEnd), /Content-Length: [1-9]/i);
    // the next response starts right after the head: no body was sent for HEAD
    assert.match(r.text.slice(headEnd + 4), /^HTTP\/1\.1 200/);
  });

  it('Expect: 100-continue gets 100 Continue, then the answer', async () => {
    const sock = net.connect(gw.port, '127.0.0.1');
    await new Promise((r) => sock.on('connect', r));
    let buf = '';
    sock.on('data', (d) => { buf += d; });
    sock.write(`POST /api/publish?topic=exp.t HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n`);
    await h.waitFor(() => buf.includes('100 Continue'), 2000, { message: '100 Continue' });
    sock.write('{}');
    await h.waitFor(() => /HTTP\/1\.1 200/.test(buf), 2000, { message: 'the answer' });
    sock.destroy();
  });

  it('an unknown HTTP version gets 505, a garbage request line 400', async () => {
    const v = await exchange(gw.port, `GET /healthz HTTP/1.2\r\nHost: ${host}\r\n\r\n`);
    assert.ok(v.closed);
    assert.match(v.text, /^HTTP\/1\.1 (505|400)/);
    const g = await exchange(gw.port, '\x16\x03\x01 hello\r\n\r\n');
    assert.ok(g.closed);
    assert.match(g.text, /^HTTP\/1\.1 400/);
    assert.ok(await gw.metric('sio_http_refused_total') >= 2);
  });
});
