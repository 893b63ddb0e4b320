import { openUserDatabase } from './adapters/user-repository/database.js';
import { createLogger } from './logger.js';
import { migrateDown, migrateToLatest } from './migrations/index.js';
import { loadConfigOrExit } from './startup.js';

/*
 * `npm run migrate [up|down]`: brings tb_users (and our own bookkeeping tables) to the latest
 * migration, or undoes the last one. An existing Django tb_users is adopted, never dropped.
 */

async function main(): Promise<number> {
  const direction = process.argv[2] ?? 'up';
  if (direction !== 'up' && direction !== 'down') {
    process.stderr.write(`usage: migrate [up|down] (got "${direction}")\n`);
    return 2;
  }
  const config = loadConfigOrExit();
  const log = createLogger(config);
  const database = await openUserDatabase(config.database, {
    poolSize: 1,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
  });
  try {
    const report = direction === 'up' ? await migrateToLatest(database) : await migrateDown(database);
    log.info(
      { dialect: database.dialect, direction, executed: report.executed, tbUsers: report.tbUsers },
      report.executed.length > 0
        ? `migrations ${direction}: ${report.executed.join(', ')}; tb_users ${report.tbUsers}`
        : `nothing to migrate ${direction}; tb_users ${report.tbUsers}`,
    );
    return 0;
  } catch (err) {
    log.error({ err }, `migration ${direction} failed`);
    return 1;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
