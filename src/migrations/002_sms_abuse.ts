import { type Kysely, type Migration, sql } from 'kysely';
import type { UserDialect } from '../adapters/user-repository/connection.js';

/*
 * SMS-abuse tables (docs/operations.md): block/allow lists, one decision record per SMS
 * request, and the worker's delivery report per decision. Times are ms since the epoch in a
 * bigint, the same on every dialect; the indexes serve the admin queries (by mobile key,
 * block, IP prefix, each newest first) and the retention purge (by time).
 */

export const LISTS_TABLE = 'meiduo_users_sms_lists';
export const DECISIONS_TABLE = 'meiduo_users_sms_decisions';
export const DELIVERIES_TABLE = 'meiduo_users_sms_deliveries';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema of their time.
type AnyDb = Kysely<any>;

export function smsAbuseMigration(dialect: UserDialect): Migration {
  const mysql = dialect === 'mysql';
  return {
    async up(db: AnyDb): Promise<void> {
      let lists = db.schema.createTable(LISTS_TABLE);
      lists =
        dialect === 'postgres'
          ? lists.addColumn('id', 'serial', (c) => c.primaryKey())
          : lists.addColumn('id', 'integer', (c) => c.notNull().primaryKey().autoIncrement());
      lists = lists
        .addColumn('list', 'varchar(8)', (c) => c.notNull())
        .addColumn('kind', 'varchar(8)', (c) => c.notNull())
        .addColumn('value', 'varchar(64)', (c) => c.notNull())
        .addColumn('note', 'varchar(200)', (c) => c.notNull())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_at_ms', 'bigint')
        .addUniqueConstraint(`${LISTS_TABLE}_entry`, ['list', 'kind', 'value']);
      if (mysql) lists = lists.modifyEnd(sql`engine = InnoDB default charset = utf8mb4`);
      await lists.execute();

      let decisions = db.schema
        .createTable(DECISIONS_TABLE)
        .addColumn('id', 'varchar(36)', (c) => c.notNull().primaryKey())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('mobile', 'varchar(11)', (c) => c.notNull())
        .addColumn('mobile_key', 'varchar(64)')
        .addColumn('block', 'varchar(7)', (c) => c.notNull())
        .addColumn('ip_prefix', 'varchar(64)', (c) => c.notNull())
        .addColumn('purpose', 'varchar(16)', (c) => c.notNull())
        .addColumn('decision', 'varchar(8)', (c) => c.notNull())
        .addColumn('rule', 'varchar(48)')
        .addColumn('detail', 'varchar(64)');
      if (mysql) decisions = decisions.modifyEnd(sql`engine = InnoDB default charset = utf8mb4`);
      await decisions.execute();
      for (const column of ['at_ms', 'mobile_key', 'block', 'ip_prefix']) {
        const columns = column === 'at_ms' ? ['at_ms'] : [column, 'at_ms'];
        await db.schema
          .createIndex(`${DECISIONS_TABLE}_${column}`)
          .on(DECISIONS_TABLE)
          .columns(columns)
          .execute();
      }

      let deliveries = db.schema
        .createTable(DELIVERIES_TABLE)
        .addColumn('decision_id', 'varchar(36)', (c) => c.notNull().primaryKey())
        .addColumn('job_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('vendor', 'varchar(32)', (c) => c.notNull())
        .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
        .addColumn('detail', 'varchar(200)')
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull());
      if (mysql) deliveries = deliveries.modifyEnd(sql`engine = InnoDB default charset = utf8mb4`);
      await deliveries.execute();
      await db.schema.createIndex(`${DELIVERIES_TABLE}_at_ms`).on(DELIVERIES_TABLE).column('at_ms').execute();
    },

    async down(db: AnyDb): Promise<void> {
      for (const table of [DELIVERIES_TABLE, DECISIONS_TABLE, LISTS_TABLE]) {
        await db.schema.dropTable(table).ifExists().execute();
      }
    },
  };
}
