/**
 * One contract for the SessionStore port (src/domain/ports.ts), run against SQLite (a temp
 * file, time moved by a fake clock) and Redis (DB 3, a random key prefix per test; time moved
 * by shortening the lifetimes of the prefix's keys, which is what the passing of time does to
 * Redis keys).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/adapters/redis.js';
import { createRedisSessionStore } from '../../src/adapters/session-store/redis.js';
import { createSqliteSessionStore } from '../../src/adapters/session-store/sqlite.js';
import { openSqlite } from '../../src/adapters/sqlite.js';
import { DependencyError } from '../../src/domain/errors.js';
import type { SessionRecord, SessionStore } from '../../src/domain/ports.js';
import { has } from '../backends.js';
import { CONTRACT_REDIS_URL, elapseKeys, useAdminRedis } from './redis-time.js';

const redisAvailable = await has('redis');
const silent = pino({ level: 'silent' });

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

interface Harness {
  store: SessionStore;
  /** The clock the backend judges expiry by. */
  nowMs(): number;
  /** Lets `ms` of time pass for this test's sessions. */
  elapse(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** What the session plugin stores: the hash of a fresh random id. */
function newIdHash(): string {
  return createHash('sha256').update(randomBytes(32)).digest('hex');
}

function randomUserId(): number {
  return randomInt(1, 2 ** 31);
}

function sessionStoreContract(backend: string, makeHarness: () => Promise<Harness>): void {
  describe(`SessionStore contract on ${backend}`, () => {
    let h: Harness;
    let store: SessionStore;
    beforeEach(async () => {
      h = await makeHarness();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const record = (userId: number, lifetimeMs: number, persistent = true): SessionRecord => ({
      userId,
      expiresAtMs: h.nowMs() + lifetimeMs,
      persistent,
      createdAtMs: h.nowMs(),
    });

    /** Creates a session and returns its id hash. */
    const open = async (userId: number, lifetimeMs = 14 * DAY_MS, persistent = true) => {
      const idHash = newIdHash();
      await store.create(idHash, record(userId, lifetimeMs, persistent));
      return idHash;
    };

    it('returns the record it was given, and null for an unknown id', async () => {
      const remembered = record(randomUserId(), 14 * DAY_MS, true);
      const browserOnly = record(randomUserId(), DAY_MS, false);
      const [a, b] = [newIdHash(), newIdHash()];
      await store.create(a, remembered);
      await store.create(b, browserOnly);
      expect(await store.get(a)).toEqual(remembered);
      expect(await store.get(b)).toEqual(browserOnly);
      expect(await store.get(newIdHash())).toBeNull();
    });

    it('forgets a session at its absolute expiry', async () => {
      const idHash = await open(randomUserId(), DAY_MS);
      await h.elapse(DAY_MS - 60_000);
      expect(await store.get(idHash)).not.toBeNull();
      await h.elapse(60_000);
      expect(await store.get(idHash)).toBeNull();
    });

    it('does not keep a session created already expired', async () => {
      const idHash = newIdHash();
      await store.create(idHash, { ...record(randomUserId(), 0), expiresAtMs: h.nowMs() - 1 });
      expect(await store.get(idHash)).toBeNull();
    });

    it('replaces the record when an id is created again', async () => {
      const idHash = newIdHash();
      await store.create(idHash, record(randomUserId(), DAY_MS, false));
      const again = record(randomUserId(), 14 * DAY_MS, true);
      await store.create(idHash, again);
      expect(await store.get(idHash)).toEqual(again);
    });

    it('deletes one session and leaves the user’s others', async () => {
      const userId = randomUserId();
      const [first, second] = [await open(userId), await open(userId)];
      await store.delete(first);
      await store.delete(newIdHash());
      expect(await store.get(first)).toBeNull();
      expect(await store.get(second)).not.toBeNull();
      expect(await store.deleteAllForUser(userId)).toBe(1);
    });

    it('ends every session of one user, counts them, and leaves other users alone', async () => {
      const [alice, bob] = [randomUserId(), randomUserId()];
      const alices = [await open(alice), await open(alice, DAY_MS, false), await open(alice)];
      const bobs = [await open(bob), await open(bob)];
      expect(await store.deleteAllForUser(alice)).toBe(3);
      for (const idHash of alices) expect(await store.get(idHash)).toBeNull();
      for (const idHash of bobs) expect(await store.get(idHash)).not.toBeNull();
      expect(await store.deleteAllForUser(alice)).toBe(0);
      // A new login after "log out everywhere" works and is indexed again.
      const fresh = await open(alice);
      expect(await store.get(fresh)).not.toBeNull();
      expect(await store.deleteAllForUser(alice)).toBe(1);
      expect(await store.deleteAllForUser(bob)).toBe(2);
    });

    it('does not count sessions that have expired or were deleted', async () => {
      const userId = randomUserId();
      await open(userId, HOUR_MS);
      const deleted = await open(userId);
      const live = [await open(userId), await open(userId, DAY_MS, false)];
      await store.delete(deleted);
      await h.elapse(HOUR_MS);
      expect(await store.deleteAllForUser(userId)).toBe(live.length);
      expect(await store.deleteAllForUser(randomUserId())).toBe(0);
    });

    it('ends every other session of one user in one step, keeping the one named', async () => {
      const [alice, bob] = [randomUserId(), randomUserId()];
      const keep = await open(alice);
      await open(alice, HOUR_MS);
      const others = [await open(alice), await open(alice, DAY_MS, false)];
      const bobs = [await open(bob), await open(bob)];
      await h.elapse(HOUR_MS);
      // The expired one is not counted; the kept one and the other user's stay.
      expect(await store.deleteOthersForUser(alice, keep)).toBe(others.length);
      for (const idHash of others) expect(await store.get(idHash)).toBeNull();
      expect(await store.get(keep)).not.toBeNull();
      for (const idHash of bobs) expect(await store.get(idHash)).not.toBeNull();
      expect((await store.listForUser(alice)).map((s) => s.idHash)).toEqual([keep]);
      expect(await store.deleteOthersForUser(alice, keep)).toBe(0);
      // An id hash that is not one of the user's keeps nothing of theirs.
      expect(await store.deleteOthersForUser(bob, keep)).toBe(2);
      // A login after it is indexed as before, and a full log-out still ends both.
      const fresh = await open(alice);
      expect((await store.listForUser(alice)).map((s) => s.idHash).sort()).toEqual([keep, fresh].sort());
      expect(await store.deleteAllForUser(alice)).toBe(2);
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('keeps the activity a session was created with', async () => {
      const idHash = newIdHash();
      const withSeen: SessionRecord = {
        ...record(randomUserId(), DAY_MS),
        lastSeenAtMs: h.nowMs(),
        ipPrefix: '203.0.113.0/24',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) 浏览器',
      };
      await store.create(idHash, withSeen);
      expect(await store.get(idHash)).toEqual(withSeen);
    });

    it('lists the live sessions of one user only', async () => {
      const [alice, bob] = [randomUserId(), randomUserId()];
      const short = await open(alice, HOUR_MS);
      const deleted = await open(alice);
      const live = [await open(alice), await open(alice, DAY_MS, false)];
      await open(bob);
      await store.delete(deleted);
      expect((await store.listForUser(alice)).map((s) => s.idHash).sort()).toEqual([...live, short].sort());
      await h.elapse(HOUR_MS);
      const listed = await store.listForUser(alice);
      expect(listed.map((s) => s.idHash).sort()).toEqual([...live].sort());
      for (const s of listed) expect(s.record).toEqual(await store.get(s.idHash));
      expect(await store.listForUser(randomUserId())).toEqual([]);
    });

    it('records activity on a live session and leaves an absent one absent', async () => {
      const userId = randomUserId();
      const idHash = await open(userId, DAY_MS);
      const seen = { lastSeenAtMs: h.nowMs() + 5000, ipPrefix: '2001:db8:1::/48', userAgent: 'curl/8' };
      await store.touch(idHash, seen);
      expect(await store.get(idHash)).toMatchObject({ userId, ...seen });
      const absent = newIdHash();
      await store.touch(absent, seen);
      expect(await store.get(absent)).toBeNull();
      expect(await store.listForUser(userId)).toHaveLength(1);
      await store.delete(idHash);
      await store.touch(idHash, seen);
      expect(await store.get(idHash)).toBeNull();
    });
  });
}

// ---- SQLite ------------------------------------------------------------------------------

sessionStoreContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-session-store-'));
  const db = openSqlite(join(dir, 'store.sqlite3'));
  let now = Date.UTC(2025, 0, 1, 8);
  return {
    store: createSqliteSessionStore(db, { nowMs: () => now }),
    nowMs: () => now,
    elapse: async (ms) => {
      now += ms;
    },
    cleanup: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite session store', () => {
  it('adds the activity columns in place to a file made before them, keeping its sessions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meiduo-session-old-'));
    const db = openSqlite(join(dir, 'store.sqlite3'));
    try {
      db.exec(`CREATE TABLE meiduo_users_sessions (
        id_hash TEXT NOT NULL PRIMARY KEY, user_id INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,
        persistent INTEGER NOT NULL, created_at_ms INTEGER NOT NULL) WITHOUT ROWID`);
      const now = Date.UTC(2025, 0, 1, 8);
      db.prepare('INSERT INTO meiduo_users_sessions VALUES (?, ?, ?, ?, ?)').run(
        'old',
        7,
        now + DAY_MS,
        1,
        now,
      );
      const store = createSqliteSessionStore(db, { nowMs: () => now });
      expect(await store.get('old')).toEqual({
        userId: 7,
        expiresAtMs: now + DAY_MS,
        persistent: true,
        createdAtMs: now,
      });
      await store.touch('old', { lastSeenAtMs: now + 1, ipPrefix: '198.51.100.0/24', userAgent: 'ua' });
      expect(await store.get('old')).toMatchObject({ lastSeenAtMs: now + 1, ipPrefix: '198.51.100.0/24' });
      // Opening it again finds the columns there.
      expect(() => createSqliteSessionStore(db, { nowMs: () => now })).not.toThrow();
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- Redis -------------------------------------------------------------------------------

async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

describe.skipIf(!redisAvailable)('Redis', () => {
  const admin = useAdminRedis();

  sessionStoreContract('Redis', async () => {
    const keyPrefix = `meiduo-users-test:${randomBytes(6).toString('hex')}:`;
    const redis = connectRedis(CONTRACT_REDIS_URL, 'contract', silent);
    return {
      store: createRedisSessionStore(redis, { keyPrefix }),
      nowMs: () => Date.now(),
      elapse: async (ms) => {
        await elapseKeys(admin(), await keysUnder(admin(), keyPrefix), ms);
      },
      cleanup: async () => {
        const keys = await keysUnder(admin(), keyPrefix);
        if (keys.length > 0) await admin().del(...keys);
        redis.disconnect();
      },
    };
  });

  describe('Redis session store', () => {
    it('keeps only id hashes, under its prefix, expiring at the session’s absolute expiry', async () => {
      const keyPrefix = `meiduo-users-test:${randomBytes(6).toString('hex')}:`;
      const store = createRedisSessionStore(connectRedis(CONTRACT_REDIS_URL, 'layout', silent), {
        keyPrefix,
      });
      const userId = randomUserId();
      const idHash = newIdHash();
      const expiresAtMs = Date.now() + 14 * DAY_MS;
      try {
        await store.create(idHash, { userId, expiresAtMs, persistent: true, createdAtMs: Date.now() });
        const keys = await keysUnder(admin(), keyPrefix);
        expect(keys.sort()).toEqual(
          [`${keyPrefix}session:${idHash}`, `${keyPrefix}user-sessions:${userId}`].sort(),
        );
        for (const key of keys) {
          const expiresAt = Number(await admin().call('PEXPIRETIME', key));
          expect(expiresAt).toBe(expiresAtMs);
        }
      } finally {
        const keys = await keysUnder(admin(), keyPrefix);
        if (keys.length > 0) await admin().del(...keys);
        await store.close();
      }
    });

    it('rejects with a DependencyError when Redis is down', async () => {
      const store = createRedisSessionStore(connectRedis('redis://127.0.0.1:1/3', 'down', silent), {
        keyPrefix: 'meiduo-users-test:',
      });
      try {
        const started = Date.now();
        const failures = await Promise.allSettled([
          store.get(newIdHash()),
          store.create(newIdHash(), {
            userId: 1,
            expiresAtMs: Date.now() + DAY_MS,
            persistent: true,
            createdAtMs: 0,
          }),
          store.deleteAllForUser(1),
          store.deleteOthersForUser(1, newIdHash()),
          store.ping(),
        ]);
        for (const failure of failures) {
          expect(failure.status).toBe('rejected');
          expect((failure as PromiseRejectedResult).reason).toBeInstanceOf(DependencyError);
          expect((failure as PromiseRejectedResult).reason.dependency).toBe('session-store');
        }
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        await store.close();
      }
    });
  });
});
