import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import pg from 'pg';
import {
  CONNECT_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  READ_TIMEOUT_SLACK_MS,
  type UserDatabase,
  type UserDatabaseOptions,
} from './connection.js';
import type { DB } from './schema.js';

/** pg's DatabaseError carries the server's SQLSTATE and severity; anything else is the link. */
function isServerError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'severity' in err && 'code' in err;
}

export function openPostgres(url: string, options: UserDatabaseOptions): UserDatabase {
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
