'use strict';
/*
 * socket.io-client helpers: connect with a deadline, and close everything a
 * test opened. Defaults: forceNew (io() caches Managers per URL otherwise, and
 * tests must not share connections by accident), no reconnection (a failure
 * must surface, not loop), a 3 s connect timeout.
 */
const { io, Manager } = require('socket.io-client');
const { withTimeout } = require('./net');

const CONNECT_TIMEOUT_MS = 3000;
const open = new Set(); // sockets and managers to close on teardown

function track(x) {
  open.add(x);
  return x;
}

/* Resolve when `socket` is connected; reject with the connect_error. */
function awaitConnect(socket, timeout = CONNECT_TIMEOUT_MS + 1000) {
  if (socket.connected) return Promise.resolve(socket);
  return withTimeout(
    new Promise((resolve, reject) => {
      const onConnect = () => {
        socket.off('connect_error', onError);
        resolve(socket);
      };
      const onError = (err) => {
        socket.off('connect', onConnect);
        reject(err);
      };
      socket.once('connect', onConnect);
      socket.once('connect_error', onError);
    }),
    timeout,
    `socket.io connect to ${socket.io.uri}${socket.nsp}`,
  );
}

/*
 * io(url, opts) and wait for 'connect'. url may include the namespace
 * (`${gw.url}/chat`). Rejects with the connect_error (e.g. "Invalid namespace").
 */
async function connectClient(url, opts = {}) {
  return awaitConnect(openClient(url, opts));
}

/*
 * io(url, opts) with the same defaults, tracked, not awaited: for sockets whose
 * CONNECT is answered later (auth: backend) or refused (connect_error).
 */
function openClient(url, opts = {}) {
  return track(io(url, { forceNew: true, reconnection: false, timeout: CONNECT_TIMEOUT_MS, ...opts }));
}

/* A tracked Manager (for several namespaces over one connection). */
function newManager(url, opts = {}) {
  return track(new Manager(url, { reconnection: false, timeout: CONNECT_TIMEOUT_MS, ...opts }));
}

/* A tracked socket created from a Manager (not yet awaited). */
function managerSocket(manager, nsp, opts = {}) {
  return track(manager.socket(nsp, opts));
}

function closeOne(x) {
  try {
    if (x instanceof Manager) {
      if (typeof x._close === 'function') x._close();
      else if (x.engine) x.engine.close();
    } else {
      x.disconnect();
      if (x.io && x.io.engine) x.io.engine.close();
    }
  } catch {
    /* already closed */
  }
}

function originOf(u) {
  try {
    return new URL(u).origin;
  } catch {
    return null;
  }
}

/* Close every tracked socket/manager connected to baseUrl's origin (all if omitted). */
function closeAllClients(baseUrl) {
  const want = baseUrl ? originOf(baseUrl) : null;
  for (const x of [...open]) {
    const uri = x instanceof Manager ? x.uri : x.io && x.io.uri;
    if (want && uri && originOf(uri) !== want) continue;
    closeOne(x);
    open.delete(x);
  }
}

/* Resolve with the args of the next `event` on socket (rejects on timeout). */
function once(socket, event, timeout = 3000) {
  return withTimeout(
    new Promise((resolve) => socket.once(event, (...args) => resolve(args))),
    timeout,
    `event "${event}"`,
  );
}

/* Record every (event, args) a socket receives; for presence/absence checks. */
function recorder(socket) {
  const events = [];
  socket.onAny((event, ...args) => events.push({ event, args }));
  return {
    events,
    of: (name) => events.filter((e) => e.event === name).map((e) => e.args),
  };
}

module.exports = {
  io,
  Manager,
  CONNECT_TIMEOUT_MS,
  connectClient,
  openClient,
  awaitConnect,
  newManager,
  managerSocket,
  closeAllClients,
  once,
  recorder,
};
