'use strict';
/*
 * The integration-test harness: runs the real sio-gateway binary with a
 * generated config on a free port, waits until it is healthy, captures its
 * stderr, and stops it. Also re-exports the network and client helpers so a
 * test file needs one require:
 *
 *   const h = require('./helpers/gateway');
 *   describe('x', () => {
 *     let gw;
 *     before(async () => { gw = await h.startGateway({ engine: { ping_interval_ms: 300 } }); });
 *     after(() => gw.stopChecked());           // fails when the gateway did not exit 0
 *     const it = h.gatewayIt(() => gw);        // node:test `it` that dumps stderr on failure
 *     it('...', async () => { const s = await gw.connect('/chat'); ... });
 *   });
 *
 * Environment:
 *   SIOGW_BIN               gateway binary (default <repo>/build/gateway/sio-gateway;
 *                           relative: from the current directory, which run.sh resolves)
 *   SIOGW_PLUGIN_DIR        if set, written as adapter.plugin_dir
 *   SIOGW_LOG_LEVEL         overrides log.level (e.g. debug)
 *   SIOGW_START_TIMEOUT_MS  how long to wait for /healthz (default 5000)
 *   SIOGW_KEEP_LOGS=1       keep every temp dir (config + gateway.log)
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn } = require('node:child_process');
const { it: nodeIt } = require('node:test');

const N = require('./net');
const C = require('./client');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_BIN = path.join(REPO_ROOT, 'build', 'gateway', 'sio-gateway');
const STDERR_CAP = 4 * 1024 * 1024;

function gatewayBinary() {
  return process.env.SIOGW_BIN ? path.resolve(process.env.SIOGW_BIN) : DEFAULT_BIN;
}

/* Throws one clear error when the binary is missing (no waiting, no timeouts). */
function checkBinary(bin = gatewayBinary()) {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    const err = new Error(
      `sio-gateway binary not found or not executable: ${bin}\n` +
        '  build it first (meson setup build && meson compile -C build), or point SIOGW_BIN at it',
    );
    err.code = 'SIOGW_NO_BINARY';
    throw err;
  }
  return bin;
}

/* ---------------------------------------------------------------- config */

/* The base config (DESIGN §1.3); tests merge their overrides into it. */
function baseConfig(port) {
  return {
    node_id: 'gw-test',
    listen: { host: '127.0.0.1', port },
    engine: {
      path: '/socket.io/',
      transports: ['polling', 'websocket'],
      ping_interval_ms: 25000,
      ping_timeout_ms: 20000,
      max_payload: 1000000,
      connect_timeout_ms: 45000,
      cors: { origins: ['*'], credentials: false },
      cookie: false,
      echo_path: '',
    },
    adapter: { plugin: 'memory', options: {} },
    topics: { prefix: 'sio' },
    namespaces: [{ name: '/' }, { name: '/chat' }],
    http_api: { enabled: true, token: '' },
    metrics: { enabled: true },
    shutdown: { drain_ms: 0 }, // tests stop at once; drain.test.js sets its own
    log: { level: 'info' },
  };
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/* Deep merge: objects merge key by key, arrays and scalars replace, null deletes. */
function mergeConfig(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over || {})) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = mergeConfig(out[k], v);
    else out[k] = v;
  }
  return out;
}

function yamlKey(k) {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? k : JSON.stringify(k);
}

function yamlScalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  const s = String(v);
  // only "${" is substituted (docs/configuration.md): a regex's "$" stays as it is
  if (s.includes('${')) throw new Error(`config value ${JSON.stringify(s)}: "\${" would be substituted by the gateway`);
  return JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
}

function isScalar(v) {
  return v === null || typeof v !== 'object';
}

/* Block-style YAML for plain objects/arrays/scalars (enough for the gateway config). */
function toYaml(v, indent = 0) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return `${pad}[]\n`;
    return v
      .map((item) => {
        if (isScalar(item)) return `${pad}- ${yamlScalar(item)}\n`;
        if (isPlainObject(item) && Object.keys(item).length) {
          const sub = toYaml(item, indent + 2);
          return `${pad}- ${sub.slice(indent + 2)}`;
        }
        return `${pad}- ${isPlainObject(item) ? '{}' : '[]'}\n`;
      })
      .join('');
  }
  let out = '';
  for (const [k, val] of Object.entries(v)) {
    if (val === undefined) continue;
    if (isScalar(val)) out += `${pad}${yamlKey(k)}: ${yamlScalar(val)}\n`;
    else if (Array.isArray(val) && val.every(isScalar)) out += `${pad}${yamlKey(k)}: [${val.map(yamlScalar).join(', ')}]\n`;
    else if (isPlainObject(val) && Object.keys(val).length === 0) out += `${pad}${yamlKey(k)}: {}\n`;
    else out += `${pad}${yamlKey(k)}:\n${toYaml(val, indent + 2)}`;
  }
  return out;
}

/* ---------------------------------------------------------------- ports */

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/* ---------------------------------------------------------------- metrics */

/* Parse Prometheus text into [{name, labels, value}]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2]))) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1], labels, value: Number(m[3]), line });
  }
  return out;
}

/* Sum of the samples named `name` whose labels include `labels`; null if none. */
function metricValue(text, name, labels = {}) {
  let found = false;
  let sum = 0;
  for (const s of parseMetrics(text)) {
    if (s.name !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    found = true;
    sum += s.value;
  }
  return found ? sum : null;
}

/* ---------------------------------------------------------------- the gateway process */

const live = new Set();
const tempDirs = new Set(); // from writeConfig(), removed at exit
process.on('exit', () => {
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* gone */
    }
  }
  for (const gw of live) {
    try {
      gw.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

class Gateway {
  constructor({ proc, port, config, dir, configPath, bin }) {
    this.proc = proc;
    this.port = port;
    this.config = config;
    this.dir = dir;
    this.configPath = configPath;
    this.bin = bin;
    this.host = config.listen.host;
    const h = this.host.includes(':') ? `[${this.host}]` : this.host; // an IPv6 literal
    const tls = !!(config.listen.tls && config.listen.tls.cert); // https/wss (self-signed in tests)
    this.url = `${tls ? 'https' : 'http'}://${h}:${port}`;
    this.wsUrl = `${tls ? 'wss' : 'ws'}://${h}:${port}`;
    this.enginePath = config.engine.path;
    this.token = (config.http_api && config.http_api.token) || '';
    const prefix = (config.topics && config.topics.prefix) || 'sio';
    this.topics = {
      in: `${prefix}.in`,
      out: `${prefix}.out`,
      reply: `${prefix}.reply.${config.node_id}`,
    };
    this.logPath = path.join(dir, 'gateway.log');
    this.log = fs.openSync(this.logPath, 'a');
    this._stderr = [];
    this._stderrLen = 0;
    this.exit = null; // {code, signal}
    this.resources = new Set();
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
    });
    const capture = (chunk) => {
      try {
        fs.writeSync(this.log, chunk);
      } catch {
        /* log closed */
      }
      if (this._stderrLen < STDERR_CAP) {
        this._stderr.push(chunk);
        this._stderrLen += chunk.length;
      }
    };
    proc.stderr.on('data', capture);
    proc.stdout.on('data', capture);
    live.add(this);
  }

  /* Everything the gateway wrote to stderr (and stdout) so far. */
  get stderr() {
    return Buffer.concat(this._stderr).toString('utf8');
  }

  tail(lines = 60) {
    const all = this.stderr.split('\n');
    return all.slice(-lines).join('\n');
  }

  get running() {
    return this.exit === null;
  }

  exitCode() {
    if (!this.exit) return null;
    if (this.exit.code !== null) return this.exit.code;
    return 128 + (os.constants.signals[this.exit.signal] || 0);
  }

  describeExit() {
    if (!this.exit) return 'running';
    return this.exit.code !== null ? `exited with code ${this.exit.code}` : `killed by ${this.exit.signal}`;
  }

  /* A text block for failure messages: state, config and log locations, stderr tail. */
  report(lines = 60) {
    return (
      `--- sio-gateway on ${this.url} (${this.describeExit()}); config ${this.configPath}; log ${this.logPath}\n` +
      `--- last ${lines} lines of stderr:\n${this.tail(lines)}\n--- end of stderr`
    );
  }

  track(resource) {
    this.resources.add(resource);
    return resource;
  }

  /* ---- HTTP */

  http(p, opts) {
    return N.httpRequest(this.url + p, opts);
  }

  async metricsText() {
    const res = await this.http('/metrics');
    if (res.status !== 200) throw new Error(`/metrics: HTTP ${res.status}`);
    return res.text;
  }

  async metric(name, labels = {}) {
    return metricValue(await this.metricsText(), name, labels);
  }

  publish(topic, obj, opts = {}) {
    return N.publish(this.url, topic, obj, { token: this.token, ...opts });
  }

  publishRaw(topic, obj, opts = {}) {
    return N.publishRaw(this.url, topic, obj, { token: this.token, ...opts });
  }

  /* Publish an envelope to the out topic (sio.out): what a backend does. */
  emitEnvelope(env) {
    return this.publish(this.topics.out, env);
  }

  /* Publish to this node's reply topic (sio.reply.gw-test). */
  reply(env) {
    return this.publish(this.topics.reply, env);
  }

  /* SSE subscription, synced (the bus subscription is live when this resolves). */
  async subscribe(topic, { sync = true, token = this.token } = {}) {
    const s = this.track(await N.SseStream.open(this.url, topic, { token }));
    if (sync) await s.sync();
    return s;
  }

  /*
   * A tiny backend on the bus: subscribes to the in topic and answers every
   * client event that asks for an ack and whose name is in `echo` (default:
   * "echo") with an ack carrying the same data. `in` is the SSE stream, for
   * tests that also inspect envelopes.
   */
  async backend({ echo = ['echo'] } = {}) {
    const sse = await this.subscribe(this.topics.in);
    const acked = [];
    sse.onMessage((env) => {
      if (!env || env.type !== 'event' || !env.ack || !echo.includes(env.event)) return;
      const replyTo = env.ack.reply_to || this.topics.reply;
      acked.push(env);
      N.publish(this.url, replyTo, { type: 'ack', id: env.ack.id, data: env.data }, { token: this.token }).catch((e) =>
        process.emitWarning(`backend ack publish failed: ${e.message}`),
      );
    });
    return { in: sse, acked };
  }

  /*
   * A `fetch` envelope on the out topic, answered on a private reply topic;
   * resolves the `sockets` reply. Also a barrier: the out topic is applied in
   * order, so every envelope published before it has been applied when it resolves.
   */
  async fetchSockets({ nsp = '/', rooms, except } = {}, timeout = N.DEFAULT_TIMEOUT_MS) {
    if (!this._fetchReplies) this._fetchReplies = this.subscribe(`harness.fetch.${process.pid}`);
    const replies = await this._fetchReplies;
    const id = `hf${(this._fetchSeq = (this._fetchSeq || 0) + 1)}`;
    const env = { type: 'fetch', nsp, reply_to: replies.topic, id };
    if (rooms) env.rooms = rooms;
    if (except) env.except = except;
    await this.emitEnvelope(env);
    return replies.next((m) => m && m.type === 'sockets' && m.id === id, timeout);
  }

  /* ---- clients */

  connect(nsp = '/', opts = {}) {
    return C.connectClient(this.url + (nsp === '/' ? '' : nsp), opts);
  }

  /* A socket.io client socket to nsp, tracked but not awaited (see client.openClient). */
  socket(nsp = '/', opts = {}) {
    return C.openClient(this.url + (nsp === '/' ? '' : nsp), opts);
  }

  manager(opts = {}) {
    return C.newManager(this.url, opts);
  }

  polling(opts = {}) {
    return new N.EioPolling(this.url, { path: this.enginePath, ...opts });
  }

  engineUrl(query = 'EIO=4&transport=websocket', p = this.enginePath) {
    return `${this.wsUrl}${p}?${query}`;
  }

  /* A raw websocket to the engine path (tracked, closed on stop). */
  async ws(query = 'EIO=4&transport=websocket', { path: p = this.enginePath, headers } = {}) {
    return this.track(await N.RawWs.connect(this.engineUrl(query, p), { headers }));
  }

  /* A raw websocket that has completed the Engine.IO handshake; `open` is the parsed open packet. */
  async wsOpen(query = 'EIO=4&transport=websocket', opts = {}) {
    const w = await this.ws(query, opts);
    const first = await w.next();
    if (typeof first !== 'string' || first[0] !== '0') throw new Error(`expected an open packet, got ${JSON.stringify(first)}`);
    w.open = JSON.parse(first.slice(1));
    return w;
  }

  /* A raw websocket connected to namespace nsp at the Socket.IO level; `sioSid` is the socket id. */
  async wsSocketIO(nsp = '/', auth) {
    const w = await this.wsOpen();
    const prefix = nsp === '/' ? '' : `${nsp},`;
    w.send(`40${prefix}${auth ? JSON.stringify(auth) : ''}`);
    const reply = await w.nextMatching((m) => typeof m === 'string' && m !== '2');
    if (!reply.startsWith(`40${prefix}`)) throw new Error(`namespace ${nsp}: expected CONNECT, got ${JSON.stringify(reply)}`);
    w.sioSid = JSON.parse(reply.slice(2 + prefix.length)).sid;
    return w;
  }

  /* ---- lifecycle */

  _closeResources() {
    C.closeAllClients(this.url);
    for (const r of this.resources) {
      try {
        r.close();
      } catch {
        /* gone */
      }
    }
    this.resources.clear();
    this._fetchReplies = null;
  }

  /*
   * SIGTERM, wait up to `timeout` ms for the exit (then SIGKILL) and return the
   * exit code (128+signal when killed by a signal). Idempotent.
   */
  async stop(timeout = 3000) {
    this._closeResources();
    if (this.running) {
      this.proc.kill('SIGTERM');
      let timer;
      const r = await Promise.race([
        this.exited,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(null), timeout);
        }),
      ]);
      clearTimeout(timer);
      if (r === null) {
        this.killedAfterTimeout = true;
        this.proc.kill('SIGKILL');
        await this.exited;
      }
    }
    try {
      fs.closeSync(this.log);
    } catch {
      /* closed */
    }
    const code = this.exitCode();
    if (code === 0 && !this.killedAfterTimeout && !process.env.SIOGW_KEEP_LOGS) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
    return code;
  }

  /* stop(), and throw (with the stderr tail) unless the gateway exited 0 on SIGTERM in time. */
  async stopChecked(timeout = 3000) {
    const code = await this.stop(timeout);
    if (this.killedAfterTimeout) {
      throw new Error(`sio-gateway did not exit within ${timeout} ms of SIGTERM (killed)\n${this.report()}`);
    }
    if (code !== 0) throw new Error(`sio-gateway ${this.describeExit()} (expected 0 after SIGTERM)\n${this.report()}`);
    return code;
  }
}

/*
 * Start a gateway with baseConfig merged with `overrides` on a fresh port and
 * wait until GET /healthz answers 200. Retries on another port when the first
 * one was taken in the meantime.
 */
async function startGateway(overrides = {}, { startTimeoutMs, env = {}, args = [], transformYaml = null, wrap = [] } = {}) {
  const bin = checkBinary();
  const timeout = startTimeoutMs || Number(process.env.SIOGW_START_TIMEOUT_MS) || 5000;
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let config = mergeConfig(baseConfig(port), overrides);
    config = mergeConfig(config, { listen: { port } });
    if (process.env.SIOGW_PLUGIN_DIR) config = mergeConfig(config, { adapter: { plugin_dir: process.env.SIOGW_PLUGIN_DIR } });
    if (process.env.SIOGW_LOG_LEVEL) config = mergeConfig(config, { log: { level: process.env.SIOGW_LOG_LEVEL } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-it-'));
    const configPath = path.join(dir, 'gateway.yaml');
    let yaml = `# generated by tests/integration/helpers/gateway.js\n${toYaml(config)}`;
    if (transformYaml) yaml = transformYaml(yaml);
    fs.writeFileSync(configPath, yaml);
    const childEnv = { ...process.env, ...env };
    delete childEnv.SIO_API_TOKEN;
    // wrap: a command that execs the gateway (e.g. prlimit --nofile=N:N --), same pid
    const argv = [...wrap, bin, '-c', configPath, ...args];
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    const gw = new Gateway({ proc, port, config, dir, configPath, bin });
    const spawnError = new Promise((resolve) => proc.once('error', resolve));
    try {
      await waitHealthy(gw, timeout, spawnError);
      return gw;
    } catch (e) {
      lastErr = e;
      await gw.stop(1000);
      if (/address already in use|EADDRINUSE|bind/i.test(gw.stderr) && attempt < 2) continue;
      throw e;
    }
  }
  throw lastErr;
}

async function waitHealthy(gw, timeout, spawnError) {
  const deadline = Date.now() + timeout;
  let last = 'no answer';
  let spawnErr = null;
  spawnError.then((e) => {
    spawnErr = e;
  });
  for (;;) {
    if (spawnErr) throw new Error(`cannot start ${gw.bin}: ${spawnErr.message}`);
    if (!gw.running) {
      throw new Error(`sio-gateway ${gw.describeExit()} during startup\n${gw.report()}\n--- config:\n${fs.readFileSync(gw.configPath, 'utf8')}`);
    }
    try {
      const res = await gw.http('/healthz', { timeout: 500 });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.code || e.message;
    }
    if (Date.now() >= deadline) {
      throw new Error(`sio-gateway not healthy within ${timeout} ms (GET /healthz: ${last})\n${gw.report()}`);
    }
    await N.sleep(25);
  }
}

/*
 * Run the binary to completion (e.g. --check, --version) with a deadline.
 * Resolves {code, signal, stdout, stderr}; kills it after `timeout` ms.
 */
function runGateway(args, { timeout = 5000, env = {} } = {}) {
  const bin = checkBinary();
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out = [];
    const err = [];
    proc.stdout.on('data', (c) => out.push(c));
    proc.stderr.on('data', (c) => err.push(c));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')}: still running after ${timeout} ms`));
    }, timeout);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/* Write a config file into a fresh temp dir; returns its path. */
function writeConfig(yamlText, name = 'gateway.yaml') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-cfg-'));
  tempDirs.add(dir);
  const p = path.join(dir, name);
  fs.writeFileSync(p, yamlText);
  return p;
}

/*
 * node:test's `it`, wrapped so that a failing test also prints the gateway's
 * state and stderr tail (as a test diagnostic, shown under the failed test). getGw returns
 * the gateway (or an array of gateways) the test uses.
 */
function gatewayIt(getGw) {
  const wrap = (fn) =>
    async function wrapped(t) {
      try {
        return await fn(t);
      } catch (e) {
        let gws = [];
        try {
          gws = [].concat(getGw() || []);
        } catch {
          /* no gateway */
        }
        for (const gw of gws) {
          if (!gw) continue;
          t.diagnostic(gw.report(40));
        }
        throw e;
      }
    };
  const itx = (name, opts, fn) => {
    if (typeof opts === 'function') return nodeIt(name, wrap(opts));
    return nodeIt(name, opts, wrap(fn));
  };
  itx.skip = (name, opts, fn) => nodeIt.skip(name, opts, fn);
  itx.todo = (name, opts, fn) => nodeIt.todo(name, opts, fn);
  itx.only = (name, opts, fn) => (typeof opts === 'function' ? nodeIt.only(name, wrap(opts)) : nodeIt.only(name, opts, wrap(fn)));
  return itx;
}

module.exports = {
  ...N,
  ...C,
  REPO_ROOT,
  gatewayBinary,
  checkBinary,
  baseConfig,
  mergeConfig,
  toYaml,
  freePort,
  parseMetrics,
  metricValue,
  Gateway,
  startGateway,
  runGateway,
  writeConfig,
  gatewayIt,
};
