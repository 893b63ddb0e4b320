import { type CreateTableBuilder, type Kysely, type Migration, sql } from 'kysely';
import type { UserDialect } from '../adapters/user-repository/connection.js';

/*
 * tb_users as Django's schema editor creates it for Meiduo's User model
 * (reference/meiduo-contract.md §6), created only where no tb_users exists. An existing table
 * (made by Django, possibly an older Django: first_name varchar(30), bigint id, utf8 charset)
 * is adopted as it is; `meiduo_users_tables` records which of the two happened, so that `down`
 * drops only a table this migration created.
 */

export const TABLE = 'tb_users';
/** Our record of the tables we created or adopted (never Django's django_migrations). */
export const OWNERSHIP_TABLE = 'meiduo_users_tables';

/** The columns the service reads or writes: an adopted table must have them all. */
const REQUIRED_COLUMNS = [
  'id',
  'password',
  'last_login',
  'is_superuser',
  'username',
  'first_name',
  'last_name',
  'email',
  'is_staff',
  'is_active',
  'date_joined',
  'mobile',
  'email_active',
  'default_address_id',
];

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema of their time.
type AnyDb = Kysely<any>;

async function tableExists(db: AnyDb, dialect: UserDialect, name: string): Promise<boolean> {
  const query =
    dialect === 'sqlite'
      ? sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = ${name}`
      : dialect === 'postgres'
        ? // The table unqualified queries will use: resolved through search_path.
          sql<{ n: number }>`select count(*) as n from pg_class where oid = to_regclass(${name})`
        : sql<{ n: number }>`select count(*) as n from information_schema.tables
            where table_schema = database() and table_name = ${name}`;
  const { rows } = await query.execute(db);
  return Number(rows[0]?.n ?? 0) > 0;
}

async function columnsOf(db: AnyDb, dialect: UserDialect, name: string): Promise<string[]> {
  const query =
    dialect === 'sqlite'
      ? sql<{ name: string }>`select name from pragma_table_info(${name})`
      : dialect === 'postgres'
        ? sql<{ name: string }>`select attname as name from pg_attribute
            where attrelid = to_regclass(${name}) and attnum > 0 and not attisdropped`
        : sql<{ name: string }>`select column_name as name from information_schema.columns
            where table_schema = database() and table_name = ${name}`;
  const { rows } = await query.execute(db);
  return rows.map((r) => String(r.name).toLowerCase());
}

/** Django's column types per backend (its schema editors' data_types). */
function djangoTypes(dialect: UserDialect) {
  switch (dialect) {
    case 'sqlite':
      return { dateTime: sql`datetime`, bool: sql`bool`, username: sql`varchar(150)` };
    case 'postgres':
      return { dateTime: sql`timestamp with time zone`, bool: sql`boolean`, username: sql`varchar(150)` };
    case 'mysql':
      // Binary collation: usernames are case-sensitive in Django, and so is the unique index.
      return {
        dateTime: sql`datetime(6)`,
        bool: sql`bool`,
        username: sql`varchar(150) character set utf8mb4 collate utf8mb4_bin`,
      };
  }
}

function createTbUsers(db: AnyDb, dialect: UserDialect) {
  const t = djangoTypes(dialect);
  let table: CreateTableBuilder<string, string> = db.schema.createTable(TABLE);
  table =
    dialect === 'postgres'
      ? table.addColumn('id', 'serial', (c) => c.primaryKey())
      : table.addColumn('id', 'integer', (c) => c.notNull().primaryKey().autoIncrement());
  table = table
    .addColumn('password', 'varchar(128)', (c) => c.notNull())
    .addColumn('last_login', t.dateTime)
    .addColumn('is_superuser', t.bool, (c) => c.notNull())
    .addColumn('username', t.username, (c) => c.notNull().unique())
    .addColumn('first_name', 'varchar(150)', (c) => c.notNull())
    .addColumn('last_name', 'varchar(150)', (c) => c.notNull())
    .addColumn('email', 'varchar(254)', (c) => c.notNull())
    .addColumn('is_staff', t.bool, (c) => c.notNull())
    .addColumn('is_active', t.bool, (c) => c.notNull())
    .addColumn('date_joined', t.dateTime, (c) => c.notNull())
    .addColumn('mobile', 'varchar(11)', (c) => c.notNull().unique())
    .addColumn('email_active', t.bool, (c) => c.notNull())
    .addColumn('default_address_id', 'integer');
  if (dialect === 'mysql') table = table.modifyEnd(sql`engine = InnoDB default charset = utf8mb4`);
  return table;
}

export function tbUsersMigration(dialect: UserDialect): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable(OWNERSHIP_TABLE)
        .ifNotExists()
        .addColumn('table_name', 'varchar(64)', (c) => c.notNull().primaryKey())
        .addColumn('created', 'integer', (c) => c.notNull())
        .execute();
      const adopted = await tableExists(db, dialect, TABLE);
      if (adopted) {
        const present = new Set(await columnsOf(db, dialect, TABLE));
        const missing = REQUIRED_COLUMNS.filter((c) => !present.has(c));
        if (missing.length > 0) {
          throw new Error(
            `${TABLE} exists but lacks the columns ${missing.join(', ')}: run the Meiduo Django ` +
              'migrations that add them (the service does not alter a table it did not create)',
          );
        }
      } else {
        await createTbUsers(db, dialect).execute();
      }
      await db.deleteFrom(OWNERSHIP_TABLE).where('table_name', '=', TABLE).execute();
      await db
        .insertInto(OWNERSHIP_TABLE)
        .values({ table_name: TABLE, created: adopted ? 0 : 1 })
        .execute();
    },

    async down(db: AnyDb): Promise<void> {
      const record = await db
        .selectFrom(OWNERSHIP_TABLE)
        .select('created')
        .where('table_name', '=', TABLE)
        .executeTakeFirst();
      // Without a record saying we created it, the table is left alone.
      if (record && Number(record.created) === 1) await db.schema.dropTable(TABLE).ifExists().execute();
      await db.schema.dropTable(OWNERSHIP_TABLE).ifExists().execute();
    },
  };
}

/** Whether tb_users was created by us, adopted, or is not there (migrations not run). */
export async function tbUsersOrigin(
  db: AnyDb,
  dialect: UserDialect,
): Promise<'created' | 'adopted' | 'absent'> {
  if (!(await tableExists(db, dialect, OWNERSHIP_TABLE))) return 'absent';
  const record = await db
    .selectFrom(OWNERSHIP_TABLE)
    .select('created')
    .where('table_name', '=', TABLE)
    .executeTakeFirst();
  if (!record) return 'absent';
  return Number(record.created) === 1 ? 'created' : 'adopted';
}
