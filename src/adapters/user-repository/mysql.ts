import { Kysely, MysqlDialect, type MysqlPool, type MysqlPoolConnection } from 'kysely';
import mysql from 'mysql2';
import {
  CONNECT_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  READ_TIMEOUT_SLACK_MS,
  type UserDatabase,
  type UserDatabaseOptions,
} from './connection.js';
import type { DB } from './schema.js';

type MysqlFlavor = 'mariadb' | 'mysql';

export function openMysql(url: string, options: UserDatabaseOptions): UserDatabase {
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
