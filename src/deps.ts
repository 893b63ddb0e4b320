import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createKyselyAuditLog } from './adapters/audit-log/kysely.js';
import { createSqliteCodeStore } from './adapters/code-store/sqlite.js';
import { createCpuPool, createPooledCaptchaRenderer, createPooledHashEngine } from './adapters/cpu-pool.js';
import { createEmailProvider } from './adapters/email-provider/index.js';
import { createInProcessQueue } from './adapters/job-queue/in-process.js';
import type { Metrics } from './adapters/metrics/prometheus.js';
import { createSqliteSessionStore } from './adapters/session-store/sqlite.js';
import { createSmsProvider } from './adapters/sms-provider/index.js';
import { createKyselySmsDecisionStore, createKyselySmsListStore } from './adapters/sms-records/kysely.js';
import { openSqlite, type SqliteDatabase } from './adapters/sqlite.js';
import { openUserDatabase } from './adapters/user-repository/database.js';
import { createKyselyUserRepository } from './adapters/user-repository/kysely.js';
import { type Config, cpuThreadsPerProcess, type RedisTarget } from './config.js';
import type { AuditLog } from './domain/admin.js';
import { createDecisionRecorder, type DecisionRecorder } from './domain/decision-records.js';
import { KEY_PREFIX } from './domain/keys.js';
import { createPasswordHasher } from './domain/password.js';
import type {
  CaptchaRenderer,
  Clock,
  CodeStore,
  EmailJob,
  EmailProvider,
  JobQueue,
  PasswordHasher,
  SessionStore,
  SmsProvider,
  UserRepository,
} from './domain/ports.js';
import { createSmsLists, type SmsLists } from './domain/sms-lists.js';
import { EMAIL_JOB_KIND } from './jobs/send-email.js';
import { migrateToLatest, schemaGaps } from './migrations/index.js';

/** Everything the app talks to; tests may replace any part. */
export interface Deps {
  clock: Clock;
  codeStore: CodeStore;
  sessionStore: SessionStore;
  users: UserRepository;
  queue: JobQueue;
  sms: SmsProvider;
  /** The second job kind: verification emails (same backend as the SMS queue). */
  emailQueue: JobQueue<EmailJob>;
  email: EmailProvider;
  hasher: PasswordHasher;
  captcha: CaptchaRenderer;
  /** SMS block/allow lists: the database's, cached in this process (src/domain/sms-lists.ts). */
  smsLists: SmsLists;
  /** Batched writer and reader of SMS decision records (web: decisions, worker: deliveries). */
  decisions: DecisionRecorder;
  /** The admin API's append-only audit log (in the user database). */
  audit: AuditLog;
  /** Prometheus metrics, when METRICS_TOKEN or METRICS_PORT is set (docs/operations.md). */
  metrics?: Metrics;
  /** What the database lacks of the schema the service needs (src/migrations: schemaGaps). */
  schemaGaps(): Promise<string[]>;
  /** Starts the CPU pools' threads ahead of the first request (a web process, before it listens). */
  warm(): Promise<void>;
  /** Closes everything in reverse order of opening. */
  close(): Promise<void>;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export interface DepsOptions {
  /** Bring the user table up to date. */
  migrate?: boolean;
  /** Tests move time; production uses the system clock. */
  clock?: Clock;
  /** Tests record sends instead of printing them. */
  sms?: SmsProvider;
  /** Tests send through their own SMTP server or record mails. */
  email?: EmailProvider;
  /** BullMQ key prefix; tests sharing one Redis keep their queues apart with it. */
  queuePrefix?: string;
}

/**
 * Picks the adapters the configuration asks for. Redis, BullMQ and the server database
 * drivers are imported only when configured, so the embedded default does not carry them. `migrate` brings the user table up to date
 * (server.ts asks for it on the embedded default; server databases use `npm run migrate`).
 */
export async function createDeps(config: Config, log: Logger, options: DepsOptions = {}): Promise<Deps> {
  const closers: Array<() => Promise<void>> = [];
  const clock = options.clock ?? systemClock;
  const localSqlitePath =
    config.database.kind === 'sqlite' ? config.database.path : join(config.DATA_DIR, 'codes.sqlite3');
  /** A connection to the local SQLite file, opened on first use and closed with the rest. */
  const sqliteConnection = (): (() => SqliteDatabase) => {
    let db: SqliteDatabase | undefined;
    return () => {
      if (!db) {
        mkdirSync(config.DATA_DIR, { recursive: true });
        const opened = openSqlite(localSqlitePath);
        closers.push(async () => void opened.close());
        db = opened;
      }
      return db;
    };
  };
  const localSqlite = sqliteConnection();
  /**
   * The code and session stores' connection to the same file. It never waits for the write
   * lock in SQLite's busy handler, which would stall this process's event loop while another
   * web process writes; the stores wait on a timer instead (whenUnlocked). An in-memory
   * database exists once per connection: there the stores keep the one.
   */
  const storesSqlite = localSqlitePath === ':memory:' ? localSqlite : sqliteConnection();
  let storesDb: SqliteDatabase | undefined;
  try {
    const databaseOptions = {
      poolSize: config.DATABASE_POOL_SIZE,
      statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
    };
    const userDb = await openUserDatabase(config.database, {
      ...databaseOptions,
      sqlite: config.database.kind === 'sqlite' ? localSqlite() : undefined,
    });
    closers.push(() => userDb.close());
    if (options.migrate) await migrateToLatest(userDb);
    const users = createKyselyUserRepository(userDb);
    // On the SQLite file, decision batches go through a connection that never waits for the
    // write lock (createKyselySmsDecisionStore): web processes must not block on each other.
    let recordsWriter = userDb;
    // (An in-memory database exists once per connection: it keeps the one. Retention 0 writes none.)
    const recording = config.SMS_DECISION_RETENTION_DAYS > 0;
    if (recording && config.database.kind === 'sqlite' && config.database.path !== ':memory:') {
      const handle = openSqlite(config.database.path, { busyTimeoutMs: 0 });
      recordsWriter = await openUserDatabase(config.database, { ...databaseOptions, sqlite: handle });
      closers.push(async () => void handle.close());
    }
    const decisions = createDecisionRecorder({
      store: createKyselySmsDecisionStore(userDb, recordsWriter),
      clock,
      log,
      settings: config,
    });
    // Closed after the queue (its worker reports deliveries) and before the database.
    closers.push(() => decisions.close());

    /** A connection from the one Redis module, closed last (after the adapter using it). */
    const redis = async (target: RedisTarget, name: string) => {
      const { connectRedis } = await import('./adapters/redis.js');
      const connection = connectRedis(target, name, log);
      closers.push(async () => void connection.disconnect());
      return connection;
    };

    const acks = { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS };

    let codeStore: CodeStore;
    if (config.redis.verify) {
      const { createRedisCodeStore } = await import('./adapters/code-store/redis.js');
      codeStore = createRedisCodeStore(await redis(config.redis.verify, 'verify'), { acks });
    } else {
      storesDb = storesSqlite();
      codeStore = createSqliteCodeStore(storesDb, clock);
    }

    let sessionStore: SessionStore;
    if (config.redis.session) {
      const { createRedisSessionStore } = await import('./adapters/session-store/redis.js');
      sessionStore = createRedisSessionStore(await redis(config.redis.session, 'session'), {
        keyPrefix: KEY_PREFIX,
      });
    } else {
      storesDb = storesSqlite();
      sessionStore = createSqliteSessionStore(storesDb, clock);
    }

    // The stores have created their tables (waiting for the lock like any start-up); from
    // here on they wait off the event loop.
    if (storesDb && storesSqlite !== localSqlite) storesDb.pragma('busy_timeout = 0');

    const sms = options.sms ?? createSmsProvider(config, log);
    const queueOptions = {
      log,
      attempts: config.JOB_ATTEMPTS,
      backoffMs: config.JOB_BACKOFF_MS,
    };
    const queue: JobQueue = config.redis.queue
      ? (await import('./adapters/job-queue/bullmq.js')).createBullmqQueue({
          ...queueOptions,
          connection: await redis(config.redis.queue, 'queue'),
          acks,
          prefix: options.queuePrefix ?? `${KEY_PREFIX}bull`,
          // Written the same way, the two name one database: the SMS job rides in the issue script.
          sharesCodeStoreDatabase: JSON.stringify(config.redis.queue) === JSON.stringify(config.redis.verify),
          batchMax: config.SMS_JOB_BATCH_MAX,
        })
      : createInProcessQueue(queueOptions);
    closers.push(() => queue.close());
    const emailQueue: JobQueue<EmailJob> = config.redis.queue
      ? (await import('./adapters/job-queue/bullmq.js')).createBullmqQueue(
          {
            ...queueOptions,
            connection: await redis(config.redis.queue, 'email-queue'),
            acks,
            prefix: options.queuePrefix ?? `${KEY_PREFIX}bull`,
          },
          EMAIL_JOB_KIND,
        )
      : createInProcessQueue(queueOptions, EMAIL_JOB_KIND);
    closers.push(() => emailQueue.close());
    const email = options.email ?? createEmailProvider(config);
    closers.push(async () => email.close?.());

    // CPU work off the event loop, on threads of lowered priority (cpu-pool.ts). Two pools so
    // that a captcha never queues behind a hash (tens to hundreds of ms): hashes get
    // HASH_CONCURRENCY threads at nice 10, captchas the process's share of the cores at nice 5
    // (above hashing, below the request path). A web process starts them before it listens
    // (deps.warm); elsewhere they start when first needed.
    const hashPool = createCpuPool({ name: 'hash', threads: config.HASH_CONCURRENCY, nice: 10 });
    const captchaPool = createCpuPool({
      name: 'captcha',
      captcha: true,
      threads: cpuThreadsPerProcess(config.WEB_CONCURRENCY),
      nice: 5,
      // A drawing takes ~0.5 ms: a second one waiting in the thread's port spares it a sleep.
      depth: 2,
    });
    closers.push(
      () => hashPool.close(),
      () => captchaPool.close(),
    );

    const deps: Deps = {
      clock,
      codeStore,
      sessionStore,
      users,
      queue,
      sms,
      emailQueue,
      email,
      hasher: createPasswordHasher(config, {}, createPooledHashEngine(hashPool)),
      captcha: createPooledCaptchaRenderer(captchaPool),
      smsLists: createSmsLists({
        store: createKyselySmsListStore(userDb),
        clock,
        log,
        refreshMs: config.SMS_LISTS_REFRESH_MS,
      }),
      decisions,
      audit: createKyselyAuditLog(userDb),
      schemaGaps: () => schemaGaps(userDb),
      warm: async () => void (await Promise.all([hashPool.warm(), captchaPool.warm()])),
      close: async () => {
        for (const close of closers.reverse()) {
          await close().catch((err: unknown) => log.error({ err }, 'error while closing'));
        }
      },
    };
    // prom-client loads only when metrics are on (METRICS_TOKEN or METRICS_PORT).
    if (!config.metricsEnabled) return deps;
    return (await import('./adapters/metrics/instrument.js')).instrumentDeps(deps, config);
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw err;
  }
}
