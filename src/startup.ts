/**
 * What the entry points (server.ts, worker.ts, migrate.ts) share: reading `.env`, validating
 * the configuration with a one-line refusal, and starting the SMS worker.
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { type Config, ConfigError, loadConfig } from './config.js';
import type { Deps } from './deps.js';
import { createEmailTokens } from './domain/email-binding.js';
import { createSendEmailHandler } from './jobs/send-email.js';
import { createSendSmsHandler } from './jobs/send-sms.js';

/** `.env` (if any) under the environment, validated; a bad setting ends the process with one line. */
export function loadConfigOrExit(): Config {
  if (existsSync('.env')) process.loadEnvFile('.env');
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** Consumes SMS jobs and verification-email jobs, each with WORKER_CONCURRENCY in flight. */
export function startSmsWorker(deps: Deps, config: Config, log: Logger): void {
  const send = createSendSmsHandler({
    codeStore: deps.codeStore,
    sms: deps.sms,
    log,
    codeTtlSeconds: config.SMS_CODE_TTL_SECONDS,
    testNumbers: config.testSmsNumbers,
  });
  deps.queue.startWorker(async (job, info) => {
    const outcome = await send(job, info);
    // Each attempt's outcome completes the request's decision record (the last one stays).
    if (job.decisionId) {
      deps.decisions.delivered({
        decisionId: job.decisionId,
        jobId: info.id,
        vendor: outcome.provider,
        outcome: outcome.kind,
        detail: outcome.detail ?? null,
        attempt: info.attempt,
      });
    }
    return outcome;
  }, config.WORKER_CONCURRENCY);
  deps.emailQueue.startWorker(
    createSendEmailHandler({
      users: deps.users,
      tokens: createEmailTokens({ codeStore: deps.codeStore, ttlSeconds: config.EMAIL_TOKEN_TTL_SECONDS }),
      email: deps.email,
      verifyUrl: config.emailVerifyUrl,
      tokenTtlSeconds: config.EMAIL_TOKEN_TTL_SECONDS,
    }),
    config.WORKER_CONCURRENCY,
  );
}

/** METRICS_PORT: this process's /metrics on a listener of its own; returns its closer. */
export async function startMetricsPort(
  deps: Deps,
  config: Config,
  log: Logger,
): Promise<() => Promise<void>> {
  if (config.METRICS_PORT === undefined || !deps.metrics) return async () => {};
  const { joinClusterMetrics, startMetricsListener } = await import('./adapters/metrics/listener.js');
  // A web process of a cluster hands its metrics to the primary, which alone listens.
  if (cluster.isWorker) {
    joinClusterMetrics(deps.metrics);
    return async () => {};
  }
  const server = await startMetricsListener({
    host: config.METRICS_HOST,
    port: config.METRICS_PORT,
    token: config.METRICS_TOKEN,
    log,
    metrics: deps.metrics,
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** METRICS_PORT in a cluster primary: every web process's metrics merged on one listener. */
export async function startClusterMetricsPort(config: Config, log: Logger): Promise<void> {
  if (config.METRICS_PORT === undefined) return;
  const { startMetricsListener } = await import('./adapters/metrics/listener.js');
  await startMetricsListener({
    host: config.METRICS_HOST,
    port: config.METRICS_PORT,
    token: config.METRICS_TOKEN,
    log,
    cluster: true,
  });
}

/**
 * The start refuses a database that answers but lacks the schema (`npm run migrate` not run
 * on a server database): serving would answer 503 on every user route while /sms_codes/ kept
 * sending SMS for registrations that cannot succeed. The message says what is missing and
 * what to run. A database that does not answer yet is no reason to refuse: the pools heal
 * and /readyz answers 503 until it does.
 */
export async function requireSchema(deps: Deps, log: Logger): Promise<void> {
  try {
    await deps.users.ping();
  } catch {
    log.warn('the database does not answer at start; /readyz answers 503 until it does');
    return;
  }
  const gaps = await deps.schemaGaps();
  if (gaps.length > 0) {
    throw new Error(
      `the database lacks ${gaps.join(', ')}: run \`npm run migrate\` with the same DATABASE_URL, then start again`,
    );
  }
}
