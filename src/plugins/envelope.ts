import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { ApiError, DependencyError, type ErrorExtra, type ErrorId } from '../domain/errors.js';
import type { OutageLog } from '../outages.js';

/** Success body: `code` 0 and the message under both keys the Meiduo front ends read. */
export function ok(message: string, extra: Record<string, unknown> = {}) {
  return { code: 0, message, errmsg: message, ...extra };
}

/** Statuses that the Django original sent as HTTP 200 with `code` 400 (API.md §1). */
export const MEIDUO_FOLDED: ReadonlySet<number> = new Set([400, 401, 409, 413, 414, 415, 429]);

export type ErrorStatusMode = 'http' | 'meiduo';

/** An error's answer: the HTTP status to send and the envelope (API.md §1, §5). */
export function errorAnswer(id: ErrorId, mode: ErrorStatusMode, extra: ErrorExtra = {}) {
  const err = new ApiError(id, extra);
  const folded = mode === 'meiduo' && MEIDUO_FOLDED.has(err.status);
  return {
    status: folded ? 200 : err.status,
    folded,
    body: {
      code: folded ? 400 : err.status,
      error: err.id,
      message: err.message,
      errmsg: err.message,
      ...err.extra,
    },
  };
}

declare module 'fastify' {
  interface FastifyReply {
    sendError(id: ErrorId, extra?: ErrorExtra): FastifyReply;
  }
}

/** Maps Fastify's own errors (parsing, limits, validation) onto the §5 table. */
function fastifyErrorId(err: { code?: string; statusCode?: number; validation?: unknown }): ErrorId | null {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'PAYLOAD_TOO_LARGE';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'BAD_JSON';
  }
  if (err.validation) return 'BAD_REQUEST';
  if (err.statusCode === 413) return 'PAYLOAD_TOO_LARGE';
  if (err.statusCode === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  if (err.statusCode === 404) return 'NOT_FOUND';
  if (err.statusCode === 405) return 'METHOD_NOT_ALLOWED';
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return 'BAD_REQUEST';
  return null;
}

/**
 * The one place errors become answers: ApiError → its row of §5; Fastify's client errors →
 * their row; a failed dependency → 503; anything else → 503 too (never a stack trace, never
 * HTML), with the details only in the log.
 */
export const envelope = fp(
  async (app: FastifyInstance, opts: { mode: ErrorStatusMode; outages?: OutageLog }) => {
    app.decorateReply('sendError', function (this: FastifyReply, id: ErrorId, extra: ErrorExtra = {}) {
      const answer = errorAnswer(id, opts.mode, extra);
      if (extra.retry_after !== undefined && !answer.folded)
        this.header('Retry-After', String(extra.retry_after));
      return this.code(answer.status).send(answer.body);
    });

    app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
      if (error instanceof ApiError) return reply.sendError(error.id, error.extra);
      if (error instanceof DependencyError) {
        if (opts.outages) opts.outages.failed(error.dependency, error.cause, request.log as Logger);
        else request.log.error({ err: error.cause, dependency: error.dependency }, 'dependency failed');
        return reply.sendError('SERVICE_UNAVAILABLE');
      }
      const id = fastifyErrorId(error as { code?: string; statusCode?: number });
      if (id) return reply.sendError(id);
      request.log.error({ err: error }, 'unexpected error');
      return reply.sendError('SERVICE_UNAVAILABLE');
    });
  },
  { name: 'envelope' },
);
