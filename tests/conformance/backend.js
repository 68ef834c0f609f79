#!/usr/bin/env node
'use strict';
/*
 * The behaviour of the official Socket.IO protocol test suite's reference
 * server (socketio/socket.io-protocol, Readme "Test suite"), played against
 * sio-gateway through its HTTP API only: Server-Sent Events on the in topic
 * (GET /api/subscribe?topic=sio.in), POST /api/publish for emits (sio.out)
 * and acks (the event's ack.reply_to). No dependencies beyond node:http.
 *
 *   node backend.js http://127.0.0.1:PORT [--ready-file FILE]
 *
 * The reference server:
 *   io.on("connection", (socket) => {
 *     socket.emit("auth", socket.handshake.auth);
 *     socket.on("message", (...args) => socket.emit("message-back", ...args));
 *     socket.on("message-with-ack", (...args) => { const ack = args.pop(); ack(...args); });
 *   });
 *   io.of("/custom").on("connection", (socket) => socket.emit("auth", socket.handshake.auth));
 *
 * Environment: BACKEND_TRACE=1 (log every envelope and publish, timestamped), SIO_API_TOKEN (bearer token, when http_api.token is set),
 * SIO_TOPIC_IN / SIO_TOPIC_OUT (default sio.in / sio.out).
 *
 * Readiness: once the SSE subscription is live (a marker it published on the
 * in topic came back), it prints "backend: ready" and writes --ready-file.
 * It exits 0 on SIGTERM/SIGINT, 1 when the SSE stream ends or fails.
 */
const http = require('node:http');
const fs = require('node:fs');

const args = process.argv.slice(2);
const base = args.find((a) => /^https?:\/\//.test(a));
const rfIdx = args.indexOf('--ready-file');
const readyFile = rfIdx >= 0 ? args[rfIdx + 1] : null;
if (!base) {
  console.error('usage: node backend.js http://127.0.0.1:PORT [--ready-file FILE]');
  process.exit(2);
}
const TOKEN = process.env.SIO_API_TOKEN || '';
const TOPIC_IN = process.env.SIO_TOPIC_IN || 'sio.in';
const TOPIC_OUT = process.env.SIO_TOPIC_OUT || 'sio.out';
const u = new URL(base);
const auth = TOKEN ? { authorization: `Bearer ${TOKEN}` } : {};
const log = (...a) => console.error('backend:', ...a);
const TRACE = process.env.BACKEND_TRACE === '1';
const trace = (...a) => TRACE && console.error(new Date().toISOString(), 'backend:', ...a);

/* One POST per request on a fresh connection (agent: false, Connection: close). */
function publishOnce(topic, env) {
  const body = Buffer.from(JSON.stringify(env));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: `/api/publish?topic=${encodeURIComponent(topic)}`,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': body.length, ...auth },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode === 200) resolve(text);
          else reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/*
 * Publishes go out one after the other, in the order the envelopes arrived
 * (the memory bus applies publishes in call order), so "auth" precedes any
 * answer to a later event of the same socket. A failed publish is retried a
 * few times (503 = bus queue full, or a reset connection), then logged.
 */
let chain = Promise.resolve();
let failures = 0;
function publish(topic, env) {
  chain = chain.then(async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        const t0 = Date.now();
        await publishOnce(topic, env);
        trace(`published to ${topic} in ${Date.now() - t0} ms: ${JSON.stringify(env).slice(0, 120)}`);
        return;
      } catch (e) {
        if (attempt >= 3) {
          failures++;
          log(`publish to ${topic} failed: ${e.message}: ${JSON.stringify(env).slice(0, 200)}`);
          return;
        }
      }
    }
  });
  return chain;
}

function emitTo(nsp, sid, event, data) {
  return publish(TOPIC_OUT, { type: 'emit', nsp, rooms: [sid], event, data });
}

const nonce = `backend-ready-${process.pid}-${Date.now()}`;
let ready = false;

function onEnvelope(env) {
  if (!env || typeof env !== 'object') return;
  trace(`received ${JSON.stringify(env).slice(0, 160)}`);
  if (env.type === 'backend-sync') {
    if (env.nonce === nonce && !ready) {
      ready = true;
      if (readyFile) fs.writeFileSync(readyFile, 'ready\n');
      console.log('backend: ready');
    }
    return;
  }
  if (env.type === 'connect' && (env.nsp === '/' || env.nsp === '/custom')) {
    // socket.emit("auth", socket.handshake.auth)
    const a = env.handshake && env.handshake.auth !== undefined ? env.handshake.auth : {};
    emitTo(env.nsp, env.sid, 'auth', [a]);
    return;
  }
  if (env.type !== 'event' || env.nsp !== '/') return;
  const data = Array.isArray(env.data) ? env.data : [];
  if (env.event === 'message') {
    // socket.emit("message-back", ...args)   (binary stays {"$binary": ...} both ways)
    emitTo('/', env.sid, 'message-back', data);
  } else if (env.event === 'message-with-ack' && env.ack && env.ack.id !== undefined) {
    // const ack = args.pop(); ack(...args)
    publish(env.ack.reply_to, { type: 'ack', id: env.ack.id, data });
  }
}

function subscribe() {
  const req = http.request(
    {
      host: u.hostname,
      port: u.port,
      path: `/api/subscribe?topic=${encodeURIComponent(TOPIC_IN)}`,
      method: 'GET',
      agent: false,
      headers: { accept: 'text/event-stream', ...auth },
    },
    (res) => {
      if (res.statusCode !== 200) {
        log(`subscribe ${TOPIC_IN}: HTTP ${res.statusCode}`);
        process.exit(1);
      }
      res.setEncoding('utf8');
      let buf = '';
      let dataLines = [];
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.search(/\r?\n/)) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(buf[i] === '\r' ? i + 2 : i + 1);
          if (line === '') {
            if (dataLines.length) {
              const raw = dataLines.join('\n');
              dataLines = [];
              let env;
              try {
                env = JSON.parse(raw);
              } catch {
                log(`not JSON on ${TOPIC_IN}: ${raw.slice(0, 200)}`);
                continue;
              }
              onEnvelope(env);
            }
          } else if (line.startsWith('data:')) {
            dataLines.push(line.slice(line[5] === ' ' ? 6 : 5));
          } // ":" comments and other fields are ignored
        }
      });
      const ended = () => {
        if (stopping) return;
        log(`SSE stream on ${TOPIC_IN} ended`);
        process.exit(1);
      };
      res.on('end', ended);
      res.on('close', ended);
      // The bus subscription is live once our own marker comes back on it.
      // Re-publish it until it does (the first may precede the subscription).
      const deadline = Date.now() + 10000;
      const probe = () => {
        if (ready) return;
        if (Date.now() > deadline) {
          log('the SSE subscription never delivered the readiness marker');
          process.exit(1);
        }
        publishOnce(TOPIC_IN, { type: 'backend-sync', nonce })
          .catch((e) => log(`readiness marker: ${e.message}`))
          .finally(() => setTimeout(probe, 200));
      };
      probe();
    },
  );
  req.on('error', (e) => {
    if (stopping) return;
    log(`subscribe ${TOPIC_IN}: ${e.message}`);
    process.exit(1);
  });
  req.end();
}

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    stopping = true;
    chain.finally(() => {
      if (failures) log(`${failures} publish(es) failed`);
      process.exit(0);
    });
  });
}

subscribe();
