import { randomInt, timingSafeEqual } from 'node:crypto';

/*
 * Django's CSRF token scheme (django/middleware/csrf.py, 4.1+): the cookie holds a
 * 32-character secret; each page gets a freshly masked 64-character token,
 * mask(32) + cipher(32) where cipher[i] = CHARS[(idx(secret[i]) + idx(mask[i])) % 62].
 * Tokens minted by Django and by this service validate on either side.
 */

export const CSRF_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const CSRF_SECRET_LENGTH = 32;
export const CSRF_TOKEN_LENGTH = 64;
const VALID = /^[a-zA-Z0-9]+$/;

function randomString(length: number, pick: (max: number) => number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += CSRF_CHARS[pick(CSRF_CHARS.length)];
  return out;
}

export function newCsrfSecret(pick: (max: number) => number = randomInt): string {
  return randomString(CSRF_SECRET_LENGTH, pick);
}

export function maskCsrfSecret(secret: string, pick: (max: number) => number = randomInt): string {
  const mask = randomString(CSRF_SECRET_LENGTH, pick);
  let cipher = '';
  for (let i = 0; i < CSRF_SECRET_LENGTH; i++) {
    const sum = CSRF_CHARS.indexOf(secret[i] as string) + CSRF_CHARS.indexOf(mask[i] as string);
    cipher += CSRF_CHARS[sum % CSRF_CHARS.length];
  }
  return mask + cipher;
}

export function unmaskCsrfToken(token: string): string {
  const mask = token.slice(0, CSRF_SECRET_LENGTH);
  const cipher = token.slice(CSRF_SECRET_LENGTH);
  let secret = '';
  for (let i = 0; i < CSRF_SECRET_LENGTH; i++) {
    const diff = CSRF_CHARS.indexOf(cipher[i] as string) - CSRF_CHARS.indexOf(mask[i] as string);
    secret += CSRF_CHARS[(diff + CSRF_CHARS.length) % CSRF_CHARS.length];
  }
  return secret;
}

/**
 * The secret a cookie or header value stands for: a plain 32-character secret, or a masked
 * 64-character token (older Django versions kept the masked form in the cookie). Anything
 * else is no secret at all.
 */
export function csrfSecretOf(value: string | undefined): string | null {
  if (value === undefined || !VALID.test(value)) return null;
  if (value.length === CSRF_SECRET_LENGTH) return value;
  if (value.length === CSRF_TOKEN_LENGTH) return unmaskCsrfToken(value);
  return null;
}

/** Whether the header value unmasks to the cookie's secret; constant time. */
export function csrfTokenMatches(headerValue: string | undefined, cookieValue: string | undefined): boolean {
  const expected = csrfSecretOf(cookieValue);
  const given = csrfSecretOf(headerValue);
  if (expected === null || given === null) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(given));
}
