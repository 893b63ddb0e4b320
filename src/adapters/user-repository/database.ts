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

function openSqliteDatabase(path: string, shared: SqliteDatabase | undefined): UserDatabase {
  const handle = shared ?? openSqlite(path);
  // Kysely closes its database on destroy(); a shared handle belongs to its opener.
  const database: KyselySqliteDatabase = shared
    ? { prepare: (sql) => handle.prepare(sql), close: () => {} }
    : handle;
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}
