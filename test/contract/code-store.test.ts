/**
 * One contract for the CodeStore port (src/domain/ports.ts), run against every backend:
 * SQLite (a temp file, time moved by a fake clock) and Redis (DB 3 of the machine's server,
 * random keys; time moved by shortening the lifetimes of this test's keys, which is what the
 * passing of time does to Redis keys). Redis-only tests follow: Django-visible key format,
 * fail-fast when Redis is down, recovery after an outage.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRedisCodeStore } from '../../src/adapters/code-store/redis.js';
import { createSqliteCodeStore } from '../../src/adapters/code-store/sqlite.js';
import { connectRedis } from '../../src/adapters/redis.js';
import { openSqlite, type SqliteDatabase } from '../../src/adapters/sqlite.js';
import { DependencyError } from '../../src/domain/errors.js';
import type { CodeStore, IssueCodeInput, Quota } from '../../src/domain/ports.js';
import { has } from '../backends.js';
import { CONTRACT_REDIS_URL, elapseKeys, useAdminRedis } from './redis-time.js';

const redisAvailable = await has('redis');
const silent = pino({ level: 'silent' });

interface Harness {
  store: CodeStore;
  /** More stores on their own connections to the same backend, for races between processes. */
  peers(count: number): Promise<CodeStore[]>;
  /** Lets `ms` of time pass for this test's keys. */
  elapse(ms: number): Promise<void>;
  /** Registers a key (so that elapse and cleanup reach it) and returns it. */
  track(key: string): string;
  cleanup(): Promise<void>;
}

/** A key of our own, unique to this test. */
function ownKey(h: Harness, name: string): string {
  return h.track(`meiduo-users-test:${randomBytes(6).toString('hex')}:${name}`);
}

/** A random mainland mobile; collisions with other runs are negligible (10^9 choices). */
function randomMobile(): string {
  return `1${randomInt(3, 10)}${String(randomInt(0, 1_000_000_000)).padStart(9, '0')}`;
}

/** Meiduo's keys for one mobile plus our attempts counter, all tracked. */
function smsKeys(h: Harness, mobile = randomMobile()) {
  return {
    mobile,
    flagKey: h.track(`send_flag_${mobile}`),
    codeKey: h.track(`sms_${mobile}`),
    attemptsKey: h.track(`meiduo-users-test:attempts:${mobile}`),
  };
}

function sixDigits(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

/** A tracked image-code key (`img_{uuid}`), stored with `text` unless text is null. */
async function imageCode(h: Harness, text: string | null = 'K7PQ'): Promise<string> {
  const key = h.track(`img_meiduo-users-test-${randomBytes(6).toString('hex')}`);
  if (text !== null) await h.store.set(key, text, 300);
  return key;
}

function issueInput(
  keys: ReturnType<typeof smsKeys>,
  imageKey: string,
  code: string,
  quotas: Quota[] = [],
  more: Partial<IssueCodeInput> = {},
): IssueCodeInput {
  const { mobile: _, ...storeKeys } = keys;
  return {
    ...storeKeys,
    flagTtlSeconds: 60,
    imageKey,
    guess: 'K7PQ',
    code,
    codeTtlSeconds: 300,
    quotas,
    ...more,
  };
}

function codeStoreContract(backend: string, makeHarness: () => Promise<Harness>): void {
  describe(`CodeStore contract on ${backend}`, () => {
    let h: Harness;
    let store: CodeStore;
    beforeEach(async () => {
      h = await makeHarness();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    describe('get / set', () => {
      it('returns null for an absent key and the stored string for a present one', async () => {
        const key = ownKey(h, 'img');
        expect(await store.get(key)).toBeNull();
        await store.set(key, 'AB3Z 验证', 300);
        expect(await store.get(key)).toBe('AB3Z 验证');
      });

      it('replaces both the value and the lifetime', async () => {
        const key = ownKey(h, 'img');
        await store.set(key, 'first', 300);
        await store.set(key, 'second', 10);
        expect(await store.get(key)).toBe('second');
        expect(await store.ttlSeconds(key)).toBe(10);
      });

      it('forgets the value once its lifetime has passed', async () => {
        const key = ownKey(h, 'img');
        await store.set(key, 'value', 10);
        await h.elapse(9_000);
        expect(await store.get(key)).toBe('value');
        await h.elapse(1_000);
        expect(await store.get(key)).toBeNull();
      });

      it('refuses lifetimes that are not whole positive seconds', async () => {
        const key = ownKey(h, 'bad');
        await expect(store.set(key, 'v', 0)).rejects.toThrow(RangeError);
        await expect(store.set(key, 'v', 1.5)).rejects.toThrow(RangeError);
        await expect(store.setIfAbsent(key, 'v', -1)).rejects.toThrow(RangeError);
        await expect(store.increment(key, 0)).rejects.toThrow(RangeError);
        expect(await store.get(key)).toBeNull();
      });
    });

    describe('take', () => {
      it('returns the value once and deletes it', async () => {
        const key = ownKey(h, 'img');
        await store.set(key, 'ABCD', 300);
        expect(await store.take(key)).toBe('ABCD');
        expect(await store.take(key)).toBeNull();
        expect(await store.get(key)).toBeNull();
      });

      it('returns null for absent and expired keys', async () => {
        const key = ownKey(h, 'img');
        expect(await store.take(key)).toBeNull();
        await store.set(key, 'ABCD', 5);
        await h.elapse(5_000);
        expect(await store.take(key)).toBeNull();
      });

      it('gives the value to exactly one of 50 concurrent takers', async () => {
        const key = ownKey(h, 'img');
        await store.set(key, 'ONCE', 300);
        const stores = [store, ...(await h.peers(4))];
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => (stores[i % stores.length] as CodeStore).take(key)),
        );
        expect(results.filter((r) => r !== null)).toEqual(['ONCE']);
      });
    });

    describe('setIfAbsent', () => {
      it('sets only when absent or expired', async () => {
        const key = ownKey(h, 'flag');
        expect(await store.setIfAbsent(key, 'a', 10)).toBe(true);
        expect(await store.setIfAbsent(key, 'b', 10)).toBe(false);
        expect(await store.get(key)).toBe('a');
        expect(await store.ttlSeconds(key)).toBe(10);
        await h.elapse(10_000);
        expect(await store.setIfAbsent(key, 'c', 10)).toBe(true);
        expect(await store.get(key)).toBe('c');
      });

      it('lets exactly one of 50 concurrent callers set the key, and keeps its value', async () => {
        const key = ownKey(h, 'flag');
        const stores = [store, ...(await h.peers(4))];
        const won = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            (stores[i % stores.length] as CodeStore).setIfAbsent(key, `caller-${i}`, 60),
          ),
        );
        expect(won.filter(Boolean)).toHaveLength(1);
        expect(await store.get(key)).toBe(`caller-${won.indexOf(true)}`);
      });
    });

    describe('delete', () => {
      it('deletes several keys; absent keys and no keys are fine', async () => {
        const [a, b, absent] = [ownKey(h, 'a'), ownKey(h, 'b'), ownKey(h, 'absent')];
        const kept = ownKey(h, 'kept');
        await store.set(a, '1', 60);
        await store.set(b, '2', 60);
        await store.set(kept, '3', 60);
        await store.delete(a, b, absent);
        await store.delete();
        expect(await store.get(a)).toBeNull();
        expect(await store.get(b)).toBeNull();
        expect(await store.get(kept)).toBe('3');
      });
    });

    describe('increment', () => {
      it('counts from 1 in a fixed window that later increments do not extend', async () => {
        const key = ownKey(h, 'counter');
        expect(await store.increment(key, 10)).toBe(1);
        await h.elapse(4_000);
        expect(await store.increment(key, 10)).toBe(2);
        expect(await store.increment(key, 999)).toBe(3);
        // The window set at creation keeps running: 6 s left, not 10 or 999.
        expect(await store.ttlSeconds(key)).toBe(6);
        await h.elapse(6_000);
        expect(await store.get(key)).toBeNull();
        // A new window starts with a fresh count and the lifetime of this call.
        expect(await store.increment(key, 20)).toBe(1);
        expect(await store.ttlSeconds(key)).toBe(20);
      });

      it('hands out every value exactly once under 50 concurrent increments', async () => {
        const key = ownKey(h, 'counter');
        const stores = [store, ...(await h.peers(4))];
        const values = await Promise.all(
          Array.from({ length: 50 }, (_, i) => (stores[i % stores.length] as CodeStore).increment(key, 60)),
        );
        expect([...values].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await store.get(key)).toBe('50');
      });
    });

    describe('countAttempt / refundAttempt', () => {
      it('counts every counter until one is full, then refuses without counting and names it', async () => {
        const account = ownKey(h, 'account');
        const ip = ownKey(h, 'ip');
        const quotas = (): Quota[] => [
          { key: account, limit: 2, ttlSeconds: 60, id: 'account' },
          { key: ip, limit: 5, ttlSeconds: 900, id: 'ip' },
        ];
        expect(await store.countAttempt(quotas())).toEqual({ kind: 'counted' });
        await h.elapse(10_000);
        expect(await store.countAttempt(quotas())).toEqual({ kind: 'counted' });
        expect(await store.countAttempt(quotas())).toEqual({
          kind: 'limited',
          id: 'account',
          retryAfterSeconds: 50,
        });
        expect(await store.get(account)).toBe('2');
        expect(await store.get(ip)).toBe('2');
        expect(await store.ttlSeconds(ip)).toBe(890);
        // a refund takes one back from each, never below zero, and keeps the windows
        await store.refundAttempt([account, ip]);
        await store.refundAttempt([account, ip]);
        await store.refundAttempt([account, ip]);
        expect(await store.get(account)).toBe('0');
        expect(await store.ttlSeconds(account)).toBe(50);
        expect(await store.countAttempt(quotas())).toEqual({ kind: 'counted' });
        await store.refundAttempt([ownKey(h, 'absent')]);
        expect(await store.countAttempt([])).toEqual({ kind: 'counted' });
      });

      it('lets exactly the limit through among 50 concurrent attempts', async () => {
        const key = ownKey(h, 'attempts');
        const stores = [store, ...(await h.peers(4))];
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            (stores[i % stores.length] as CodeStore).countAttempt([
              { key, limit: 10, ttlSeconds: 60, id: 'account' },
            ]),
          ),
        );
        expect(results.filter((r) => r.kind === 'counted')).toHaveLength(10);
        expect(await store.get(key)).toBe('10');
      });
    });

    describe('ttlSeconds', () => {
      it('is null when absent and rounds the remaining lifetime up to whole seconds', async () => {
        const key = ownKey(h, 'ttl');
        expect(await store.ttlSeconds(key)).toBeNull();
        await store.set(key, 'v', 10);
        expect(await store.ttlSeconds(key)).toBe(10);
        await h.elapse(1);
        expect(await store.ttlSeconds(key)).toBe(10);
        await h.elapse(8_499);
        expect(await store.ttlSeconds(key)).toBe(2);
        await h.elapse(1_000);
        expect(await store.ttlSeconds(key)).toBe(1);
        await h.elapse(500);
        expect(await store.ttlSeconds(key)).toBeNull();
      });
    });

    describe('issueCode', () => {
      const quota = (h: Harness, id: string, limit: number, ttlSeconds = 3600): Quota => ({
        key: ownKey(h, `quota-${id}`),
        limit,
        ttlSeconds,
        id,
      });
      /** Runs issueCode with a fresh image code holding K7PQ. */
      const issue = async (keys: ReturnType<typeof smsKeys>, code: string, quotas: Quota[] = []) =>
        store.issueCode(issueInput(keys, await imageCode(h), code, quotas));

      it('takes the image code, sets flag and code with their lifetimes, resets the attempts and counts the quotas', async () => {
        const keys = smsKeys(h);
        const image = await imageCode(h);
        const perIp = quota(h, 'SMS_IP_LIMIT', 20, 3600);
        const perDay = quota(h, 'SMS_DAILY_LIMIT', 10, 5000);
        await store.set(keys.attemptsKey, '4', 300);
        const code = sixDigits();
        expect(await store.issueCode(issueInput(keys, image, code, [perIp, perDay]))).toEqual({
          kind: 'issued',
        });
        expect(await store.get(image)).toBeNull();
        expect(await store.get(keys.flagKey)).toBe('1');
        expect(await store.ttlSeconds(keys.flagKey)).toBe(60);
        expect(await store.get(keys.codeKey)).toBe(code);
        expect(await store.ttlSeconds(keys.codeKey)).toBe(300);
        expect(await store.get(keys.attemptsKey)).toBeNull();
        expect(await store.get(perIp.key)).toBe('1');
        expect(await store.ttlSeconds(perIp.key)).toBe(3600);
        expect(await store.get(perDay.key)).toBe('1');
        expect(await store.ttlSeconds(perDay.key)).toBe(5000);
      });

      it('answers flagged with the flag’s rest while the flag lives, leaving the image code and everything else alone', async () => {
        const keys = smsKeys(h);
        const perIp = quota(h, 'SMS_IP_LIMIT', 20);
        const first = sixDigits();
        await issue(keys, first, [perIp]);
        await h.elapse(20_500);
        const second = first === '000000' ? '111111' : '000000';
        const image = await imageCode(h);
        expect(await store.issueCode(issueInput(keys, image, second, [perIp]))).toEqual({
          kind: 'flagged',
          retryAfterSeconds: 40,
        });
        expect(await store.get(image)).toBe('K7PQ');
        expect(await store.get(keys.codeKey)).toBe(first);
        expect(await store.get(perIp.key)).toBe('1');
        // Once the flag is gone the same image code is good, and the quota counts the second send.
        await h.elapse(39_500);
        expect(await store.issueCode(issueInput(keys, image, second, [perIp]))).toEqual({ kind: 'issued' });
        expect(await store.get(keys.codeKey)).toBe(second);
        expect(await store.get(perIp.key)).toBe('2');
      });

      it('answers expired for an absent, expired or used image code, changing nothing else', async () => {
        const keys = smsKeys(h);
        const perIp = quota(h, 'SMS_IP_LIMIT', 20);
        expect(
          await store.issueCode(issueInput(keys, await imageCode(h, null), sixDigits(), [perIp])),
        ).toEqual({ kind: 'expired' });
        const old = await imageCode(h);
        await h.elapse(300_500);
        expect(await store.issueCode(issueInput(keys, old, sixDigits(), [perIp]))).toEqual({
          kind: 'expired',
        });
        const used = await imageCode(h);
        expect(await store.issueCode(issueInput(smsKeys(h), used, sixDigits(), [perIp]))).toEqual({
          kind: 'issued',
        });
        expect(await store.issueCode(issueInput(keys, used, sixDigits(), [perIp]))).toEqual({
          kind: 'expired',
        });
        expect(await store.get(keys.flagKey)).toBeNull();
        expect(await store.get(keys.codeKey)).toBeNull();
        expect(await store.get(perIp.key)).toBe('1');
      });

      it('spends the image code on a wrong guess, and sets and counts nothing', async () => {
        const keys = smsKeys(h);
        const image = await imageCode(h);
        const perIp = quota(h, 'SMS_IP_LIMIT', 20);
        for (const guess of ['K7PX', 'K7P', 'K7PQQ', '']) {
          await store.set(image, 'K7PQ', 300);
          expect(await store.issueCode(issueInput(keys, image, sixDigits(), [perIp], { guess }))).toEqual({
            kind: 'wrong',
          });
          expect(await store.get(image)).toBeNull();
        }
        // The right answer afterwards finds the image code gone.
        expect(await store.issueCode(issueInput(keys, image, sixDigits(), [perIp]))).toEqual({
          kind: 'expired',
        });
        expect(await store.get(keys.flagKey)).toBeNull();
        expect(await store.get(keys.codeKey)).toBeNull();
        expect(await store.get(perIp.key)).toBeNull();
      });

      it('ignores the case of ASCII letters only, and also accepts the test answer', async () => {
        const cases: Array<[stored: string, guess: string, alsoAccept: string | undefined, kind: string]> = [
          ['K7PQ', 'k7pq', undefined, 'issued'],
          ['k7pq', 'K7pQ', undefined, 'issued'],
          // ſ upper-cases to S in Unicode: not an answer to S.
          ['SSSS', 'ſſſſ', undefined, 'wrong'],
          ['K7PQ', 'test', 'TEST', 'issued'],
          ['K7PQ', 'k7pq', 'TEST', 'issued'],
          ['K7PQ', 'TESX', 'TEST', 'wrong'],
          ['K7PQ', '', '', 'wrong'],
        ];
        for (const [stored, guess, alsoAccept, kind] of cases) {
          const image = await imageCode(h, stored);
          const result = await store.issueCode(
            issueInput(smsKeys(h), image, sixDigits(), [], { guess, alsoAccept }),
          );
          expect({ stored, guess, alsoAccept, kind: result.kind }).toEqual({
            stored,
            guess,
            alsoAccept,
            kind,
          });
          expect(await store.get(image)).toBeNull();
        }
      });

      it('checks the quotas in order after the image code and names the first full one with its counter’s rest', async () => {
        const keys = smsKeys(h);
        const open = quota(h, 'SMS_IP_LIMIT', 5);
        const full = quota(h, 'SMS_DAILY_LIMIT', 2, 1000);
        const alsoFull = quota(h, 'SMS_BUDGET_EXHAUSTED', 1);
        await store.increment(full.key, full.ttlSeconds);
        await store.increment(full.key, full.ttlSeconds);
        await store.increment(alsoFull.key, alsoFull.ttlSeconds);
        await h.elapse(300_000);
        // A missing or wrong image code answers first.
        expect(
          await store.issueCode(
            issueInput(keys, await imageCode(h, null), sixDigits(), [open, full, alsoFull]),
          ),
        ).toEqual({ kind: 'expired' });
        expect(
          await store.issueCode(
            issueInput(keys, await imageCode(h), sixDigits(), [open, full, alsoFull], { guess: 'XXXX' }),
          ),
        ).toEqual({ kind: 'wrong' });
        const image = await imageCode(h);
        expect(await store.issueCode(issueInput(keys, image, sixDigits(), [open, full, alsoFull]))).toEqual({
          kind: 'limited',
          id: 'SMS_DAILY_LIMIT',
          retryAfterSeconds: 700,
        });
        // The image code is spent; nothing was set or counted.
        expect(await store.get(image)).toBeNull();
        expect(await store.get(keys.flagKey)).toBeNull();
        expect(await store.get(keys.codeKey)).toBeNull();
        expect(await store.get(open.key)).toBeNull();
        expect(await store.get(full.key)).toBe('2');
        expect(await store.get(alsoFull.key)).toBe('1');
      });

      it('counts only sends that are issued, up to the limit', async () => {
        const budget = quota(h, 'SMS_BUDGET_EXHAUSTED', 2);
        const a = smsKeys(h);
        expect(await issue(a, sixDigits(), [budget])).toEqual({ kind: 'issued' });
        expect((await issue(a, sixDigits(), [budget])).kind).toBe('flagged');
        expect(await store.get(budget.key)).toBe('1');
        expect(await issue(smsKeys(h), sixDigits(), [budget])).toEqual({ kind: 'issued' });
        const refused = smsKeys(h);
        expect(await issue(refused, sixDigits(), [budget])).toMatchObject({
          kind: 'limited',
          id: 'SMS_BUDGET_EXHAUSTED',
        });
        expect(await store.get(budget.key)).toBe('2');
        expect(await store.get(refused.flagKey)).toBeNull();
      });

      it('answers flagged before looking at the image code or the quotas (a lost race answers as the resend check)', async () => {
        const keys = smsKeys(h);
        const full = quota(h, 'SMS_DAILY_LIMIT', 1);
        await store.increment(full.key, full.ttlSeconds);
        await store.set(keys.flagKey, '1', 30);
        expect(
          await store.issueCode(issueInput(keys, await imageCode(h, null), sixDigits(), [full])),
        ).toEqual({
          kind: 'flagged',
          retryAfterSeconds: 30,
        });
      });

      it('issues exactly once among 50 concurrent calls for one mobile; the losers keep their image codes', async () => {
        const keys = smsKeys(h);
        const perIp = quota(h, 'SMS_IP_LIMIT', 1000);
        const stores = [store, ...(await h.peers(4))];
        const codes = Array.from({ length: 50 }, () => sixDigits());
        const images = await Promise.all(codes.map(() => imageCode(h)));
        const results = await Promise.all(
          codes.map((code, i) =>
            (stores[i % stores.length] as CodeStore).issueCode(
              issueInput(keys, images[i] as string, code, [perIp]),
            ),
          ),
        );
        const winners = results.flatMap((r, i) => (r.kind === 'issued' ? [i] : []));
        expect(winners).toHaveLength(1);
        expect(results.filter((r) => r.kind === 'flagged')).toHaveLength(49);
        expect(await store.get(keys.codeKey)).toBe(codes[winners[0] as number]);
        expect(await store.get(perIp.key)).toBe('1');
        const left = await Promise.all(images.map((image) => store.get(image)));
        expect(left.filter((value) => value === null)).toHaveLength(1);
        expect(left[winners[0] as number]).toBeNull();
      });

      it('lets exactly one of 50 concurrent calls for one image code use it', async () => {
        const image = await imageCode(h);
        const stores = [store, ...(await h.peers(4))];
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            (stores[i % stores.length] as CodeStore).issueCode(issueInput(smsKeys(h), image, sixDigits())),
          ),
        );
        expect(results.filter((r) => r.kind === 'issued')).toHaveLength(1);
        expect(results.filter((r) => r.kind === 'expired')).toHaveLength(49);
      });
    });

    describe('checkCode', () => {
      const check = (keys: ReturnType<typeof smsKeys>, guess: string, maxAttempts = 5) =>
        store.checkCode({ codeKey: keys.codeKey, attemptsKey: keys.attemptsKey, guess, maxAttempts });
      const wrongGuess = (code: string) => code.replace(/^./, (d) => String((Number(d) + 1) % 10));

      it('answers expired when there is no code', async () => {
        const keys = smsKeys(h);
        expect(await check(keys, '123456')).toEqual({ kind: 'expired' });
        await store.set(keys.codeKey, '123456', 300);
        await h.elapse(300_000);
        expect(await check(keys, '123456')).toEqual({ kind: 'expired' });
      });

      it('answers ok for the right code and never deletes it', async () => {
        const keys = smsKeys(h);
        const code = sixDigits();
        await store.issueCode(issueInput(keys, await imageCode(h), code));
        expect(await check(keys, code)).toEqual({ kind: 'ok' });
        expect(await check(keys, code)).toEqual({ kind: 'ok' });
        expect(await store.get(keys.codeKey)).toBe(code);
      });

      it('counts wrong guesses and deletes the code at the last one', async () => {
        const keys = smsKeys(h);
        const code = sixDigits();
        await store.issueCode(issueInput(keys, await imageCode(h), code));
        for (const left of [4, 3, 2, 1]) {
          expect(await check(keys, wrongGuess(code))).toEqual({ kind: 'wrong', attemptsLeft: left });
        }
        // The right code still works before the limit is reached.
        expect(await check(keys, code)).toEqual({ kind: 'ok' });
        expect(await check(keys, wrongGuess(code))).toEqual({ kind: 'wrong', attemptsLeft: 0 });
        expect(await store.get(keys.codeKey)).toBeNull();
        expect(await store.get(keys.attemptsKey)).toBeNull();
        expect(await check(keys, code)).toEqual({ kind: 'expired' });
      });

      it('keeps the attempts counter exactly as long as the code', async () => {
        const keys = smsKeys(h);
        await store.issueCode(issueInput(keys, await imageCode(h), '123456'));
        await h.elapse(100_000);
        await check(keys, '654321');
        expect(await store.ttlSeconds(keys.attemptsKey)).toBe(await store.ttlSeconds(keys.codeKey));
        expect(await store.ttlSeconds(keys.attemptsKey)).toBe(200);
        await h.elapse(200_000);
        expect(await store.get(keys.attemptsKey)).toBeNull();
      });

      it('treats guesses of another length as wrong', async () => {
        const keys = smsKeys(h);
        const code = sixDigits();
        await store.issueCode(issueInput(keys, await imageCode(h), code));
        const guesses = [code.slice(0, 5), `${code}0`, '', ` ${code}`, `${code}\u0000`];
        const results = [];
        for (const guess of guesses) results.push(await check(keys, guess, 10));
        expect(results).toEqual([9, 8, 7, 6, 5].map((left) => ({ kind: 'wrong', attemptsLeft: left })));
        expect(await check(keys, code, 10)).toEqual({ kind: 'ok' });
      });

      it('starts a new code’s guesses from zero', async () => {
        const keys = smsKeys(h);
        await store.issueCode(issueInput(keys, await imageCode(h), '111111'));
        for (let i = 0; i < 4; i++) await check(keys, '999999');
        await h.elapse(60_000);
        expect(await store.issueCode(issueInput(keys, await imageCode(h), '222222'))).toEqual({
          kind: 'issued',
        });
        expect(await check(keys, '999999')).toEqual({ kind: 'wrong', attemptsLeft: 4 });
        expect(await check(keys, '111111')).toEqual({ kind: 'wrong', attemptsLeft: 3 });
      });

      it('counts concurrent wrong guesses one by one and never allows more than the limit', async () => {
        const keys = smsKeys(h);
        await store.issueCode(issueInput(keys, await imageCode(h), '123456'));
        const stores = [store, ...(await h.peers(4))];
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (stores[i % stores.length] as CodeStore).checkCode({
              codeKey: keys.codeKey,
              attemptsKey: keys.attemptsKey,
              guess: String(100000 + i * 7),
              maxAttempts: 5,
            }),
          ),
        );
        const left = results.flatMap((r) => (r.kind === 'wrong' ? [r.attemptsLeft] : []));
        expect(left.sort()).toEqual([0, 1, 2, 3, 4]);
        expect(results.filter((r) => r.kind === 'expired')).toHaveLength(15);
      });
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

// ---- SQLite ------------------------------------------------------------------------------

function fakeClock(startMs = Date.UTC(2025, 0, 1, 8)) {
  let now = startMs;
  return {
    nowMs: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

codeStoreContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-code-store-'));
  const path = join(dir, 'store.sqlite3');
  const clock = fakeClock();
  // As the service opens the stores' connection: a writer waits for the lock on a timer.
  const dbs: SqliteDatabase[] = [openSqlite(path, { busyTimeoutMs: 0 })];
  return {
    store: createSqliteCodeStore(dbs[0] as SqliteDatabase, clock),
    peers: async (count) =>
      Array.from({ length: count }, () => {
        const db = openSqlite(path, { busyTimeoutMs: 0 });
        dbs.push(db);
        return createSqliteCodeStore(db, clock);
      }),
    elapse: async (ms) => clock.advance(ms),
    track: (key) => key,
    cleanup: async () => {
      for (const db of dbs) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite code store housekeeping', () => {
  it('removes expired rows from the file now and then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meiduo-code-store-'));
    const db = openSqlite(join(dir, 'store.sqlite3'));
    try {
      const clock = fakeClock();
      const store = createSqliteCodeStore(db, clock);
      const rows = () => db.prepare('SELECT COUNT(*) AS n FROM meiduo_users_kv').get() as { n: number };
      for (let i = 0; i < 20; i++) await store.set(`img_${i}`, 'ABCD', 300);
      await store.set('long-lived', 'x', 3600);
      expect(rows().n).toBe(21);
      clock.advance(301_000);
      await store.set('trigger', 'x', 3600);
      expect(rows().n).toBe(2);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Run by each child process of the test below: waits for "go" on stdin, then takes every
 * image key and tries to issue a code for every mobile, and prints what it won.
 */
const RACER = `
import { openSqlite } from '${new URL('../../src/adapters/sqlite.ts', import.meta.url).href}';
import { createSqliteCodeStore } from '${new URL('../../src/adapters/code-store/sqlite.ts', import.meta.url).href}';
const [path, count] = [process.env.RACE_DB, Number(process.env.RACE_COUNT)];
const store = createSqliteCodeStore(openSqlite(path, { busyTimeoutMs: 0 }), { nowMs: () => Date.now() });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const taken = [];
const issued = [];
for (let i = 0; i < count; i++) {
  if ((await store.take('img_' + i)) !== null) taken.push(i);
  const mobile = String(13900000000 + i);
  const result = await store.issueCode({
    flagKey: 'send_flag_' + mobile, flagTtlSeconds: 60, imageKey: 'img_m' + i, guess: 'ABCD',
    codeKey: 'sms_' + mobile, code: String(process.pid),
    codeTtlSeconds: 300, attemptsKey: 'attempts:' + mobile,
    quotas: [{ key: 'quota:global', limit: 1000000, ttlSeconds: 3600, id: 'SMS_BUDGET_EXHAUSTED' }],
  });
  if (result.kind === 'issued') issued.push(i);
}
process.stdout.write(JSON.stringify({ taken, issued }) + '\\n');
process.exit(0);
`;

describe('SQLite code store shared by several processes', () => {
  it('keeps take one-use and issueCode single-winner across processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meiduo-code-store-'));
    const path = join(dir, 'store.sqlite3');
    const count = 200;
    const db = openSqlite(path);
    const store = createSqliteCodeStore(db, { nowMs: () => Date.now() });
    let racers: ChildProcess[] = [];
    try {
      for (let i = 0; i < count; i++) {
        await store.set(`img_${i}`, 'ABCD', 300);
        await store.set(`img_m${i}`, 'ABCD', 300);
      }
      racers = Array.from({ length: 3 }, () =>
        spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RACER], {
          cwd: process.cwd(),
          env: { ...process.env, RACE_DB: path, RACE_COUNT: String(count) },
          stdio: ['pipe', 'pipe', 'inherit'],
        }),
      );
      const outputs = racers.map((child) => {
        const lines = createInterface({ input: child.stdout as Readable });
        const iterator = lines[Symbol.asyncIterator]();
        return { child, next: async () => (await iterator.next()).value as string };
      });
      for (const { next } of outputs) expect(await next()).toBe('ready');
      for (const { child } of outputs) child.stdin?.write('go\n');
      const results = await Promise.all(
        outputs.map(async ({ next }) => JSON.parse(await next()) as { taken: number[]; issued: number[] }),
      );
      const everyIndex = Array.from({ length: count }, (_, i) => i);
      const sorted = (lists: number[][]) => lists.flat().sort((a, b) => a - b);
      expect(sorted(results.map((r) => r.taken))).toEqual(everyIndex);
      expect(sorted(results.map((r) => r.issued))).toEqual(everyIndex);
      expect(await store.get('quota:global')).toBe(String(count));
    } finally {
      for (const child of racers) if (child.exitCode === null) child.kill();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- Redis -------------------------------------------------------------------------------

describe.skipIf(!redisAvailable)('Redis', () => {
  const admin = useAdminRedis();

  codeStoreContract('Redis', async () => {
    const connections = [connectRedis(CONTRACT_REDIS_URL, 'contract', silent)];
    const keys = new Set<string>();
    return {
      store: createRedisCodeStore(connections[0] as Redis),
      peers: async (count) =>
        Array.from({ length: count }, () => {
          const redis = connectRedis(CONTRACT_REDIS_URL, 'contract-peer', silent);
          connections.push(redis);
          return createRedisCodeStore(redis);
        }),
      elapse: async (ms) => {
        await elapseKeys(admin(), keys, ms);
      },
      track: (key) => {
        keys.add(key);
        return key;
      },
      cleanup: async () => {
        if (keys.size > 0) await admin().del(...keys);
        for (const redis of connections) redis.disconnect();
      },
    };
  });

  describe('Redis code store', () => {
    it('writes Meiduo’s keys as plain strings with their lifetimes, as Django reads them', async () => {
      const redis = connectRedis(CONTRACT_REDIS_URL, 'django-format', silent);
      const store = createRedisCodeStore(redis);
      const mobile = randomMobile();
      const uuid = randomBytes(16).toString('hex');
      const keys = [`img_${uuid}`, `send_flag_${mobile}`, `sms_${mobile}`];
      try {
        await store.set(`img_${uuid}`, 'K7PQ', 300);
        await store.set(`img_${uuid}-used`, 'K7PQ', 300);
        const code = sixDigits();
        await store.issueCode({
          flagKey: `send_flag_${mobile}`,
          flagTtlSeconds: 60,
          imageKey: `img_${uuid}-used`,
          guess: 'k7pq',
          codeKey: `sms_${mobile}`,
          code,
          codeTtlSeconds: 300,
          attemptsKey: `meiduo-users-test:attempts:${mobile}`,
          quotas: [],
        });
        for (const key of keys) expect(await admin().type(key)).toBe('string');
        expect(await admin().get(`img_${uuid}`)).toBe('K7PQ');
        expect(await admin().get(`send_flag_${mobile}`)).toBe('1');
        expect(await admin().get(`sms_${mobile}`)).toBe(code);
        expect(await admin().ttl(`img_${uuid}`)).toBeGreaterThan(295);
        expect(await admin().ttl(`send_flag_${mobile}`)).toBeGreaterThan(55);
        expect(await admin().ttl(`sms_${mobile}`)).toBeGreaterThan(295);
        // And what Django writes, the store reads.
        await admin().set(`sms_${mobile}`, '024680', 'EX', 300);
        expect(
          await store.checkCode({
            codeKey: `sms_${mobile}`,
            attemptsKey: `meiduo-users-test:attempts:${mobile}`,
            guess: '024680',
            maxAttempts: 5,
          }),
        ).toEqual({ kind: 'ok' });
      } finally {
        await admin().del(...keys, `img_${uuid}-used`, `meiduo-users-test:attempts:${mobile}`);
        await store.close();
      }
    });

    it('with replica acknowledgements asked and none given, refuses the code and takes it back', async () => {
      // The test Redis has no replica: WAIT 1 times out, as on a primary whose replicas are gone.
      const redis = connectRedis(CONTRACT_REDIS_URL, 'acks', silent);
      const store = createRedisCodeStore(redis, { acks: { replicas: 1, timeoutMs: 50 } });
      const keys = smsKeysFor(randomMobile());
      const image = `img_meiduo-users-test-${randomBytes(6).toString('hex')}`;
      const setImage = async (key: string) => {
        await store.set(key, 'K7PQ', 300);
        return key;
      };
      try {
        const failure = await store
          .issueCode(issueInput(keys, await setImage(image), sixDigits()))
          .catch((err: unknown) => err);
        expect(failure).toBeInstanceOf(DependencyError);
        expect(await admin().exists(keys.flagKey, keys.codeKey)).toBe(0);
        // Without acknowledgements asked, the same Redis issues it.
        expect(
          await createRedisCodeStore(redis).issueCode(issueInput(keys, await setImage(image), sixDigits())),
        ).toEqual({
          kind: 'issued',
        });
      } finally {
        await admin().del(keys.flagKey, keys.codeKey, keys.attemptsKey, image);
        await store.close();
      }
    });

    it('serves the first command issued right after connecting', async () => {
      const redis = connectRedis(CONTRACT_REDIS_URL, 'startup', silent);
      const store = createRedisCodeStore(redis);
      try {
        expect(redis.status).not.toBe('ready');
        await expect(store.get(`meiduo-users-test:${randomBytes(6).toString('hex')}`)).resolves.toBeNull();
      } finally {
        await store.close();
      }
    });

    it('rejects with a DependencyError at once when Redis is down, and logs without the password', async () => {
      const lines: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
      const redis = connectRedis('redis://:s3cret-pass@127.0.0.1:1/3', 'down', log);
      let connectionErrors = 0;
      redis.on('error', () => connectionErrors++);
      const store = createRedisCodeStore(redis);
      try {
        const started = Date.now();
        const failures = await Promise.allSettled([
          store.get('img_x'),
          store.take('img_x'),
          store.issueCode(issueInput(smsKeysFor('13900000000'), 'img_x', '123456')),
          store.ping(),
        ]);
        for (const failure of failures) {
          expect(failure.status).toBe('rejected');
          expect((failure as PromiseRejectedResult).reason).toBeInstanceOf(DependencyError);
          expect((failure as PromiseRejectedResult).reason.dependency).toBe('code-store');
        }
        expect(Date.now() - started).toBeLessThan(5_000);
        // Several failed attempts by now, one log line for them, and no password in it.
        expect(connectionErrors).toBeGreaterThan(1);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain('redis connection lost');
        expect(lines.join('')).not.toContain('s3cret-pass');
      } finally {
        await store.close();
      }
    });

    it('recovers by itself after an outage', async () => {
      const proxy = await startProxy(new URL(CONTRACT_REDIS_URL));
      const url = new URL(CONTRACT_REDIS_URL);
      url.port = String(proxy.port);
      const redis = connectRedis(url.toString(), 'outage', silent);
      const store = createRedisCodeStore(redis);
      const key = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
      try {
        await store.set(key, 'before', 60);
        await proxy.stop();
        await expect(store.get(key)).rejects.toBeInstanceOf(DependencyError);
        await proxy.start();
        const deadline = Date.now() + 10_000;
        let value: string | null | undefined;
        while (value === undefined && Date.now() < deadline) {
          value = await store.get(key).catch(() => undefined);
        }
        expect(value).toBe('before');
      } finally {
        await proxy.stop();
        await admin().del(key);
        await store.close();
      }
    });
  });
});

function smsKeysFor(mobile: string) {
  return {
    mobile,
    flagKey: `send_flag_${mobile}`,
    codeKey: `sms_${mobile}`,
    attemptsKey: `meiduo-users-test:attempts:${mobile}`,
  };
}

/** A TCP relay to Redis that can be cut and restored on the same port, to stage an outage. */
async function startProxy(target: URL) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = new Socket();
        sockets.add(client).add(upstream);
        upstream.connect(Number(target.port || 6379), target.hostname);
        client.pipe(upstream).pipe(client);
        const drop = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      if (!server) return resolve();
      const s = server;
      server = undefined;
      s.close(() => resolve());
    });
  await start();
  return {
    get port() {
      return port;
    },
    start,
    stop,
  };
}
