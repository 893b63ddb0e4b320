/**
 * Block/allow lists and SMS decision records in the SQL database (migration 002), one suite on
 * every database: SQLite always, PostgreSQL and MariaDB when reachable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKyselySmsDecisionStore,
  createKyselySmsListStore,
} from '../../src/adapters/sms-records/kysely.js';
import { openUserDatabase } from '../../src/adapters/user-repository/database.js';
import { parseDatabaseUrl } from '../../src/config.js';
import { DependencyError } from '../../src/domain/errors.js';
import type { SmsDecisionRecord, SmsDecisionStore, SmsListStore } from '../../src/domain/ports.js';
import { migrateDown, migrateToLatest } from '../../src/migrations/index.js';
import { has } from '../backends.js';
import { type DatabaseKind, freshDatabase } from '../databases.js';

const BACKENDS: Array<[DatabaseKind, boolean]> = [
  ['sqlite', true],
  ['postgres', await has('postgres')],
  ['mysql', await has('mysql')],
];

const T0 = Date.UTC(2026, 11, 4, 12);

function decision(overrides: Partial<SmsDecisionRecord> = {}): SmsDecisionRecord {
  return {
    id: crypto.randomUUID(),
    atMs: T0,
    mobile: '1380013****',
    mobileKey: null,
    block: '1380013',
    ipPrefix: '198.18.3.0/24',
    purpose: 'register',
    decision: 'sent',
    rule: null,
    detail: null,
    ...overrides,
  };
}

for (const [kind, available] of BACKENDS) {
  describe.skipIf(!available)(`SMS lists and decision records on ${kind}`, () => {
    let fresh: Awaited<ReturnType<typeof freshDatabase>>;
    let database: Awaited<ReturnType<typeof openUserDatabase>>;
    let lists: SmsListStore;
    let decisions: SmsDecisionStore;

    beforeAll(async () => {
      fresh = await freshDatabase(kind);
      database = await openUserDatabase(parseDatabaseUrl(fresh.url), {
        poolSize: 3,
        statementTimeoutMs: 5000,
      });
      await migrateToLatest(database);
      lists = createKyselySmsListStore(database);
      decisions = createKyselySmsDecisionStore(database);
    });
    afterAll(async () => {
      await database?.close();
      await fresh?.drop();
    });

    it('keeps list entries with their expiry; expired ones are not live and can be purged', async () => {
      const forever = await lists.put(
        { list: 'block', kind: 'prefix', value: '1700000', note: 'virtual operator', expiresAtMs: null },
        T0,
      );
      const brief = await lists.put(
        { list: 'allow', kind: 'ip', value: '2001:db8::/32', note: 'office', expiresAtMs: T0 + 60_000 },
        T0,
      );
      expect(forever).toEqual({
        id: expect.any(Number),
        list: 'block',
        kind: 'prefix',
        value: '1700000',
        note: 'virtual operator',
        createdAtMs: T0,
        expiresAtMs: null,
      });
      expect((await lists.live(T0 + 1000)).map((e) => e.value)).toEqual(['1700000', '2001:db8::/32']);
      expect((await lists.live(T0 + 60_000)).map((e) => e.value)).toEqual(['1700000']);
      expect(await lists.purgeExpired(T0 + 60_000)).toBe(1);
      expect(await lists.remove(brief.id)).toBe(false);
      expect(await lists.remove(forever.id)).toBe(true);
      expect(await lists.live(T0)).toEqual([]);
    });

    it('replaces the note and expiry of an entry put twice, keeping one row', async () => {
      const first = await lists.put(
        { list: 'block', kind: 'mobile', value: '13800138000', note: 'a', expiresAtMs: T0 + 1000 },
        T0,
      );
      const second = await lists.put(
        { list: 'block', kind: 'mobile', value: '13800138000', note: 'b', expiresAtMs: null },
        T0 + 5,
      );
      expect(second).toEqual({ ...first, note: 'b', expiresAtMs: null, createdAtMs: T0 + 5 });
      expect(await lists.live(T0 + 2000)).toEqual([second]);
      // The same value on the other list is another entry.
      const allowed = await lists.put(
        { list: 'allow', kind: 'mobile', value: '13800138000', note: '', expiresAtMs: null },
        T0,
      );
      expect(allowed.id).not.toBe(second.id);
      await lists.remove(second.id);
      await lists.remove(allowed.id);
    });

    it('writes decisions in batches and finds them by mobile key, block, IP prefix and time, newest first', async () => {
      const a = decision({ atMs: T0, mobileKey: 'k-a', block: '1391111', ipPrefix: '203.0.113.0/24' });
      const b = decision({
        atMs: T0 + 1000,
        mobileKey: 'k-b',
        block: '1391111',
        decision: 'refused',
        rule: 'ratio:block',
      });
      const c = decision({ atMs: T0 + 2000, mobileKey: 'k-a', block: '1392222', ipPrefix: '203.0.113.0/24' });
      await decisions.insert([a, b, c]);
      const ids = async (q: Parameters<SmsDecisionStore['query']>[0]) =>
        (await decisions.query(q)).map((r) => r.id);
      expect(await ids({ mobileKey: 'k-a', limit: 10 })).toEqual([c.id, a.id]);
      expect(await ids({ block: '1391111', limit: 10 })).toEqual([b.id, a.id]);
      expect(await ids({ ipPrefix: '203.0.113.0/24', limit: 10 })).toEqual([c.id, a.id]);
      expect(await ids({ block: '1391111', decision: 'refused', limit: 10 })).toEqual([b.id]);
      expect(await ids({ fromMs: T0 + 1000, toMs: T0 + 2000, limit: 10 })).toEqual([b.id]);
      expect(await ids({ mobileKey: 'k-a', limit: 1 })).toEqual([c.id]);
      const [refused] = await decisions.query({ mobileKey: 'k-b', limit: 1 });
      expect(refused).toEqual({
        ...b,
        jobId: null,
        vendor: null,
        outcome: null,
        outcomeDetail: null,
        outcomeAtMs: null,
      });
    });

    it("joins the worker's delivery report; a later report of the same decision replaces it", async () => {
      const d = decision({ mobileKey: 'k-delivery' });
      await decisions.insert([d]);
      const report = {
        decisionId: d.id,
        jobId: '42',
        vendor: 'aliyun',
        detail: 'isv.BUSINESS_LIMIT_CONTROL',
      };
      await decisions.deliver([{ ...report, outcome: 'transient', attempt: 1, atMs: T0 + 10 }]);
      await decisions.deliver([{ ...report, outcome: 'ok', detail: null, attempt: 2, atMs: T0 + 20 }]);
      const [view] = await decisions.query({ mobileKey: 'k-delivery', limit: 5 });
      expect(view).toMatchObject({
        id: d.id,
        jobId: '42',
        vendor: 'aliyun',
        outcome: 'ok',
        outcomeDetail: null,
        outcomeAtMs: T0 + 20,
      });
    });

    it('writes a batch of delivery reports at once; within a batch the last report of a decision wins', async () => {
      const batch = Array.from({ length: 120 }, (_, i) => decision({ mobileKey: `k-batch-${i % 3}` }));
      await decisions.insert(batch);
      const report = (d: SmsDecisionRecord, attempt: number, outcome: string) => ({
        decisionId: d.id,
        jobId: `job-${d.id.slice(0, 8)}`,
        vendor: 'tencent',
        outcome,
        detail: null,
        attempt,
        atMs: T0 + attempt,
      });
      // Every decision reported once, the first ten twice (a retry ending in ok).
      await decisions.deliver([
        ...batch.map((d) => report(d, 1, 'transient')),
        ...batch.slice(0, 10).map((d) => report(d, 2, 'ok')),
      ]);
      const views = await decisions.query({ mobileKey: 'k-batch-0', limit: 100 });
      const seen = new Map(views.map((v) => [v.id, v]));
      for (const [i, d] of batch.entries()) {
        if (i % 3 !== 0) continue;
        expect(seen.get(d.id)).toMatchObject(
          i < 10 ? { outcome: 'ok', outcomeAtMs: T0 + 2 } : { outcome: 'transient', outcomeAtMs: T0 + 1 },
        );
      }
      expect(seen.size).toBe(40);
    });

    it('purges decisions (and their deliveries) older than the retention', async () => {
      const old = decision({ atMs: T0 - 40 * 86_400_000, mobileKey: 'k-old' });
      const recent = decision({ atMs: T0, mobileKey: 'k-old' });
      await decisions.insert([old, recent]);
      await decisions.deliver([
        {
          decisionId: old.id,
          jobId: '1',
          vendor: 'console',
          outcome: 'ok',
          detail: null,
          attempt: 1,
          atMs: old.atMs + 5,
        },
      ]);
      expect(await decisions.purgeBefore(T0 - 30 * 86_400_000)).toBe(1);
      expect((await decisions.query({ mobileKey: 'k-old', limit: 5 })).map((r) => r.id)).toEqual([recent.id]);
    });

    it('migrates down and up again; without its tables the stores fail as an unavailable database', async () => {
      const own = await freshDatabase(kind);
      const db = await openUserDatabase(parseDatabaseUrl(own.url), { poolSize: 2, statementTimeoutMs: 5000 });
      try {
        const all = (await migrateToLatest(db)).executed;
        expect(all.slice(0, 2)).toEqual(['001_tb_users', '002_sms_abuse']);
        // The later migrations go down first.
        for (const later of all.slice(2).reverse()) expect((await migrateDown(db)).executed).toEqual([later]);
        expect((await migrateDown(db)).executed).toEqual(['002_sms_abuse']);
        await expect(createKyselySmsListStore(db).live(T0)).rejects.toBeInstanceOf(DependencyError);
        expect((await migrateToLatest(db)).executed).toEqual(all.slice(1));
        expect(await createKyselySmsListStore(db).live(T0)).toEqual([]);
      } finally {
        await db.close();
        await own.drop();
      }
    });
  });
}
