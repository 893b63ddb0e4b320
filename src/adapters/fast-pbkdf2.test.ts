import { pbkdf2Sync, randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { has } from '../../test/backends.js';
import { FAST_PBKDF2_PATH, fastPbkdf2Available, fastPbkdf2Status, pbkdf2Sha256 } from './fast-pbkdf2.js';

const hex = (key: Uint8Array) => Buffer.from(key).toString('hex');
const bytes = (text: string) => Buffer.from(text, 'utf8');

// Published PBKDF2-HMAC-SHA256 vectors: RFC 7914 §11 (dkLen 64) and the widely used
// RFC 6070-style ones for SHA-256 (Stack Overflow 5130513, Go's and Python's test suites).
const VECTORS: Array<[string, string, number, number, string]> = [
  [
    'passwd',
    'salt',
    1,
    64,
    '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783',
  ],
  [
    'Password',
    'NaCl',
    80000,
    64,
    '4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d',
  ],
  ['password', 'salt', 1, 32, '120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b'],
  ['password', 'salt', 2, 32, 'ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43'],
  ['password', 'salt', 4096, 32, 'c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a'],
  [
    'passwordPASSWORDpassword',
    'saltSALTsaltSALTsaltSALTsaltSALTsalt',
    4096,
    40,
    '348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9',
  ],
  ['pass\0word', 'sa\0lt', 4096, 16, '89b69d0516f829893c696226650a8687'],
];

/** The key of a Django pbkdf2_sha256 string, recomputed. */
function djangoKey(encoded: string, password: string): string {
  const [, iterations, salt] = encoded.split('$');
  return pbkdf2Sha256(bytes(password), bytes(salt ?? ''), Number(iterations), 32).toString('base64');
}

describe(`PBKDF2-HMAC-SHA256 (${fastPbkdf2Available ? 'native addon' : `node:crypto; addon ${fastPbkdf2Status}`})`, () => {
  it.each(VECTORS)('%j / %j, c=%i, dkLen=%i', (password, salt, iterations, keyLength, expected) => {
    expect(hex(pbkdf2Sha256(bytes(password), bytes(salt), iterations, keyLength))).toBe(expected);
  });

  it('reproduces Django hashes (reference/meiduo-contract.md §9a; Debian Django 3.2.25 make_password)', () => {
    const contract = 'pbkdf2_sha256$150000$abcdefghijkl$nDU0wDvR355BYS/PvxK+O/3Ka8vkQL0niZ9qLth/2uA=';
    expect(djangoKey(contract, '12345678')).toBe(contract.split('$')[3]);
    const debian = 'pbkdf2_sha256$260000$Xq3bT9vLkP2mN8rW4sY6zA$rOzvraXGdgaE11KE4gqCBiX3D0bm19THT5tlQ4AZA94=';
    expect(djangoKey(debian, '密码 correct horse')).toBe(debian.split('$')[3]);
  });

  it('equals node:crypto over random passwords, salts, iterations and lengths, around the block size', () => {
    const lengths = [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 100, 119, 120, 1000];
    const passwords = [
      Buffer.alloc(0),
      bytes('密码🔑пароль'),
      ...lengths.map((n) => randomBytes(n)),
      ...Array.from({ length: 240 }, () => randomBytes(randomInt(0, 200))),
    ];
    passwords.forEach((password, i) => {
      const salt = i % 3 === 0 ? randomBytes(lengths[i % lengths.length] ?? 0) : bytes(`salt${i}盐`);
      const iterations = i % 10 === 9 ? 1000 : 1 + (i % 5);
      const keyLength = [32, 32, 20, 64, 65, 1, 97][i % 7] ?? 32;
      const want = pbkdf2Sync(password, salt, iterations, keyLength, 'sha256');
      expect(hex(pbkdf2Sha256(password, salt, iterations, keyLength)), `case ${i}`).toBe(hex(want));
    });
  });
});

describe.skipIf(!(await has('pbkdf2-addon')))('the native PBKDF2 addon', () => {
  it('is the one in use', () => {
    expect(fastPbkdf2Status).toBe('loaded');
  });

  it('throws on bad arguments instead of crashing', () => {
    const { pbkdf2Sha256: raw } = createRequire(import.meta.url)(FAST_PBKDF2_PATH) as {
      pbkdf2Sha256: (...args: unknown[]) => Buffer;
    };
    const ok: unknown[] = [Buffer.from('p'), Buffer.from('s'), 1, 32];
    const bad: Array<[number, unknown, ErrorConstructor]> = [
      [0, 'password', TypeError],
      [0, null, TypeError],
      [1, 42, TypeError],
      [1, undefined, TypeError],
      [2, '1000', TypeError],
      [2, 0, RangeError],
      [2, -1, RangeError],
      [2, 1.5, RangeError],
      [2, Number.NaN, RangeError],
      [2, 2 ** 32, RangeError],
      [3, 0, RangeError],
      [3, 2 ** 31, RangeError],
      [3, Number.POSITIVE_INFINITY, RangeError],
      [3, 32n, TypeError],
    ];
    for (const [at, value, type] of bad) {
      const args = [...ok];
      args[at] = value;
      expect(() => raw(...args), `argument ${at} = ${String(value)}`).toThrow(type);
    }
    expect(() => raw(Buffer.from('p'), Buffer.from('s'), 1)).toThrow(TypeError);
    expect(hex(raw(new Uint8Array([112]), new Uint8Array([115]), 1, 32))).toBe(hex(raw(...ok)));
  });

  it('loads and computes in worker threads beside the main thread (context-aware)', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { pbkdf2Sha256 } = require(workerData);
      parentPort.postMessage(pbkdf2Sha256(Buffer.from('password'), Buffer.from('salt'), 4096, 32).toString('hex'));`;
    const inThread = () =>
      new Promise<string>((resolve, reject) => {
        const worker = new Worker(code, { eval: true, workerData: FAST_PBKDF2_PATH });
        worker.once('message', (key: string) => {
          resolve(key);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    const keys = await Promise.all([inThread(), inThread()]);
    expect(keys).toEqual([VECTORS[4]?.[4], VECTORS[4]?.[4]]);
  });
});
