/**
 * Admin endpoints of the operations half (docs/api.md §10): the SMS queue, a user's sessions,
 * the audit log. Mounted by plugins/admin.ts under /admin behind the bearer token.
 */
import Type from 'typebox';
import { maskMobile } from '../adapters/job-queue/outcome.js';
import { ApiError } from '../domain/errors.js';
import type { FailedJob } from '../domain/ports.js';
import type { AdminRoutes } from '../plugins/admin.js';
import { ok } from '../plugins/envelope.js';

const Paging = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 100_000, default: 0 }),
});
const JobId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9:_-]+$' }) });
const UserId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });
const Username = Type.Object({ username: Type.String({ minLength: 1, maxLength: 150 }) });
const AuditQuery = Type.Object({
  from_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  to_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  actor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  before_id: Type.Optional(Type.Integer({ minimum: 1 })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
});

const failedJobView = (f: FailedJob) => ({
  id: f.id,
  // Masked as in the logs: enough to match a complaint, not a list of numbers to hand around.
  mobile: maskMobile(f.job.mobile),
  purpose: f.job.purpose,
  attempts: f.attempts,
  reason: f.reason,
  failed_at_ms: f.failedAtMs,
});

/** GET /admin/queue/, the failed jobs and their retry or discard. */
export const adminQueueRoutes: AdminRoutes = async (app, { deps }) => {
  const { queue } = deps;

  app.get('/queue/', { config: { action: 'queue.counts' } }, async () =>
    ok('OK', { counts: await queue.counts() }),
  );

  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/queue/failed/',
    { schema: { querystring: Paging }, config: { action: 'queue.failed.list' } },
    async (request) => {
      const jobs = await queue.failedJobs(request.query.limit, request.query.offset);
      return ok('OK', { jobs: jobs.map(failedJobView) });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/queue/failed/:id/retry/',
    { schema: { params: JobId }, config: { action: 'queue.failed.retry' } },
    async (request) => {
      if (!(await queue.retryFailed(request.params.id))) throw new ApiError('ADMIN_NOT_FOUND');
      return ok('OK', { id: request.params.id, retried: true });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/queue/failed/:id/',
    { schema: { params: JobId }, config: { action: 'queue.failed.discard' } },
    async (request) => {
      if (!(await queue.discardFailed(request.params.id))) throw new ApiError('ADMIN_NOT_FOUND');
      return ok('OK', { id: request.params.id, discarded: true });
    },
  );
};

/** Ends every session of a user, found by id or by username. */
export const adminSessionRoutes: AdminRoutes = async (app, { deps }) => {
  const end = async (userId: number) =>
    ok('OK', { user_id: userId, ended: await deps.sessionStore.deleteAllForUser(userId) });

  app.delete<{ Params: { id: number } }>(
    '/users/:id/sessions/',
    { schema: { params: UserId }, config: { action: 'user.sessions.end' } },
    async (request) => {
      const user = await deps.users.findById(request.params.id);
      if (!user) throw new ApiError('ADMIN_NOT_FOUND');
      return end(user.id);
    },
  );

  app.delete<{ Params: { username: string } }>(
    '/users/by-username/:username/sessions/',
    { schema: { params: Username }, config: { action: 'user.sessions.end' } },
    async (request) => {
      const user = await deps.users.findByUsername(request.params.username);
      if (!user) throw new ApiError('ADMIN_NOT_FOUND');
      return end(user.id);
    },
  );
};

/** The audit log, newest first; `next_before_id` pages further back. */
export const adminAuditRoutes: AdminRoutes = async (app, { deps }) => {
  app.get<{
    Querystring: {
      from_ms?: number;
      to_ms?: number;
      actor?: string;
      action?: string;
      before_id?: number;
      limit: number;
    };
  }>(
    '/audit/',
    { schema: { querystring: AuditQuery }, config: { action: 'audit.query' } },
    async (request) => {
      const q = request.query;
      const records = await deps.audit.query({
        ...(q.from_ms === undefined ? {} : { fromMs: q.from_ms }),
        ...(q.to_ms === undefined ? {} : { toMs: q.to_ms }),
        ...(q.actor === undefined ? {} : { actor: q.actor }),
        ...(q.action === undefined ? {} : { action: q.action }),
        ...(q.before_id === undefined ? {} : { beforeId: q.before_id }),
        limit: q.limit,
      });
      const last = records.at(-1);
      return ok('OK', {
        records: records.map((r) => ({
          id: r.id,
          at_ms: r.atMs,
          actor: r.actor,
          action: r.action,
          target: r.target,
          detail: r.detail,
          ip: r.ip,
          request_id: r.requestId,
        })),
        next_before_id: records.length === q.limit && last ? last.id : null,
      });
    },
  );
};

/** The operations half's admin routes; the abuse half adds its own plugins beside these in app.ts. */
export const OPERATIONS_ADMIN_ROUTES: AdminRoutes[] = [
  adminQueueRoutes,
  adminSessionRoutes,
  adminAuditRoutes,
];
