'use strict';
/*
 * Python clients this project did not write (Debian's python3-socketio, requests):
 * /usr/bin/python3 (Debian's, where those packages live), not a python3 earlier on PATH.
 *   pyOk: whether the packages are there; runPy(script, args): the script's last stdout
 *   line as JSON (scripts in tests/integration/python/).
 */
const path = require('node:path');
const { execFile, execFileSync } = require('node:child_process');

const PY = '/usr/bin/python3';

function has(modules) {
  try {
    execFileSync(PY, ['-c', `import ${modules}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const pyOk = has('socketio, requests, aiohttp, websocket');

function runPy(script, args, timeout = 20000) {
  return new Promise((resolve, reject) => {
    execFile(PY, [path.join(__dirname, '..', 'python', script), ...args], { timeout }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} ${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

module.exports = { PY, pyOk, has, runPy };
