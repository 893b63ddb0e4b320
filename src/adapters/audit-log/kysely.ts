import type { Generated } from 'kysely';
import { AUDIT_DETAIL_MAX, AUDIT_TARGET_MAX, type AuditLog, type AuditRecord } from '../../domain/admin.js';
import { DependencyError } from '../../domain/errors.js';
import { AUDIT_TABLE } from '../../migrations/003_admin_audit.js';
import type { UserDatabase } from '../user-repository/connection.js';

/*
 * The audit log in the service's SQL database (migration 003) on SQLite, PostgreSQL and
 * MySQL/MariaDB. Insert and select only: the append-only promise is kept by there being no
 * other statement here. bigint columns come back as strings from pg: reads go through Number().
 */

type Millis = number | string | bigint;

interface AuditTable {
  id: Generated<number | string | bigint>;
  at_ms: Millis;
  actor: string;
  action: string;
  target: string;
  detail: string;
  ip: string;
  request_id: string;
}

type Tables = { [AUDIT_TABLE]: AuditTable };

async function guarded<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw new DependencyError('database', err);
  }
}

export function createKyselyAuditLog(database: UserDatabase): AuditLog {
  const db = database.db.withTables<Tables>();
  return {
    append: (entry) =>
      guarded(async () => {
        await db
          .insertInto(AUDIT_TABLE)
          .values({
            at_ms: entry.atMs,
            actor: entry.actor.slice(0, 64),
            action: entry.action.slice(0, 64),
            target: entry.target.slice(0, AUDIT_TARGET_MAX),
            detail: entry.detail.slice(0, AUDIT_DETAIL_MAX),
            ip: entry.ip.slice(0, 64),
            request_id: entry.requestId.slice(0, 64),
          })
          .execute();
      }),

    query: (q) =>
      guarded(async () => {
        let select = db.selectFrom(AUDIT_TABLE).selectAll();
        if (q.fromMs !== undefined) select = select.where('at_ms', '>=', q.fromMs);
        if (q.toMs !== undefined) select = select.where('at_ms', '<', q.toMs);
        if (q.actor !== undefined) select = select.where('actor', '=', q.actor);
        if (q.action !== undefined) select = select.where('action', '=', q.action);
        if (q.beforeId !== undefined) select = select.where('id', '<', q.beforeId);
        const rows = await select.orderBy('id', 'desc').limit(q.limit).execute();
        return rows.map(
          (r): AuditRecord => ({
            id: Number(r.id),
            atMs: Number(r.at_ms),
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: r.detail,
            ip: r.ip,
            requestId: r.request_id,
          }),
        );
      }),
  };
}
