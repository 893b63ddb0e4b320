import { Kysely, type SqliteDatabase as KyselySqliteDatabase, SqliteDialect } from 'kysely';
import type { DatabaseTarget } from '../../config.js';
import { openSqlite, type SqliteDatabase } from '../sqlite.js';
import type { UserDatabase, UserDatabaseOptions } from './connection.js';
import type { DB } from './schema.js';

export type { UserDatabase, UserDatabaseOptions, UserDialect } from './connection.js';

/** Opens the user table's database: the embedded SQLite file, PostgreSQL or MySQL/MariaDB. */
export async function openUserDatabase(
  target: DatabaseTarget,
  options: UserDatabaseOptions,
): Promise<UserDatabase> {
  switch (target.kind) {
    case 'sqlite':
      return openSqliteDatabase(target.path, options.sqlite);
    // The server drivers load only when used: a process on SQLite carries neither.
    case 'postgres':
      return (await import('./postgres.js')).openPostgres(target.url, options);
    case 'mysql':
      return (await import('./mysql.js')).openMysql(target.url, options);
  }
}

/** Statements kept per connection (Kysely's SQLite driver prepares each query afresh). */
const STATEMENT_CACHE = 64;

function openSqliteDatabase(path: string, shared: SqliteDatabase | undefined): UserDatabase {
  const handle = shared ?? openSqlite(path);
  // Each query's SQL is compiled by SQLite once, not per run: a 100-row batch of decision
  // records re-prepared its INSERT every time. Kysely runs a statement synchronously to its
  // end (all/run; streaming, which would hold one open, is not used), so one statement
  // object serves every run of its SQL.
  const statements = new Map<string, ReturnType<SqliteDatabase['prepare']>>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    // The least recently used goes first (a Map keeps insertion order: a hit moves to the end).
    if (statement !== undefined) statements.delete(sql);
    else {
      statement = handle.prepare(sql);
      if (statements.size >= STATEMENT_CACHE) statements.delete(statements.keys().next().value as string);
    }
    statements.set(sql, statement);
    return statement;
  };
  // Kysely closes its database on destroy(); a shared handle belongs to its opener.
  const database: KyselySqliteDatabase = {
    prepare,
    close: () => {
      statements.clear();
      if (!shared) handle.close();
    },
  };
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}
