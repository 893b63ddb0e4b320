import { ApiError, type ErrorId } from './errors.js';
import { KEY_PREFIX } from './keys.js';
import type { Clock, CodeStore, Quota } from './ports.js';

/*
 * Abuse limits (API.md §4) as fixed windows: the window's index is part of the key, so the
 * counter's lifetime is simply the rest of its window and `retry_after` is that rest.
 */

export const QUOTA_PREFIX = `${KEY_PREFIX}quota:`;
const CHINA_OFFSET_MS = 8 * 3600 * 1000;

export interface Window {
  key: string;
  /** Seconds until the window closes (at least 1). */
  ttlSeconds: number;
}

/** A window of `seconds` aligned to the epoch: minute, hour, 15 minutes. */
export function fixedWindow(name: string, subject: string, seconds: number, nowMs: number): Window {
  const index = Math.floor(nowMs / 1000 / seconds);
  const endsMs = (index + 1) * seconds * 1000;
  return {
    key: `${QUOTA_PREFIX}${name}:${subject}:${index}`,
    ttlSeconds: Math.max(1, Math.ceil((endsMs - nowMs) / 1000)),
  };
}

/** The calendar day in China (UTC+8), which is when SMS daily quotas reset. */
export function chinaDayWindow(name: string, subject: string, nowMs: number): Window {
  const local = nowMs + CHINA_OFFSET_MS;
  const day = Math.floor(local / 86_400_000);
  const date = new Date(day * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
  const endsMs = (day + 1) * 86_400_000 - CHINA_OFFSET_MS;
  return {
    key: `${QUOTA_PREFIX}${name}:${subject}:${date}`,
    ttlSeconds: Math.max(1, Math.ceil((endsMs - nowMs) / 1000)),
  };
}

export function quota(window: Window, limit: number, id: string): Quota {
  return { key: window.key, ttlSeconds: window.ttlSeconds, limit, id };
}

/** Counts uses against per-client limits; throws the limit's error once one is exceeded. */
export function createLimiter(deps: { codeStore: CodeStore; clock: Clock; enabled: boolean }) {
  return {
    enabled: deps.enabled,
    async countAgainst(
      name: string,
      client: string,
      limit: number,
      seconds: number,
      id: ErrorId,
    ): Promise<void> {
      if (!deps.enabled || limit === 0) return;
      const window = fixedWindow(name, client, seconds, deps.clock.nowMs());
      const count = await deps.codeStore.increment(window.key, window.ttlSeconds);
      if (count > limit) throw new ApiError(id, { retry_after: window.ttlSeconds });
    },
  };
}

export type Limiter = ReturnType<typeof createLimiter>;
