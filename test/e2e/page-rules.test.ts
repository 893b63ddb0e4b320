/**
 * The pages check the registration rules before the service does (web/src/rules.ts): the two
 * must agree, or a person would be told a valid entry is wrong (or learn of a mistake only at
 * submit). Also the page's own decisions that need no browser: where `?next=` may lead, how a
 * wait is worded.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTCHA_LENGTH, generateCaptchaText } from '../../src/domain/captcha.js';
import { ERRORS } from '../../src/domain/errors.js';
import { PASSWORD_RULE, usernameIsValid } from '../../src/domain/registration.js';
import { MOBILE_RULE } from '../../src/domain/verification.js';
import * as page from '../../web/src/rules.js';

/** Characters near every edge of the rules: digits, letters, _ -, space, DEL, ~, non-ASCII. */
const edgy = fc.string({
  unit: fc.constantFrom(...'09aZ_-. ~!\x7f\t中é'.split(''), ...'0123456789'.split('')),
  maxLength: 24,
});
const mobiles = fc.oneof(edgy, fc.stringMatching(/^1[0-9]\d{8,10}$/), fc.stringMatching(/^1[3-9]\d{9}$/));

describe('the pages apply the service rules', () => {
  it('username: same verdict as registration', () => {
    fc.assert(
      fc.property(
        fc.oneof(edgy, fc.stringMatching(/^[a-zA-Z0-9_-]{3,22}$/), fc.stringMatching(/^\d{4,21}$/)),
        (s) => {
          expect(page.usernameIsValid(s)).toBe(usernameIsValid(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('password: same verdict as registration', () => {
    fc.assert(
      fc.property(fc.oneof(edgy, fc.string({ minLength: 6, maxLength: 22 })), (s) => {
        expect(page.passwordIsValid(s)).toBe(PASSWORD_RULE.test(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('mobile: same verdict as the SMS and registration checks', () => {
    fc.assert(
      fc.property(mobiles, (s) => {
        expect(page.mobileIsValid(s)).toBe(MOBILE_RULE.test(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts every captcha text the service draws, in either case, and nothing of another length', () => {
    for (let i = 0; i < 500; i++) {
      const text = generateCaptchaText();
      expect(page.imageCodeIsValid(text)).toBe(true);
      expect(page.imageCodeIsValid(text.toLowerCase())).toBe(true);
      expect(page.imageCodeIsValid(text.slice(1))).toBe(false);
      expect(page.imageCodeIsValid(`${text}A`)).toBe(false);
    }
    expect(CAPTCHA_LENGTH).toBe(4);
  });

  it('words each shared refusal exactly as the service does', () => {
    const shared = Object.entries(page.MESSAGES).filter(([id]) => id in ERRORS);
    expect(shared.map(([id]) => id).sort()).toEqual(
      [
        'ALLOW_REQUIRED',
        'IMAGE_CODE_WRONG',
        'MOBILE_EXISTS',
        'MOBILE_INVALID',
        'PASSWORD_INVALID',
        'PASSWORD_MISMATCH',
        'USERNAME_EXISTS',
        'USERNAME_INVALID',
      ].sort(),
    );
    for (const [id, message] of shared) expect(message).toBe(ERRORS[id as keyof typeof ERRORS][1]);
  });
});

describe('nextUrl', () => {
  const origin = 'http://127.0.0.1:8000';

  it('keeps a path of this origin with its query and fragment', () => {
    expect(page.nextUrl('/index.html?a=1#top', origin)).toBe(`${origin}/index.html?a=1#top`);
    expect(page.nextUrl('/user/center/', origin)).toBe(`${origin}/user/center/`);
  });

  it('sends anything that could leave the origin, or nothing at all, home', () => {
    for (const next of [
      null,
      '',
      'https://elsewhere.example/',
      '//elsewhere.example/',
      '/\\elsewhere.example/',
      'javascript:alert(1)',
      'index.html',
      ' /index.html',
    ]) {
      expect(page.nextUrl(next, origin)).toBe(`${origin}/`);
    }
  });

  it('keeps a path that normalises to //host on this origin (a bare path would leave it)', () => {
    const target = page.nextUrl('/.//elsewhere.example/', origin);
    expect(new URL(target, `${origin}/login.html`).origin).toBe(origin);
  });

  it('never leads to another origin, whatever the text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.webUrl(),
          fc.webPath(),
          fc.string().map((s) => `/${s}`),
        ),
        (next) => {
          const target = new URL(page.nextUrl(next, origin), origin);
          expect(target.origin).toBe(origin);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('waitText', () => {
  it('says seconds for short waits and whole minutes, rounded up, for long ones', () => {
    expect(page.waitText(1)).toBe('1秒');
    expect(page.waitText(59.2)).toBe('60秒');
    expect(page.waitText(119)).toBe('119秒');
    expect(page.waitText(120)).toBe('2分钟');
    expect(page.waitText(121)).toBe('3分钟');
    expect(page.waitText(900)).toBe('15分钟');
    expect(page.waitText(0)).toBe('1秒');
  });
});
