import { DependencyError } from '../../domain/errors.js';
import type { Clock, SessionRecord, SessionStore } from '../../domain/ports.js';
import { type SqliteDatabase, whenUnlocked } from '../sqlite.js';

/** Expired sessions are invisible at once; they are physically removed at most this often. */
const PURGE_INTERVAL_MS = 60_000;
const PURGE_BATCH = 500;

interface Row {
  user_id: number;
  expires_at_ms: number;
  persistent: number;
  created_at_ms: number;
  last_seen_at_ms: number | null;
  ip_prefix: string | null;
  user_agent: string | null;
}

/** Session metadata of the user centre (API.md §3), added in place to a file made before it. */
const META_COLUMNS = {
  last_seen_at_ms: 'INTEGER',
  ip_prefix: 'TEXT',
  user_agent: 'TEXT',
} as const;

function toRecord(row: Row): SessionRecord {
  return {
    userId: row.user_id,
    expiresAtMs: row.expires_at_ms,
    persistent: row.persistent === 1,
    createdAtMs: row.created_at_ms,
    ...(row.last_seen_at_ms === null ? {} : { lastSeenAtMs: row.last_seen_at_ms }),
    ...(row.ip_prefix === null ? {} : { ipPrefix: row.ip_prefix }),
    ...(row.user_agent === null ? {} : { userAgent: row.user_agent }),
  };
}

/**
 * Sessions of the embedded default, in the SQLite file that also holds the users, indexed by
 * user so that all of a user's sessions can be ended at once. Expiry follows the injected
 * clock: a record whose absolute expiry has passed is absent.
 */
export function createSqliteSessionStore(
  db: SqliteDatabase,
  clock: Clock,
  { lockWaitMs = 5000 }: { lockWaitMs?: number } = {},
): SessionStore {
  // Web processes open the file at the same time: the table and the columns added to an older
  // file are checked and made in one IMMEDIATE transaction, so two processes never both find a
  // column missing and both add it ("duplicate column name").
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS meiduo_users_sessions (
        id_hash TEXT NOT NULL PRIMARY KEY,
        user_id INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        persistent INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS meiduo_users_sessions_user ON meiduo_users_sessions (user_id);
      CREATE INDEX IF NOT EXISTS meiduo_users_sessions_expires ON meiduo_users_sessions (expires_at_ms);
    `);
    const present = new Set(
      db
        .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('meiduo_users_sessions')")
        .all()
        .map((c) => c.name),
    );
    for (const [column, type] of Object.entries(META_COLUMNS)) {
      if (!present.has(column)) db.exec(`ALTER TABLE meiduo_users_sessions ADD COLUMN ${column} ${type}`);
    }
  }).immediate();

  const insert = db.prepare<
    [string, number, number, number, number, number | null, string | null, string | null]
  >(
    `INSERT INTO meiduo_users_sessions
       (id_hash, user_id, expires_at_ms, persistent, created_at_ms, last_seen_at_ms, ip_prefix, user_agent)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id_hash) DO UPDATE SET user_id = excluded.user_id, expires_at_ms = excluded.expires_at_ms,
       persistent = excluded.persistent, created_at_ms = excluded.created_at_ms,
       last_seen_at_ms = excluded.last_seen_at_ms, ip_prefix = excluded.ip_prefix,
       user_agent = excluded.user_agent`,
  );
  const FIELDS = 'user_id, expires_at_ms, persistent, created_at_ms, last_seen_at_ms, ip_prefix, user_agent';
  const selectLive = db.prepare<[string, number], Row>(
    `SELECT ${FIELDS} FROM meiduo_users_sessions WHERE id_hash = ? AND expires_at_ms > ?`,
  );
  const selectLiveOfUser = db.prepare<[number, number], Row & { id_hash: string }>(
    `SELECT id_hash, ${FIELDS} FROM meiduo_users_sessions WHERE user_id = ? AND expires_at_ms > ?`,
  );
  const touchLive = db.prepare<[number, string, string, string, number]>(
    `UPDATE meiduo_users_sessions SET last_seen_at_ms = ?, ip_prefix = ?, user_agent = ?
     WHERE id_hash = ? AND expires_at_ms > ?`,
  );
  const deleteOne = db.prepare<[string]>('DELETE FROM meiduo_users_sessions WHERE id_hash = ?');
  const deleteLiveOfUser = db.prepare<[number, number]>(
    'DELETE FROM meiduo_users_sessions WHERE user_id = ? AND expires_at_ms > ?',
  );
  const deleteAllOfUser = db.prepare<[number]>('DELETE FROM meiduo_users_sessions WHERE user_id = ?');
  // One statement: atomic against a session created at the same moment.
  const deleteLiveOthersOfUser = db.prepare<[number, string, number]>(
    'DELETE FROM meiduo_users_sessions WHERE user_id = ? AND id_hash <> ? AND expires_at_ms > ?',
  );
  const purgeExpired = db.prepare<[number, number]>(
    `DELETE FROM meiduo_users_sessions WHERE id_hash IN
       (SELECT id_hash FROM meiduo_users_sessions WHERE expires_at_ms <= ? LIMIT ?)`,
  );
  const ping = db.prepare('SELECT 1');

  /** Counts only the sessions that were still alive; removes the user's expired ones too. */
  const deleteAllForUserTx = db.transaction((userId: number, nowMs: number): number => {
    const live = deleteLiveOfUser.run(userId, nowMs).changes;
    deleteAllOfUser.run(userId);
    return live;
  });

  let lastPurgeMs = Number.NEGATIVE_INFINITY;
  /** Runs one step, again while another process holds the write lock (whenUnlocked). */
  const guarded = async <T>(step: (nowMs: number) => T, write: boolean): Promise<T> => {
    let nowMs = 0;
    let result: T;
    try {
      result = await whenUnlocked(() => {
        nowMs = clock.nowMs();
        return step(nowMs);
      }, lockWaitMs);
    } catch (err) {
      throw new DependencyError('session-store', err);
    }
    if (write && nowMs - lastPurgeMs >= PURGE_INTERVAL_MS) {
      try {
        purgeExpired.run(nowMs, PURGE_BATCH);
        lastPurgeMs = nowMs;
      } catch {
        // Expired sessions are already invisible; a later write removes them.
      }
    }
    return result;
  };

  return {
    create: (idHash, record) =>
      guarded(
        () =>
          void insert.run(
            idHash,
            record.userId,
            record.expiresAtMs,
            record.persistent ? 1 : 0,
            record.createdAtMs,
            record.lastSeenAtMs ?? null,
            record.ipPrefix ?? null,
            record.userAgent ?? null,
          ),
        true,
      ),

    get: (idHash) =>
      guarded((nowMs): SessionRecord | null => {
        const row = selectLive.get(idHash, nowMs);
        return row ? toRecord(row) : null;
      }, false),

    listForUser: (userId) =>
      guarded(
        (nowMs) =>
          selectLiveOfUser.all(userId, nowMs).map((row) => ({ idHash: row.id_hash, record: toRecord(row) })),
        false,
      ),

    touch: (idHash, seen) =>
      guarded(
        (nowMs) => void touchLive.run(seen.lastSeenAtMs, seen.ipPrefix, seen.userAgent, idHash, nowMs),
        false,
      ),

    delete: (idHash) => guarded(() => void deleteOne.run(idHash), true),

    deleteAllForUser: (userId) => guarded((nowMs) => deleteAllForUserTx.immediate(userId, nowMs), true),

    deleteOthersForUser: (userId, keepIdHash) =>
      guarded((nowMs) => deleteLiveOthersOfUser.run(userId, keepIdHash, nowMs).changes, true),

    ping: () => guarded(() => void ping.get(), false),

    // The database belongs to whoever opened it (it also holds the users): nothing to close.
    close: async () => {},
  };
}
