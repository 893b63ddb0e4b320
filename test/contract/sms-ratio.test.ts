/**
 * The unverified-code ratio and the block-list refusal inside the code store's atomic steps
 * (issueCode counts and checks, checkCode credits), one suite on SQLite and on Redis. Time is
 * the hour/day index the domain passes in, so both backends move through it alike.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRedisCodeStore } from '../../src/adapters/code-store/redis.js';
import { createSqliteCodeStore } from '../../src/adapters/code-store/sqlite.js';
import { connectRedis } from '../../src/adapters/redis.js';
import { openSqlite } from '../../src/adapters/sqlite.js';
import type { CodeStore, IssueCodeInput, Quota } from '../../src/domain/ports.js';
import type { RatioCheck, RatioCredit } from '../../src/domain/sms-abuse.js';
import { has } from '../backends.js';
import { CONTRACT_REDIS_URL } from './redis-time.js';

const redisAvailable = await has('redis');
const HOUR = 500_000;
const DAY = 20_000;

interface Harness {
  store: CodeStore;
  peers(count: number): CodeStore[];
  /** Removes the keys under the test's prefix and closes the connections. */
  cleanup(prefix: string): Promise<void>;
}

/** Stores whose issueCode finds its image code (K7PQ) in place, as after GET /image_codes/. */
function withImageCodes(h: Harness): Harness {
  const wrap = (store: CodeStore): CodeStore => ({
    ...store,
    issueCode: async (input) => {
      await store.set(input.imageKey, 'K7PQ', 300);
      return store.issueCode(input);
    },
  });
  return { store: wrap(h.store), peers: (count) => h.peers(count).map(wrap), cleanup: h.cleanup };
}

function ratioSuite(backend: string, makeHarness: () => Promise<Harness>) {
  describe(`ratio rule in the code store on ${backend}`, () => {
    let h: Harness;
    let run: string;
    beforeEach(async () => {
      h = withImageCodes(await makeHarness());
      run = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
    });
    afterEach(async () => {
      await h.cleanup(run);
    });

    // A block holds 10,000 numbers: drawn at random, a run that takes dozens would meet one
    // twice (its resend flag still set) now and then. Never the same number twice in a run.
    const drawn = new Set<string>();
    const mobileIn = (block: string): string => {
      for (;;) {
        const mobile = `${block}${String(randomInt(0, 10_000)).padStart(4, '0')}`;
        if (!drawn.has(mobile)) {
          drawn.add(mobile);
          return mobile;
        }
      }
    };

    function ratio(
      mobile: string,
      options: Partial<RatioCheck> & { floors?: [number, number, number] } = {},
    ): RatioCheck {
      const [block, ip, global] = options.floors ?? [3, 0, 0];
      return {
        scopes: [
          { kind: 'block', key: `${run}:ratio:block:${mobile.slice(0, 7)}`, floor: block },
          { kind: 'ip', key: `${run}:ratio:ip`, floor: ip },
          { kind: 'global', key: `${run}:ratio:global`, floor: global },
        ],
        hour: HOUR,
        day: DAY,
        windowHours: 24,
        baselineDays: 14,
        multiplier: 2,
        enforce: true,
        verifiedKey: `${run}:verified:${mobile}`,
        originKey: `${run}:origin:${mobile}`,
        countersTtlSeconds: 15 * 86_400,
        ...options,
      };
    }

    function issue(
      mobile: string,
      r: RatioCheck | null,
      extra: Partial<IssueCodeInput> = {},
    ): IssueCodeInput {
      return {
        flagKey: `${run}:flag:${mobile}`,
        flagTtlSeconds: 60,
        imageKey: `${run}:img:${randomBytes(6).toString('hex')}`,
        guess: 'K7PQ',
        codeKey: `${run}:sms:${mobile}`,
        code: '123456',
        codeTtlSeconds: 300,
        attemptsKey: `${run}:attempts:${mobile}`,
        quotas: [],
        ratio: r,
        ...extra,
      };
    }

    const credit = (mobile: string, hour = HOUR, day = DAY): RatioCredit => ({
      hour,
      day,
      originKey: `${run}:origin:${mobile}`,
      verifiedKey: `${run}:verified:${mobile}`,
      verifiedTtlSeconds: 365 * 86_400,
      countersTtlSeconds: 15 * 86_400,
    });

    const verify = (mobile: string, c = credit(mobile)) =>
      h.store.checkCode({
        codeKey: `${run}:sms:${mobile}`,
        attemptsKey: `${run}:attempts:${mobile}`,
        guess: '123456',
        maxAttempts: 5,
        credit: c,
      });

    it('refuses a block once its unverified sends reach the floor: flag set and quota counted, no code', async () => {
      const quota: Quota = { key: `${run}:quota`, limit: 100, ttlSeconds: 3600, id: 'SMS_IP_LIMIT' };
      for (let i = 0; i < 3; i++) {
        const m = mobileIn('1390000');
        expect(await h.store.issueCode(issue(m, ratio(m), { quotas: [quota] }))).toEqual({ kind: 'issued' });
      }
      const refused = mobileIn('1390000');
      expect(await h.store.issueCode(issue(refused, ratio(refused), { quotas: [quota] }))).toEqual({
        kind: 'blocked',
        by: 'block',
      });
      expect(await h.store.get(`${run}:sms:${refused}`)).toBeNull();
      expect(await h.store.get(`${run}:flag:${refused}`)).toBe('1');
      expect(await h.store.get(`${run}:quota`)).toBe('4');
      // Another block is served.
      const other = mobileIn('1391111');
      expect(await h.store.issueCode(issue(other, ratio(other)))).toEqual({ kind: 'issued' });
    });

    it('names the first scope over its floor: IP prefix, then the whole service', async () => {
      const floors: [number, number, number] = [0, 2, 3];
      for (const block of ['1380001', '1380002']) {
        const m = mobileIn(block);
        expect(await h.store.issueCode(issue(m, ratio(m, { floors })))).toEqual({ kind: 'issued' });
      }
      const third = mobileIn('1380003');
      expect(await h.store.issueCode(issue(third, ratio(third, { floors })))).toEqual({
        kind: 'blocked',
        by: 'ip',
      });
      // Another IP prefix passes the IP scope, but the service has 2 unverified of 3: one more goes.
      const elsewhere = (m: string): RatioCheck => {
        const r = ratio(m, { floors });
        return { ...r, scopes: r.scopes.map((s) => (s.kind === 'ip' ? { ...s, key: `${s.key}:other` } : s)) };
      };
      const fourth = mobileIn('1380004');
      expect(await h.store.issueCode(issue(fourth, elsewhere(fourth)))).toEqual({ kind: 'issued' });
      const fifth = mobileIn('1380005');
      expect(await h.store.issueCode(issue(fifth, elsewhere(fifth)))).toEqual({
        kind: 'blocked',
        by: 'global',
      });
    });

    it('record-only: issues anyway and reports the scope that would have refused', async () => {
      for (let i = 0; i < 3; i++) {
        const m = mobileIn('1370000');
        await h.store.issueCode(issue(m, ratio(m, { enforce: false })));
      }
      const m = mobileIn('1370000');
      expect(await h.store.issueCode(issue(m, ratio(m, { enforce: false })))).toEqual({
        kind: 'issued',
        ratioTripped: 'block',
      });
      expect(await h.store.get(`${run}:sms:${m}`)).toBe('123456');
    });

    it('a verified code counts against the unverified ones, once, and exempts its mobile for good', async () => {
      const first = mobileIn('1360000');
      await h.store.issueCode(issue(first, ratio(first)));
      expect(await verify(first)).toEqual({ kind: 'ok' });
      // A second right guess (say, the username was taken) credits nothing more.
      expect(await verify(first)).toEqual({ kind: 'ok' });
      const others: string[] = [];
      for (let i = 0; i < 3; i++) others.push(mobileIn('1360000'));
      // 4 sent, 1 verified: 3 unverified reach the floor only after the third of the others.
      for (const m of others) expect((await h.store.issueCode(issue(m, ratio(m)))).kind).toBe('issued');
      const blocked = mobileIn('1360000');
      expect(await h.store.issueCode(issue(blocked, ratio(blocked)))).toEqual({
        kind: 'blocked',
        by: 'block',
      });
      // The verified number is served though its block is over the floor (flag gone: a new hour).
      const again = issue(first, ratio(first), { flagKey: `${run}:flag2:${first}` });
      expect(await h.store.issueCode(again)).toEqual({ kind: 'issued' });
    });

    it("raises the threshold to k × the baseline's best day of verified codes", async () => {
      // Yesterday: 3 codes sent and verified in block 1350000.
      const yesterday = { hour: HOUR - 24, day: DAY - 1 };
      for (let i = 0; i < 3; i++) {
        const m = mobileIn('1350000');
        await h.store.issueCode(issue(m, ratio(m, yesterday)));
        expect(await verify(m, credit(m, yesterday.hour, yesterday.day))).toEqual({ kind: 'ok' });
      }
      // Today: threshold max(3, 2 × 3) = 6 unverified sends.
      const results: string[] = [];
      for (let i = 0; i < 7; i++) {
        const m = mobileIn('1350000');
        results.push((await h.store.issueCode(issue(m, ratio(m)))).kind);
      }
      expect(results).toEqual(['issued', 'issued', 'issued', 'issued', 'issued', 'issued', 'blocked']);
    });

    it('forgets sends older than the window', async () => {
      for (let i = 0; i < 3; i++) {
        const m = mobileIn('1340000');
        await h.store.issueCode(issue(m, ratio(m, { hour: HOUR - 24 })));
      }
      const m = mobileIn('1340000');
      expect(await h.store.issueCode(issue(m, ratio(m, { hour: HOUR - 23 })))).toEqual({
        kind: 'blocked',
        by: 'block',
      });
      const later = mobileIn('1340000');
      expect(await h.store.issueCode(issue(later, ratio(later)))).toEqual({ kind: 'issued' });
    });

    it('a block-list verdict refuses after the flag and quota checks, counting no send', async () => {
      const m = mobileIn('1330000');
      const quota: Quota = { key: `${run}:quota`, limit: 1, ttlSeconds: 3600, id: 'SMS_DAILY_LIMIT' };
      expect(await h.store.issueCode(issue(m, ratio(m), { blocked: true, quotas: [quota] }))).toEqual({
        kind: 'blocked',
        by: 'list',
      });
      expect(await h.store.get(`${run}:sms:${m}`)).toBeNull();
      expect(await h.store.issueCode(issue(m, ratio(m), { blocked: true }))).toMatchObject({
        kind: 'flagged',
      });
      const other = mobileIn('1330000');
      expect(await h.store.issueCode(issue(other, ratio(other), { quotas: [quota] }))).toMatchObject({
        kind: 'limited',
        id: 'SMS_DAILY_LIMIT',
      });
    });

    it('lets exactly the floor through among 40 concurrent sends to one block from several connections', async () => {
      const stores = [h.store, ...h.peers(3)];
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const m = `1320000${String(i).padStart(4, '0')}`;
          return (stores[i % stores.length] as CodeStore).issueCode(
            issue(m, ratio(m, { floors: [10, 0, 0] })),
          );
        }),
      );
      expect(results.filter((r) => r.kind === 'issued')).toHaveLength(10);
      expect(results.filter((r) => r.kind === 'blocked')).toHaveLength(30);
    });
  });
}

ratioSuite('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-ratio-'));
  const path = join(dir, 'store.sqlite3');
  const clock = { nowMs: () => Date.UTC(2026, 11, 4, 12) };
  const dbs = [openSqlite(path, { busyTimeoutMs: 0 })];
  return {
    store: createSqliteCodeStore(dbs[0] as ReturnType<typeof openSqlite>, clock),
    peers: (count) =>
      Array.from({ length: count }, () => {
        const db = openSqlite(path, { busyTimeoutMs: 0 });
        dbs.push(db);
        return createSqliteCodeStore(db, clock);
      }),
    cleanup: async () => {
      for (const db of dbs) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe.skipIf(!redisAvailable)('Redis', () => {
  const silent = pino({ level: 'silent' });
  ratioSuite('Redis', async () => {
    const connections: Redis[] = [connectRedis(CONTRACT_REDIS_URL, 'ratio', silent)];
    const first = connections[0] as Redis;
    return {
      store: createRedisCodeStore(first),
      peers: (count) =>
        Array.from({ length: count }, () => {
          const redis = connectRedis(CONTRACT_REDIS_URL, 'ratio-peer', silent);
          connections.push(redis);
          return createRedisCodeStore(redis);
        }),
      cleanup: async (prefix) => {
        const keys = await first.keys(`${prefix}:*`);
        if (keys.length > 0) await first.del(...keys);
        for (const redis of connections) redis.disconnect();
      },
    };
  });
});
