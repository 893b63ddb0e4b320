/**
 * What the HTTP runs send: distinct captcha ids, mobiles and usernames, image and SMS codes
 * written into the service's code store before a run (Redis, or the SQLite file through the
 * service's own createSqliteCodeStore), and the cleanup of the bench's Redis database.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { Redis } from 'ioredis';
import { createSqliteCodeStore } from '../../src/adapters/code-store/sqlite.js';
import { openSqlite } from '../../src/adapters/sqlite.js';
import { systemClock } from '../../src/deps.js';
import { generateCaptchaText } from '../../src/domain/captcha.js';
import { imageCodeKey, smsCodeKey } from '../../src/domain/verification.js';
import { REDIS_URL } from '../config.js';

/** This run's tag: every id the bench makes carries it. */
export const RUN_TAG = randomBytes(3).toString('hex');
let counter = 0;
const mobileBase = randomInt(0, 500_000_000);

export const nextUuid = () => `bench-${RUN_TAG}-${(counter++).toString(36)}`;
/** Distinct valid mobiles for the whole run (19 + nine digits counted from a random base). */
export const nextMobile = () => `19${String(mobileBase + counter++).padStart(9, '0')}`;
export const nextUsername = () => `b${RUN_TAG}_${(counter++).toString(36)}`;
export const PASSWORD = 'Passw0rd!bench';

export interface ImageItem {
  uuid: string;
  answer: string;
}
export interface SmsItem {
  mobile: string;
  code: string;
}

/** Items handed out once each; `exhausted` tells that a run asked for more than was prepared. */
export class Pool<T> {
  private index = 0;
  exhausted = false;
  constructor(private readonly items: T[]) {}
  next(fallback: () => T): T {
    const item = this.items[this.index++];
    if (item !== undefined) return item;
    this.exhausted = true;
    return fallback();
  }
}

export function imageItems(n: number): ImageItem[] {
  return Array.from({ length: n }, () => ({ uuid: nextUuid(), answer: generateCaptchaText() }));
}

export function smsItems(n: number): SmsItem[] {
  return Array.from({ length: n }, () => ({
    mobile: nextMobile(),
    code: String(randomInt(0, 1_000_000)).padStart(6, '0'),
  }));
}

/** Where the prepared codes go: the code store the web process will read. */
export interface CodeWriter {
  put(images: ImageItem[], sms: SmsItem[], ttlSeconds: number): Promise<void>;
  close(): Promise<void>;
}

/** Codes as SET key value EX ttl into a Redis database (the service's by default). */
export function redisWriter(url: string = REDIS_URL): CodeWriter {
  const redis = new Redis(url);
  return {
    async put(images, sms, ttlSeconds) {
      const entries: Array<[string, string]> = [
        ...images.map((i): [string, string] => [imageCodeKey(i.uuid), i.answer]),
        ...sms.map((s): [string, string] => [smsCodeKey(s.mobile), s.code]),
      ];
      for (let i = 0; i < entries.length; i += 2000) {
        const pipeline = redis.pipeline();
        for (const [key, value] of entries.slice(i, i + 2000)) pipeline.set(key, value, 'EX', ttlSeconds);
        await pipeline.exec();
      }
    },
    async close() {
      await redis.quit();
    },
  };
}

/** The service's own SQLite code store on the service's file, all rows in one transaction. */
export function sqliteWriter(path: string): CodeWriter {
  const db = openSqlite(path);
  const store = createSqliteCodeStore(db, systemClock);
  return {
    async put(images, sms, ttlSeconds) {
      // set() runs its statement synchronously, so a batch fits in one transaction.
      db.transaction(() => {
        for (const i of images) void store.set(imageCodeKey(i.uuid), i.answer, ttlSeconds);
        for (const s of sms) void store.set(smsCodeKey(s.mobile), s.code, ttlSeconds);
      })();
    },
    async close() {
      db.close();
    },
  };
}

/** What the service and the bench write into the bench's Redis database. */
const BENCH_PATTERNS = ['img_*', 'sms_*', 'send_flag_*', 'meiduo-users:*', 'meiduo-bench:*'];

export async function redisKeyCount(): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    return await redis.dbsize();
  } finally {
    redis.disconnect();
  }
}

/**
 * Deletes the keys of the bench's Redis database that the service and the bench write
 * (never FLUSHDB: a key of any other shape stays).
 */
export async function cleanBenchRedis(): Promise<number> {
  const redis = new Redis(REDIS_URL);
  let deleted = 0;
  try {
    for (const match of BENCH_PATTERNS) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 5000);
        cursor = next;
        if (keys.length > 0) deleted += await redis.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}
