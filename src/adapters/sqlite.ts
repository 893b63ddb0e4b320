import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/**
 * Opens the embedded default's SQLite file, shared by the user table (through Kysely), the
 * code store and the session store. WAL lets readers run beside the one writer; the busy
 * timeout makes a second process on the same file wait for the write lock instead of failing.
 * The stores open their own connection with busyTimeoutMs 0 and wait with `whenUnlocked`.
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

/** SQLite's answer when another connection holds the lock and this one does not wait. */
export function isSqliteBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * Runs a synchronous step (a statement or a transaction, which SQLite rolls back when it
 * fails) and, while another process holds the write lock, runs it again after a short timer.
 * SQLite's own busy handler would sleep in the event loop instead, stalling every request of
 * this process for up to tens of milliseconds. After `deadlineMs` the last error is thrown.
 */
export async function whenUnlocked<T>(step: () => T, deadlineMs: number): Promise<T> {
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return step();
    } catch (err) {
      if (!isSqliteBusy(err) || performance.now() - started >= deadlineMs) throw err;
    }
    // 1, 2, 4, 8, then 16 ms, jittered so that waiting processes do not retry in step.
    await sleep(2 ** Math.min(attempt, 4) * (0.5 + Math.random()));
  }
}
