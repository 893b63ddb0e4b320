import cluster from 'node:cluster';
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { fastJpegAvailable, fastJpegStatus } from './adapters/fast-jpeg.js';
import { fastPbkdf2Available, fastPbkdf2Status } from './adapters/fast-pbkdf2.js';
import { openUserDatabase } from './adapters/user-repository/database.js';
import { buildServer } from './build.js';
import { superviseWebProcesses } from './cluster.js';
import { type Config, ConfigError } from './config.js';
import { createDeps } from './deps.js';
import { createLogger } from './logger.js';
import { migrateToLatest } from './migrations/index.js';
import {
  loadConfigOrExit,
  requireSchema,
  startClusterMetricsPort,
  startMetricsPort,
  startSmsWorker,
} from './startup.js';

const SHUTDOWN_DEADLINE_MS = 25_000;

async function main() {
  const config = loadConfigOrExit();
  const log = createLogger(config);
  if (cluster.isPrimary) for (const warning of config.warnings) log.warn(warning);
  if (cluster.isPrimary && config.PASSWORD_HASHER === 'pbkdf2_sha256' && !fastPbkdf2Available) {
    log.warn(
      `fast PBKDF2 addon ${fastPbkdf2Status}: PBKDF2-SHA256 runs on node:crypto, about half the speed`,
    );
  }
  if (cluster.isPrimary && !fastJpegAvailable) {
    log.warn(`fast JPEG addon ${fastJpegStatus}: captchas are encoded by Skia, about a third of the speed`);
  }
  // The embedded default brings its SQLite file up to date itself: once, before any fork.
  const migrate = config.database.kind === 'sqlite';
  if (cluster.isPrimary && config.WEB_CONCURRENCY > 1) {
    if (migrate) await migrateOnce(config);
    superviseWebProcesses({
      processes: config.WEB_CONCURRENCY,
      log,
      shutdownDeadlineMs: SHUTDOWN_DEADLINE_MS + 2000,
    });
    await startClusterMetricsPort(config, log);
    return;
  }
  await serve(config, log, migrate && cluster.isPrimary);
}

async function migrateOnce(config: Config): Promise<void> {
  mkdirSync(config.DATA_DIR, { recursive: true });
  const database = await openUserDatabase(config.database, {
    poolSize: 1,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
  });
  try {
    await migrateToLatest(database);
  } finally {
    await database.close();
  }
}

/** One web process: the app, its SMS worker (RUN_WORKER) and a drain on SIGTERM/SIGINT. */
async function serve(config: Config, log: Logger, migrate: boolean): Promise<void> {
  const deps = await createDeps(config, log, { migrate });
  await requireSchema(deps, log).catch(async (err: unknown) => {
    await deps.close();
    throw err;
  });
  if (config.RUN_WORKER) startSmsWorker(deps, config, log);
  await deps.warm();
  const server = await buildServer(config, deps, log);
  await server.listen({ host: config.HOST, port: config.PORT });
  const stopMetrics = await startMetricsPort(deps, config, log);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing requests and SMS jobs in hand');
    setTimeout(() => {
      log.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    await server.close();
    await stopMetrics();
    await deps.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
  } else {
    process.stderr.write(
      `meiduo-users failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  }
  process.exit(1);
});
