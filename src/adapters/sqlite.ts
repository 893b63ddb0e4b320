import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/**
 * Opens the embedded default's SQLite file, shared by the user table (through Kysely), the
 * code store and the session store. WAL lets readers run beside the one writer; the busy
 * timeout makes a second process on the same file wait for the write lock instead of failing.
 */
export function openSqlite(
  path: string,
  { busyTimeoutMs = 5000 }: { busyTimeoutMs?: number } = {},
): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
  db.pragma('foreign_keys = ON');
  return db;
}
