import { describe, expect, it } from 'vitest';
import { createPasswordHasher, createSemaphore, type HasherOptions } from './password.js';

// Low costs keep the suite fast; the vectors carry their own (real) costs.
const cheapArgon2: HasherOptions = {
  PASSWORD_HASHER: 'argon2',
  ARGON2_MEMORY_KIB: 1024,
  ARGON2_TIME_COST: 1,
  ARGON2_PARALLELISM: 1,
  PBKDF2_ITERATIONS: 1000,
  HASH_CONCURRENCY: 2,
};
const cheapPbkdf2: HasherOptions = { ...cheapArgon2, PASSWORD_HASHER: 'pbkdf2_sha256' };

// reference/meiduo-contract.md §9a: Django 2.2-era PBKDF2 row and a Django 3.2 + argon2-cffi
// 21.1 argon2 row, both of the password 12345678.
const DJANGO_PBKDF2 = 'pbkdf2_sha256$150000$abcdefghijkl$nDU0wDvR355BYS/PvxK+O/3Ka8vkQL0niZ9qLth/2uA=';
const DJANGO_ARGON2 =
  'argon2$argon2id$v=19$m=102400,t=2,p=8$VGZFMGk5NTJoeDhVYXNPNGVvSzNlMw$qBAIGfvKQmDT9amrPWAdsQ';

describe('password hasher: Django vectors', () => {
  it('verifies the Django PBKDF2 vector and asks for an update (old iterations, 12-char salt)', async () => {
    const hasher = createPasswordHasher({ ...cheapPbkdf2, PBKDF2_ITERATIONS: 150_000 });
    // Same iterations as configured, but the 12-char salt has < 128 bits: Django updates it.
    expect(await hasher.verify('12345678', DJANGO_PBKDF2)).toEqual({ ok: true, mustUpdate: true });
    expect((await hasher.verify('12345679', DJANGO_PBKDF2)).ok).toBe(false);
  });

  it('verifies the Django argon2 vector with its stored m/t/p and 16-byte hash', async () => {
    const hasher = createPasswordHasher({
      ...cheapArgon2,
      ARGON2_MEMORY_KIB: 102_400,
      ARGON2_TIME_COST: 2,
      ARGON2_PARALLELISM: 8,
    });
    // Same m/t/p as configured, but its 16-byte hash differs from our 32: update.
    expect(await hasher.verify('12345678', DJANGO_ARGON2)).toEqual({ ok: true, mustUpdate: true });
    expect((await hasher.verify('1234567', DJANGO_ARGON2)).ok).toBe(false);
  });
});

describe('password hasher: formats it writes', () => {
  it('argon2: Django layout, a 22-char alphanumeric salt as the salt bytes, 32-byte hash', async () => {
    const hasher = createPasswordHasher(cheapArgon2);
    const encoded = await hasher.hash('s3cret-pass');
    const m = /^argon2\$argon2id\$v=19\$m=1024,t=1,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(encoded);
    expect(m).not.toBeNull();
    const salt = Buffer.from(m?.[1] ?? '', 'base64').toString('utf8');
    expect(salt).toMatch(/^[a-zA-Z0-9]{22}$/);
    expect(Buffer.from(m?.[2] ?? '', 'base64')).toHaveLength(32);
    expect(await hasher.verify('s3cret-pass', encoded)).toEqual({ ok: true, mustUpdate: false });
    expect(await hasher.verify('s3cret-Pass', encoded)).toEqual({ ok: false, mustUpdate: false });
  });

  it('pbkdf2_sha256: Django layout with padded base64 of 32 bytes', async () => {
    const hasher = createPasswordHasher(cheapPbkdf2);
    const encoded = await hasher.hash('密码 with unicode');
    expect(encoded).toMatch(/^pbkdf2_sha256\$1000\$[a-zA-Z0-9]{22}\$[A-Za-z0-9+/]{43}=$/);
    expect(await hasher.verify('密码 with unicode', encoded)).toEqual({ ok: true, mustUpdate: false });
    expect((await hasher.verify('密码 with unicodf', encoded)).ok).toBe(false);
  });

  it('two hashes of one password differ (fresh salt each time)', async () => {
    const hasher = createPasswordHasher(cheapArgon2);
    const [a, b] = await Promise.all([hasher.hash('same-password'), hasher.hash('same-password')]);
    expect(a).not.toBe(b);
  });
});

describe('password hasher: verification of every stored kind', () => {
  it('argon2i and argon2id rows with any stored cost verify', async () => {
    const writer = createPasswordHasher({ ...cheapArgon2, ARGON2_MEMORY_KIB: 2048, ARGON2_TIME_COST: 2 });
    const id = await writer.hash('pw-12345678');
    const reader = createPasswordHasher(cheapArgon2);
    expect(await reader.verify('pw-12345678', id)).toEqual({ ok: true, mustUpdate: true });
    // An argon2i row (Django < 1.11 default type) of the same password: only the type differs.
    const argon2i = await import('@node-rs/argon2').then(async ({ hashRaw }) => {
      const salt = Buffer.from('abcdefghijklmnopqrstuv');
      const raw = await hashRaw('pw-12345678', { algorithm: 1, memoryCost: 1024, timeCost: 1, salt });
      const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
      return `argon2$argon2i$v=19$m=1024,t=1,p=1$${b64(salt)}$${b64(raw)}`;
    });
    expect(await reader.verify('pw-12345678', argon2i)).toEqual({ ok: true, mustUpdate: true });
    expect((await reader.verify('pw-12345679', argon2i)).ok).toBe(false);
  });

  it('pbkdf2_sha1 rows verify and are due for an update', async () => {
    // Django's PBKDF2SHA1PasswordHasher of "12345678" with salt "abcdefghijkl", 1000 iterations.
    const { pbkdf2Sync } = await import('node:crypto');
    const key = pbkdf2Sync('12345678', 'abcdefghijkl', 1000, 20, 'sha1').toString('base64');
    const encoded = `pbkdf2_sha1$1000$abcdefghijkl$${key}`;
    const hasher = createPasswordHasher(cheapPbkdf2);
    expect(await hasher.verify('12345678', encoded)).toEqual({ ok: true, mustUpdate: true });
    expect((await hasher.verify('12345670', encoded)).ok).toBe(false);
  });

  it('unusable, unknown and malformed hashes never match, and cost one configured hash each', async () => {
    let computations = 0;
    const hasher = createPasswordHasher(cheapArgon2, { onComputeStart: () => computations++ });
    for (const encoded of [
      '!',
      '!Xk2r9aLQ0v7sVb3nM8cT1yZpW4eHdJfG6uRqNoIs',
      'bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuu',
      'md5$abc$0123456789abcdef0123456789abcdef',
      'pbkdf2_sha256$0$salt$AAAA',
      'pbkdf2_sha256$abc$salt$AAAA',
      'argon2$argon2x$v=19$m=1024,t=1,p=1$YWJjZGVmZ2hpamts$AAAAAAAAAAAAAAAAAAAAAA',
      'argon2$argon2id$v=19$m=1024,t=1$YWJjZGVmZ2hpamts$AAAAAAAAAAAAAAAAAAAAAA',
      '',
    ]) {
      expect(await hasher.verify('', encoded), encoded).toEqual({ ok: false, mustUpdate: false });
      expect(await hasher.verify('12345678', encoded), encoded).toEqual({ ok: false, mustUpdate: false });
    }
    expect(computations).toBe(18);
  });
});

describe('password hasher: mustUpdate as Django', () => {
  const cases: Array<[string, HasherOptions, HasherOptions, boolean]> = [
    ['same argon2 costs', cheapArgon2, cheapArgon2, false],
    ['argon2 memory differs', { ...cheapArgon2, ARGON2_MEMORY_KIB: 2048 }, cheapArgon2, true],
    ['argon2 time cost differs', { ...cheapArgon2, ARGON2_TIME_COST: 2 }, cheapArgon2, true],
    ['argon2 parallelism differs', { ...cheapArgon2, ARGON2_PARALLELISM: 2 }, cheapArgon2, true],
    ['argon2 row, PBKDF2 configured', cheapArgon2, cheapPbkdf2, true],
    ['PBKDF2 row, argon2 configured', cheapPbkdf2, cheapArgon2, true],
    ['same PBKDF2 iterations, 22-char salt', cheapPbkdf2, cheapPbkdf2, false],
    ['PBKDF2 iterations differ', { ...cheapPbkdf2, PBKDF2_ITERATIONS: 1001 }, cheapPbkdf2, true],
  ];
  it.each(cases)('%s', async (_name, writerOptions, readerOptions, expected) => {
    const encoded = await createPasswordHasher(writerOptions).hash('pw-abcdefgh');
    const result = await createPasswordHasher(readerOptions).verify('pw-abcdefgh', encoded);
    expect(result).toEqual({ ok: true, mustUpdate: expected });
  });

  it('a PBKDF2 salt of fewer than 22 characters is due for an update', async () => {
    const { pbkdf2Sync } = await import('node:crypto');
    const row = (salt: string) =>
      `pbkdf2_sha256$1000$${salt}$${pbkdf2Sync('pw', salt, 1000, 32, 'sha256').toString('base64')}`;
    const hasher = createPasswordHasher(cheapPbkdf2);
    expect(await hasher.verify('pw', row('a'.repeat(21)))).toEqual({ ok: true, mustUpdate: true });
    expect(await hasher.verify('pw', row('a'.repeat(22)))).toEqual({ ok: true, mustUpdate: false });
  });
});

describe('password hasher: short argon2 salts', () => {
  it('an argon2 row with the configured costs but a 12-char salt is due for an update', async () => {
    const { hashRaw } = await import('@node-rs/argon2');
    const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
    const row = async (salt: string) => {
      const raw = await hashRaw('pw', {
        memoryCost: 1024,
        timeCost: 1,
        parallelism: 1,
        salt: Buffer.from(salt),
      });
      return `argon2$argon2id$v=19$m=1024,t=1,p=1$${b64(Buffer.from(salt))}$${b64(raw)}`;
    };
    const hasher = createPasswordHasher(cheapArgon2);
    expect(await hasher.verify('pw', await row('abcdefghijkl'))).toEqual({ ok: true, mustUpdate: true });
    expect(await hasher.verify('pw', await row('abcdefghijklmnopqrstuv'))).toEqual({
      ok: true,
      mustUpdate: false,
    });
  });
});

describe('password hasher: concurrency bound', () => {
  it('never computes more than HASH_CONCURRENCY hashes at once, and finishes them all', async () => {
    const starts: number[] = [];
    const hasher = createPasswordHasher(
      { ...cheapPbkdf2, PBKDF2_ITERATIONS: 20_000, HASH_CONCURRENCY: 2 },
      { onComputeStart: (running) => starts.push(running) },
    );
    const encoded = await hasher.hash('pw-12345678');
    starts.length = 0;
    const work = [
      ...Array.from({ length: 4 }, () => hasher.hash('pw-12345678')),
      ...Array.from({ length: 4 }, () => hasher.verify('pw-12345678', encoded)),
      ...Array.from({ length: 4 }, () => hasher.burn('nobody-password')),
    ];
    const results = await Promise.all(work);
    expect(starts).toHaveLength(12);
    expect(Math.max(...starts)).toBe(2);
    expect(results.slice(4, 8)).toEqual(Array(4).fill({ ok: true, mustUpdate: false }));
  });

  it('the semaphore hands slots out in arrival order', async () => {
    const semaphore = createSemaphore(1);
    const order: number[] = [];
    const gates: Array<() => void> = [];
    const tasks = [0, 1, 2, 3].map((n) =>
      semaphore.run(async () => {
        order.push(n);
        await new Promise<void>((resolve) => gates.push(resolve));
      }),
    );
    // Open each gate as its task starts; only one task is ever inside.
    for (let expected = 1; expected <= 4; expected++) {
      await expect.poll(() => gates.length).toBe(expected);
      gates[expected - 1]?.();
    }
    await Promise.all(tasks);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('a failing task releases its slot', async () => {
    const semaphore = createSemaphore(1);
    await expect(semaphore.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(semaphore.run(async () => 'next')).resolves.toBe('next');
  });
});

describe('ARGON2_HASH_BYTES', () => {
  it('matches a Django whose argon2-cffi makes 16-byte hashes, so neither side keeps rewriting', async () => {
    const djangoLike = createPasswordHasher({
      PASSWORD_HASHER: 'argon2',
      ARGON2_MEMORY_KIB: 102_400,
      ARGON2_TIME_COST: 2,
      ARGON2_PARALLELISM: 8,
      ARGON2_HASH_BYTES: 16,
      PBKDF2_ITERATIONS: 1000,
      HASH_CONCURRENCY: 1,
    });
    expect(await djangoLike.verify('12345678', DJANGO_ARGON2)).toEqual({ ok: true, mustUpdate: false });
    const ours = await djangoLike.hash('12345678');
    expect(ours.split('$').at(-1)).toHaveLength(22);
  });
});
