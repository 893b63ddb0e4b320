import { type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import type { UserDatabase, UserDialect } from '../adapters/user-repository/connection.js';
import { tbUsersMigration, tbUsersOrigin } from './001_tb_users.js';
import { smsAbuseMigration } from './002_sms_abuse.js';
import { adminAuditMigration } from './003_admin_audit.js';

/*
 * The service's migrations, listed here rather than found by scanning a folder, so that the
 * compiled dist/ runs them as well as the sources do. Their bookkeeping lives in tables of our
 * own; Django's django_migrations is never read or written.
 */

export const MIGRATION_TABLE = 'meiduo_users_migrations';
export const MIGRATION_LOCK_TABLE = 'meiduo_users_migrations_lock';

function migrations(dialect: UserDialect): Record<string, Migration> {
  return {
    '001_tb_users': tbUsersMigration(dialect),
    '002_sms_abuse': smsAbuseMigration(dialect),
    '003_admin_audit': adminAuditMigration(dialect),
  };
}

function migrator(database: UserDatabase): Migrator {
  return new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations(database.dialect) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
}

export interface MigrationReport {
  /** Migrations run by this call, in order. */
  executed: string[];
  /** What the first migration did with tb_users: created it, adopted Django's, or (down) gone. */
  tbUsers: 'created' | 'adopted' | 'absent';
}

async function report(database: UserDatabase, set: MigrationResultSet): Promise<MigrationReport> {
  const results = set.results ?? [];
  if (set.error) {
    const failed = results.find((r) => r.status === 'Error')?.migrationName ?? '(migrator)';
    const cause = set.error instanceof Error ? set.error.message : String(set.error);
    throw new Error(`migration ${failed} failed: ${cause}`, { cause: set.error });
  }
  return {
    executed: results.filter((r) => r.status === 'Success').map((r) => r.migrationName),
    tbUsers: await tbUsersOrigin(database.db, database.dialect),
  };
}

/** Runs every migration not yet run. */
export async function migrateToLatest(database: UserDatabase): Promise<MigrationReport> {
  return report(database, await migrator(database).migrateToLatest());
}

/** Undoes the last migration run. */
export async function migrateDown(database: UserDatabase): Promise<MigrationReport> {
  return report(database, await migrator(database).migrateDown());
}

/**
 * What the service needs of the database and does not find there: `table tb_users` and the
 * migrations not run, by name; empty when the schema is complete. Read only (it never
 * creates the bookkeeping table), two small queries, cheap enough for /readyz. A database
 * that does not answer looks like one without a schema: ping it first to tell them apart.
 */
export async function schemaGaps(database: UserDatabase): Promise<string[]> {
  const gaps: string[] = [];
  try {
    await database.db.selectFrom('tb_users').select('id').limit(1).execute();
  } catch {
    gaps.push('table tb_users');
  }
  let done = new Set<string>();
  try {
    const { rows } = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(
      database.db,
    );
    done = new Set(rows.map((row) => row.name));
  } catch {
    // no bookkeeping table: no migration has run
  }
  for (const name of Object.keys(migrations(database.dialect)))
    if (!done.has(name)) gaps.push(`migration ${name}`);
  return gaps;
}
