'use strict';
/*
 * A soak through a load balancer: socket.io clients (polling-only, and default ones
 * that upgrade to websocket) send events with acks that a backend answers, and
 * receive the backend's broadcasts, for `ms` milliseconds. Every failure is collected:
 * connect errors, disconnects, ack timeouts, wrong answers, a transport that did not
 * end as asked, a broadcast missed or received twice.
 *
 *   const r = await soak({url, backend: {events(fn), reply(topic, env), broadcast(env)},
 *                         clients: {polling: 10, websocket: 10}, ms: 15000});
 *   r.errors (strings), r.acked, r.missedBroadcasts, r.summary
 */
const h = require('./gateway');

function pct(v, p) {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function soak({ url, backend, clients: { polling = 10, websocket = 10 } = {}, ms = 15000, nsp = '/' }) {
  const errors = [];
  /* the backend answers every "q" with what it asked, plus who answered */
  backend.events((env) => {
    if (env.type === 'event' && env.event === 'q' && env.ack) {
      backend.reply(env.ack.reply_to, { type: 'ack', id: env.ack.id, data: [{ n: env.data[0].n, sid: env.sid }] });
    }
  });
  const kinds = [...Array(polling).fill('polling'), ...Array(websocket).fill('websocket')];
  const sockets = kinds.map((kind) =>
    h.openClient(`${url}${nsp === '/' ? '' : nsp}`, {
      transports: kind === 'polling' ? ['polling'] : ['polling', 'websocket'],
      reconnection: false,
    }),
  );
  const got = sockets.map(() => []);
  sockets.forEach((s, i) => {
    s.on('connect_error', (e) => errors.push(`client ${i} (${kinds[i]}): connect_error ${e.message}`));
    s.on('disconnect', (why) => errors.push(`client ${i} (${kinds[i]}): disconnect ${why}`));
    s.on('b', (n) => got[i].push(n));
  });
  await Promise.all(sockets.map((s) => h.once(s, 'connect', 10000)));
  /* upgrades settle before the clock starts */
  await h.waitFor(
    () => sockets.every((s, i) => kinds[i] === 'polling' || s.io.engine.transport.name === 'websocket'),
    10000,
    { message: 'the default clients upgraded' },
  );
  const lat = { polling: [], websocket: [] };
  let acked = 0;
  let sent = 0;
  const end = Date.now() + ms;
  const loops = sockets.map(async (s, i) => {
    for (let n = 0; Date.now() < end && s.connected; n++) {
      const t0 = process.hrtime.bigint();
      try {
        const a = await s.timeout(5000).emitWithAck('q', { n });
        if (!a || a.n !== n || a.sid !== s.id) errors.push(`client ${i}: wrong ack ${JSON.stringify(a)} for ${n}`);
        else acked++;
        lat[kinds[i]].push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (e) {
        errors.push(`client ${i} (${kinds[i]}): ack ${n}: ${e.message}`);
      }
    }
  });
  const broadcasts = (async () => {
    while (Date.now() < end) {
      backend.broadcast({ type: 'emit', nsp, event: 'b', data: [sent++] });
      await h.waitFor(() => Date.now() >= end || got.every((g) => g.length >= sent), 5000, {
        message: `broadcast ${sent - 1} reached every client`,
      }).catch((e) => errors.push(e.message));
      await new Promise((r) => setTimeout(r, 200)); /* a pace, not a wait for a condition */
    }
  })();
  await Promise.all([...loops, broadcasts]);
  await h.waitFor(() => got.every((g) => g.length >= sent), 5000, { message: 'the last broadcast' }).catch(() => {});
  let missedBroadcasts = 0;
  got.forEach((g, i) => {
    const want = [...Array(sent).keys()];
    if (JSON.stringify(g) !== JSON.stringify(want)) {
      missedBroadcasts++;
      errors.push(`client ${i} (${kinds[i]}): broadcasts ${JSON.stringify(g.slice(0, 20))}... of ${sent}`);
    }
  });
  sockets.forEach((s, i) => {
    const want = kinds[i] === 'polling' ? 'polling' : 'websocket';
    if (s.connected && s.io.engine.transport.name !== want) errors.push(`client ${i}: transport ${s.io.engine.transport.name}`);
  });
  for (const s of sockets) s.removeAllListeners('disconnect');
  for (const s of sockets) s.close();
  return {
    errors,
    acked,
    missedBroadcasts,
    summary: {
      acked,
      broadcasts: sent,
      ack_ms_p50: { polling: pct(lat.polling, 50), websocket: pct(lat.websocket, 50) },
      ack_ms_p99: { polling: pct(lat.polling, 99), websocket: pct(lat.websocket, 99) },
    },
  };
}

module.exports = { soak };
