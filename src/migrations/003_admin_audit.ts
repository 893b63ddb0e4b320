import { type Kysely, type Migration, sql } from 'kysely';
import type { UserDialect } from '../adapters/user-repository/connection.js';

/*
 * The admin API's audit log (docs/operations.md): one row per authenticated admin request,
 * written before the request acts. The service only ever inserts and selects here; nothing
 * in it updates or deletes a row. Times are ms since the epoch in a bigint on every dialect;
 * the indexes serve the queries by time, actor and action (each newest first).
 */

export const AUDIT_TABLE = 'meiduo_users_admin_audit';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema of their time.
type AnyDb = Kysely<any>;

export function adminAuditMigration(dialect: UserDialect): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      let table = db.schema.createTable(AUDIT_TABLE);
      table =
        dialect === 'postgres'
          ? table.addColumn('id', 'bigserial', (c) => c.primaryKey())
          : dialect === 'mysql'
            ? table.addColumn('id', 'bigint', (c) => c.notNull().primaryKey().autoIncrement())
            : table.addColumn('id', 'integer', (c) => c.notNull().primaryKey().autoIncrement());
      table = table
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'varchar(64)', (c) => c.notNull())
        .addColumn('action', 'varchar(64)', (c) => c.notNull())
        .addColumn('target', 'varchar(500)', (c) => c.notNull())
        .addColumn('detail', 'text', (c) => c.notNull())
        .addColumn('ip', 'varchar(64)', (c) => c.notNull())
        .addColumn('request_id', 'varchar(64)', (c) => c.notNull());
      if (dialect === 'mysql') table = table.modifyEnd(sql`engine = InnoDB default charset = utf8mb4`);
      await table.execute();
      await db.schema.createIndex(`${AUDIT_TABLE}_at_ms`).on(AUDIT_TABLE).column('at_ms').execute();
      for (const column of ['actor', 'action']) {
        await db.schema
          .createIndex(`${AUDIT_TABLE}_${column}`)
          .on(AUDIT_TABLE)
          .columns([column, 'at_ms'])
          .execute();
      }
    },

    async down(db: AnyDb): Promise<void> {
      await db.schema.dropTable(AUDIT_TABLE).ifExists().execute();
    },
  };
}
