'use strict';
/*
 * NNG for the integration tests: a backend process on real nng sockets
 * (tests/helpers/nng_peer, built next to the gateway binary in <build>/tests/),
 * ipc:// addresses in a temp dir, and the gateway's adapter config. Every process
 * started here is stopped by its stop() (or kill()), and killed at exit if a test
 * forgot.
 *
 *   const NG = require('./helpers/nng');
 *   if (!NG.available()) ...skip...
 *   const dir = NG.tempDir();
 *   const gw = await h.startGateway({ adapter: NG.adapter({ publish_listen: [NG.url(dir, 'pub')], ... }) });
 *   const be = await NG.Peer.start({ subDial: [NG.url(dir, 'pub')], pubDial: [...], subscribe: ['sio.in '] });
 *   await be.waitPipes({ pub: 1, sub: 1 });
 *   be.publish('sio.out', { type: 'emit', ... });
 *   const m = await be.next((m) => m.topic === 'sio.in' && m.json.type === 'event');
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { spawn, execFile } = require('node:child_process');

const G = require('./gateway');
const N = require('./net');

const live = new Set();
const dirs = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of dirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* gone */
    }
  }
});

function binaries() {
  const b = path.resolve(path.dirname(G.gatewayBinary()), '..');
  return {
    peer: path.join(b, 'tests', 'nng_peer'),
    plugin: path.join(b, 'plugins', 'nng', 'nng.so'),
    forwarder: path.join(b, 'plugins', 'nng', 'siogw-nng-forwarder'),
  };
}

/* True when the build has the NNG plugin and the nng_peer helper. */
function available() {
  return Object.values(binaries()).every((p) => fs.existsSync(p));
}

/* A fresh temp dir for ipc sockets, removed at exit. */
function tempDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-nng-'));
  dirs.add(d);
  return d;
}

function url(dir, name) {
  return `ipc://${path.join(dir, name)}`;
}

/*
 * startGateway() options for a gateway on nng: LeakSanitizer (sanitizer builds) skips
 * what libnng 1.5.2 itself loses when sockets close with messages in flight
 * (plugins/nng/lsan.supp); the gateway's own memory stays checked.
 */
function gatewayOpts() {
  return { env: { LSAN_OPTIONS: `suppressions=${path.join(G.REPO_ROOT, 'plugins', 'nng', 'lsan.supp')}` } };
}

/* adapter: config for the nng plugin; unset socket lists are empty (no default tcp ports). */
function adapter(options = {}) {
  return {
    plugin: 'nng',
    options: {
      publish_listen: [],
      publish_dial: [],
      receive_listen: [],
      receive_dial: [],
      reconnect_min: '20ms',
      reconnect_max: '200ms',
      ...options,
    },
  };
}

/* "topic payload" → {topic, payload, json} (json: parsed payload or null). */
function parseFrame(buf) {
  const s = buf.toString('utf8');
  const sp = s.indexOf(' ');
  const topic = sp < 0 ? s : s.slice(0, sp);
  const payload = sp < 0 ? '' : s.slice(sp + 1);
  let json = null;
  try {
    json = JSON.parse(payload);
  } catch {
    /* raw */
  }
  return { topic, payload, json, raw: s };
}

/* A backend on nng: one PUB, one SUB socket (tests/helpers/nng_peer). */
class Peer {
  static async start({ pubListen = [], pubDial = [], subListen = [], subDial = [], subscribe = [], reconnectMs = 20 } = {}) {
    const { peer } = binaries();
    const args = ['--reconnect-ms', String(reconnectMs)];
    for (const u of pubListen) args.push('--pub-listen', u);
    for (const u of pubDial) args.push('--pub-dial', u);
    for (const u of subListen) args.push('--sub-listen', u);
    for (const u of subDial) args.push('--sub-dial', u);
    for (const s of subscribe) args.push('--subscribe', s);
    const proc = spawn(peer, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const p = new Peer(proc);
    await p.waitLine((l) => l === 'ready', 5000, 'nng_peer ready');
    return p;
  }

  constructor(proc) {
    this.proc = proc;
    this.pipes = { pub: 0, sub: 0 };
    this.messages = [];
    this.listeners = []; /* onMessage */
    this.lines = [];
    this.stderr = '';
    this.waiters = new Set();
    this.exit = null;
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(proc);
        this._check();
        resolve(this.exit);
      }),
    );
    live.add(proc);
    proc.stdin.on('error', () => {
      /* the peer is gone; its exit says why */
    });
    proc.stderr.on('data', (c) => {
      if (this.stderr.length < 1 << 20) this.stderr += c;
    });
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line.startsWith('msg ')) {
        const m = { ...parseFrame(Buffer.from(line.slice(4), 'base64')), consumed: false };
        this.messages.push(m);
        for (const fn of this.listeners) fn(m);
      } else {
        const m = /^pipes pub=(-?\d+) sub=(-?\d+)$/.exec(line);
        if (m) this.pipes = { pub: Number(m[1]), sub: Number(m[2]) };
        this.lines.push(line);
      }
      this._check();
    });
  }

  _check() {
    for (const w of [...this.waiters]) w();
  }

  _wait(cond, timeout, what) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        let v;
        try {
          v = cond();
        } catch (e) {
          v = undefined;
          this.waiters.delete(check);
          clearTimeout(timer);
          reject(e);
          return;
        }
        if (v) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(v);
        } else if (this.exit) {
          this.waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`${what}: nng_peer exited (${JSON.stringify(this.exit)}) ${this.stderr}`));
        }
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what}: not within ${timeout} ms (pipes ${JSON.stringify(this.pipes)}; last lines ${JSON.stringify(this.lines.slice(-5))})`));
      }, timeout);
      this.waiters.add(check);
      check();
    });
  }

  waitLine(pred, timeout = N.DEFAULT_TIMEOUT_MS, what = 'line') {
    return this._wait(() => this.lines.find(pred), timeout, what);
  }

  /* Call fn with every message received from now on. */
  onMessage(fn) {
    this.listeners.push(fn);
  }

  /* Wait until the PUB / SUB sockets have (at least) these many connected peers. */
  waitPipes({ pub = 0, sub = 0 }, timeout = N.DEFAULT_TIMEOUT_MS) {
    return this._wait(() => this.pipes.pub >= pub && this.pipes.sub >= sub, timeout, `pipes pub>=${pub} sub>=${sub}`);
  }

  /* The next unconsumed received frame matching pred (marked consumed). */
  next(pred = () => true, timeout = N.DEFAULT_TIMEOUT_MS, what = 'nng message') {
    return this._wait(
      () => {
        const m = this.messages.find((x) => !x.consumed && pred(x));
        if (m) m.consumed = true;
        return m;
      },
      timeout,
      what,
    );
  }

  /* All received frames matching pred so far. */
  received(pred = () => true) {
    return this.messages.filter(pred);
  }

  /* Publish "topic payload": payload is JSON-encoded unless it is a string. One line. */
  publish(topic, payload) {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    if (body.includes('\n')) throw new Error('nng_peer frames are one line');
    this.proc.stdin.write(`pub ${topic} ${body}\n`);
  }

  /* Publish the same frame `count` times at `rate` per second (0: as fast as possible). */
  async flood(count, rate, topic, payload, timeout = 60000) {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const before = this.lines.length;
    this.proc.stdin.write(`flood ${count} ${rate} ${topic} ${body}\n`);
    const line = await this._wait(
      () => this.lines.slice(before).find((l) => l.startsWith('flooded ') || l.startsWith('error flood')),
      timeout,
      'flood',
    );
    const [, n, ms] = line.split(' ');
    return { count: Number(n), ms: Number(ms) };
  }

  kill(signal = 'SIGKILL') {
    if (!this.exit) this.proc.kill(signal);
    return this.exited;
  }

  async stop() {
    if (this.exit) return this.exit;
    this.proc.stdin.end('quit\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/* siogw-nng-forwarder: publishers dial `inUrl`, subscribers dial `outUrl`. */
class Forwarder {
  static async start(inUrl, outUrl) {
    const proc = spawn(binaries().forwarder, ['--in', inUrl, '--out', outUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const f = new Forwarder(proc);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`forwarder not ready: ${f.stderr}`)), 5000);
      readline.createInterface({ input: proc.stdout }).on('line', (l) => {
        if (l === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`forwarder exited ${code}: ${f.stderr}`));
      });
    });
    return f;
  }

  constructor(proc) {
    this.proc = proc;
    this.stderr = '';
    proc.stderr.on('data', (c) => {
      this.stderr += c;
    });
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.exited.then(() => live.delete(proc));
  }

  stop() {
    this.proc.kill('SIGTERM');
    return this.exited;
  }
}

/* Run nngcat (nng-utils) to completion; null when it is not installed. */
function nngcat(args, timeout = 5000) {
  return new Promise((resolve) => {
    execFile('nngcat', args, { timeout }, (err, stdout, stderr) => {
      if (err && err.code === 'ENOENT') resolve(null);
      else resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

module.exports = { available, binaries, tempDir, url, adapter, gatewayOpts, parseFrame, Peer, Forwarder, nngcat };
