/**
 * What the entry points (server.ts, worker.ts, migrate.ts) share: reading `.env`, validating
 * the configuration with a one-line refusal, and starting the SMS worker.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { type Config, ConfigError, loadConfig } from './config.js';
import type { Deps } from './deps.js';
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

/** Consumes SMS jobs with WORKER_CONCURRENCY in flight. */
export function startSmsWorker(deps: Deps, config: Config, log: Logger): void {
  deps.queue.startWorker(
    createSendSmsHandler({
      codeStore: deps.codeStore,
      sms: deps.sms,
      log,
      codeTtlSeconds: config.SMS_CODE_TTL_SECONDS,
      testNumbers: config.testSmsNumbers,
    }),
    config.WORKER_CONCURRENCY,
  );
}
