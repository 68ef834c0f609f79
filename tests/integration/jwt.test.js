'use strict';
/*
 * namespaces[].auth: jwt — tokens signed by the npm `jsonwebtoken` library and, for the
 * hostile ones it will not make, assembled here and signed with Node's crypto. Driven with
 * socket.io-client@4; what backends see is read on the bus (sio.in) and through `fetch`.
 */
const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const h = require('./helpers/gateway');

const SECRET = 'integration-test-secret-of-32-bytes-or-more';
const ISS = 'https://idp.test';
const AUD = 'chat';

const b64u = (x) => Buffer.from(x).toString('base64url');
/* header.payload.signature by hand: sig(input) gives the signature bytes */
function assemble(header, payload, sig) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${b64u(sig(input))}`;
}
const hmac = (key) => (input) => crypto.createHmac('sha256', key).update(input).digest();
const inHour = () => Math.floor(Date.now() / 1000) + 3600;

describe('auth: jwt (namespaces[].jwt)', () => {
  let gw;
  let sin;
  let dir;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-jwt-'));
    fs.writeFileSync(path.join(dir, 'rsa.pem'), rsaPem);
    fs.writeFileSync(path.join(dir, 'ec.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
    const hs = { algorithms: ['HS256'], secret: SECRET };
    gw = await h.startGateway({
      namespaces: [
        { name: '/' },
        { name: '/hs', auth: 'jwt', jwt: { ...hs, issuer: ISS, audience: AUD } },
        { name: '/rs', auth: 'jwt', jwt: { algorithms: ['RS256'], public_key_file: path.join(dir, 'rsa.pem') } },
        { name: '/es', auth: 'jwt', jwt: { algorithms: ['ES256'], public_key_file: path.join(dir, 'ec.pem') } },
        { name: '/q', auth: 'jwt', jwt: { ...hs, token_from: 'query.token' } },
        { name: '/hdr', auth: 'jwt', jwt: { ...hs, token_from: 'header.authorization', leeway_ms: 60000, require_exp: false } },
      ],
    });
    sin = await gw.subscribe(gw.topics.in);
  });
  after(async () => {
    await gw.stopChecked();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const it = h.gatewayIt(() => gw);

  const connectEnv = (sid) => sin.next((e) => e.type === 'connect' && e.sid === sid);

  /* A socket that must be refused: resolves its connect_error. */
  async function refused(nsp, opts) {
    const s = gw.socket(nsp, { transports: ['websocket'], ...opts });
    const [err] = await h.once(s, 'connect_error', 5000);
    assert.equal(s.connected, false);
    s.close();
    return err;
  }

  it('HS256 from jsonwebtoken: admitted; the claims are in the connect envelope and the socket data; the token is not', async () => {
    const token = jwt.sign({ sub: 'u1', role: 'admin', n: 3 }, SECRET, { issuer: ISS, audience: AUD, expiresIn: '1h' });
    const claims = jwt.decode(token);
    const s = await gw.connect('/hs', { transports: ['websocket'], auth: { token, room: 'r1' } });
    const env = await connectEnv(s.id);
    assert.deepEqual(env.claims, claims);
    assert.deepEqual(env.handshake.auth, { room: 'r1' }, 'auth.token is taken out');
    assert.ok(!JSON.stringify(env).includes(token), 'the token is nowhere in the envelope');
    const r = await gw.fetchSockets({ nsp: '/hs', rooms: [s.id] });
    assert.equal(r.sockets.length, 1);
    assert.deepEqual(r.sockets[0].data, claims, 'fetch returns the claims as data');
    s.close();
  });

  it('RS256 and ES256 from jsonwebtoken are admitted with their claims', async () => {
    for (const [nsp, key, algorithm] of [['/rs', rsa.privateKey, 'RS256'], ['/es', ec.privateKey, 'ES256']]) {
      const token = jwt.sign({ sub: `u-${algorithm}` }, key, { algorithm, expiresIn: 60 });
      const s = await gw.connect(nsp, { transports: ['websocket'], auth: { token } });
      assert.equal((await connectEnv(s.id)).claims.sub, `u-${algorithm}`);
      s.close();
    }
  });

  it('refusals: CONNECT_ERROR "invalid token" with the reason, no connect envelope, counted per reason', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = { iss: ISS, aud: AUD, exp: inHour() };
    const sign = (p, o = {}) => jwt.sign(p, SECRET, o);
    const cases = [
      ['/hs', undefined, 'missing'],
      ['/hs', 'not.a.jwt!', 'malformed'],
      ['/hs', assemble({ alg: 'none', typ: 'JWT' }, good, () => Buffer.alloc(0)), 'algorithm'],
      ['/hs', sign(good, { algorithm: 'HS384' }), 'algorithm'],
      // HS256 MACed with the RSA public key's PEM, offered where RS256 is configured
      ['/rs', assemble({ alg: 'HS256' }, { exp: inHour() }, hmac(rsaPem)), 'algorithm'],
      ['/hs', assemble({ alg: 'HS256' }, good, hmac('some-other-secret-of-32-bytes-or-more')), 'signature'],
      ['/hs', sign({ ...good, exp: now - 10 }), 'expired'],
      ['/hs', sign({ ...good, nbf: now + 600 }), 'not_active'],
      ['/hs', sign({ ...good, iss: 'https://evil.test' }), 'issuer'],
      ['/hs', sign({ ...good, aud: ['mail', 'news'] }), 'audience'],
      ['/hs', sign({ iss: ISS, aud: AUD }), 'exp_required'],
      // ES256 in DER, as OpenSSL makes it, not the JWS R||S form
      ['/es', assemble({ alg: 'ES256' }, { exp: inHour() }, (i) => crypto.sign('sha256', Buffer.from(i), ec.privateKey)), 'signature'],
    ];
    const before = {};
    for (const [nsp, , reason] of cases) {
      before[`${nsp} ${reason}`] = await gw.metric('sio_jwt_refused_total', { nsp, reason });
    }
    const jwtConnects = () => sin.all((e) => e.type === 'connect' && ['/hs', '/rs', '/es'].includes(e.nsp)).length;
    const connectsBefore = jwtConnects();
    const count = {};
    for (const [nsp, token, reason] of cases) {
      const err = await refused(nsp, { auth: token === undefined ? {} : { token } });
      assert.equal(err.message, 'invalid token', `${nsp} ${reason}`);
      assert.deepEqual(err.data, { reason }, `${nsp}: ${token}`);
      count[`${nsp} ${reason}`] = (count[`${nsp} ${reason}`] || 0) + 1;
    }
    for (const [k, n] of Object.entries(count)) {
      const [nsp, reason] = k.split(' ');
      assert.equal(await gw.metric('sio_jwt_refused_total', { nsp, reason }), before[k] + n, k);
    }
    // a good token still works after them, and its envelope is the only one they caused
    // (the bus keeps order: any envelope of a refused socket would have come first)
    const s = await gw.connect('/hs', { transports: ['websocket'], auth: { token: sign(good) } });
    await connectEnv(s.id);
    assert.equal(jwtConnects(), connectsBefore + 1, 'refused sockets publish nothing');
    assert.equal(sin.all((e) => e.type === 'disconnect' && e.reason === 'auth refused').length, 0);
    s.close();
  });

  it('query.token: admitted over polling; no namespace of the session shows the token in query or url', async () => {
    const token = jwt.sign({ sub: 'q1' }, SECRET, { expiresIn: 60 });
    const m = gw.manager({ transports: ['polling'], query: { token, other: 'kept' } });
    const q = h.managerSocket(m, '/q');
    const main = h.managerSocket(m, '/');
    await Promise.all([h.awaitConnect(q), h.awaitConnect(main)]);
    const envs = [await connectEnv(q.id), await connectEnv(main.id)];
    for (const env of envs) {
      assert.equal(env.handshake.query.token, undefined, 'query.token removed');
      assert.equal(env.handshake.query.other, 'kept');
      assert.ok(!env.handshake.url.includes('token='), env.handshake.url);
      assert.ok(!JSON.stringify(env).includes(token), 'the token is nowhere in the envelope');
    }
    assert.equal(envs[0].claims.sub, 'q1');
    assert.equal(envs[1].claims, undefined, '"/" has no claims');
    q.close();
    main.close();
    // a token in auth does not count for a query.token namespace
    assert.deepEqual((await refused('/q', { auth: { token } })).data, { reason: 'missing' });
  });

  it('header.authorization: a Bearer token is admitted (leeway, no exp required) and the header hidden', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ sub: 'h1', exp: now - 30 }, SECRET); // 30 s late, leeway is 60 s
    const s = await gw.connect('/hdr', { transports: ['polling'], extraHeaders: { authorization: `Bearer ${token}` } });
    const env = await connectEnv(s.id);
    assert.equal(env.claims.sub, 'h1');
    assert.equal(env.handshake.headers.authorization, undefined);
    s.close();
    const bare = await refused('/hdr', { transports: ['polling'], extraHeaders: { authorization: token } });
    assert.deepEqual(bare.data, { reason: 'malformed' }, 'not a Bearer credential');
    const noExp = jwt.sign({ sub: 'h2' }, SECRET, { noTimestamp: true });
    const s2 = await gw.connect('/hdr', { transports: ['polling'], extraHeaders: { authorization: `bearer ${noExp}` } });
    assert.equal((await connectEnv(s2.id)).claims.sub, 'h2');
    s2.close();
  });
});
