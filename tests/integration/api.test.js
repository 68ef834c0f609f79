'use strict';
/*
 * The HTTP API on the gateway's port (DESIGN §1.4): /healthz, /metrics,
 * POST /api/publish and GET /api/subscribe (SSE) with a bearer token.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const h = require('./helpers/gateway');

/*
 * The gateway's metric names (gateway/http/metrics.c). Align them here, in
 * one place, if the gateway renames them.
 */
const METRICS = {
  connections: 'sio_connections', //          gauge, label transport="polling"|"websocket"
  sessionsOpened: 'sio_sessions_opened_total', // counter
  upgrades: 'sio_upgrades_total', //           counter
  engineErrors: 'sio_engine_errors_total', //  counter, label code="0".."5"
  malformed: 'sio_malformed_envelopes_total', // counter
  packetsOut: 'sio_packets_out_total', //      counter
  wsWrites: 'sio_websocket_writes_total', //   counter
  loopTurns: 'sio_loop_turns_total', //        counter
};

const TOKEN = 's3cret-token';

describe('HTTP API (http_api.token set)', () => {
  let gw;
  before(async () => {
    gw = await h.startGateway({ http_api: { enabled: true, token: TOKEN } });
  });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);
  const metric = (name, labels) => gw.metric(name, labels);

  describe('health and metrics', () => {
    it('GET /healthz answers 200 with a JSON object (no token needed)', async () => {
      const res = await fetch(`${gw.url}/healthz`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(typeof body, 'object');
      assert.notEqual(body, null);
    });

    it('GET /metrics is Prometheus text with the connection gauges (no token needed)', async () => {
      const res = await gw.http('/metrics');
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
      const text = res.text;
      assert.match(text, new RegExp(`^# TYPE ${METRICS.connections} gauge$`, 'm'));
      assert.notEqual(h.metricValue(text, METRICS.connections, { transport: 'websocket' }), null, `${METRICS.connections}{transport="websocket"}`);
      assert.notEqual(h.metricValue(text, METRICS.connections, { transport: 'polling' }), null, `${METRICS.connections}{transport="polling"}`);
      assert.notEqual(h.metricValue(text, METRICS.malformed), null, METRICS.malformed);
      // every sample line parses: name{labels} value
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|\+Inf|-Inf)$/, `bad sample line: ${line}`);
      }
    });

    it('the connection gauges follow websocket and polling clients', async () => {
      const ws0 = await metric(METRICS.connections, { transport: 'websocket' });
      const po0 = await metric(METRICS.connections, { transport: 'polling' });
      const opened0 = await metric(METRICS.sessionsOpened);
      const a = await gw.connect('/', { transports: ['websocket'] });
      const b = await gw.connect('/', { transports: ['polling'] });
      await h.waitFor(async () => (await metric(METRICS.connections, { transport: 'websocket' })) === ws0 + 1, 3000, {
        message: 'websocket gauge +1',
      });
      await h.waitFor(async () => (await metric(METRICS.connections, { transport: 'polling' })) === po0 + 1, 3000, {
        message: 'polling gauge +1',
      });
      assert.ok((await metric(METRICS.sessionsOpened)) >= opened0 + 2, 'sessions opened counter');
      a.disconnect();
      b.disconnect();
      await h.waitFor(async () => (await metric(METRICS.connections, { transport: 'websocket' })) === ws0, 3000, {
        message: 'websocket gauge back',
      });
      await h.waitFor(async () => (await metric(METRICS.connections, { transport: 'polling' })) === po0, 3000, {
        message: 'polling gauge back',
      });
    });

    it('an upgrade moves a session from the polling gauge to the websocket gauge and counts', async () => {
      const up0 = await metric(METRICS.upgrades);
      const ws0 = await metric(METRICS.connections, { transport: 'websocket' });
      const s = await gw.connect('/');
      await h.waitFor(() => s.io.engine.transport.name === 'websocket', 5000, { message: 'client upgraded' });
      await h.waitFor(async () => (await metric(METRICS.upgrades)) === up0 + 1, 3000, { message: 'upgrades +1' });
      assert.equal(await metric(METRICS.connections, { transport: 'websocket' }), ws0 + 1);
      s.disconnect();
    });

    it('the packets one loop turn queues to a websocket go out in one write, counted', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const got = new Promise((resolve) => s.once('blob', (...args) => resolve(args)));
      const p0 = await metric(METRICS.packetsOut);
      const w0 = await metric(METRICS.wsWrites);
      const t0 = await metric(METRICS.loopTurns);
      assert.notEqual(w0, null, METRICS.wsWrites);
      // one event with three attachments: four Engine.IO packets queued as one unit
      const bin = { $binary: 'AAEC' };
      const res = await gw.http(`/api/publish?topic=sio.out`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'emit', nsp: '/', event: 'blob', data: [bin, bin, bin] }),
      });
      assert.equal(res.status, 200, res.text);
      const args = await got;
      assert.equal(args.length, 3);
      for (const a of args) assert.deepEqual([...a], [0, 1, 2]);
      const packets = (await metric(METRICS.packetsOut)) - p0;
      const writes = (await metric(METRICS.wsWrites)) - w0;
      assert.ok(packets >= 4, `packets out +${packets}`);
      assert.ok(writes >= 1 && writes <= packets - 3, `${packets} packets in ${writes} writes`);
      assert.ok((await metric(METRICS.loopTurns)) > t0, 'loop turns counted');
      s.disconnect();
    });

    it('Engine.IO error replies are counted by code', async () => {
      const e0 = await metric(METRICS.engineErrors, { code: '0' });
      const e1 = await metric(METRICS.engineErrors, { code: '1' });
      assert.equal((await gw.http(`${gw.enginePath}?EIO=4&transport=nope`)).status, 400);
      assert.equal((await gw.http(`${gw.enginePath}?EIO=4&transport=polling&sid=nosuchsession0000000`)).status, 400);
      assert.equal(await metric(METRICS.engineErrors, { code: '0' }), e0 + 1);
      assert.equal(await metric(METRICS.engineErrors, { code: '1' }), e1 + 1);
    });

    it('an unknown path answers 404', async () => {
      assert.equal((await gw.http('/no/such/path')).status, 404);
    });
  });

  describe('publish / subscribe with a token', () => {
    const bearer = (t) => ({ authorization: `Bearer ${t}` });

    it('POST /api/publish without or with a wrong token → 401', async () => {
      for (const headers of [{}, bearer('wrong'), { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
        const res = await h.httpRequest(`${gw.url}/api/publish?topic=t.auth`, { method: 'POST', headers, body: '{}' });
        assert.equal(res.status, 401, `headers ${JSON.stringify(headers)}`);
      }
    });

    it('GET /api/subscribe without or with a wrong token → 401', async () => {
      for (const token of [undefined, 'wrong']) {
        await assert.rejects(h.SseStream.open(gw.url, 't.auth', { token }), (e) => {
          assert.equal(e.status, 401, e.message);
          return true;
        });
      }
    });

    it('with the token: subscribe is an event stream and receives what publish sends, in order', async () => {
      const sub = await gw.subscribe('t.ok'); // token from the config
      assert.match(String(sub.headers['content-type']), /^text\/event-stream/);
      const res = await gw.publish('t.ok', { n: 1 });
      assert.ok(res.status >= 200 && res.status < 300, `publish status ${res.status}`);
      await gw.publish('t.ok', { n: 2 });
      await gw.publish('t.ok', 'plain text, not JSON');
      assert.deepEqual(await sub.next(), { n: 1 });
      assert.deepEqual(await sub.next(), { n: 2 });
      assert.equal(await sub.next(), 'plain text, not JSON');
    });

    it('a message with a newline arrives whole (one SSE event, several data: lines)', async () => {
      const sub = await gw.subscribe('t.lines');
      await gw.publish('t.lines', 'line1\nline2');
      assert.equal(await sub.next(), 'line1\nline2');
    });

    it('every subscriber of a topic gets each message; other topics get nothing', async () => {
      const s1 = await gw.subscribe('t.fan');
      const s2 = await gw.subscribe('t.fan');
      const other = await gw.subscribe('t.other');
      await gw.publish('t.fan', { hello: 'all' });
      assert.deepEqual(await s1.next(), { hello: 'all' });
      assert.deepEqual(await s2.next(), { hello: 'all' });
      await gw.publish('t.other', { control: true });
      assert.deepEqual(await other.next(), { control: true });
      assert.equal(other.all((m) => m && m.hello).length, 0);
    });

    it('publish without a topic → 400; subscribe without a topic → 400', async () => {
      const res = await h.httpRequest(`${gw.url}/api/publish`, { method: 'POST', headers: bearer(TOKEN), body: '{}' });
      assert.equal(res.status, 400);
      const empty = await h.httpRequest(`${gw.url}/api/publish?topic=`, { method: 'POST', headers: bearer(TOKEN), body: '{}' });
      assert.equal(empty.status, 400);
      const sub = await h.httpRequest(`${gw.url}/api/subscribe`, { headers: bearer(TOKEN), timeout: 2000 });
      assert.equal(sub.status, 400);
    });

    it('an emit published through the API with the token reaches a client', async () => {
      const s = await gw.connect('/', { transports: ['websocket'] });
      const got = h.once(s, 'api-news', 3000);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', rooms: [s.id], event: 'api-news', data: ['via api'] });
      assert.deepEqual(await got, ['via api']);
    });
  });
});

describe('HTTP API: route=nodes on the memory bus (one node: its own node topic)', () => {
  let gw;
  let off;
  before(async () => {
    [gw, off] = await Promise.all([h.startGateway(), h.startGateway({ topics: { node: '' } })]);
  });
  after(() => Promise.all([gw.stopChecked(), off.stopChecked()]));
  const it = h.gatewayIt(() => [gw, off]);
  const route = async (g, env) => {
    const res = await h.httpRequest(`${g.url}/api/publish?route=nodes`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(env),
    });
    assert.equal(res.status, 200, res.text);
    return JSON.parse(res.text).to;
  };

  it("a socket's envelope goes to its node's topic and arrives; others and node topics off: the out topic", async () => {
    const s = await gw.connect('/');
    const got = h.once(s, 'dm');
    assert.deepEqual(await route(gw, { type: 'emit', rooms: [s.id], event: 'dm', data: [1] }), [`sio.node.${s.id.slice(0, 4)}`]);
    assert.deepEqual(await got, [1]);
    assert.equal(await gw.metric('sio_bus_messages_in_total', { kind: 'node' }), 1);
    assert.deepEqual(await route(gw, { type: 'emit', rooms: ['lobby'], event: 'x', data: [] }), ['sio.out']);
    assert.deepEqual(await route(gw, { type: 'emit', rooms: [s.id, 'lobby'], event: 'x', data: [] }), ['sio.out']);
    assert.deepEqual(await route(gw, 'not json'), ['sio.out']); /* counted as malformed by the node, as without route */
    /* topics.node: "" — no node topic: everything through sio.out, and it still arrives */
    const t = await off.connect('/');
    const got2 = h.once(t, 'dm');
    assert.deepEqual(await route(off, { type: 'emit', rooms: [t.id], event: 'dm', data: [2] }), ['sio.out']);
    assert.deepEqual(await got2, [2]);
    assert.equal(await off.metric('sio_bus_messages_in_total', { kind: 'node' }), 0);
  });
});

describe('HTTP API: a batch of messages (application/x-ndjson)', () => {
  let gw;
  // the memory bus refuses messages over 200 bytes (key included): one line fails
  before(async () => { gw = await h.startGateway({ adapter: { plugin: 'memory', options: { max_message: '200' } } }); });
  after(() => gw.stopChecked());
  const it = h.gatewayIt(() => gw);

  it('publishes each line in order, and answers each with its own status', async () => {
    const sub = await gw.subscribe('t.batch');
    const big = JSON.stringify({ pad: 'x'.repeat(300) });
    const body = `{"n":1}\n\n{"n":2}\r\n${big}\n"plain"\n`;
    const res = await h.httpRequest(`${gw.url}/api/publish?topic=t.batch`, {
      method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body,
    });
    assert.equal(res.status, 200);
    const r = JSON.parse(res.text);
    assert.equal(r.ok, false);
    assert.equal(r.published, 3);
    assert.equal(r.failed, 1);
    assert.deepEqual(r.results.map((x) => x.status), [200, 200, 503, 200]);
    assert.match(r.results[2].error, /invalid input/);
    assert.deepEqual(await sub.next(), { n: 1 });
    assert.deepEqual(await sub.next(), { n: 2 });
    assert.equal(await sub.next(), 'plain');
  });

  it('application/ndjson is a batch too; a key over 511 bytes is refused, not replaced', async () => {
    const res = await h.httpRequest(`${gw.url}/api/publish?topic=t.batch2`, {
      method: 'POST', headers: { 'content-type': 'application/ndjson; charset=utf-8' }, body: '1\n2',
    });
    assert.deepEqual(JSON.parse(res.text).results, [{ status: 200 }, { status: 200 }]);
    const long = await h.httpRequest(`${gw.url}/api/publish?topic=t.batch2&key=${'k'.repeat(600)}`, {
      method: 'POST', body: '1',
    });
    assert.equal(long.status, 400);
    assert.match(long.text, /key too long/);
  });
});
