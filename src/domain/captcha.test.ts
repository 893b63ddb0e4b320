import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTCHA_ALPHABET, CAPTCHA_LENGTH, captchaMatches, generateCaptchaText } from './captcha.js';

describe('CAPTCHA_ALPHABET', () => {
  it('leaves out the characters people confuse (I/1, O/0, Z/2) and has no duplicates', () => {
    for (const confusable of ['I', '1', 'O', '0', '2']) {
      expect(CAPTCHA_ALPHABET).not.toContain(confusable);
    }
    expect(new Set(CAPTCHA_ALPHABET).size).toBe(CAPTCHA_ALPHABET.length);
    expect(CAPTCHA_ALPHABET).toBe(CAPTCHA_ALPHABET.toUpperCase());
  });
});

describe('generateCaptchaText', () => {
  it('draws 4 characters of the alphabet with the default (crypto) source', () => {
    for (let i = 0; i < 200; i++) {
      const text = generateCaptchaText();
      expect(text).toHaveLength(CAPTCHA_LENGTH);
      for (const char of text) expect(CAPTCHA_ALPHABET).toContain(char);
    }
  });

  it('maps every index the random source gives onto that character, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: CAPTCHA_ALPHABET.length - 1 }), {
          minLength: CAPTCHA_LENGTH,
          maxLength: CAPTCHA_LENGTH,
        }),
        (indexes) => {
          const bounds: number[] = [];
          let call = 0;
          const text = generateCaptchaText((max) => {
            bounds.push(max);
            return indexes[call++] ?? -1;
          });
          expect(text).toBe(indexes.map((i) => CAPTCHA_ALPHABET[i]).join(''));
          // Every draw asks for the whole alphabet: no character is favoured by a short range.
          expect(bounds).toEqual(Array(CAPTCHA_LENGTH).fill(CAPTCHA_ALPHABET.length));
        },
      ),
    );
  });

  it('refuses a random source that answers out of range instead of producing a short text', () => {
    expect(() => generateCaptchaText(() => CAPTCHA_ALPHABET.length)).toThrow(RangeError);
    expect(() => generateCaptchaText(() => -1)).toThrow(RangeError);
    expect(() => generateCaptchaText(() => 0.5)).toThrow(RangeError);
  });

  it('uses every character with roughly equal frequency', () => {
    const counts = new Map<string, number>();
    const draws = 4000;
    for (let i = 0; i < draws; i++) {
      for (const char of generateCaptchaText()) counts.set(char, (counts.get(char) ?? 0) + 1);
    }
    const expected = (draws * CAPTCHA_LENGTH) / CAPTCHA_ALPHABET.length; // ≈ 516
    expect(counts.size).toBe(CAPTCHA_ALPHABET.length);
    for (const count of counts.values()) {
      // ±25 % is more than 5 standard deviations (σ ≈ 22): a real bias or a dropped
      // character fails, chance does not.
      expect(Math.abs(count - expected)).toBeLessThan(expected * 0.25);
    }
  });
});

describe('captchaMatches', () => {
  it('accepts the answer in any letter case', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...CAPTCHA_ALPHABET), minLength: 4, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        (answer, lower) => {
          const guess = [...answer].map((c, i) => (lower[i] ? c.toLowerCase() : c)).join('');
          expect(captchaMatches(guess, answer)).toBe(true);
          expect(captchaMatches(answer, guess)).toBe(true);
        },
      ),
    );
  });

  it('refuses any guess that differs from the answer other than by case', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...CAPTCHA_ALPHABET), minLength: 4, maxLength: 4 }),
        fc.string({ maxLength: 8 }),
        (answer, guess) => {
          fc.pre(guess.toUpperCase() !== answer);
          expect(captchaMatches(guess, answer)).toBe(false);
        },
      ),
    );
  });

  it('refuses prefixes, extensions and the empty string', () => {
    expect(captchaMatches('ABC', 'ABCD')).toBe(false);
    expect(captchaMatches('ABCDE', 'ABCD')).toBe(false);
    expect(captchaMatches('', 'ABCD')).toBe(false);
    expect(captchaMatches('', '')).toBe(false);
    expect(captchaMatches('ABCD ', 'ABCD')).toBe(false);
  });
});
