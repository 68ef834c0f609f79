'use strict';
/*
 * Low-level network helpers for the integration tests: plain HTTP requests, a
 * polling helper for raw Engine.IO, a raw websocket wrapper, an SSE reader and
 * publish() for the HTTP API, and waitFor().
 *
 * Every HTTP request here goes through node:http with `agent: false` (one TCP
 * connection per request, "Connection: close"): raw Engine.IO tests need
 * exact control over concurrent requests (a held long-poll, a duplicate GET),
 * and a pooled keep-alive connection that the server closes between two
 * requests would make tests flaky. Every wait has a deadline.
 */
const http = require('node:http');
const https = require('node:https');
/* http or https by the URL (tests' TLS certificates are self-signed) */
const requester = (u) => (u.protocol === 'https:' ? (o, cb) => https.request({ rejectUnauthorized: false, ...o }, cb) : http.request);
const { WebSocket } = require('ws');

const DEFAULT_TIMEOUT_MS = 5000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/*
 * Poll `cond` (sync or async) every `interval` ms until it returns a truthy
 * value, which is returned. Throws after `ms` with `message` and the last
 * error cond threw, if any.
 */
async function waitFor(cond, ms = DEFAULT_TIMEOUT_MS, { interval = 20, message = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let lastErr = null;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
      lastErr = null;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const why = lastErr ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`waitFor: ${message} not met within ${ms} ms${why}`);
    }
    await sleep(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
}

/* Reject with a clear message when `promise` does not settle within ms. */
function withTimeout(promise, ms, what) {
  let timer;
  const to = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, to]).finally(() => clearTimeout(timer));
}

/*
 * One HTTP request. Resolves {status, headers, body (Buffer), text, json()} for
 * any status; rejects on connection errors and after `timeout` ms.
 */
function httpRequest(url, { method = 'GET', headers = {}, body, timeout = DEFAULT_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    let payload = null;
    if (body !== undefined && body !== null) {
      payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    }
    const hdrs = { connection: 'close', ...headers };
    if (payload) hdrs['content-length'] = String(payload.length);
    const req = requester(u)(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path: u.pathname + u.search, method, headers: hdrs, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: buf,
            text,
            json() {
              try {
                return JSON.parse(text);
              } catch (e) {
                throw new Error(`${method} ${u.pathname}${u.search}: body is not JSON (status ${res.statusCode}): ${JSON.stringify(text.slice(0, 200))}`);
              }
            },
          });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`HTTP ${method} ${u.pathname}${u.search} timed out after ${timeout} ms`));
    }, timeout);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/* ---------------------------------------------------------------- raw Engine.IO polling */

const SEP = '\x1e';

/*
 * A raw Engine.IO v4 long-polling session: handshake() then get()/post().
 * get() resolves {status, text, packets, json()}; packets is the payload split
 * on the record separator (only for 200 answers).
 */
class EioPolling {
  constructor(baseUrl, { path = '/socket.io/', headers = {} } = {}) {
    this.baseUrl = baseUrl;
    this.path = path;
    this.headers = headers;
    this.sid = null;
    this.open = null;
  }

  url(extra = '') {
    const sid = this.sid ? `&sid=${encodeURIComponent(this.sid)}` : '';
    return `${this.baseUrl}${this.path}?EIO=4&transport=polling${sid}${extra}`;
  }

  /* GET without sid; parses and keeps the open packet. */
  async handshake({ headers = {}, timeout } = {}) {
    const res = await httpRequest(`${this.baseUrl}${this.path}?EIO=4&transport=polling`, {
      headers: { ...this.headers, ...headers },
      timeout,
    });
    if (res.status !== 200) {
      throw new Error(`polling handshake: status ${res.status}: ${res.text.slice(0, 200)}`);
    }
    if (res.text[0] !== '0') throw new Error(`polling handshake: not an open packet: ${JSON.stringify(res.text.slice(0, 200))}`);
    this.open = JSON.parse(res.text.slice(1));
    this.sid = this.open.sid;
    this.handshakeResponse = res;
    return this.open;
  }

  static decodePayload(text) {
    return text.length ? text.split(SEP) : [];
  }

  static encodePayload(packets) {
    return Array.isArray(packets) ? packets.join(SEP) : packets;
  }

  async get({ timeout = DEFAULT_TIMEOUT_MS, headers = {}, extra = '' } = {}) {
    const res = await httpRequest(this.url(extra), { headers: { ...this.headers, ...headers }, timeout });
    res.packets = res.status === 200 ? EioPolling.decodePayload(res.text) : [];
    return res;
  }

  /* packets: a string (sent as is) or an array joined with 0x1e. */
  async post(packets, { timeout = DEFAULT_TIMEOUT_MS, headers = {}, extra = '' } = {}) {
    return httpRequest(this.url(extra), {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8', ...this.headers, ...headers },
      body: EioPolling.encodePayload(packets),
      timeout,
    });
  }

  /*
   * GET until a packet satisfying pred shows up (pings are answered with a
   * pong when answerPings is set). Returns {packet, packets} with everything
   * seen so far.
   */
  async pollUntil(pred, { timeout = DEFAULT_TIMEOUT_MS, answerPings = true } = {}) {
    const deadline = Date.now() + timeout;
    const seen = [];
    while (Date.now() < deadline) {
      const res = await this.get({ timeout: Math.max(50, deadline - Date.now()) });
      if (res.status !== 200) throw new Error(`poll: status ${res.status}: ${res.text.slice(0, 200)}`);
      for (const p of res.packets) {
        if (p === '2' && answerPings) {
          await this.post('3');
          continue;
        }
        seen.push(p);
        if (pred(p)) return { packet: p, packets: seen };
      }
    }
    throw new Error(`pollUntil: no matching packet within ${timeout} ms; saw ${JSON.stringify(seen)}`);
  }
}

/* ---------------------------------------------------------------- raw websocket */

/*
 * A raw websocket with a message queue. Text frames arrive as strings, binary
 * frames as Buffers. `RawWs.connect()` resolves once open; `RawWs.attempt()`
 * resolves how a connection attempt ended ({opened} or {status, body} or
 * {error}) for handshake-refusal tests.
 */
class RawWs {
  constructor(url, { headers = {}, maxPayload } = {}) {
    this.url = url;
    this.messages = [];
    this.waiters = [];
    this.closeInfo = null;
    this.openedAt = null;
    this.ws = new WebSocket(url, { headers, perMessageDeflate: false, ...(maxPayload ? { maxPayload } : {}) });
    this.ws.on('error', (e) => {
      this.error = e;
    });
    this.ws.on('message', (data, isBinary) => {
      const m = isBinary ? Buffer.from(data) : data.toString('utf8');
      this.messages.push(m);
      this._wake();
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
        this._wake();
        resolve(this.closeInfo);
      });
    });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(url, opts = {}) {
    const r = new RawWs(url, opts);
    await withTimeout(
      new Promise((resolve, reject) => {
        r.ws.once('open', () => {
          r.openedAt = Date.now();
          resolve();
        });
        r.ws.once('unexpected-response', (req, res) => {
          reject(new Error(`websocket ${url}: refused with HTTP ${res.statusCode}`));
          req.destroy();
        });
        r.ws.once('error', reject);
      }),
      DEFAULT_TIMEOUT_MS,
      `websocket open ${url}`,
    );
    return r;
  }

  /* How a websocket handshake attempt ends: {opened:true} | {status, body} | {error}. */
  static attempt(url, { timeout = DEFAULT_TIMEOUT_MS, headers = {} } = {}) {
    return withTimeout(
      new Promise((resolve) => {
        const ws = new WebSocket(url, { headers, perMessageDeflate: false });
        ws.on('error', (e) => resolve({ error: e.message }));
        ws.once('open', () => {
          resolve({ opened: true, ws });
        });
        ws.once('unexpected-response', (req, res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          const done = () => {
            req.destroy();
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
          };
          res.on('end', done);
          res.on('error', done);
          res.on('aborted', done);
        });
      }),
      timeout,
      `websocket attempt ${url}`,
    );
  }

  send(data) {
    this.ws.send(data);
  }

  /* Answer every Engine.IO ping ("2") with a pong ("3") from now on; counts them in .pings. */
  autoPong() {
    this.pings = 0;
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === '2') {
        this.pings++;
        try {
          this.ws.send('3');
        } catch {
          /* closing */
        }
      }
    });
    return this;
  }

  /*
   * The next message not matching `skip` (default: skip nothing). Messages are
   * consumed in order. Rejects on timeout or when the socket closes first.
   */
  async next({ timeout = DEFAULT_TIMEOUT_MS, skip = null } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      while (this.messages.length) {
        const m = this.messages.shift();
        if (skip && skip(m)) continue;
        return m;
      }
      if (this.closeInfo) throw new Error(`websocket closed (code ${this.closeInfo.code}) while waiting for a message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`websocket: no message within ${timeout} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /* Consume messages until one satisfies pred; returns it. */
  async nextMatching(pred, { timeout = DEFAULT_TIMEOUT_MS } = {}) {
    return this.next({ timeout, skip: (m) => !pred(m) });
  }

  waitClose(timeout = DEFAULT_TIMEOUT_MS) {
    return withTimeout(this.closed, timeout, `websocket ${this.url} to be closed`);
  }

  isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close() {
    try {
      if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
      else this.ws.close();
    } catch {
      /* already gone */
    }
  }

  terminate() {
    try {
      this.ws.terminate();
    } catch {
      /* already gone */
    }
  }
}

/* ---------------------------------------------------------------- HTTP API */

function authHeaders(token) {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/* POST /api/publish?topic=T without checking the answer. obj: object (JSON), string or Buffer. */
function publishRaw(baseUrl, topic, obj, { token, headers = {} } = {}) {
  const body = Buffer.isBuffer(obj) || typeof obj === 'string' ? obj : JSON.stringify(obj);
  const q = topic === undefined ? '' : `?topic=${encodeURIComponent(topic)}`;
  return httpRequest(`${baseUrl}/api/publish${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(token), ...headers },
    body,
  });
}

/* Publish and require a 2xx answer. */
async function publish(baseUrl, topic, obj, opts = {}) {
  const res = await publishRaw(baseUrl, topic, obj, opts);
  if (res.status < 200 || res.status > 299) {
    throw new Error(`publish to ${topic}: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
  }
  return res;
}

let syncCounter = 0;

/*
 * GET /api/subscribe?topic=T as Server-Sent Events. Every `data:` event is
 * kept in `messages` (JSON-parsed when possible, else the string) in arrival
 * order; next(pred, timeout) returns the first matching message that no
 * earlier next() returned, waiting for it if needed.
 */
class SseStream {
  constructor(baseUrl, topic, { token } = {}) {
    this.baseUrl = baseUrl;
    this.topic = topic;
    this.token = token;
    this.messages = []; // {data, raw, consumed}
    this.waiters = [];
    this.ended = false;
    this.buf = '';
    this.dataLines = [];
    this.listeners = [];
  }

  /* Call fn(data) for every message from now on (sync markers excluded). */
  onMessage(fn) {
    this.listeners.push(fn);
  }

  static open(baseUrl, topic, { token, timeout = DEFAULT_TIMEOUT_MS } = {}) {
    const s = new SseStream(baseUrl, topic, { token });
    return withTimeout(s._start(), timeout, `SSE subscribe to ${topic}`);
  }

  _start() {
    return new Promise((resolve, reject) => {
      const u = new URL(`${this.baseUrl}/api/subscribe?topic=${encodeURIComponent(this.topic)}`);
      const req = requester(u)(
        {
          host: u.hostname.replace(/^\[|\]$/g, ''),
          port: u.port,
          path: u.pathname + u.search,
          method: 'GET',
          headers: { accept: 'text/event-stream', ...authHeaders(this.token) },
          agent: false,
        },
        (res) => {
          this.res = res;
          this.status = res.statusCode;
          this.headers = res.headers;
          if (res.statusCode !== 200) {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
              const err = new Error(`SSE subscribe ${this.topic}: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`);
              err.status = res.statusCode;
              reject(err);
            });
            return;
          }
          res.setEncoding('utf8');
          res.on('data', (chunk) => this._feed(chunk));
          res.on('end', () => this._end());
          res.on('error', () => this._end());
          res.on('close', () => this._end());
          resolve(this);
        },
      );
      req.on('error', (e) => {
        this._end();
        reject(e);
      });
      req.end();
      this.req = req;
    });
  }

  _feed(chunk) {
    this.buf += chunk;
    let i;
    while ((i = this.buf.search(/\r?\n/)) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(this.buf[i] === '\r' ? i + 2 : i + 1);
      if (line === '') {
        if (this.dataLines.length) {
          const raw = this.dataLines.join('\n');
          this.dataLines = [];
          this._dispatch(raw);
        }
      } else if (line.startsWith('data:')) {
        this.dataLines.push(line.slice(line[5] === ' ' ? 6 : 5));
      }
      /* comments (":...") and other fields (event:, id:, retry:) are ignored */
    }
  }

  _dispatch(raw) {
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      /* keep the string */
    }
    const m = { data, raw, consumed: false };
    if (data && typeof data === 'object' && data.type === '_harness_sync') m.sync = true;
    this.messages.push(m);
    if (!m.sync) {
      for (const fn of this.listeners) {
        try {
          fn(data);
        } catch (e) {
          process.emitWarning(`SSE listener threw: ${e.message}`);
        }
      }
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  _end() {
    if (this.ended) return;
    this.ended = true;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /* All data values received so far (optionally filtered), sync markers excluded. */
  all(pred = () => true) {
    return this.messages.filter((m) => !m.sync && pred(m.data)).map((m) => m.data);
  }

  async next(pred = () => true, timeout = DEFAULT_TIMEOUT_MS) {
    const deadline = Date.now() + timeout;
    for (;;) {
      for (const m of this.messages) {
        if (!m.consumed && !m.sync && pred(m.data)) {
          m.consumed = true;
          return m.data;
        }
      }
      if (this.ended) throw new Error(`SSE stream for ${this.topic} ended while waiting for a message`);
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.messages.filter((m) => !m.sync).map((m) => m.raw);
        throw new Error(`SSE ${this.topic}: no matching message within ${timeout} ms; received ${seen.length}: ${JSON.stringify(seen.slice(-10))}`);
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /*
   * Make sure the gateway's bus subscription for this stream is live: publish a
   * marker to the same topic and wait until it comes back on the stream. Call
   * it once after open() before relying on the stream to see everything.
   */
  async sync(timeout = DEFAULT_TIMEOUT_MS) {
    const nonce = `${process.pid}-${++syncCounter}-${Date.now()}`;
    const deadline = Date.now() + timeout;
    for (;;) {
      await publish(this.baseUrl, this.topic, { type: '_harness_sync', nonce }, { token: this.token });
      const found = await waitFor(
        () => this.messages.some((m) => m.sync && m.data.nonce === nonce),
        Math.min(500, Math.max(1, deadline - Date.now())),
        { message: 'sync marker' },
      ).catch(() => false);
      if (found) return;
      if (Date.now() >= deadline) throw new Error(`SSE ${this.topic}: sync marker never arrived within ${timeout} ms`);
    }
  }

  close() {
    this._end();
    try {
      if (this.req) this.req.destroy();
    } catch {
      /* gone */
    }
  }
}

module.exports = {
  DEFAULT_TIMEOUT_MS,
  sleep,
  waitFor,
  withTimeout,
  httpRequest,
  EioPolling,
  RawWs,
  SseStream,
  publish,
  publishRaw,
  authHeaders,
  SEP,
};
