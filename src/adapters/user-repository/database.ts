import { Kysely, type SqliteDatabase as KyselySqliteDatabase, SqliteDialect } from 'kysely';
import { openSqlite, type SqliteDatabase } from '../sqlite.js';
import type { DB } from './schema.js';

/*
 * Opens the user table's database from DATABASE_URL: the embedded SQLite file, PostgreSQL or
 * MySQL/MariaDB. The server pools share one rule: a dead database makes a query fail within
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

export async function openUserDatabase(url: string, options: UserDatabaseOptions): Promise<UserDatabase> {
  if (url.startsWith('sqlite:')) return openSqliteDatabase(url.slice('sqlite:'.length), options.sqlite);
  // The server drivers load only when used: a process on SQLite carries neither.
  if (/^postgres(ql)?:\/\//.test(url)) return (await import('./postgres.js')).openPostgres(url, options);
  if (/^(mysql|mariadb):\/\//.test(url)) return (await import('./mysql.js')).openMysql(url, options);
  throw new Error('DATABASE_URL must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://');
}

function openSqliteDatabase(path: string, shared: SqliteDatabase | undefined): UserDatabase {
  const handle = shared ?? openSqlite(path);
  // Kysely closes its database on destroy(); a shared handle belongs to its opener.
  const database: KyselySqliteDatabase = shared
    ? { prepare: (sql) => handle.prepare(sql), close: () => {} }
    : handle;
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}
