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

function emitEnvelope(env) {
  if (!env || env.type !== 'emit' || typeof env.event !== 'string') return false;
  let target = io.of(env.nsp || '/');
  if (Array.isArray(env.rooms) && env.rooms.length) target = target.to(env.rooms);
  if (Array.isArray(env.except) && env.except.length) target = target.except(env.except);
  if (env.volatile) target = target.volatile;
  target.emit(env.event, ...(Array.isArray(env.data) ? env.data : []));
  return true;
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, '{"ok":true}');
  if (req.method === 'POST' && url.pathname === '/api/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let env;
      try {
        env = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(res, 400, '{"error":"invalid JSON"}');
      }
      return emitEnvelope(env) ? reply(res, 200, '{"ok":true}') : reply(res, 400, '{"error":"not an emit envelope"}');
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
  console.error(`node-server: socket.io ${require('socket.io/package.json').version} on node ${process.version}, listening on ${host}:${port}`);
});

function stop() {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
