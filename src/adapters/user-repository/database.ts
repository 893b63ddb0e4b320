import {
  Kysely,
  type SqliteDatabase as KyselySqliteDatabase,
  MysqlDialect,
  type MysqlPool,
  type MysqlPoolConnection,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  SqliteDialect,
} from 'kysely';
import mysql from 'mysql2';
import pg from 'pg';
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
const CONNECT_TIMEOUT_MS = 2000;
/** Client-side bound beyond the server's statement timeout, for a host that stopped answering. */
const READ_TIMEOUT_SLACK_MS = 2000;
const IDLE_TIMEOUT_MS = 30_000;

export async function openUserDatabase(url: string, options: UserDatabaseOptions): Promise<UserDatabase> {
  if (url.startsWith('sqlite:')) return openSqliteDatabase(url.slice('sqlite:'.length), options.sqlite);
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url, options);
  if (/^(mysql|mariadb):\/\//.test(url)) return openMysql(url, options);
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

/** pg's DatabaseError carries the server's SQLSTATE and severity; anything else is the link. */
function isServerError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'severity' in err && 'code' in err;
}

function openPostgres(url: string, options: UserDatabaseOptions): UserDatabase {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + READ_TIMEOUT_SLACK_MS,
    keepAlive: true,
    application_name: 'meiduo-users',
  });
  // An idle client whose server went away emits 'error'; the pool drops it and opens a new
  // one on demand. Without a listener the process would crash.
  pool.on('error', () => {});
  // A client whose query failed on the link (read timeout, reset) is destroyed on release
  // rather than returned to the pool with a query still pending on it.
  const kyselyPool: PostgresPool = {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      let broken: Error | undefined;
      const query = (sql: string, parameters: ReadonlyArray<unknown>) =>
        client.query(sql, parameters as unknown[]).catch((err: unknown) => {
          if (!isServerError(err)) broken = err instanceof Error ? err : new Error(String(err));
          throw err;
        });
      return {
        query: query as unknown as PostgresPoolClient['query'],
        release: (destroy?: boolean) => client.release(broken ?? destroy),
      };
    },
    end: () => pool.end(),
  };
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: kyselyPool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

type MysqlFlavor = 'mariadb' | 'mysql';

function openMysql(url: string, options: UserDatabaseOptions): UserDatabase {
  const u = new URL(url);
  const pool = mysql.createPool({
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || undefined,
    password: decodeURIComponent(u.password) || undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined,
    connectionLimit: options.poolSize,
    maxIdle: options.poolSize,
    idleTimeout: IDLE_TIMEOUT_MS,
    waitForConnections: true,
    queueLimit: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    enableKeepAlive: true,
    charset: 'UTF8MB4_UNICODE_CI',
    // Django stores naive UTC in datetime(6) columns.
    timezone: 'Z',
    supportBigNumbers: true,
    // A reset on release (COM_RESET_CONNECTION) would, on MySQL, drop the session settings
    // below and cost a round trip per query; Kysely leaves no other session state behind.
    resetOnRelease: false,
  });
  const statementSeconds = options.statementTimeoutMs / 1000;
  const readTimeoutMs = options.statementTimeoutMs + READ_TIMEOUT_SLACK_MS;
  let flavor: MysqlFlavor | undefined;

  const rawQuery = (conn: mysql.PoolConnection, sql: string, values: unknown[] = []) =>
    new Promise<unknown>((resolve, reject) =>
      conn.query({ sql, values, timeout: readTimeoutMs }, (err, result) =>
        err ? reject(err) : resolve(result),
      ),
    );

  /** Once per new connection: UTC, and the statement timeout under MariaDB's or MySQL's name. */
  async function setUpSession(conn: mysql.PoolConnection): Promise<void> {
    if (!flavor) {
      const rows = (await rawQuery(conn, 'select version() as v')) as Array<{ v: string }>;
      flavor = /mariadb/i.test(rows[0]?.v ?? '') ? 'mariadb' : 'mysql';
    }
    const timeout =
      flavor === 'mariadb'
        ? `max_statement_time = ${statementSeconds}`
        : `max_execution_time = ${options.statementTimeoutMs}`;
    await rawQuery(conn, `set session time_zone = '+00:00', ${timeout}`);
  }

  const ready = new WeakSet<mysql.PoolConnection>();
  const kyselyPool: MysqlPool = {
    getConnection(callback) {
      pool.getConnection((err, conn) => {
        if (err) return callback(err, undefined as unknown as MysqlPoolConnection);
        const hand = () => callback(null, wrapMysqlConnection(conn, readTimeoutMs));
        if (ready.has(conn)) return hand();
        setUpSession(conn).then(
          () => {
            ready.add(conn);
            hand();
          },
          (setupErr: unknown) => {
            conn.destroy();
            callback(setupErr, undefined as unknown as MysqlPoolConnection);
          },
        );
      });
    },
    end: (callback) => pool.end(callback),
  };
  const db = new Kysely<DB>({ dialect: new MysqlDialect({ pool: kyselyPool }) });
  return { db, dialect: 'mysql', close: () => db.destroy() };
}

/**
 * Gives every query a client-side read timeout; a connection whose query timed out is
 * destroyed (mysql2 would otherwise keep it, with the late answer still to come).
 */
function wrapMysqlConnection(conn: mysql.PoolConnection, readTimeoutMs: number): MysqlPoolConnection {
  function query(sql: string, parameters: unknown[], callback?: (err: unknown, result: never) => void) {
    if (!callback) return conn.query(sql, parameters);
    conn.query({ sql, values: parameters, timeout: readTimeoutMs }, (err, result) => {
      if (err && (err as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT') conn.destroy();
      callback(err, result as never);
    });
  }
  return { query: query as MysqlPoolConnection['query'], release: () => conn.release() };
}
