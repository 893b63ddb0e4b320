import { timingSafeEqual } from 'node:crypto';
import { captchaMatches } from '../../domain/captcha.js';
import { DependencyError } from '../../domain/errors.js';
import type {
  AttemptResult,
  CheckCodeInput,
  CheckCodeResult,
  Clock,
  CodeStore,
  IssueCodeInput,
  IssueResult,
  Quota,
} from '../../domain/ports.js';
import {
  type RatioCheck,
  type RatioCredit,
  type RatioScopeKind,
  ratioExceeded,
  ratioFields,
  scopeCounts,
} from '../../domain/sms-abuse.js';
import { type SqliteDatabase, whenUnlocked } from '../sqlite.js';

/** Expired rows are invisible at once; they are physically removed at most this often. */
const PURGE_INTERVAL_MS = 60_000;
/** Rows removed per purge, so that one request never pays for a large backlog. */
const PURGE_BATCH = 500;

interface Row {
  value: string;
  expires_at_ms: number;
}

function assertTtlSeconds(ttlSeconds: number, what: string): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new RangeError(`${what} must be a whole number of seconds >= 1, got ${ttlSeconds}`);
  }
}

/** Equal strings, compared in time that does not depend on where they differ. */
function sameSecret(guess: string, stored: string): boolean {
  const a = Buffer.from(guess, 'utf8');
  const b = Buffer.from(stored, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The code store of the embedded default: one table in the SQLite file that also holds the
 * users. Expiry follows the injected clock (a row whose expiry has passed is absent); every
 * read-then-write runs in an IMMEDIATE transaction, which takes the file's write lock before
 * reading, so that several processes sharing the file cannot interleave inside it.
 */
export function createSqliteCodeStore(
  db: SqliteDatabase,
  clock: Clock,
  { lockWaitMs = 5000 }: { lockWaitMs?: number } = {},
): CodeStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS meiduo_users_kv (
      key TEXT NOT NULL PRIMARY KEY,
      value TEXT NOT NULL,
      expires_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS meiduo_users_kv_expires ON meiduo_users_kv (expires_at_ms);
    CREATE TABLE IF NOT EXISTS meiduo_users_ratio (
      scope TEXT NOT NULL,
      field TEXT NOT NULL,
      n INTEGER NOT NULL,
      expires_at_ms INTEGER NOT NULL,
      PRIMARY KEY (scope, field)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS meiduo_users_ratio_expires ON meiduo_users_ratio (expires_at_ms);
  `);

  const selectLive = db.prepare<[string, number], Row>(
    'SELECT value, expires_at_ms FROM meiduo_users_kv WHERE key = ? AND expires_at_ms > ?',
  );
  const upsert = db.prepare<[string, string, number]>(
    `INSERT INTO meiduo_users_kv (key, value, expires_at_ms) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms`,
  );
  const updateValue = db.prepare<[string, string]>('UPDATE meiduo_users_kv SET value = ? WHERE key = ?');
  const deleteKey = db.prepare<[string]>('DELETE FROM meiduo_users_kv WHERE key = ?');
  const purgeExpired = db.prepare<[number, number]>(
    `DELETE FROM meiduo_users_kv WHERE key IN
       (SELECT key FROM meiduo_users_kv WHERE expires_at_ms <= ? LIMIT ?)`,
  );
  const ping = db.prepare('SELECT 1');
  // The ratio rule's counters: the rows of one scope's fields (src/domain/sms-abuse.ts).
  const selectRatio = db.prepare<[string, string, number], { field: string; n: number }>(
    `SELECT field, n FROM meiduo_users_ratio
     WHERE scope = ? AND field IN (SELECT value FROM json_each(?)) AND expires_at_ms > ?`,
  );
  const bumpRatio = db.prepare<[string, string, number, number]>(
    `INSERT INTO meiduo_users_ratio (scope, field, n, expires_at_ms) VALUES (?, ?, 1, ?)
     ON CONFLICT (scope, field) DO UPDATE SET
       n = CASE WHEN expires_at_ms > ? THEN n + 1 ELSE 1 END, expires_at_ms = excluded.expires_at_ms`,
  );
  const purgeRatio = db.prepare<[number, number]>(
    `DELETE FROM meiduo_users_ratio WHERE (scope, field) IN
       (SELECT scope, field FROM meiduo_users_ratio WHERE expires_at_ms <= ? LIMIT ?)`,
  );

  const live = (key: string, nowMs: number): Row | undefined => selectLive.get(key, nowMs);
  const secondsLeft = (row: Row, nowMs: number): number => Math.ceil((row.expires_at_ms - nowMs) / 1000);

  /** Adds 1 to a counter; a new (or expired) counter starts at 1 with the given lifetime. */
  const bump = (key: string, ttlSeconds: number, nowMs: number): number => {
    const row = live(key, nowMs);
    if (!row) {
      upsert.run(key, '1', nowMs + ttlSeconds * 1000);
      return 1;
    }
    const next = (Number.parseInt(row.value, 10) || 0) + 1;
    updateValue.run(String(next), key);
    return next;
  };

  let lastPurgeMs = Number.NEGATIVE_INFINITY;
  /** Housekeeping after a write; a failure (another writer) waits for a later write. */
  const maybePurge = (nowMs: number): void => {
    if (nowMs - lastPurgeMs < PURGE_INTERVAL_MS) return;
    try {
      purgeExpired.run(nowMs, PURGE_BATCH);
      purgeRatio.run(nowMs, PURGE_BATCH);
      lastPurgeMs = nowMs;
    } catch {
      // Expired rows are already invisible; the write the caller asked for has been made.
    }
  };

  /** The first scope over its threshold (1-based), or 0; a verified mobile is never over. */
  const ratioTripped = (ratio: RatioCheck, nowMs: number): number => {
    if (live(ratio.verifiedKey, nowMs)) return 0;
    const fields = ratioFields(ratio);
    const wanted = JSON.stringify([...fields.sent, ...fields.verified, ...fields.daily]);
    for (const [i, scope] of ratio.scopes.entries()) {
      if (scope.floor <= 0) continue;
      const values = new Map(selectRatio.all(scope.key, wanted, nowMs).map((r) => [r.field, r.n]));
      const counts = scopeCounts(ratio, (f) => values.get(f) ?? 0);
      if (ratioExceeded(counts, scope.floor, ratio.multiplier)) return i + 1;
    }
    return 0;
  };

  const countSent = (ratio: RatioCheck, codeTtlSeconds: number, nowMs: number): void => {
    // Like the Redis hash's EXPIRE: a counter lives countersTtlSeconds after its last write.
    const expires = nowMs + ratio.countersTtlSeconds * 1000;
    for (const scope of ratio.scopes) bumpRatio.run(scope.key, `s${ratio.hour}`, expires, nowMs);
    upsert.run(
      ratio.originKey,
      JSON.stringify(ratio.scopes.map((s) => s.key)),
      nowMs + codeTtlSeconds * 1000,
    );
  };

  /** Credits the scopes of the code's origin once; remembers the mobile as verified. */
  const credit = (c: RatioCredit, nowMs: number): void => {
    const origin = live(c.originKey, nowMs);
    if (origin) {
      const expires = nowMs + c.countersTtlSeconds * 1000;
      for (const scope of JSON.parse(origin.value) as string[]) {
        bumpRatio.run(scope, `v${c.hour}`, expires, nowMs);
        bumpRatio.run(scope, `d${c.day}`, expires, nowMs);
      }
      deleteKey.run(c.originKey);
    }
    upsert.run(c.verifiedKey, '1', nowMs + c.verifiedTtlSeconds * 1000);
  };

  const takeTx = db.transaction((key: string, nowMs: number): string | null => {
    const row = live(key, nowMs);
    deleteKey.run(key);
    return row ? row.value : null;
  });

  const setIfAbsentTx = db.transaction((key: string, value: string, ttlSeconds: number, nowMs: number) => {
    if (live(key, nowMs)) return false;
    upsert.run(key, value, nowMs + ttlSeconds * 1000);
    return true;
  });

  const deleteTx = db.transaction((keys: string[]) => {
    for (const key of keys) deleteKey.run(key);
  });

  const incrementTx = db.transaction((key: string, ttlSeconds: number, nowMs: number) =>
    bump(key, ttlSeconds, nowMs),
  );

  const issueCodeTx = db.transaction((input: IssueCodeInput, nowMs: number): IssueResult => {
    const flag = live(input.flagKey, nowMs);
    if (flag) return { kind: 'flagged', retryAfterSeconds: secondsLeft(flag, nowMs) };
    const image = live(input.imageKey, nowMs);
    deleteKey.run(input.imageKey);
    if (!image) return { kind: 'expired' };
    // Both compares always run, so the time does not tell which answer was close.
    const right = captchaMatches(input.guess, image.value);
    const test = input.alsoAccept !== undefined && captchaMatches(input.guess, input.alsoAccept);
    if (!right && !test) return { kind: 'wrong' };
    for (const quota of input.quotas) {
      const counter = live(quota.key, nowMs);
      if (counter && (Number.parseInt(counter.value, 10) || 0) >= quota.limit) {
        return { kind: 'limited', id: quota.id, retryAfterSeconds: secondsLeft(counter, nowMs) };
      }
    }
    const ratio = input.ratio ?? null;
    const tripped = !input.blocked && ratio ? ratioTripped(ratio, nowMs) : 0;
    const trippedKind: RatioScopeKind | undefined = ratio?.scopes[tripped - 1]?.kind;
    upsert.run(input.flagKey, '1', nowMs + input.flagTtlSeconds * 1000);
    for (const quota of input.quotas) bump(quota.key, quota.ttlSeconds, nowMs);
    if (input.blocked) return { kind: 'blocked', by: 'list' };
    if (trippedKind && ratio?.enforce) return { kind: 'blocked', by: trippedKind };
    upsert.run(input.codeKey, input.code, nowMs + input.codeTtlSeconds * 1000);
    deleteKey.run(input.attemptsKey);
    if (ratio) countSent(ratio, input.codeTtlSeconds, nowMs);
    return trippedKind ? { kind: 'issued', ratioTripped: trippedKind } : { kind: 'issued' };
  });

  const checkCodeTx = db.transaction((input: CheckCodeInput, nowMs: number): CheckCodeResult => {
    const code = live(input.codeKey, nowMs);
    if (!code) return { kind: 'expired' };
    if (sameSecret(input.guess, code.value)) {
      if (input.credit) credit(input.credit, nowMs);
      return { kind: 'ok' };
    }
    // The counter lives exactly as long as the code it counts guesses for.
    const attemptsRow = live(input.attemptsKey, nowMs);
    const attempts = (attemptsRow ? Number.parseInt(attemptsRow.value, 10) || 0 : 0) + 1;
    if (attempts >= input.maxAttempts) {
      deleteKey.run(input.codeKey);
      deleteKey.run(input.attemptsKey);
      return { kind: 'wrong', attemptsLeft: 0 };
    }
    upsert.run(input.attemptsKey, String(attempts), code.expires_at_ms);
    return { kind: 'wrong', attemptsLeft: input.maxAttempts - attempts };
  });

  const countAttemptTx = db.transaction((quotas: Quota[], nowMs: number): AttemptResult => {
    for (const quota of quotas) {
      const counter = live(quota.key, nowMs);
      if (counter && (Number.parseInt(counter.value, 10) || 0) >= quota.limit) {
        return { kind: 'limited', id: quota.id, retryAfterSeconds: secondsLeft(counter, nowMs) };
      }
    }
    for (const quota of quotas) bump(quota.key, quota.ttlSeconds, nowMs);
    return { kind: 'counted' };
  });

  const refundAttemptTx = db.transaction((keys: string[], nowMs: number) => {
    for (const key of keys) {
      const counter = live(key, nowMs);
      const count = counter ? Number.parseInt(counter.value, 10) || 0 : 0;
      if (count > 0) updateValue.run(String(count - 1), key);
    }
  });

  /**
   * Runs one step, again while another process holds the write lock (whenUnlocked); a
   * database that stays locked past `lockWaitMs`, is closed or fails is a 503.
   */
  const guarded = async <T>(step: (nowMs: number) => T, write: boolean): Promise<T> => {
    let nowMs = 0;
    try {
      const result = await whenUnlocked(() => {
        nowMs = clock.nowMs();
        return step(nowMs);
      }, lockWaitMs);
      if (write) maybePurge(nowMs);
      return result;
    } catch (err) {
      // A RangeError is the caller's bug (a bad lifetime), not an unavailable store.
      throw err instanceof RangeError ? err : new DependencyError('code-store', err);
    }
  };

  return {
    get: (key) => guarded((nowMs) => live(key, nowMs)?.value ?? null, false),

    set: (key, value, ttlSeconds) =>
      guarded((nowMs) => {
        assertTtlSeconds(ttlSeconds, 'ttlSeconds');
        upsert.run(key, value, nowMs + ttlSeconds * 1000);
      }, true),

    take: (key) => guarded((nowMs) => takeTx.immediate(key, nowMs), true),

    setIfAbsent: (key, value, ttlSeconds) =>
      guarded((nowMs) => {
        assertTtlSeconds(ttlSeconds, 'ttlSeconds');
        return setIfAbsentTx.immediate(key, value, ttlSeconds, nowMs);
      }, true),

    delete: (...keys) => guarded(() => deleteTx.immediate(keys), true),

    increment: (key, ttlSeconds) =>
      guarded((nowMs) => {
        assertTtlSeconds(ttlSeconds, 'ttlSeconds');
        return incrementTx.immediate(key, ttlSeconds, nowMs);
      }, true),

    ttlSeconds: (key) =>
      guarded((nowMs) => {
        const row = live(key, nowMs);
        return row ? secondsLeft(row, nowMs) : null;
      }, false),

    issueCode: (input) =>
      guarded((nowMs) => {
        assertTtlSeconds(input.flagTtlSeconds, 'flagTtlSeconds');
        assertTtlSeconds(input.codeTtlSeconds, 'codeTtlSeconds');
        for (const quota of input.quotas) assertTtlSeconds(quota.ttlSeconds, `quota ${quota.id} ttlSeconds`);
        // Only a Redis queue on the code store's own database writes its job in the step.
        if (input.enqueue) throw new Error('the SQLite code store cannot run a queue step');
        return issueCodeTx.immediate(input, nowMs);
      }, true),

    checkCode: (input) => guarded((nowMs) => checkCodeTx.immediate(input, nowMs), true),

    countAttempt: (quotas) =>
      guarded((nowMs) => {
        for (const quota of quotas) assertTtlSeconds(quota.ttlSeconds, `quota ${quota.id} ttlSeconds`);
        return countAttemptTx.immediate(quotas, nowMs);
      }, true),

    refundAttempt: (keys) => guarded((nowMs) => refundAttemptTx.immediate(keys, nowMs), true),

    ping: () => guarded(() => void ping.get(), false),

    // The database belongs to whoever opened it (it also holds the users): nothing to close.
    close: async () => {},
  };
}
