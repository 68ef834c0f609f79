'use strict';
/*
 * Kafka for the integration tests, without a JVM: librdkafka's mock cluster
 * (tests/helpers/kafka_mock_cluster) and a librdkafka backend
 * (tests/helpers/kafka_backend), both built next to the gateway binary
 * (<build>/tests/). Every process started here is stopped by its stop(), and
 * killed at exit if a test forgot.
 *
 *   const K = require('./helpers/kafka');
 *   if (!K.available()) ...skip...
 *   const mock = await K.MockCluster.start({ topics: ['sio.in:4', 'sio.out:4'] });
 *   const be = await K.Backend.start(mock.bootstrap, { topics: ['sio.in'] });
 *   await be.waitAssigned();
 *   be.produce('sio.out', { type: 'emit', ... });
 *   const m = await be.next((m) => m.topic === 'sio.in');
 *   await mock.down(); await mock.up();
 */
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');

const G = require('./gateway');

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

function buildDir() {
  return path.resolve(path.dirname(G.gatewayBinary()), '..');
}

function binaries() {
  const b = buildDir();
  return {
    mock: path.join(b, 'tests', 'kafka_mock_cluster'),
    backend: path.join(b, 'tests', 'kafka_backend'),
    plugin: path.join(b, 'plugins', 'kafka', 'kafka.so'),
  };
}

/* True when the build has the Kafka plugin and its test helpers. */
function available() {
  return Object.values(binaries()).every((p) => fs.existsSync(p));
}

/* A child whose stdout is JSON-or-text lines; waits match lines with a deadline. */
class LineProc {
  constructor(proc, name) {
    this.proc = proc;
    this.name = name;
    this.lines = [];
    this.stderr = '';
    this.waiters = new Set();
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.exited.then(() => {
      live.delete(proc);
      for (const w of this.waiters) w.check();
    });
    live.add(proc);
    proc.stderr.on('data', (c) => {
      if (this.stderr.length < 1 << 20) this.stderr += c;
    });
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      let v = line;
      try {
        v = JSON.parse(line);
      } catch {
        /* plain text */
      }
      this.lines.push(v);
      this.onLine(v);
      for (const w of this.waiters) w.check();
    });
  }

  onLine() {}

  /* The first line (from index `from`) matching pred; rejects after timeout ms. */
  waitLine(pred, timeout = 5000, from = 0) {
    return new Promise((resolve, reject) => {
      let i = from;
      const w = {
        check: () => {
          for (; i < this.lines.length; i++) {
            if (pred(this.lines[i])) {
              this.waiters.delete(w);
              clearTimeout(timer);
              resolve(this.lines[i]);
              return;
            }
          }
          if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
            this.waiters.delete(w);
            clearTimeout(timer);
            reject(new Error(`${this.name} exited; stderr: ${this.stderr.slice(-2000)}`));
          }
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: no matching line within ${timeout} ms; stderr: ${this.stderr.slice(-2000)}`));
      }, timeout);
      this.waiters.add(w);
      w.check();
    });
  }

  send(obj) {
    this.proc.stdin.write(`${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n`);
  }

  /* End stdin (both helpers exit on it), SIGKILL after `timeout` ms. Returns the exit. */
  async stop(timeout = 4000) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.stdin.end();
      const t = setTimeout(() => this.proc.kill('SIGKILL'), timeout);
      await this.exited;
      clearTimeout(t);
    }
    return this.exited;
  }
}

/* librdkafka's mock cluster on 127.0.0.1. `topics`: "name[:partitions]". */
class MockCluster extends LineProc {
  static async start({ brokers = 1, topics = [] } = {}) {
    const args = ['--brokers', String(brokers)];
    for (const t of topics) args.push('--topic', t);
    const proc = spawn(binaries().mock, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const m = new MockCluster(proc, 'kafka_mock_cluster');
    const first = await m.waitLine((l) => typeof l === 'string' && /^127\.0\.0\.1:\d+/.test(l));
    m.bootstrap = first.trim();
    return m;
  }

  async command(cmd, timeout = 3000) {
    const from = this.lines.length;
    this.send(cmd);
    const r = await this.waitLine((l) => l === 'ok' || (typeof l === 'string' && l.startsWith('error')), timeout, from);
    if (r !== 'ok') throw new Error(`mock cluster: ${cmd}: ${r}`);
  }

  down(id) {
    return this.command(id === undefined ? 'down' : `down ${id}`);
  }

  up(id) {
    return this.command(id === undefined ? 'up' : `up ${id}`);
  }

  createTopic(name, partitions = 4) {
    return this.command(`topic ${name} ${partitions}`);
  }
}

/* A backend: a consumer of `topics` (every partition from the start, or a group member
 * with `group`), a producer; see kafka_backend.c. */
class Backend extends LineProc {
  static async start(bootstrap, { topics = [], group, quiet = false } = {}) {
    const args = ['--brokers', bootstrap];
    for (const t of topics) args.push('--topic', t);
    if (group) args.push('--group', group);
    if (quiet) args.push('--quiet');
    const proc = spawn(binaries().backend, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const b = new Backend(proc, 'kafka_backend');
    b.nextId = 1;
    return b;
  }

  /* Messages consumed so far: {topic, partition, offset, key, value, json (parsed value or undefined)}. */
  get messages() {
    return this.lines.filter((l) => l && l.event === 'message');
  }

  onLine(l) {
    if (l && l.event === 'message') {
      try {
        l.json = JSON.parse(l.value);
      } catch {
        l.json = undefined;
      }
      for (const fn of this.listeners || []) fn(l);
    }
  }

  /* Call fn with every message consumed from now on. */
  onMessage(fn) {
    (this.listeners ||= []).push(fn);
  }

  waitAssigned(timeout = 15000) {
    return this.waitLine((l) => l && l.event === 'assigned' && l.partitions > 0, timeout);
  }

  /* The first consumed message matching pred(m) (m.json is the parsed value). */
  next(pred, timeout = 5000, from = 0) {
    return this.waitLine((l) => l && l.event === 'message' && pred(l), timeout, from);
  }

  /* Produce without waiting. value: a string (sent as is) or a JSON value. */
  produce(topic, value, key) {
    const cmd = { op: 'produce', topic, value };
    if (key !== undefined && key !== null) cmd.key = key;
    this.send(cmd);
  }

  /* Produce and wait for the delivery report; rejects on a delivery error. */
  async produceSync(topic, value, key, timeout = 5000) {
    const id = this.nextId++;
    const from = this.lines.length;
    const cmd = { op: 'produce', topic, value, id };
    if (key !== undefined && key !== null) cmd.key = key;
    this.send(cmd);
    const r = await this.waitLine((l) => l && l.event === 'delivered' && l.id === id, timeout, from);
    if (r.error) throw new Error(`produce to ${topic}: ${r.error}`);
  }

  async count(timeout = 3000) {
    const from = this.lines.length;
    this.send({ op: 'count' });
    return (await this.waitLine((l) => l && l.event === 'count', timeout, from)).consumed;
  }
}

/*
 * adapter.options for a gateway on the mock cluster: short timeouts so tests stay
 * quick (metadata refresh 500 ms, fetch wait 10 ms), broker auto-creation (the
 * mock has no CreateTopics).
 */
function gatewayAdapter(bootstrap, options = {}, adapter = {}) {
  return {
    plugin: 'kafka',
    ...adapter,
    options: {
      brokers: bootstrap,
      create_topics: 'auto',
      metadata_refresh: '500ms',
      connect_timeout: '5s',
      close_timeout: '1s',
      linger: '1ms',
      'rdkafka_consumer.fetch.wait.max.ms': '10',
      'rdkafka.reconnect.backoff.max.ms': '500',
      ...options,
    },
  };
}

module.exports = { binaries, available, MockCluster, Backend, gatewayAdapter };
