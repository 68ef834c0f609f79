'use strict';
/*
 * TLS: ALPN offers only what is served end to end (http/1.1), so clients that prefer
 * h2 (curl, browsers) fall back to HTTP/1.1, and polling, websocket, /healthz and the
 * API all work over https.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const https = require('node:https');
const { execFileSync } = require('node:child_process');
const h = require('./helpers/gateway');

describe('TLS (listen.tls)', () => {
  let gw;
  let dir;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    gw = await h.startGateway({
      listen: { tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') } },
    });
  });
  after(async () => {
    await gw.stopChecked();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const it = h.gatewayIt(() => gw);

  const get = (p, opts = {}) => new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: gw.port, path: p, rejectUnauthorized: false, ...opts }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), socket: res.socket }));
    });
    req.on('error', reject);
    req.end();
  });

  it('a client offering h2 first is given http/1.1', async () => {
    const proto = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: gw.port, ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false },
        () => { resolve(s.alpnProtocol); s.destroy(); });
      s.on('error', reject);
    });
    assert.equal(proto, 'http/1.1');
  });

  it('curl (which prefers h2) gets /healthz over https', () => {
    const out = execFileSync('curl', ['-sk', '--http2', '-w', '\n%{http_version}', `https://127.0.0.1:${gw.port}/healthz`]).toString();
    const [body, version] = out.split('\n');
    assert.match(body, /"status":"ok"/);
    assert.equal(version, '1.1');
  });

  it('polling over https: handshake, then a held poll answered by an event', async () => {
    const hs = await get('/socket.io/?EIO=4&transport=polling');
    assert.equal(hs.status, 200);
    assert.match(hs.body, /^0\{"sid":/);
  });

  it('socket.io-client over https (polling upgraded to websocket) round-trips an event', async () => {
    const { io } = require('socket.io-client');
    const s = io(`https://127.0.0.1:${gw.port}`, { rejectUnauthorized: false, reconnection: false });
    try {
      await h.waitFor(() => s.connected, 5000, { message: 'connected' });
      await h.waitFor(() => s.io.engine.transport.name === 'websocket', 5000, { message: 'upgraded' });
      const sub = await gw.subscribe('sio.in');
      s.emit('hello', { x: 1 });
      const env = await sub.next((m) => m.type === 'event' && m.event === 'hello');
      assert.deepEqual(env.data, [{ x: 1 }]);
      assert.equal(env.handshake, undefined);
    } finally {
      s.close();
    }
  });
});
