/**
 * `npm run worker`: an SMS worker alone, for deployments whose web processes run with
 * RUN_WORKER=false. It consumes the queue the configuration names (BullMQ when
 * QUEUE_REDIS_URL/REDIS_URL is set; the in-process queue would only see its own jobs, so the
 * start-up warns about it) until SIGINT/SIGTERM, then finishes the jobs in hand and exits 0.
 */
import { pino } from 'pino';
import { type Config, ConfigError, loadConfig } from './config.js';
import { createDeps } from './deps.js';
import { createSendSmsHandler } from './jobs/send-sms.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = pino({ level: config.LOG_LEVEL, base: { process: 'worker' } });
  for (const warning of config.warnings) log.warn(warning);
  if (!config.QUEUE_REDIS_URL) {
    log.warn('no QUEUE_REDIS_URL/REDIS_URL: this worker only sees jobs enqueued in its own process');
  }

  const deps = await createDeps(config, log);
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
  log.info({ concurrency: config.WORKER_CONCURRENCY, provider: deps.sms.name }, 'worker started');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker stopping: finishing the jobs in hand');
    try {
      await deps.queue.close();
      await deps.close();
      log.info('worker stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'worker did not stop cleanly');
      process.exit(1);
    }
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
