/**
 * A server database on which `npm run migrate` was not run: the start refuses with what is
 * missing and what to run (so nothing is served, no SMS is sent for registrations that cannot
 * succeed), and /readyz checks the schema (the table and the latest migration), not only
 * `select 1`. Real PostgreSQL and MariaDB, a fresh empty database each.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openUserDatabase } from '../src/adapters/user-repository/database.js';
import { migrateToLatest } from '../src/migrations/index.js';
import { has } from './backends.js';
import { type DatabaseKind, freshDatabase } from './databases.js';
import { buildTestApp } from './helper.js';

const kinds: DatabaseKind[] = [];
if (await has('postgres')) kinds.push('postgres');
if (await has('mysql')) kinds.push('mysql');

/** Runs `src/server.ts` as `npm start` does and waits for it to end (or be stopped). */
function startServer(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      // the embedded store and queue: only the database is under test
      env: Object.fromEntries(
        Object.entries({ ...process.env, ...env }).filter(([name]) => !name.endsWith('REDIS_URL')),
      ),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    // a server that wrongly came up is stopped, so the test fails instead of hanging
    const guard = setTimeout(() => child.kill('SIGTERM'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, stderr, stdout });
    });
  });
}

describe.each(kinds)('a %s database nobody migrated', (kind) => {
  it('stops the start with what is missing and what to run', async () => {
    const database = await freshDatabase(kind);
    const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-schema-'));
    try {
      const run = await startServer({
        DATABASE_URL: database.url,
        DATA_DIR: dataDir,
        PORT: '0',
      });
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toContain('table tb_users');
      expect(run.stderr).toContain('migration 001_tb_users');
      expect(run.stderr).toContain('npm run migrate');
      expect(run.stdout).not.toContain('listening');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await database.drop();
    }
  }, 40_000);

  it('/readyz answers 503 until the schema is there, then 200', async () => {
    const t = await buildTestApp({}, { database: kind, migrate: false });
    try {
      const before = await t.client().get('/readyz');
      expect(before.statusCode).toBe(503);
      expect(before.json()).toMatchObject({
        error: 'SERVICE_UNAVAILABLE',
        checks: { database: true, schema: false },
      });
      expect(await t.deps.schemaGaps()).toContain('table tb_users');

      const migrator = await openUserDatabase(t.config.database, { poolSize: 1, statementTimeoutMs: 5000 });
      try {
        await migrateToLatest(migrator);
      } finally {
        await migrator.close();
      }
      const after = await t.client().get('/readyz');
      expect(after.statusCode, after.body).toBe(200);
      expect(after.json().checks).toMatchObject({ database: true, schema: true });
    } finally {
      await t.close();
    }
  });
});
