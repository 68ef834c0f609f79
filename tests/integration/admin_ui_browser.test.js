'use strict';
/*
 * admin_ui in a real browser: the static UI of @socket.io/admin-ui 0.5.1 (its ui/dist,
 * from npm), served from another origin on loopback, opened in Debian's headless
 * Chromium (driven by playwright-core). It logs in through its own form over polling
 * (CORS with credentials) and then websocket, and must show the test clients in its
 * socket list, this node on its servers page, and act: its disconnect button ends a
 * client. The protocol itself: admin_ui.test.js.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const bcrypt = require('bcryptjs');
const { chromium } = require('playwright-core');
const h = require('./helpers/gateway');

const CHROMIUM = process.env.SIOGW_CHROMIUM || '/usr/bin/chromium';
const UI_DIR = path.join(path.dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.map': 'application/json' };

/* ui/dist on its own origin, as a user would host it. */
function serveUi() {
  const srv = http.createServer((req, res) => {
    let p = decodeURIComponent(req.url.split('?')[0]);
    if (p === '/') p = '/index.html';
    const f = path.join(UI_DIR, path.normalize(p));
    if (!f.startsWith(UI_DIR + path.sep) || !fs.existsSync(f)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(f)] || 'application/octet-stream' });
    fs.createReadStream(f).pipe(res);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

/* The socket list's namespace selector (a Vuetify v-select). */
async function chooseNamespace(page, nsp) {
  /* (the page that is leaving may still be there for a moment) */
  const select = page.locator('.v-select__slot:has(label:text-is("Select namespace"))');
  await h.waitFor(async () => (await select.count()) === 1, 5000, { message: 'one namespace selector' });
  await select.click();
  await page.getByRole('option', { name: nsp, exact: true }).click();
}

describe('admin_ui: the real admin UI page in headless Chromium', () => {
  let gw;
  let ui;
  let uiUrl;
  let browser;
  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (tools/dev.sh test installs Debian's chromium)`);
    ui = await serveUi();
    uiUrl = `http://127.0.0.1:${ui.address().port}`;
    gw = await h.startGateway({
      engine: { cors: { origins: [uiUrl], credentials: true } },
      namespaces: [{ name: '/' }, { name: '/chat' }],
      admin_ui: { enabled: true, auth: { username: 'admin', password_hash: bcrypt.hashSync('s3cret!', 8) }, server_id: 'gw-browser' },
    });
    /* as the machine's notes say: no background networking on a closed network */
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    if (browser) await browser.close();
    if (ui) ui.close();
    if (gw) await gw.stopChecked();
  });
  const it = h.gatewayIt(() => gw);

  it('logs in through its form; shows namespaces, the sockets of each, rooms, the node; disconnects a socket', async () => {
    const c1 = await gw.connect('/', { transports: ['websocket'] });
    const c2 = await gw.connect('/chat', { transports: ['polling'] });
    await gw.emitEnvelope({ type: 'join', nsp: '/chat', rooms: [c2.id], join: ['lobby'] });
    await h.waitFor(async () => (await gw.fetchSockets({ nsp: '/chat', rooms: ['lobby'] })).sockets.length === 1, 3000);
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    try {
      /* where the UI keeps its connection settings; no session id yet */
      await page.addInitScript((u) => {
        if (!localStorage.getItem('server_url')) {
          localStorage.setItem('server_url', u);
          localStorage.setItem('ws_only', 'false');
          localStorage.setItem('path', '/socket.io');
          localStorage.setItem('namespace', '/admin');
        }
      }, gw.url);
      await page.goto(`${uiUrl}/`, { waitUntil: 'load' });
      /* its first try (no session id) is refused: the form says so */
      await page.getByText('Invalid credentials').waitFor({ timeout: 10000 });
      await page.getByLabel('Username').fill('admin');
      await page.getByLabel('Password').fill('s3cret!');
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.getByText(/^connected$/i).first().waitFor({ timeout: 10000 });
      assert.ok((await page.evaluate(() => localStorage.getItem('session_id'))).match(/^[0-9a-f]{16}$/), 'the session is kept');
      /* the dashboard's namespaces card */
      await page.getByRole('cell', { name: '/chat', exact: true }).first().waitFor({ timeout: 10000 });

      await page.getByRole('link', { name: 'Sockets' }).click();
      await page.getByText(c1.id).waitFor({ timeout: 10000 });
      await chooseNamespace(page, '/chat');
      await page.getByText(c2.id).waitFor({ timeout: 10000 });
      const row = page.getByRole('row').filter({ hasText: c2.id });
      await row.getByText(/polling/i).waitFor({ timeout: 5000 });

      await page.getByRole('link', { name: 'Rooms' }).click();
      await chooseNamespace(page, '/chat');
      await page.getByRole('row').filter({ hasText: 'lobby' }).first().waitFor({ timeout: 10000 });

      await page.getByRole('link', { name: 'Servers' }).click();
      await page.getByText('gw-browser').waitFor({ timeout: 10000 });

      /* a socket's page: its disconnect action reaches the client */
      await page.getByRole('link', { name: 'Sockets' }).click();
      await chooseNamespace(page, '/');
      await page.getByText(c1.id).click();
      const bye = h.once(c1, 'disconnect', 10000);
      /* the logout buttons (icon-only): the client's, then the socket's */
      await page.locator('button:has(.mdi-logout)').nth(1).click();
      assert.equal((await bye)[0], 'io server disconnect');

      /* a reload comes back with the session id, no password */
      await page.reload({ waitUntil: 'load' });
      await page.getByText(/^connected$/i).first().waitFor({ timeout: 10000 });
      assert.ok((await gw.metric('sio_admin_logins_total', { result: 'session' })) >= 1);
      assert.deepEqual(problems, [], 'no script errors on the page');
    } finally {
      await page.close();
      c2.close();
    }
  });
});
