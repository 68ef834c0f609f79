'use strict';
/*
 * The operator contract (DESIGN §1.3) seen from outside: --check, errors that
 * name file:line:col and the key, ${VAR:-default} substitution, and a clean
 * exit on SIGTERM.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it: nodeIt } = require('node:test');
const h = require('./helpers/gateway');

const baseYaml = () => h.toYaml(h.baseConfig(3000));

describe('configuration', () => {
  nodeIt('--check accepts the harness base config (and so the harness writes valid YAML)', async () => {
    const p = h.writeConfig(baseYaml());
    const r = await h.runGateway(['--check', '-c', p]);
    assert.equal(r.code, 0, `--check failed:\n${r.stderr}${r.stdout}`);
  });

  nodeIt('a wrongly typed value is refused with file:line:col and the key path', async () => {
    const yaml = baseYaml().replace(/ping_interval_ms: \d+/, 'ping_interval_ms: "soon"');
    const p = h.writeConfig(yaml);
    const line = yaml.split('\n').findIndex((l) => l.includes('ping_interval_ms')) + 1;
    const r = await h.runGateway(['--check', '-c', p]);
    assert.notEqual(r.code, 0);
    const msg = r.stderr + r.stdout;
    assert.ok(msg.includes(`${p}:${line}:`), `expected "${p}:${line}:" in: ${msg}`);
    assert.match(msg, /engine\.ping_interval_ms/);
  });

  nodeIt('an unknown key is refused and the valid keys are listed', async () => {
    const yaml = baseYaml().replace('engine:\n', 'engine:\n  no_such_option: 1\n');
    const p = h.writeConfig(yaml);
    const r = await h.runGateway(['--check', '-c', p]);
    assert.notEqual(r.code, 0);
    const msg = r.stderr + r.stdout;
    assert.match(msg, /engine\.no_such_option/);
    assert.match(msg, /ping_interval_ms/, 'lists the valid keys');
  });

  /* The yaml with adapter.options replaced by `opts` ({key: value}), and the line of `key`. */
  function withPluginOptions(plugin, opts, key) {
    const yaml = baseYaml().replace('adapter:\n  plugin: "memory"\n  options: {}\n',
      `adapter:\n  plugin: "${plugin}"\n  options:\n${Object.entries(opts).map(([k, v]) => `    ${k}: ${v}\n`).join('')}`);
    assert.notEqual(yaml, baseYaml(), 'the harness writes adapter as expected');
    return { yaml, line: yaml.split('\n').findIndex((l) => l.startsWith(`    ${key}:`)) + 1 };
  }

  nodeIt('--check asks the plugin: a rule only it knows fails with its message at file:line', async () => {
    const { yaml, line } = withPluginOptions('memory', { queue_bytes: '1m', max_message: '2m' }, 'max_message');
    const p = h.writeConfig(yaml);
    const r = await h.runGateway(['--check', '-c', p]);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stderr.trim(), `sio-gateway: ${p}:${line}:5: adapter.options.max_message: ` +
      'memory: max_message (2097152) must not exceed queue_bytes (1048576)');
  });

  const kafkaSo = path.join(path.dirname(h.gatewayBinary()), '..', 'plugins', 'kafka', 'kafka.so');
  nodeIt('--check refuses an rdkafka.* property librdkafka does not know, with its message at file:line',
    { skip: !fs.existsSync(kafkaSo) && 'no kafka plugin in this build' }, async () => {
      const { yaml, line } = withPluginOptions('kafka',
        { brokers: '127.0.0.1:1', 'rdkafka.socket.keepalive.enable': '"true"', 'rdkafka.no.such.property': 'x' },
        'rdkafka.no.such.property');
      const p = h.writeConfig(yaml);
      const r = await h.runGateway(['--check', '-c', p]);
      assert.equal(r.code, 1, r.stdout);
      assert.ok(r.stderr.includes(`${p}:${line}:5: adapter.options.rdkafka.no.such.property: `), r.stderr);
      assert.match(r.stderr, /kafka: rdkafka\.no\.such\.property: No such configuration property: "no\.such\.property"/);
      assert.equal(r.stdout, '');
    });

  nodeIt('running with a bad config exits non-zero at once (no listening)', async () => {
    const p = h.writeConfig(baseYaml().replace('plugin: "memory"', 'plugin: "no-such-plugin"'));
    const r = await h.runGateway(['-c', p], { timeout: 5000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no-such-plugin/);
  });

  describe('a running gateway', () => {
    let gw;
    const it = h.gatewayIt(() => gw);

    /* The listening sockets on `port` from /proc/net/tcp{,6}: local addresses in kernel hex. */
    function listeners(port) {
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
      const out = [];
      for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
        for (const line of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
          const cols = line.trim().split(/\s+/);
          if (cols.length > 3 && cols[3] === '0A' && cols[1].endsWith(`:${hexPort}`)) out.push(cols[1].split(':')[0]);
        }
      }
      return out;
    }

    it('listen.host 127.0.0.1 binds the loopback address only, not every interface', async () => {
      gw = await h.startGateway({});
      try {
        // one listening socket per service loop (SO_REUSEPORT), all on that address
        const l = listeners(gw.port);
        assert.equal(l.length, await gw.metric('sio_workers'), 'one listener per loop');
        assert.deepEqual([...new Set(l)], ['0100007F'], 'IPv4 listeners on 127.0.0.1 only');
      } finally {
        assert.equal(await gw.stop(), 0);
      }
    });

    it('listen.host ::1 binds the IPv6 loopback only', async () => {
      gw = await h.startGateway({ listen: { host: '::1' } });
      try {
        const l = listeners(gw.port);
        assert.equal(l.length, await gw.metric('sio_workers'), 'one listener per loop');
        assert.deepEqual([...new Set(l)], ['00000000000000000000000001000000'], 'IPv6 listeners on ::1 only');
      } finally {
        assert.equal(await gw.stop(), 0);
      }
    });

    it('${VAR:-default} and ${VAR} are substituted; SIGTERM exits 0', async () => {
      gw = await h.startGateway(
        {},
        {
          env: { SIOGW_IT_NODE: 'node-from-env' },
          transformYaml: (y) => y.replace('node_id: "gw-test"', 'node_id: ${SIOGW_IT_NODE}').replace('token: ""', 'token: "${SIOGW_IT_UNSET:-}"'),
        },
      );
      try {
        assert.match(fs.readFileSync(gw.configPath, 'utf8'), /node_id: \$\{SIOGW_IT_NODE\}/);
        const sin = await h.SseStream.open(gw.url, 'sio.in');
        gw.track(sin);
        await sin.sync();
        const s = await gw.connect('/', { transports: ['websocket'] });
        const e = await sin.next((m) => m.type === 'connect' && m.sid === s.id);
        assert.equal(e.node, 'node-from-env');
        // the reply topic follows the node id
        const p = s.timeout(3000).emitWithAck('q');
        const ev = await sin.next((m) => m.type === 'event' && m.sid === s.id);
        assert.equal(ev.ack.reply_to, 'sio.reply.node-from-env');
        await h.publish(gw.url, 'sio.reply.node-from-env', { type: 'ack', id: ev.ack.id, data: ['ok'] });
        assert.equal(await p, 'ok');
      } finally {
        assert.equal(await gw.stop(), 0, 'exit code after SIGTERM');
      }
    });
  });
});
