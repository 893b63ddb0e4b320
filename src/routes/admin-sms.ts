/**
 * Admin endpoints of the SMS-abuse defence (docs/operations.md "Admin API: lists and decision
 * records"): the block/allow lists and the decision records. Mounted under /admin behind the
 * admin bearer token; each route names its audit action in `config.action`.
 */
import Type from 'typebox';
import { type ListEntry, verifiedMobileKey } from '../domain/sms-abuse.js';
import type { AdminRoutes } from '../plugins/admin.js';
import { ok } from '../plugins/envelope.js';

const ListEntryBody = Type.Object({
  list: Type.Union([Type.Literal('block'), Type.Literal('allow')]),
  kind: Type.Union([Type.Literal('mobile'), Type.Literal('prefix'), Type.Literal('ip')]),
  value: Type.String({ minLength: 1, maxLength: 64 }),
  note: Type.Optional(Type.String({ maxLength: 200 })),
  ttl_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 86_400 })),
});
const VerifiedBody = Type.Object({
  mobiles: Type.Array(Type.String({ pattern: '^1[3-9]\\d{9}$' }), { minItems: 1, maxItems: 1000 }),
});
const EntryId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });
const DecisionQuery = Type.Object({
  mobile: Type.Optional(Type.String({ pattern: '^1[3-9]\\d{9}$' })),
  block: Type.Optional(Type.String({ pattern: '^1\\d{6}$' })),
  ip: Type.Optional(Type.String({ minLength: 2, maxLength: 64 })),
  decision: Type.Optional(
    Type.Union([Type.Literal('sent'), Type.Literal('refused'), Type.Literal('failed')]),
  ),
  from_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  to_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
});

interface ListEntryInput {
  list: 'block' | 'allow';
  kind: 'mobile' | 'prefix' | 'ip';
  value: string;
  note?: string;
  ttl_seconds?: number;
}

interface DecisionQueryInput {
  mobile?: string;
  block?: string;
  ip?: string;
  decision?: 'sent' | 'refused' | 'failed';
  from_ms?: number;
  to_ms?: number;
  limit: number;
}

const entryView = (e: ListEntry) => ({
  id: e.id,
  list: e.list,
  kind: e.kind,
  value: e.value,
  note: e.note,
  created_at_ms: e.createdAtMs,
  expires_at_ms: e.expiresAtMs,
});

/** Mounted by plugins/admin.ts under /admin (app.ts lists it). */
export const adminSmsRoutes: AdminRoutes = async (app, { deps, config }) => {
  const { smsLists, decisions, codeStore } = deps;

  // Marks numbers as verified (the ratio rule never refuses them), e.g. the mobiles of users
  // who registered before the rule existed: SELECT mobile FROM tb_users, in batches of 1000.
  app.put<{ Body: { mobiles: string[] } }>(
    '/sms-verified/',
    { schema: { body: VerifiedBody }, config: { action: 'sms.verified.put' } },
    async (request) => {
      const ttlSeconds = config.SMS_VERIFIED_MEMORY_DAYS * 86_400;
      const mobiles = [...new Set(request.body.mobiles)];
      for (const mobile of mobiles) await codeStore.set(verifiedMobileKey(mobile), '1', ttlSeconds);
      return ok('OK', { marked: mobiles.length, ttl_seconds: ttlSeconds });
    },
  );

  app.get('/sms-lists/', { config: { action: 'sms.lists.read' } }, async () =>
    ok('OK', { entries: (await smsLists.list()).map(entryView) }),
  );

  app.put<{ Body: ListEntryInput }>(
    '/sms-lists/',
    { schema: { body: ListEntryBody }, config: { action: 'sms.lists.put' } },
    async (request) => {
      const { list, kind, value, note, ttl_seconds: ttlSeconds } = request.body;
      const entry = await smsLists.put({
        list,
        kind,
        value,
        ...(note !== undefined && { note }),
        ...(ttlSeconds !== undefined && { ttlSeconds }),
      });
      return ok('OK', { entry: entryView(entry) });
    },
  );

  app.delete<{ Params: { id: number } }>(
    '/sms-lists/:id/',
    { schema: { params: EntryId }, config: { action: 'sms.lists.delete' } },
    async (request) => ok('OK', { id: request.params.id, removed: await smsLists.remove(request.params.id) }),
  );

  app.get<{ Querystring: DecisionQueryInput }>(
    '/sms-decisions/',
    { schema: { querystring: DecisionQuery }, config: { action: 'sms.decisions.read' } },
    async (request) => {
      const q = request.query;
      const records = await decisions.query({
        ...(q.mobile !== undefined && { mobile: q.mobile }),
        ...(q.block !== undefined && { block: q.block }),
        ...(q.ip !== undefined && { ip: q.ip }),
        ...(q.decision !== undefined && { decision: q.decision }),
        ...(q.from_ms !== undefined && { fromMs: q.from_ms }),
        ...(q.to_ms !== undefined && { toMs: q.to_ms }),
        limit: q.limit,
      });
      return ok('OK', {
        records: records.map((r) => ({
          id: r.id,
          at_ms: r.atMs,
          mobile: r.mobile,
          block: r.block,
          ip_prefix: r.ipPrefix,
          purpose: r.purpose,
          decision: r.decision,
          rule: r.rule,
          detail: r.detail,
          job_id: r.jobId,
          vendor: r.vendor,
          outcome: r.outcome,
          outcome_detail: r.outcomeDetail,
          outcome_at_ms: r.outcomeAtMs,
        })),
      });
    },
  );
};
