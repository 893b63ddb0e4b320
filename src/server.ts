import { buildServer } from './build.js';
import { ConfigError } from './config.js';
import { createDeps } from './deps.js';
import { createLogger } from './logger.js';
import { loadConfigOrExit, requireSchema, startMetricsPort, startSmsWorker } from './startup.js';

const SHUTDOWN_DEADLINE_MS = 25_000;

async function main() {
  const config = loadConfigOrExit();
  const log = createLogger(config);
  for (const warning of config.warnings) log.warn(warning);

  const deps = await createDeps(config, log, { migrate: config.database.kind === 'sqlite' });
  await requireSchema(deps, log).catch(async (err: unknown) => {
    await deps.close();
    throw err;
  });
  if (config.RUN_WORKER) startSmsWorker(deps, config, log);
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
