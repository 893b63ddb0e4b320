/**
 * npm's install step (package.json "install"): builds native/pbkdf2, the PBKDF2-HMAC-SHA256 addon
 * (src/adapters/fast-pbkdf2.ts), with npm's own node-gyp, then checks it against node:crypto.
 * It never fails the install: without a compiler, headers or Python the service still runs,
 * with PBKDF2 on node:crypto (about half the speed), and one warning line says why.
 * By hand: `npm run install` (or `node scripts/build-native.mjs`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../native/pbkdf2/', import.meta.url));
const built = join(dir, 'build/Release/pbkdf2.node');

function fail(reason) {
  rmSync(built, { force: true });
  console.warn(`fast PBKDF2 not built: ${reason}; PBKDF2 falls back to node:crypto`);
  process.exit(0);
}

/** What went wrong, from node-gyp's output: its summary and the last line of the tool that failed. */
function reasonOf(output) {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const summary = lines.find((line) => line.startsWith('gyp ERR! stack Error:'))?.slice(22);
  const cause = lines.findLast(
    (line) => !/^(gyp |make: \*\*\*)/.test(line) && /error|not found|no such file/i.test(line),
  );
  return [summary, cause && `(${cause})`].filter(Boolean).join(' ') || (lines.at(-1) ?? 'no output');
}

// In a lifecycle script npm names its bundled node-gyp here (and puts it on PATH); by hand,
// the node-gyp of the npm installed beside this node, else one on PATH.
const prefix = dirname(dirname(process.execPath));
const bundled = join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
const gyp = process.env.npm_config_node_gyp || (existsSync(bundled) ? bundled : undefined);
const args = ['rebuild'];
// Headers installed beside this node (Debian's nodejs-dev, or a tarball install) spare a download.
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const build = spawnSync(gyp ? process.execPath : 'node-gyp', gyp ? [gyp, ...args] : args, {
  cwd: dir,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  timeout: 300_000,
});
if (build.error) fail(`could not run node-gyp (${build.error.message})`);
if (build.status !== 0)
  fail(
    `node-gyp exited with ${build.status ?? build.signal}: ${reasonOf(`${build.stdout}\n${build.stderr}`)}`,
  );

// Loaded in a child process, so that even a broken build cannot crash the install.
const check = spawnSync(
  process.execPath,
  [
    '-e',
    `const { pbkdf2Sha256 } = require(${JSON.stringify(built)});
     const key = pbkdf2Sha256(Buffer.from('password'), Buffer.from('salt'), 4096, 32).toString('hex');
     const want = require('node:crypto').pbkdf2Sync('password', 'salt', 4096, 32, 'sha256').toString('hex');
     if (key !== want) { console.error('wrong key: ' + key); process.exit(1); }`,
  ],
  { encoding: 'utf8', timeout: 60_000 },
);
if (check.status !== 0)
  fail(`the built addon does not work: ${reasonOf(check.stderr || String(check.signal))}`);
console.log('fast PBKDF2 built: native/pbkdf2/build/Release/pbkdf2.node');
