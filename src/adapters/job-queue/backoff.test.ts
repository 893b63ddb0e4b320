import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from './backoff.js';

describe('retryDelayMs', () => {
  it('keeps each delay within half and all of the doubling step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (retry, backoffMs, r) => {
          const step = Math.min(backoffMs * 2 ** (retry - 1), MAX_RETRY_DELAY_MS);
          const delay = retryDelayMs(retry, backoffMs, () => r);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(step / 2));
          expect(delay).toBeLessThanOrEqual(Math.ceil(step));
        },
      ),
    );
  });

  it('never waits less than the retry before (below the cap), whatever the random draws', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 2,
          maxLength: 12,
        }),
        (backoffMs, draws) => {
          const delays = draws.map((r, i) => retryDelayMs(i + 1, backoffMs, () => r));
          // At the cap every retry draws from the same window, so order is no longer kept.
          const uncapped = (i: number) => backoffMs * 2 ** i <= MAX_RETRY_DELAY_MS;
          for (let i = 1; i < delays.length && uncapped(i); i++) {
            expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] as number);
          }
        },
      ),
    );
  });

  it('spreads a burst of retries instead of sending them in one wave', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, 1000)));
    // 50 draws over a 2-second window: far more than a handful of distinct values.
    expect(delays.size).toBeGreaterThan(10);
  });

  it('caps the wait for large attempt numbers', () => {
    expect(retryDelayMs(1000, 2000, () => 0.999)).toBeLessThanOrEqual(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(5, 1000, () => 0.999, 3000)).toBeLessThanOrEqual(3000);
  });
});
