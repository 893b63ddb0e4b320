import { timingSafeEqual } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { bearerToken, createAdminAuth, secretEquals } from './admin.js';

// The real compare, watched: the tests check that it decides, over equal-length digests.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const compare = vi.mocked(timingSafeEqual);

const tokens = [
  { id: 'alice', token: 'a'.repeat(40) },
  { id: 'ci', token: 'c'.repeat(33) },
  { id: 'bob', token: 'b'.repeat(64) },
];

describe('admin tokens', () => {
  it('names the actor of a right token and nobody for a wrong, shorter, longer or missing one', () => {
    const auth = createAdminAuth(tokens);
    expect(auth.enabled).toBe(true);
    expect(auth.actorOf('a'.repeat(40))).toBe('alice');
    expect(auth.actorOf('b'.repeat(64))).toBe('bob');
    expect(auth.actorOf('a'.repeat(39))).toBeNull();
    expect(auth.actorOf('a'.repeat(41))).toBeNull();
    expect(auth.actorOf('')).toBeNull();
    expect(auth.actorOf(null)).toBeNull();
    expect(createAdminAuth([]).enabled).toBe(false);
    expect(createAdminAuth([]).actorOf('a'.repeat(40))).toBeNull();
  });

  it('compares with timingSafeEqual against every token, whichever matches, over 32-byte digests', () => {
    const auth = createAdminAuth(tokens);
    for (const given of ['a'.repeat(40), 'x', 'b'.repeat(64)]) {
      compare.mockClear();
      auth.actorOf(given);
      expect(compare).toHaveBeenCalledTimes(tokens.length);
      for (const [left, right] of compare.mock.calls) {
        expect((left as Buffer).length).toBe(32);
        expect((right as Buffer).length).toBe(32);
      }
    }
    compare.mockClear();
    expect(secretEquals('short', 'a much longer secret')).toBe(false);
    expect(secretEquals('same', 'same')).toBe(true);
    expect(compare).toHaveBeenCalledTimes(2);
  });

  it('reads a bearer token from the Authorization header only', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken('abc')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
