import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CSRF_CHARS,
  csrfSecretOf,
  csrfTokenMatches,
  maskCsrfSecret,
  newCsrfSecret,
  unmaskCsrfToken,
} from './csrf.js';

describe('Django CSRF masking', () => {
  it('unmasks what it masks, for any secret and mask', () => {
    const char = fc.constantFrom(...CSRF_CHARS);
    fc.assert(
      fc.property(fc.array(char, { minLength: 32, maxLength: 32 }), (chars) => {
        const secret = chars.join('');
        const token = maskCsrfSecret(secret);
        expect(token).toHaveLength(64);
        expect(unmaskCsrfToken(token)).toBe(secret);
      }),
    );
  });

  it("follows Django's cipher: chars[(idx(secret) + idx(mask)) % 62]", () => {
    // mask 'b…' (index 1) shifts every character of the secret by one place
    const picks = Array<number>(32).fill(1);
    const token = maskCsrfSecret('a'.repeat(31) + '9', () => picks.pop() ?? 1);
    expect(token).toBe(`${'b'.repeat(32)}${'b'.repeat(31)}a`);
  });

  it('matches a masked token or the plain secret, and nothing else', () => {
    const secret = newCsrfSecret();
    expect(csrfTokenMatches(maskCsrfSecret(secret), secret)).toBe(true);
    expect(csrfTokenMatches(secret, secret)).toBe(true);
    // an older Django keeps the masked form in the cookie
    expect(csrfTokenMatches(maskCsrfSecret(secret), maskCsrfSecret(secret))).toBe(true);
    expect(csrfTokenMatches(maskCsrfSecret(newCsrfSecret()), secret)).toBe(false);
    expect(csrfTokenMatches(undefined, secret)).toBe(false);
    expect(csrfTokenMatches(maskCsrfSecret(secret), undefined)).toBe(false);
    expect(csrfTokenMatches(`${secret}x`, secret)).toBe(false);
    expect(csrfTokenMatches(`${secret.slice(1)}!`, secret)).toBe(false);
    expect(csrfSecretOf('')).toBeNull();
  });
});
