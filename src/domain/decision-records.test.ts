import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createKyselySmsDecisionStore } from '../adapters/sms-records/kysely.js';
import { openSqlite } from '../adapters/sqlite.js';
import { openUserDatabase, type UserDatabase } from '../adapters/user-repository/database.js';
import { migrateDown, migrateToLatest } from '../migrations/index.js';
import { createDecisionRecorder, decisionId, type RecorderSettings } from './decision-records.js';

/** The recorder over the real SQLite store; an outage is the tables being gone. */
describe('decision recorder', () => {
  let dir: string;
  let database: UserDatabase;
  let now: number;
  const warnings: string[] = [];
  const log = { info: () => {}, warn: (_: object, msg: string) => void warnings.push(msg) };
  const settings: RecorderSettings = {
    SMS_DECISION_RETENTION_DAYS: 30,
    SMS_DECISION_MOBILE: 'masked',
    SMS_DECISION_FLUSH_MS: 60_000,
    SMS_RATIO_IPV4_PREFIX_BITS: 24,
    SMS_RATIO_IPV6_PREFIX_BITS: 48,
  };
  const recorder = (overrides: Partial<RecorderSettings> = {}) =>
    createDecisionRecorder({
      store: createKyselySmsDecisionStore(database),
      clock: { nowMs: () => now },
      log,
      settings: { ...settings, ...overrides },
    });
  const decision = {
    mobile: '13800138000',
    ip: '198.51.100.7',
    purpose: 'register',
    decision: 'sent' as const,
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meiduo-records-'));
    database = await openUserDatabase(
      { kind: 'sqlite', path: join(dir, 'db.sqlite3') },
      { poolSize: 1, statementTimeoutMs: 5000 },
    );
    await migrateToLatest(database);
    now = Date.UTC(2026, 11, 4, 12);
    warnings.length = 0;
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps decisions in memory until a flush writes them in one batch', async () => {
    const r = recorder();
    const ids = [r.decide(decision), r.decide({ ...decision, decision: 'refused', rule: 'ratio:block' })];
    const store = createKyselySmsDecisionStore(database);
    expect(await store.query({ limit: 10 })).toEqual([]);
    await r.flush();
    expect((await store.query({ limit: 10 })).map((d) => d.id).sort()).toEqual([...ids].sort());
    await r.close();
  });

  it('keeps what the database refused and writes it once the database is back; warns once', async () => {
    const r = recorder();
    // Down to before migration 002: the tables are gone.
    while (!(await migrateDown(database)).executed.includes('002_sms_abuse'));
    r.decide(decision);
    r.decide(decision);
    await r.flush();
    await r.flush();
    expect(warnings).toEqual(['SMS decision records not written yet']);
    await migrateToLatest(database);
    await r.close();
    expect(await createKyselySmsDecisionStore(database).query({ block: '1380013', limit: 10 })).toHaveLength(
      2,
    );
  });

  it("writes a batch that met another process's write lock a moment later, without waiting on the lock or warning", async () => {
    const path = join(dir, 'db.sqlite3');
    // Another web process in the middle of a write transaction on the same file.
    const other = openSqlite(path);
    const writerHandle = openSqlite(path, { busyTimeoutMs: 0 });
    const writer = await openUserDatabase(
      { kind: 'sqlite', path },
      { poolSize: 1, statementTimeoutMs: 5000, sqlite: writerHandle },
    );
    const r = createDecisionRecorder({
      store: createKyselySmsDecisionStore(database, writer),
      clock: { nowMs: () => now },
      log,
      settings,
    });
    const store = createKyselySmsDecisionStore(database);
    try {
      other.exec('BEGIN IMMEDIATE');
      const id = r.decide(decision);
      // With a waiting connection this flush would sleep in SQLite's busy handler on this very
      // thread, so the lock could never be released while it waited.
      await r.flush();
      expect(await store.query({ limit: 10 })).toEqual([]);
      other.exec('COMMIT');
      // Tried again within tens of milliseconds, not at the next flush (a minute here).
      await vi.waitFor(
        async () => expect((await store.query({ limit: 10 })).map((d) => d.id)).toEqual([id]),
        {
          timeout: 2000,
          interval: 20,
        },
      );
      expect(warnings).toEqual([]);
    } finally {
      await r.close();
      other.close();
      writerHandle.close();
    }
  });

  it('reports a delivery after its decision, and finds records by mobile (masked: by its block)', async () => {
    const r = recorder();
    const id = r.decide(decision);
    r.delivered({ decisionId: id, jobId: 'j1', vendor: 'aliyun', outcome: 'ok', detail: null, attempt: 1 });
    const [found] = await r.query({ mobile: '13800130000' });
    expect(found).toMatchObject({ id, mobile: '1380013****', ipPrefix: '198.51.100.0/24', outcome: 'ok' });
    await r.close();
  });

  it('removes records older than the retention; retention 0 writes none', async () => {
    const r = recorder();
    r.decide(decision);
    await r.flush();
    now += 31 * 86_400_000;
    r.decide(decision);
    await r.flush();
    expect(await r.query({})).toHaveLength(1);
    await r.close();
    const none = recorder({ SMS_DECISION_RETENTION_DAYS: 0 });
    none.decide(decision);
    await none.close();
    expect(await createKyselySmsDecisionStore(database).query({ limit: 10 })).toHaveLength(1);
  });
});

describe('decision ids', () => {
  it('are UUIDs version 7 that sort in the order of their times, never repeated', () => {
    const ids = [1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000].map((ms) => decisionId(ms));
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0]?.slice(0, 13)).toBe('018bcfe5-6800');
    const many = new Set(Array.from({ length: 10_000 }, () => decisionId(1_700_000_000_000)));
    expect(many.size).toBe(10_000);
  });
});
