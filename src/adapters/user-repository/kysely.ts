import { type ExpressionBuilder, type ExpressionWrapper, type SqlBool, sql } from 'kysely';
import { DependencyError } from '../../domain/errors.js';
import type { CreateUserResult, NewUser, User, UserRepository } from '../../domain/ports.js';
import type { UserDatabase } from './database.js';
import type { DB } from './schema.js';

/*
 * UserRepository over Django's tb_users on SQLite, PostgreSQL or MySQL/MariaDB. Rows are
 * written the way Django writes them (every NOT NULL column explicit, booleans as the dialect
 * stores them, UTC datetimes), so Django keeps reading them; rows Django wrote are read back
 * whatever the driver returns for them (0/1 booleans, bigint ids, SQLite datetime text).
 */

const COLUMNS = [
  'id',
  'password',
  'username',
  'mobile',
  'email',
  'email_active',
  'is_active',
  'is_staff',
  'is_superuser',
  'last_login',
  'date_joined',
] as const;

type Row = Record<(typeof COLUMNS)[number], unknown>;

function toBool(value: unknown): boolean {
  return value === true || value === 1 || value === 1n || value === '1' || value === 't';
}

/**
 * Django's SQLite backend stores aware datetimes as naive UTC text, `YYYY-MM-DD HH:MM:SS`
 * with `.ffffff` unless the microseconds are zero.
 */
function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  const text = String(value).trim().replace(' ', 'T');
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(text);
  const date = new Date(zoned ? text : `${text}Z`);
  if (Number.isNaN(date.getTime())) throw new Error(`unreadable datetime in tb_users: ${String(value)}`);
  return date;
}

function sqliteDateTime(date: Date): string {
  const micro = String(date.getUTCMilliseconds() * 1000).padStart(6, '0');
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}.${micro}`;
}

function toUser(row: Row): User {
  return {
    id: Number(row.id),
    username: String(row.username),
    password: String(row.password),
    mobile: String(row.mobile),
    email: String(row.email ?? ''),
    emailActive: toBool(row.email_active),
    isActive: toBool(row.is_active),
    isStaff: toBool(row.is_staff),
    isSuperuser: toBool(row.is_superuser),
    lastLogin: row.last_login === null || row.last_login === undefined ? null : toDate(row.last_login),
    dateJoined: toDate(row.date_joined),
  };
}

/** SQLITE_CONSTRAINT_UNIQUE, PostgreSQL 23505, MySQL/MariaDB ER_DUP_ENTRY (1062). */
function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505' || code === 'ER_DUP_ENTRY' || errno === 1062;
}

/** Which unique index the database named in its violation (for the rare case no row is found). */
function violatedMobile(err: unknown): boolean {
  const { constraint, message } = err as { constraint?: unknown; message?: unknown };
  return /mobile/i.test(`${String(constraint ?? '')} ${String(message ?? '')}`);
}

export function createKyselyUserRepository(database: UserDatabase): UserRepository {
  const { db, dialect } = database;
  const bool = (value: boolean): boolean | number => (dialect === 'sqlite' ? Number(value) : value);
  const dateTime = (value: Date): Date | string => (dialect === 'sqlite' ? sqliteDateTime(value) : value);

  /**
   * Exact, case-sensitive username match. Meiduo's MySQL table may use a case-insensitive
   * collation: the plain comparison keeps the unique index usable, the binary one decides.
   */
  const usernameIs =
    (username: string) =>
    (eb: ExpressionBuilder<DB, 'tb_users'>): ExpressionWrapper<DB, 'tb_users', SqlBool> => {
      const plain = eb('username', '=', username);
      if (dialect !== 'mysql') return plain;
      return eb.and([plain, eb(sql`username`, '=', sql`${username} collate utf8mb4_bin`)]);
    };

  /** Every failure of the database call is the database being unavailable to the caller. */
  async function guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw err instanceof DependencyError ? err : new DependencyError('database', err);
    }
  }

  async function countByUsername(username: string): Promise<number> {
    const row = await db
      .selectFrom('tb_users')
      .select((eb) => eb.fn.countAll().as('n'))
      .where(usernameIs(username))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async function countByMobile(mobile: string): Promise<number> {
    const row = await db
      .selectFrom('tb_users')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('mobile', '=', mobile)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async function insert(user: NewUser): Promise<number> {
    // Django applies every default in Python, none in SQL: all NOT NULL columns are explicit.
    const values = {
      password: user.passwordHash,
      last_login: null,
      is_superuser: bool(false),
      username: user.username,
      first_name: '',
      last_name: '',
      email: '',
      is_staff: bool(false),
      is_active: bool(true),
      date_joined: dateTime(user.dateJoined),
      mobile: user.mobile,
      email_active: bool(false),
      default_address_id: null,
    };
    if (dialect === 'postgres') {
      const row = await db.insertInto('tb_users').values(values).returning('id').executeTakeFirstOrThrow();
      return Number(row.id);
    }
    const result = await db.insertInto('tb_users').values(values).executeTakeFirstOrThrow();
    return Number(result.insertId);
  }

  async function create(user: NewUser): Promise<CreateUserResult> {
    let id: number;
    try {
      id = await insert(user);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      if ((await countByUsername(user.username)) > 0) return { ok: false, taken: 'username' };
      if ((await countByMobile(user.mobile)) > 0) return { ok: false, taken: 'mobile' };
      // No exact match: a case-insensitive MySQL username index, or the row is gone again.
      return { ok: false, taken: violatedMobile(err) ? 'mobile' : 'username' };
    }
    return {
      ok: true,
      user: {
        id,
        username: user.username,
        password: user.passwordHash,
        mobile: user.mobile,
        email: '',
        emailActive: false,
        isActive: true,
        isStaff: false,
        isSuperuser: false,
        lastLogin: null,
        dateJoined: user.dateJoined,
      },
    };
  }

  const find = {
    byUsername: (username: string) =>
      db.selectFrom('tb_users').select(COLUMNS).where(usernameIs(username)).executeTakeFirst(),
    byMobile: (mobile: string) =>
      db.selectFrom('tb_users').select(COLUMNS).where('mobile', '=', mobile).executeTakeFirst(),
    byId: (id: number) => db.selectFrom('tb_users').select(COLUMNS).where('id', '=', id).executeTakeFirst(),
  };
  const user = (row: Row | undefined): User | null => (row ? toUser(row) : null);

  /**
   * MySQL counts only rows it changed, so an address already active reports 0 there: read it
   * back to answer the same on every database.
   */
  async function emailIsActive(id: number, email: string): Promise<boolean> {
    const row = await db
      .selectFrom('tb_users')
      .select(['email', 'email_active'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row !== undefined && row.email === email && toBool(row.email_active);
  }

  return {
    countByUsername: (username) => guard(() => countByUsername(username)),
    countByMobile: (mobile) => guard(() => countByMobile(mobile)),
    findByUsername: (username) => guard(async () => user(await find.byUsername(username))),
    findByMobile: (mobile) => guard(async () => user(await find.byMobile(mobile))),
    findById: (id) => guard(async () => (Number.isSafeInteger(id) ? user(await find.byId(id)) : null)),
    create: (newUser) => guard(() => create(newUser)),
    updatePassword: (id, passwordHash) =>
      guard(async () => {
        await db.updateTable('tb_users').set({ password: passwordHash }).where('id', '=', id).execute();
      }),
    setEmail: (id, email) =>
      guard(async () => {
        await db
          .updateTable('tb_users')
          .set({ email, email_active: bool(false) })
          .where('id', '=', id)
          .execute();
      }),
    activateEmail: (id, email) =>
      guard(async () => {
        // Only while the address is still the one the link was made for (a newer binding wins).
        const result = await db
          .updateTable('tb_users')
          .set({ email_active: bool(true) })
          .where('id', '=', id)
          .where('email', '=', email)
          .executeTakeFirst();
        return Number(result.numUpdatedRows) > 0 || (await emailIsActive(id, email));
      }),
    updateMobile: (id, mobile) =>
      guard(async () => {
        try {
          await db.updateTable('tb_users').set({ mobile }).where('id', '=', id).execute();
          return true;
        } catch (err) {
          if (isUniqueViolation(err)) return false;
          throw err;
        }
      }),
    updateLastLogin: (id, at) =>
      guard(async () => {
        await db
          .updateTable('tb_users')
          .set({ last_login: dateTime(at) })
          .where('id', '=', id)
          .execute();
      }),
    ping: () =>
      guard(async () => {
        await sql`select 1`.execute(db);
      }),
    close: () => database.close(),
  };
}
