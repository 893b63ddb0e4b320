/**
 * `npm run worker`: an SMS worker alone, for deployments whose web processes run with
 * RUN_WORKER=false. It consumes the BullMQ queue (QUEUE_REDIS_URL or REDIS_URL) until
 * SIGINT/SIGTERM, then finishes the jobs in hand and exits 0.
 */
import { createDeps } from './deps.js';
import { createLogger } from './logger.js';
import { loadConfigOrExit, startMetricsPort, startSmsWorker } from './startup.js';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  if (!config.redis.queue) {
    // An in-process queue in a process of its own would never see a job.
    process.stderr.write('npm run worker needs the queue in Redis: set REDIS_URL or QUEUE_REDIS_URL\n');
    process.exit(1);
  }
  const log = createLogger(config).child({ process: 'worker' });
  for (const warning of config.warnings) log.warn(warning);

  const deps = await createDeps(config, log);
  startSmsWorker(deps, config, log);
  const stopMetrics = await startMetricsPort(deps, config, log);
  log.info({ concurrency: config.WORKER_CONCURRENCY, provider: deps.sms.name }, 'worker started');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker stopping: finishing the jobs in hand');
    try {
      await stopMetrics();
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
