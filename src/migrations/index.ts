import { type Migration, type MigrationResultSet, Migrator } from 'kysely';
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
