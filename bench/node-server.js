'use strict';
/*
 * bench/node-server.js — the Node.js socket.io@4 server that does, in-process, the
 * job sio-gateway does through its bus, so that bench/compare.sh can run the same
 * scenarios against both:
 *
 *   POST /api/publish?topic=sio.out  body: an emit envelope, the same bytes a backend
 *       posts to the gateway's HTTP API ({"type":"emit","nsp":"/","rooms":[...],
 *       "event":"e","data":[...]}) → io.of(nsp).to(rooms).emit(event, ...data).
 *       This is the in-process broadcast: one HTTP request per event, like the gateway.
 *       {"type":"join"|"leave","nsp":"/","rooms":[sid...],"join"|"leave":room|[rooms]}
 *       → io.of(nsp).in(rooms).socketsJoin(join) / socketsLeave(leave) (bench/loadgen's
 *       rooms scenario puts its clients into rooms this way, as a backend does with the
 *       gateway).
 *       With Content-Type application/x-ndjson the body is one envelope per line, applied
 *       in order; the answer is the gateway's: {"ok":..,"published":N,"failed":M,
 *       "results":[{"status":200}|{"status":400,"error":"..."},...]}.
 *   POST /broadcast?n=N&size=B  N events of about B bytes, emitted in one go (a
 *       convenience for manual runs; compare.sh uses /api/publish).
 *   "echo" events with an ack are answered in-process with the same arguments.
 *   GET /healthz → 200.
 *
 *   node bench/node-server.js --port P [--host 127.0.0.1]
 *
 * Options as close to the gateway's config as socket.io allows: websocket and
 * polling, pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize 1e6, no
 * permessage-deflate, no served client bundle.
 *
 * ws's native add-ons, as production deployments install them: bufferutil (websocket
 * masking/unmasking; ws uses it for frames of 32 bytes and more) and utf-8-validate
 * (ws 8 prefers node's own buffer.isUtf8 when node has it, as node 20 does). The start
 * line says which of them loaded.
 */
const http = require('node:http');
const { Server } = require('socket.io');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', process.env.PORT || 0));
const host = arg('--host', '127.0.0.1');
if (!port) {
  console.error('usage: node bench/node-server.js --port P [--host H]');
  process.exit(2);
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function native(name) {
  try {
    require(name);
    return `${name} ${require(`${name}/package.json`).version} loaded`;
  } catch (e) {
    return `${name} NOT loaded (${e.code || e.message})`;
  }
}
const addons = `${native('bufferutil')}, ${native('utf-8-validate')}` +
  (require('node:buffer').isUtf8 ? ' (ws uses buffer.isUtf8 instead)' : '');

const list = (v) => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);

// One envelope → null when applied, else the error text.
function applyEnvelope(env) {
  if (!env || typeof env !== 'object') return 'not an envelope';
  const ns = io.of(env.nsp || '/');
  const rooms = list(env.rooms), except = list(env.except);
  if (env.type === 'emit') {
    if (typeof env.event !== 'string') return 'emit without event';
    let target = ns;
    if (rooms.length) target = target.to(rooms);
    if (except.length) target = target.except(except);
    if (env.volatile) target = target.volatile;
    target.emit(env.event, ...(Array.isArray(env.data) ? env.data : []));
    return null;
  }
  if (env.type === 'join' || env.type === 'leave') {
    const what = list(env[env.type]);
    if (!what.length) return `${env.type} without rooms`;
    let target = rooms.length ? ns.in(rooms) : ns;
    if (except.length) target = target.except(except);
    if (env.type === 'join') target.socketsJoin(what);
    else target.socketsLeave(what);
    return null;
  }
  return `unsupported type ${env.type}`;
}

function publishBatch(text) {
  const results = [];
  let failed = 0;
  for (let line of text.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (!line) continue;
    let err;
    try {
      err = applyEnvelope(JSON.parse(line));
    } catch {
      err = 'invalid JSON';
    }
    if (err) failed++;
    results.push(err ? { status: 400, error: err } : { status: 200 });
  }
  return JSON.stringify({ ok: !failed, published: results.length - failed, failed, results });
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, '{"ok":true}');
  if (req.method === 'POST' && url.pathname === '/api/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const ctype = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      if (ctype === 'application/x-ndjson' || ctype === 'application/ndjson') return reply(res, 200, publishBatch(body));
      let env;
      try {
        env = JSON.parse(body);
      } catch {
        return reply(res, 400, '{"error":"invalid JSON"}');
      }
      const err = applyEnvelope(env);
      return err ? reply(res, 400, JSON.stringify({ error: err })) : reply(res, 200, '{"ok":true}');
    });
    return undefined;
  }
  if (req.method === 'POST' && url.pathname === '/broadcast') {
    const n = Number(url.searchParams.get('n') || 1);
    const size = Number(url.searchParams.get('size') || 100);
    const pad = 'x'.repeat(Math.max(0, size - 60));
    for (let s = 0; s < n; s++) io.emit('bench', { t: String(process.hrtime.bigint()), s, p: pad });
    return reply(res, 200, `{"ok":true,"events":${n}}`);
  }
  return reply(res, 404, '{"error":"not found"}');
});

const io = new Server(httpServer, {
  transports: ['polling', 'websocket'],
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  perMessageDeflate: false,
  serveClient: false,
});

io.on('connection', (socket) => {
  socket.on('echo', (...args) => {
    const ack = args.length && typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (ack) ack(...args);
  });
});

httpServer.listen(port, host, () => {
  console.error(`node-server: socket.io ${require('socket.io/package.json').version} on node ${process.version}, ` +
    `listening on ${host}:${port}; ${addons}`);
});

function stop() {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
