'use strict';
/*
 * engine.serve_client: the socket.io-client bundle at {path}socket.io.js and friends,
 * compared byte for byte with npm's copy of the same version (node_modules), with
 * ETag/304, HEAD and caching headers; then the served UMD bundle is evaluated in a fresh
 * V8 context (as a <script> would be) and its `io` connects to the gateway.
 */
const { describe, before, after, it: plainIt } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const { spawnSync } = require('node:child_process');
const WebSocket = require('ws');
const h = require('./helpers/gateway');

const DIST = path.dirname(require.resolve('socket.io-client/dist/socket.io.js'));
const FILES = [
  'socket.io.js', 'socket.io.js.map', 'socket.io.min.js', 'socket.io.min.js.map',
  'socket.io.esm.min.js', 'socket.io.esm.min.js.map', 'socket.io.msgpack.min.js', 'socket.io.msgpack.min.js.map',
];

describe('engine.serve_client', () => {
  let gw;
  let be;
  before(async () => {
    gw = await h.startGateway({ engine: { serve_client: true } });
    be = await gw.backend();
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const url = (f) => `${gw.url}/socket.io/${f}`;

  it('every dist file, byte for byte, with its type, an ETag and Cache-Control', async () => {
    for (const f of FILES) {
      const res = await fetch(url(f));
      assert.equal(res.status, 200, f);
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(body.equals(fs.readFileSync(path.join(DIST, f))), `${f}: the bytes of npm's socket.io-client`);
      assert.match(res.headers.get('content-type'), f.endsWith('.map') ? /^application\/json/ : /^application\/javascript/);
      assert.match(res.headers.get('etag'), /^"[0-9a-f]{32}"$/);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=0');
    }
  });

  it('If-None-Match answers 304 (strong, weak, in a list, *), another tag 200; HEAD has the headers only', async () => {
    const res = await fetch(url('socket.io.min.js'));
    const etag = res.headers.get('etag');
    await res.arrayBuffer();
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await fetch(url('socket.io.min.js'), { headers: { 'if-none-match': inm } });
      assert.equal(r.status, 304, inm);
      assert.equal(r.headers.get('etag'), etag);
      assert.equal((await r.arrayBuffer()).byteLength, 0);
    }
    const other = await fetch(url('socket.io.min.js'), { headers: { 'if-none-match': '"0000"' } });
    assert.equal(other.status, 200);
    await other.arrayBuffer();
    const head = await fetch(url('socket.io.js'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(fs.statSync(path.join(DIST, 'socket.io.js')).size));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const post = await fetch(url('socket.io.js'), { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.arrayBuffer();
    const below = await fetch(url('socket.io.js/x'));
    assert.equal(below.status, 404);
    await below.arrayBuffer();
  });

  it('the served UMD bundle, run as a script, connects and gets an ack', async () => {
    const code = await (await fetch(url('socket.io.js'))).text();
    // a page's globals, with ws's WebSocket standing in for the browser's
    const window = { WebSocket, setTimeout, clearTimeout, setInterval, clearInterval, console, navigator: { userAgent: 'node' } };
    window.window = window;
    window.self = window;
    const ctx = vm.createContext(window);
    vm.runInContext(code, ctx, { filename: 'socket.io.js' });
    assert.equal(typeof ctx.io, 'function', 'the bundle defines window.io');
    const s = ctx.io(gw.url, { transports: ['websocket'], reconnection: false });
    try {
      await h.waitFor(() => s.connected, 5000, { message: 'the bundle\'s socket connected' });
      const reply = await new Promise((resolve, reject) => s.timeout(5000).emit('echo', 'from the bundle', (err, r) => (err ? reject(err) : resolve(r))));
      assert.equal(reply, 'from the bundle');
      assert.ok(be.acked.some((e) => e.data[0] === 'from the bundle'));
    } finally {
      s.close();
    }
  });
});

describe('engine.serve_client off, or without its files', () => {
  plainIt('off (the default): the URL is the engine\'s, as before', async () => {
    const gw = await h.startGateway();
    try {
      const res = await fetch(`${gw.url}/socket.io/socket.io.js`);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 5, message: 'Unsupported protocol version' });
    } finally {
      await gw.stopChecked();
    }
  });

  plainIt('a directory without the bundle: --check and startup fail, naming the file', async () => {
    const port = await h.freePort(); // never listened on: the bundle is read first
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-client-'));
    try {
      const cfg = path.join(dir, 'gateway.yaml');
      fs.writeFileSync(cfg, `listen: {host: 127.0.0.1, port: ${port}}\nengine:\n  serve_client: true\n  client_dir: ${dir}\n`);
      for (const args of [['-c', cfg, '--check'], ['-c', cfg]]) {
        const r = spawnSync(h.gatewayBinary(), args, { encoding: 'utf8', timeout: 10000 });
        assert.equal(r.status, 1, `${args}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`gateway\\.yaml:3:17: engine\\.serve_client: ${dir}/socket\\.io\\.js: No such file or directory`));
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
