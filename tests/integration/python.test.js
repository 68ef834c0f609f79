'use strict';
/*
 * Clients this project did not write: Debian's python3-socketio (sync and asyncio
 * clients, every transport mode) and Python requests against the HTTP API, plus
 * node-fetch. The README's test command installs the Python packages; these tests use
 * /usr/bin/python3 (Debian's, where those packages live), not a python3 earlier on PATH.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers/gateway');

const { pyOk, has, runPy } = require('./helpers/python');

describe('python-socketio and requests (Debian packages)', { skip: !pyOk && 'python3-socketio/requests missing: tools/dev.sh test installs them' }, () => {
  let gw;
  let stopNews;
  before(async () => {
    gw = await h.startGateway();
    await gw.backend({ echo: ['echo'] });
    // on "ready", emit "news" to that socket alone
    const sub = await gw.subscribe(gw.topics.in);
    const onMsg = (m) => {
      if (m && m.type === 'event' && m.event === 'ready') {
        gw.publish(gw.topics.out, { type: 'emit', nsp: '/', rooms: [m.sid], event: 'news', data: [m.data[0], 1764763262123456] })
          .catch(() => {});
      }
    };
    sub.onMessage(onMsg);
    stopNews = () => sub.close();
  });
  after(async () => {
    stopNews();
    await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);

  for (const mode of ['sync', 'async']) {
    for (const transport of ['polling', 'websocket', 'upgrade']) {
      it(`${mode} client, ${transport}: connect, acked event, server emit`, async () => {
        const r = await runPy('sio_client.py', [gw.url, mode, transport]);
        assert.equal(r.ok, true);
        assert.deepEqual(r.ack, [{ n: 1, s: 'é' }]);
        assert.deepEqual(r.news[0], { mode });
        assert.equal(r.news[1], 1764763262123456, 'an integer in data arrives as the same integer');
        assert.equal(r.transport, transport === 'polling' ? 'polling' : 'websocket');
      });
    }
  }

  it('requests: 20 publishes on one keep-alive session; SSE read line by line with iter_lines()', async () => {
    const r = await runPy('http_api.py', [gw.url, 'py.t']);
    assert.deepEqual(r.statuses, Array(20).fill(200));
    assert.equal(r.lines[0], 'event: py.t');
    assert.match(r.lines[1], /^data: \{"i": ?\d+\}$/);
  });
});

const msgpackOk = pyOk && has('msgpack');

describe("python-socketio's msgpack serializer on engine.parser: msgpack", { skip: !msgpackOk && 'python3-msgpack missing: tools/dev.sh test installs it' }, () => {
  let gw;
  let sub;
  before(async () => {
    gw = await h.startGateway({ engine: { parser: 'msgpack' } });
    await gw.backend({ echo: ['echo'] });
    sub = await gw.subscribe(gw.topics.in);
    sub.onMessage((m) => {
      if (m && m.type === 'event' && m.event === 'ready') {
        gw.publish(gw.topics.out, { type: 'emit', nsp: '/', rooms: [m.sid], event: 'news', data: [m.data[0], 1764763262123456] })
          .catch(() => {});
      }
    });
  });
  after(async () => {
    sub.close();
    await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);

  for (const transport of ['polling', 'websocket']) {
    it(`sync client, ${transport}: connect, acked event, server emit`, async () => {
      const r = await runPy('sio_client.py', [gw.url, 'sync', transport, 'msgpack']);
      assert.equal(r.ok, true);
      assert.deepEqual(r.ack, [{ n: 1, s: 'é' }]);
      assert.deepEqual(r.news, [{ mode: 'sync' }, 1764763262123456]);
      assert.equal(r.transport, transport);
    });
  }
});

describe('node-fetch@2 (Connection: close by default) and fetch with a stream body', () => {
  let gw;
  before(async () => { gw = await h.startGateway(); });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('node-fetch: 20 publishes through a keep-alive agent, none lost', async () => {
    const fetch = require('node-fetch');
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sub = await gw.subscribe('nf.t');
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gw.url}/api/publish?topic=nf.t`, { method: 'POST', body: JSON.stringify({ i }), agent });
      assert.equal(res.status, 200);
      await res.text();
    }
    agent.destroy();
    for (let i = 0; i < 20; i++) assert.equal((await sub.next()).i, i);
  });

  it("Node's fetch with a ReadableStream body (chunked) publishes", async () => {
    const sub = await gw.subscribe('nf.s');
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"streamed":'));
        c.enqueue(new TextEncoder().encode('true}'));
        c.close();
      },
    });
    const res = await fetch(`${gw.url}/api/publish?topic=nf.s`, { method: 'POST', body, duplex: 'half' });
    assert.equal(res.status, 200);
    assert.deepEqual(await sub.next(), { streamed: true });
  });
});
