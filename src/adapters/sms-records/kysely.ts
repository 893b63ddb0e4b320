import type { Generated } from 'kysely';
import { DependencyError, StoreBusyError } from '../../domain/errors.js';
import type {
  SmsDecisionKind,
  SmsDecisionStore,
  SmsDecisionView,
  SmsDeliveryRecord,
  SmsListStore,
} from '../../domain/ports.js';
import type { ListEntry, ListKind, ListName } from '../../domain/sms-abuse.js';
import { DECISIONS_TABLE, DELIVERIES_TABLE, LISTS_TABLE } from '../../migrations/002_sms_abuse.js';
import { isSqliteBusy } from '../sqlite.js';
import type { UserDatabase } from '../user-repository/connection.js';

/*
 * Block/allow lists and decision records in the service's SQL database (migration 002), on
 * SQLite, PostgreSQL and MySQL/MariaDB alike. bigint columns come back as strings from pg and
 * as numbers elsewhere: every read goes through Number().
 */

type Millis = number | string | bigint;

interface ListsTable {
  id: Generated<number>;
  list: string;
  kind: string;
  value: string;
  note: string;
  created_at_ms: Millis;
  expires_at_ms: Millis | null;
}

interface DecisionsTable {
  id: string;
  at_ms: Millis;
  mobile: string;
  mobile_key: string | null;
  block: string;
  ip_prefix: string;
  purpose: string;
  decision: string;
  rule: string | null;
  detail: string | null;
}

interface DeliveriesTable {
  decision_id: string;
  job_id: string;
  vendor: string;
  outcome: string;
  detail: string | null;
  attempt: number;
  at_ms: Millis;
}

type Tables = {
  [LISTS_TABLE]: ListsTable;
  [DECISIONS_TABLE]: DecisionsTable;
  [DELIVERIES_TABLE]: DeliveriesTable;
};

const num = (v: Millis) => Number(v);
const numOrNull = (v: Millis | null | undefined) => (v === null || v === undefined ? null : Number(v));

async function guarded<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (isSqliteBusy(err)) throw new StoreBusyError(err);
    throw new DependencyError('database', err);
  }
}

function toEntry(row: Omit<ListsTable, 'id'> & { id: number | string | bigint }): ListEntry {
  return {
    id: Number(row.id),
    list: row.list as ListName,
    kind: row.kind as ListKind,
    value: row.value,
    note: row.note,
    createdAtMs: num(row.created_at_ms),
    expiresAtMs: numOrNull(row.expires_at_ms),
  };
}

export function createKyselySmsListStore(database: UserDatabase): SmsListStore {
  const db = database.db.withTables<Tables>();
  const byValue = (list: string, kind: string, value: string) =>
    db
      .selectFrom(LISTS_TABLE)
      .selectAll()
      .where('list', '=', list)
      .where('kind', '=', kind)
      .where('value', '=', value)
      .executeTakeFirst();

  return {
    live: (nowMs) =>
      guarded(async () => {
        const rows = await db
          .selectFrom(LISTS_TABLE)
          .selectAll()
          .where((eb) => eb.or([eb('expires_at_ms', 'is', null), eb('expires_at_ms', '>', nowMs)]))
          .orderBy('id')
          .execute();
        return rows.map(toEntry);
      }),

    put: (entry, nowMs) =>
      guarded(async () => {
        // Update first, then insert: portable across the three dialects; a concurrent insert
        // of the same entry loses on the unique constraint and is read back as an update.
        const change = { note: entry.note, expires_at_ms: entry.expiresAtMs, created_at_ms: nowMs };
        const update = () =>
          db
            .updateTable(LISTS_TABLE)
            .set(change)
            .where('list', '=', entry.list)
            .where('kind', '=', entry.kind)
            .where('value', '=', entry.value)
            .executeTakeFirst();
        let updated = await update();
        if (Number(updated.numUpdatedRows) === 0) {
          try {
            await db
              .insertInto(LISTS_TABLE)
              .values({ list: entry.list, kind: entry.kind, value: entry.value, ...change })
              .execute();
          } catch (err) {
            updated = await update();
            if (Number(updated.numUpdatedRows) === 0) throw err;
          }
        }
        const row = await byValue(entry.list, entry.kind, entry.value);
        if (!row) throw new Error('list entry vanished after it was written');
        return toEntry(row);
      }),

    remove: (id) =>
      guarded(async () => {
        const result = await db.deleteFrom(LISTS_TABLE).where('id', '=', id).executeTakeFirst();
        return Number(result.numDeletedRows) > 0;
      }),

    purgeExpired: (nowMs) =>
      guarded(async () => {
        const result = await db
          .deleteFrom(LISTS_TABLE)
          .where('expires_at_ms', 'is not', null)
          .where('expires_at_ms', '<=', nowMs)
          .executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
  };
}

/**
 * `writer`: where the batches are written, when not `database` itself. On the embedded SQLite
 * file the service passes a connection of its own that never waits for the write lock (busy
 * timeout 0): a batch that meets another process's transaction is tried again a moment later
 * (StoreBusyError) instead of blocking this process's event loop in SQLite's busy handler.
 */
export function createKyselySmsDecisionStore(
  database: UserDatabase,
  writer: UserDatabase = database,
): SmsDecisionStore {
  const db = database.db.withTables<Tables>();
  const writeDb = writer.db.withTables<Tables>();
  const dialect = database.dialect;

  const row = (d: SmsDeliveryRecord) => ({
    decision_id: d.decisionId,
    job_id: d.jobId.slice(0, 64),
    vendor: d.vendor.slice(0, 32),
    outcome: d.outcome.slice(0, 16),
    detail: d.detail?.slice(0, 200) ?? null,
    attempt: d.attempt,
    at_ms: d.atMs,
  });
  const REPLACED = ['job_id', 'vendor', 'outcome', 'detail', 'attempt', 'at_ms'] as const;

  /**
   * One multi-row upsert per batch (one write transaction: on SQLite, web processes that write
   * one row at a time queue for the file's lock and block their event loops). A decision
   * reported twice in a batch keeps its last report, as one statement may touch a row once.
   */
  const upsertDeliveries = async (records: readonly SmsDeliveryRecord[]) => {
    const latest = new Map(records.map((d) => [d.decisionId, d] as const));
    const insert = writeDb.insertInto(DELIVERIES_TABLE).values([...latest.values()].map(row));
    await (dialect === 'mysql'
      ? insert.onDuplicateKeyUpdate((eb) =>
          Object.fromEntries(REPLACED.map((c) => [c, eb.fn('values', [eb.ref(c)])])),
        )
      : insert.onConflict((oc) =>
          oc
            .column('decision_id')
            .doUpdateSet((eb) => Object.fromEntries(REPLACED.map((c) => [c, eb.ref(`excluded.${c}`)]))),
        )
    ).execute();
  };

  return {
    insert: (records) =>
      guarded(async () => {
        if (records.length === 0) return;
        await writeDb
          .insertInto(DECISIONS_TABLE)
          .values(
            records.map((r) => ({
              id: r.id,
              at_ms: r.atMs,
              mobile: r.mobile,
              mobile_key: r.mobileKey,
              block: r.block,
              ip_prefix: r.ipPrefix.slice(0, 64),
              purpose: r.purpose,
              decision: r.decision,
              rule: r.rule?.slice(0, 48) ?? null,
              detail: r.detail?.slice(0, 64) ?? null,
            })),
          )
          .execute();
      }),

    deliver: (records) =>
      guarded(async () => {
        if (records.length > 0) await upsertDeliveries(records);
      }),

    query: (q) =>
      guarded(async () => {
        let query = db
          .selectFrom(DECISIONS_TABLE)
          .leftJoin(DELIVERIES_TABLE, `${DELIVERIES_TABLE}.decision_id`, `${DECISIONS_TABLE}.id`)
          .select([
            `${DECISIONS_TABLE}.id as id`,
            `${DECISIONS_TABLE}.at_ms as at_ms`,
            `${DECISIONS_TABLE}.mobile as mobile`,
            `${DECISIONS_TABLE}.mobile_key as mobile_key`,
            `${DECISIONS_TABLE}.block as block`,
            `${DECISIONS_TABLE}.ip_prefix as ip_prefix`,
            `${DECISIONS_TABLE}.purpose as purpose`,
            `${DECISIONS_TABLE}.decision as decision`,
            `${DECISIONS_TABLE}.rule as rule`,
            `${DECISIONS_TABLE}.detail as detail`,
            `${DELIVERIES_TABLE}.job_id as job_id`,
            `${DELIVERIES_TABLE}.vendor as vendor`,
            `${DELIVERIES_TABLE}.outcome as outcome`,
            `${DELIVERIES_TABLE}.detail as outcome_detail`,
            `${DELIVERIES_TABLE}.at_ms as outcome_at_ms`,
          ]);
        if (q.mobileKey !== undefined) query = query.where(`${DECISIONS_TABLE}.mobile_key`, '=', q.mobileKey);
        if (q.block !== undefined) query = query.where(`${DECISIONS_TABLE}.block`, '=', q.block);
        if (q.ipPrefix !== undefined) query = query.where(`${DECISIONS_TABLE}.ip_prefix`, '=', q.ipPrefix);
        if (q.decision !== undefined) query = query.where(`${DECISIONS_TABLE}.decision`, '=', q.decision);
        if (q.fromMs !== undefined) query = query.where(`${DECISIONS_TABLE}.at_ms`, '>=', q.fromMs);
        if (q.toMs !== undefined) query = query.where(`${DECISIONS_TABLE}.at_ms`, '<', q.toMs);
        const rows = await query
          .orderBy(`${DECISIONS_TABLE}.at_ms`, 'desc')
          .orderBy(`${DECISIONS_TABLE}.id`)
          .limit(q.limit)
          .execute();
        return rows.map(
          (r): SmsDecisionView => ({
            id: r.id,
            atMs: num(r.at_ms),
            mobile: r.mobile,
            mobileKey: r.mobile_key,
            block: r.block,
            ipPrefix: r.ip_prefix,
            purpose: r.purpose,
            decision: r.decision as SmsDecisionKind,
            rule: r.rule,
            detail: r.detail,
            jobId: r.job_id ?? null,
            vendor: r.vendor ?? null,
            outcome: r.outcome ?? null,
            outcomeDetail: r.outcome_detail ?? null,
            outcomeAtMs: numOrNull(r.outcome_at_ms),
          }),
        );
      }),

    purgeBefore: (beforeMs) =>
      guarded(async () => {
        await writeDb.deleteFrom(DELIVERIES_TABLE).where('at_ms', '<', beforeMs).execute();
        const result = await writeDb
          .deleteFrom(DECISIONS_TABLE)
          .where('at_ms', '<', beforeMs)
          .executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
  };
}
