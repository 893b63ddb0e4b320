import { pbkdf2 as pbkdf2Callback, randomInt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { type Algorithm, hashRaw, type Version } from '@node-rs/argon2';
import type { Config } from '../config.js';
import { DependencyError } from './errors.js';
import type { PasswordHasher } from './ports.js';

/*
 * Django-compatible password hashes (reference/meiduo-contract.md §9a), so that Django and this
 * service verify each other's rows in a shared tb_users:
 *   argon2$argon2id$v=19$m=…,t=…,p=…$<salt b64, no padding>$<hash b64, no padding>
 *   pbkdf2_sha256$<iterations>$<salt>$<base64 hash>   (and pbkdf2_sha1 for verification)
 * Both algorithms run off the event loop: on libuv's thread pool by default, in the service on
 * the CPU pool's lowered-priority threads (HashEngine, deps.ts); a FIFO semaphore caps how many run at once so a burst of logins cannot take every pool
 * thread from the rest of the process (DNS, file I/O, other hashes).
 */

export type HasherOptions = Pick<
  Config,
  | 'PASSWORD_HASHER'
  | 'ARGON2_MEMORY_KIB'
  | 'ARGON2_TIME_COST'
  | 'ARGON2_PARALLELISM'
  | 'PBKDF2_ITERATIONS'
  | 'HASH_CONCURRENCY'
> &
  Partial<Pick<Config, 'ARGON2_HASH_BYTES'>>;

/** Test hook: called as each hash computation starts, with how many are running including it. */
export interface HasherProbe {
  onComputeStart?(running: number): void;
}

const pbkdf2 = promisify(pbkdf2Callback);

/** argon2-cffi ≥ 21.2's DEFAULT_HASH_LENGTH (21.1, Debian 12's, uses 16); Django passes it through. */
const DEFAULT_ARGON2_HASH_BYTES = 32;
/** Django's salt alphabet (get_random_string) and salt entropy (3.2+: 128 bits → 22 chars). */
const SALT_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SALT_ENTROPY_BITS = 128;
const SALT_LENGTH = Math.ceil(SALT_ENTROPY_BITS / Math.log2(SALT_CHARS.length));
/** Stored costs above these are refused rather than computed (a corrupt row must not eat the host). */
const MAX_ARGON2_MEMORY_KIB = 4_194_304;
const MAX_ARGON2_TIME_COST = 1000;
const MAX_ARGON2_PARALLELISM = 255;
const MAX_PBKDF2_ITERATIONS = 100_000_000;

const ARGON2_TYPES = { argon2d: 0, argon2i: 1, argon2id: 2 } as const;
type Argon2Type = keyof typeof ARGON2_TYPES;
const ARGON2_VERSIONS: Record<number, Version> = { 16: 0 as Version, 19: 1 as Version };

export interface Argon2Hash {
  kind: 'argon2';
  type: Argon2Type;
  version: number;
  memoryKib: number;
  timeCost: number;
  parallelism: number;
  salt: Buffer;
  hash: Buffer;
}

export interface Pbkdf2Hash {
  kind: 'pbkdf2_sha256' | 'pbkdf2_sha1';
  iterations: number;
  salt: string;
  hash: Buffer;
}

type ParsedHash = Argon2Hash | Pbkdf2Hash;

/** A FIFO counting semaphore: a released slot passes straight to the longest waiter. */
export function createSemaphore(limit: number): { run<T>(task: () => Promise<T>): Promise<T> } {
  let active = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active < limit) active++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await task();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}

/** Django's get_random_string over [a-zA-Z0-9], unbiased. */
export function randomSalt(length = SALT_LENGTH): string {
  let salt = '';
  for (let i = 0; i < length; i++) salt += SALT_CHARS[randomInt(SALT_CHARS.length)];
  return salt;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(text: string): Buffer | null {
  return B64.test(text) ? Buffer.from(text, 'base64') : null;
}

function positiveInt(text: string | undefined, max: number): number | null {
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text)) return null;
  const n = Number(text);
  return n <= max ? n : null;
}

function parseArgon2(rest: string): Argon2Hash | null {
  // `argon2$` + argon2-cffi's `$argon2id$v=19$m=…,t=…,p=…$salt$hash`; hashes older than
  // argon2 1.3 carry no `v=` (version 16).
  const parts = rest.split('$');
  if (parts[0] !== '') return null;
  const type = parts[1] as Argon2Type;
  if (!Object.hasOwn(ARGON2_TYPES, type)) return null;
  let i = 2;
  let version = 16;
  const v = /^v=(\d+)$/.exec(parts[i] ?? '');
  if (v) {
    version = Number(v[1]);
    i++;
  }
  if (ARGON2_VERSIONS[version] === undefined || parts.length !== i + 3) return null;
  const params = new Map((parts[i] ?? '').split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const memoryKib = positiveInt(params.get('m'), MAX_ARGON2_MEMORY_KIB);
  const timeCost = positiveInt(params.get('t'), MAX_ARGON2_TIME_COST);
  const parallelism = positiveInt(params.get('p'), MAX_ARGON2_PARALLELISM);
  const salt = decodeBase64(parts[i + 1] ?? '');
  const hash = decodeBase64(parts[i + 2] ?? '');
  if (memoryKib === null || timeCost === null || parallelism === null || !salt || !hash) return null;
  if (salt.length < 8 || hash.length < 4) return null;
  return { kind: 'argon2', type, version, memoryKib, timeCost, parallelism, salt, hash };
}

function parsePbkdf2(kind: Pbkdf2Hash['kind'], rest: string): Pbkdf2Hash | null {
  const parts = rest.split('$');
  if (parts.length !== 3) return null;
  const iterations = positiveInt(parts[0], MAX_PBKDF2_ITERATIONS);
  const salt = parts[1] ?? '';
  const hash = decodeBase64(parts[2] ?? '');
  if (iterations === null || salt === '' || !hash) return null;
  return { kind, iterations, salt, hash };
}

/** Splits a stored hash by Django's algorithm prefix; null for unusable or unknown ones. */
function parse(encoded: string): ParsedHash | null {
  const dollar = encoded.indexOf('$');
  if (dollar < 0) return null;
  const algorithm = encoded.slice(0, dollar);
  const rest = encoded.slice(dollar + 1);
  if (algorithm === 'argon2') return parseArgon2(`$${rest}`);
  if (algorithm === 'pbkdf2_sha256' || algorithm === 'pbkdf2_sha1') return parsePbkdf2(algorithm, rest);
  return null;
}

function unpadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

function argon2Raw(password: string, h: Omit<Argon2Hash, 'kind' | 'hash'>, length: number): Promise<Buffer> {
  return hashRaw(Buffer.from(password, 'utf8'), argon2Options(h, length));
}

function pbkdf2Raw(
  password: string,
  kind: Pbkdf2Hash['kind'],
  iterations: number,
  salt: string,
): Promise<Buffer> {
  const { digest, length } = pbkdf2Options(kind);
  return pbkdf2(Buffer.from(password, 'utf8'), Buffer.from(salt, 'utf8'), iterations, length, digest);
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Django's must_update_salt: a salt of its alphabet shorter than the entropy asks (22 chars). */
function weakSalt(length: number): boolean {
  return length * Math.log2(SALT_CHARS.length) < SALT_ENTROPY_BITS;
}

/** Where the key derivations run: libuv's threads by default, a CPU pool in the service (deps.ts). */
export interface HashEngine {
  argon2(password: string, h: Omit<Argon2Hash, 'kind' | 'hash'>, length: number): Promise<Buffer>;
  pbkdf2(password: string, kind: Pbkdf2Hash['kind'], iterations: number, salt: string): Promise<Buffer>;
}

export const libuvHashEngine: HashEngine = { argon2: argon2Raw, pbkdf2: pbkdf2Raw };

/** The argon2 options @node-rs/argon2 takes for a parsed or configured hash. */
export function argon2Options(h: Omit<Argon2Hash, 'kind' | 'hash'>, length: number) {
  return {
    algorithm: ARGON2_TYPES[h.type] as Algorithm,
    version: ARGON2_VERSIONS[h.version] as Version,
    memoryCost: h.memoryKib,
    timeCost: h.timeCost,
    parallelism: h.parallelism,
    outputLen: length,
    salt: h.salt,
  };
}

/** The pbkdf2 digest and key length of a Django PBKDF2 algorithm. */
export function pbkdf2Options(kind: Pbkdf2Hash['kind']): { digest: string; length: number } {
  return kind === 'pbkdf2_sha256' ? { digest: 'sha256', length: 32 } : { digest: 'sha1', length: 20 };
}

export function createPasswordHasher(
  options: HasherOptions,
  probe: HasherProbe = {},
  engine: HashEngine = libuvHashEngine,
): PasswordHasher {
  const semaphore = createSemaphore(options.HASH_CONCURRENCY);
  const argon2HashBytes = options.ARGON2_HASH_BYTES ?? DEFAULT_ARGON2_HASH_BYTES;
  let running = 0;
  const compute = (task: () => Promise<Buffer>): Promise<Buffer> =>
    semaphore.run(async () => {
      running++;
      probe.onComputeStart?.(running);
      try {
        return await task();
      } finally {
        running--;
      }
    });

  const configuredArgon2 = {
    type: 'argon2id' as const,
    version: 19,
    memoryKib: options.ARGON2_MEMORY_KIB,
    timeCost: options.ARGON2_TIME_COST,
    parallelism: options.ARGON2_PARALLELISM,
  };

  async function hash(password: string): Promise<string> {
    const salt = randomSalt();
    if (options.PASSWORD_HASHER === 'pbkdf2_sha256') {
      const iterations = options.PBKDF2_ITERATIONS;
      const key = await compute(() => engine.pbkdf2(password, 'pbkdf2_sha256', iterations, salt));
      return `pbkdf2_sha256$${iterations}$${salt}$${key.toString('base64')}`;
    }
    // As Django: its own salt string is the salt's bytes.
    const params = { ...configuredArgon2, salt: Buffer.from(salt, 'utf8') };
    const key = await compute(() => engine.argon2(password, params, argon2HashBytes));
    const { memoryKib: m, timeCost: t, parallelism: p } = params;
    return `argon2$argon2id$v=19$m=${m},t=${t},p=${p}$${unpadded(params.salt)}$${unpadded(key)}`;
  }

  /** Django's must_update: another algorithm than configured, other costs, or a short salt. */
  function mustUpdate(h: ParsedHash): boolean {
    if (h.kind !== options.PASSWORD_HASHER) return true;
    if (h.kind === 'argon2') {
      return (
        h.type !== configuredArgon2.type ||
        h.version !== configuredArgon2.version ||
        h.memoryKib !== configuredArgon2.memoryKib ||
        h.timeCost !== configuredArgon2.timeCost ||
        h.parallelism !== configuredArgon2.parallelism ||
        h.hash.length !== argon2HashBytes ||
        weakSalt(h.salt.length)
      );
    }
    return h.iterations !== options.PBKDF2_ITERATIONS || weakSalt(h.salt.length);
  }

  async function verify(password: string, encoded: string): Promise<{ ok: boolean; mustUpdate: boolean }> {
    const h = encoded.startsWith('!') ? null : parse(encoded);
    // An unusable or unreadable hash costs what a wrong password costs, so that the answer's
    // timing does not tell such accounts apart.
    const refuse = async () => {
      await hash(password);
      return { ok: false, mustUpdate: false };
    };
    if (!h) return refuse();
    let derived: Buffer;
    try {
      derived =
        h.kind === 'argon2'
          ? await compute(() => engine.argon2(password, h, h.hash.length))
          : await compute(() => engine.pbkdf2(password, h.kind, h.iterations, h.salt));
    } catch (err) {
      // The pool is gone (503), not the row.
      if (err instanceof DependencyError) throw err;
      // Parameters the library refuses (e.g. m < 8·p): no password can match this row.
      return refuse();
    }
    return { ok: sameBytes(derived, h.hash), mustUpdate: mustUpdate(h) };
  }

  return {
    hash,
    verify,
    async burn(password: string): Promise<void> {
      await hash(password);
    },
  };
}
