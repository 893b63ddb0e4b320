import type { Kysely } from 'kysely';
import type { SqliteDatabase } from '../sqlite.js';
import type { DB } from './schema.js';

/*
 * What every dialect's opener shares (database.ts picks one; postgres.ts and mysql.ts
 * implement it). The server pools share one rule: a dead database makes a query fail within
 * a couple of seconds (the route answers 503), and the pool replaces broken connections by
 * itself, so the service recovers without a restart when the database comes back.
 */

export type UserDialect = 'sqlite' | 'postgres' | 'mysql';

export interface UserDatabase {
  db: Kysely<DB>;
  dialect: UserDialect;
  close(): Promise<void>;
}

export interface UserDatabaseOptions {
  poolSize: number;
  statementTimeoutMs: number;
  /** The process's shared SQLite handle (src/adapters/sqlite.ts); left open by close(). */
  sqlite?: SqliteDatabase;
}

/** Longest wait for a new connection: a dead host must not hold a request for long. */
export const CONNECT_TIMEOUT_MS = 2000;
/** Client-side bound beyond the server's statement timeout, for a host that stopped answering. */
export const READ_TIMEOUT_SLACK_MS = 2000;
export const IDLE_TIMEOUT_MS = 30_000;
