/**
 * The image captcha's text: what it may contain, how it is drawn at random, and how a guess
 * is compared with it. Drawing the image is the CaptchaRenderer port's job.
 */
import { randomInt as cryptoRandomInt, timingSafeEqual } from 'node:crypto';

/**
 * Upper-case letters and digits a person cannot mistake for one another: no I/1, O/0, Z/2.
 * Guesses are compared case-insensitively, so lower case never needs to be told apart.
 */
export const CAPTCHA_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ3456789';

export const CAPTCHA_LENGTH = 4;

/**
 * Four characters of CAPTCHA_ALPHABET, each drawn independently and uniformly.
 * `randomInt(n)` must return an integer in [0, n) without bias; the default is
 * crypto.randomInt, which rejects and redraws instead of taking a modulo.
 */
export function generateCaptchaText(randomInt: (maxExclusive: number) => number = cryptoRandomInt): string {
  let text = '';
  for (let i = 0; i < CAPTCHA_LENGTH; i++) {
    const index = randomInt(CAPTCHA_ALPHABET.length);
    const char = CAPTCHA_ALPHABET[index];
    if (char === undefined || !Number.isInteger(index)) {
      throw new RangeError(`randomInt returned ${index}, outside [0, ${CAPTCHA_ALPHABET.length})`);
    }
    text += char;
  }
  return text;
}

/**
 * Whether a guess matches the answer, ignoring the case of ASCII letters (as the Redis code
 * store's script does with string.upper, so every backend agrees), in time that does not
 * depend on where the two differ. A length mismatch is not hidden (the length is public: always 4), but it
 * still costs one full compare so the call takes the same path. An empty answer matches
 * nothing.
 */
export function captchaMatches(guess: string, answer: string): boolean {
  const expected = Buffer.from(asciiUpper(answer), 'utf8');
  const given = Buffer.from(asciiUpper(guess), 'utf8');
  const sameLength = given.length === expected.length;
  // timingSafeEqual needs equal lengths: on a mismatch compare the answer with itself.
  const equal = timingSafeEqual(sameLength ? given : expected, expected);
  return equal && sameLength && expected.length > 0;
}

/** Upper case for a–z only: Unicode case mapping (e.g. ſ → S) would let other texts match. */
function asciiUpper(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}
