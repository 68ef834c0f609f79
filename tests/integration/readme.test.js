'use strict';
/*
 * The README's client runs as written: its ```js block (after "A client for the
 * above") is saved as client.mjs next to this suite's node_modules and run with node,
 * only the URL pointing at the test gateway; the test is the curl backend of the README
 * (emits "news", answers the ack of "q").
 */
const { describe, before, after, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./helpers/gateway');

function readmeClient() {
  const md = fs.readFileSync(path.join(h.REPO_ROOT, 'README.md'), 'utf8');
  const at = md.indexOf('A client for the above');
  assert.ok(at >= 0, 'README: "A client for the above" not found');
  const m = /```js\n([\s\S]*?)```/.exec(md.slice(at));
  assert.ok(m, 'README: no ```js block after "A client for the above"');
  return m[1];
}

describe('README: the client example', () => {
  let gw;
  let file;
  before(async () => {
    gw = await h.startGateway();
  });
  after(async () => {
    if (file) fs.rmSync(file, { force: true });
    await gw?.stop();
  });

  it('runs as written: prints the news, gets its ack, exits 0', async () => {
    const src = readmeClient();
    assert.ok(src.includes('http://127.0.0.1:3000'), 'the README client talks to the default port');
    file = path.join(__dirname, `readme-client-${process.pid}.mjs`);
    fs.writeFileSync(file, src.replaceAll('http://127.0.0.1:3000', gw.url));
    const sse = await gw.subscribe(gw.topics.in);
    const child = spawn(process.execPath, [file], { cwd: __dirname, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // the backend of the README: hello arrives, then q with an ack; emit news, answer q
      const hello = await sse.next((e) => e.type === 'event' && e.event === 'hello');
      assert.deepEqual(hello.data, [{ x: 1 }]);
      await gw.emitEnvelope({ type: 'emit', nsp: '/', event: 'news', data: ['hello', { n: 1 }] });
      const q = await sse.next((e) => e.type === 'event' && e.event === 'q');
      assert.deepEqual(q.data, [5]);
      assert.ok(q.ack && q.ack.id, 'q carries an ack id');
      await h.waitFor(() => out.includes('news'), 5000, { message: 'the client printed the news' });
      await gw.publish(q.ack.reply_to, { type: 'ack', id: q.ack.id, data: ['ok'] });
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
      assert.equal(code, 0, `client exit: ${code}; stderr: ${err}`);
    } finally {
      child.kill();
    }
    assert.match(out, /connected as \S{20}/);
    assert.match(out, /news \[ 'hello', \{ n: 1 \} \]/);
    assert.match(out, /ack ok/);
  });
});
