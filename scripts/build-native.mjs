/**
 * npm's install step (package.json "install"): builds the native addons with npm's own node-gyp
 * and checks each in a child process:
 * - native/pbkdf2, PBKDF2-HMAC-SHA256 (src/adapters/fast-pbkdf2.ts), against node:crypto;
 * - native/jpeg, the captcha's JPEG encoder on Debian's libturbojpeg (src/adapters/fast-jpeg.ts).
 * It never fails the install: without a compiler, headers, Python or libturbojpeg0-dev the
 * service still runs (PBKDF2 on node:crypto at about half the speed, JPEG by Skia), and one
 * warning line per addon says why.
 * By hand: `npm run install` (or `node scripts/build-native.mjs`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

const ADDONS = [
  {
    name: 'pbkdf2',
    what: 'fast PBKDF2',
    fallback: 'PBKDF2 falls back to node:crypto',
    check: (built) => `const { pbkdf2Sha256 } = require(${JSON.stringify(built)});
     const key = pbkdf2Sha256(Buffer.from('password'), Buffer.from('salt'), 4096, 32).toString('hex');
     const want = require('node:crypto').pbkdf2Sync('password', 'salt', 4096, 32, 'sha256').toString('hex');
     if (key !== want) { console.error('wrong key: ' + key); process.exit(1); }`,
  },
  {
    name: 'jpeg',
    what: 'fast JPEG',
    fallback:
      'captchas are encoded by Skia (Debian: apt-get install libturbojpeg0-dev, then npm run install)',
    // A 16×8 grey picture: a whole JPEG comes back (SOI … EOI).
    check: (built) => `const { encodeRgba } = require(${JSON.stringify(built)});
     const jpeg = encodeRgba(new Uint8Array(16 * 8 * 4).fill(128), 16, 8, 85);
     if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8 || jpeg.at(-2) !== 0xff || jpeg.at(-1) !== 0xd9) {
       console.error('not a JPEG'); process.exit(1);
     }`,
  },
];

for (const addon of ADDONS) {
  const dir = fileURLToPath(new URL(`../native/${addon.name}/`, import.meta.url));
  const built = join(dir, `build/Release/${addon.name}.node`);
  const fail = (reason) => {
    rmSync(built, { force: true });
    console.warn(`${addon.what} not built: ${reason}; ${addon.fallback}`);
  };
  const build = spawnSync(gyp ? process.execPath : 'node-gyp', gyp ? [gyp, ...args] : args, {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
  if (build.error) {
    fail(`could not run node-gyp (${build.error.message})`);
    continue;
  }
  if (build.status !== 0) {
    fail(
      `node-gyp exited with ${build.status ?? build.signal}: ${reasonOf(`${build.stdout}\n${build.stderr}`)}`,
    );
    continue;
  }
  // Loaded in a child process, so that even a broken build cannot crash the install.
  const check = spawnSync(process.execPath, ['-e', addon.check(built)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (check.status !== 0) {
    fail(`the built addon does not work: ${reasonOf(check.stderr || String(check.signal))}`);
    continue;
  }
  console.log(`${addon.what} built: native/${addon.name}/build/Release/${addon.name}.node`);
}
