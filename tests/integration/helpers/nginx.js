'use strict';
/*
 * nginx on 127.0.0.1 in front of gateway ports, as a load balancer:
 *   balance: 'sticky'       a consistent hash of the x-sticky request header (what
 *                           ip_hash does by client address, which on loopback is one)
 *   balance: 'round-robin'  nginx's default: each request to the next node, no affinity
 * backup: ports used only while the others fail (connection refused, or with
 * retry503 a 503: how a balancer takes a draining node out). Websocket upgrades are
 * passed through. NGINX_BIN, else the Debian package's binary;
 * NGINX is undefined when neither exists (tests skip). Returns {url, stop()}.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const h = require('./gateway');

const NGINX = [process.env.NGINX_BIN, '/usr/sbin/nginx'].find((p) => p && fs.existsSync(p));

async function startNginx(ports, { balance = 'sticky', backup = [], retry503 = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siogw-nginx-'));
  const port = await h.freePort();
  const conf = `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream gateways {
${balance === 'sticky' ? '    hash $http_x_sticky consistent;\n' : ''}${ports.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
${backup.map((p) => `    server 127.0.0.1:${p} backup;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 60s;
      proxy_next_upstream ${retry503 ? 'error http_503' : 'off'};
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const proc = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const kill = () => proc.exitCode === null && proc.kill('SIGKILL');
  process.on('exit', kill);
  let stderr = '';
  proc.stderr.on('data', (c) => (stderr += c));
  const url = `http://127.0.0.1:${port}`;
  await h.waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return (await h.httpRequest(`${url}/healthz`, { timeout: 500 })).status === 200;
    },
    5000,
    { message: 'nginx up' },
  );
  return {
    url,
    errorLog: () => {
      try {
        return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(kill, 3000);
        await exited;
        clearTimeout(t);
      }
      process.off('exit', kill);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startNginx, NGINX };
