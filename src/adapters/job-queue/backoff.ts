/**
 * Retry delays of SMS jobs: exponential from `backoffMs`, with "equal jitter" (half of the
 * exponential step fixed, half random). Jitter spreads the retries of a burst that failed
 * together (a vendor outage) so that they do not hit the vendor again in one wave; keeping
 * half of the step fixed makes every retry wait at least as long as the one before it (until
 * the cap, where every retry draws from the same window).
 */

/** Longest wait between two attempts, whatever the settings (a code lives minutes, not hours). */
export const MAX_RETRY_DELAY_MS = 15 * 60_000;

/**
 * Delay before retry number `retry` (1 = the wait after the first attempt failed), in ms.
 * The step is `backoffMs · 2^(retry-1)` capped at `maxDelayMs`; the delay lies in
 * [step/2, step]. `random` returns values in [0, 1) like Math.random.
 */
export function retryDelayMs(
  retry: number,
  backoffMs: number,
  random: () => number = Math.random,
  maxDelayMs: number = MAX_RETRY_DELAY_MS,
): number {
  const exponent = Math.max(0, Math.floor(retry) - 1);
  // 2 ** 1000 is Infinity, which Math.min tames; no overflow concerns.
  const step = Math.min(backoffMs * 2 ** exponent, maxDelayMs);
  const half = step / 2;
  return Math.round(half + random() * half);
}
