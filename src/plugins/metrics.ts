/**
 * HTTP metrics and GET /metrics on the web port (docs/operations.md "Metrics").
 *
 * Every answer is observed once it is sent: its method, route pattern (never the raw URL, so
 * the label set stays bounded; `(none)` for paths no route matched), status and duration, and
 * for error answers their error id, read from the envelope's first keys (both status modes).
 * GET /metrics exists only when METRICS_TOKEN is set, and answers only to that bearer token;
 * without it the path is an unknown one (404), so metrics are never public by accident.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from '../adapters/metrics/prometheus.js';
import { bearerToken, secretEquals } from '../domain/admin.js';
import { ApiError, ERRORS, type ErrorId } from '../domain/errors.js';

/** What the envelope's sendError writes first: `{"code":N,"error":"ID"`. */
const ERROR_HEAD = /^\{"code":\d+,"error":"([A-Z_]+)"/;

export interface MetricsPluginOptions {
  metrics: Metrics;
  /** METRICS_TOKEN: serve GET /metrics to this bearer token; unset: no route. */
  token: string | undefined;
}

export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: MetricsPluginOptions) => {
    const { metrics, token } = opts;
    const errorOf = new WeakMap<FastifyRequest, string>();

    app.addHook('onSend', async (request, _reply, payload) => {
      if (typeof payload === 'string' && payload.startsWith('{"code":')) {
        const id = ERROR_HEAD.exec(payload)?.[1];
        if (id !== undefined) errorOf.set(request, id);
      }
      return payload;
    });

    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? '(none)';
      metrics.http.observe(
        { method: request.method, route, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      const error = errorOf.get(request);
      if (error === undefined) return;
      metrics.errors.inc({ route, error });
      if (error in ERRORS && ERRORS[error as ErrorId][0] === 429) metrics.refusals.inc({ error });
    });

    if (token === undefined) return;
    app.get('/metrics', { config: { csrf: false } }, async (request, reply) => {
      const given = bearerToken(request.headers.authorization);
      if (given === null || !secretEquals(given, token)) {
        reply.header('WWW-Authenticate', 'Bearer realm="meiduo-users metrics"');
        throw new ApiError('METRICS_UNAUTHORIZED');
      }
      return reply
        .header('Cache-Control', 'no-store')
        .type(metrics.registry.contentType)
        .send(await metrics.registry.metrics());
    });
  },
  { name: 'metrics', dependencies: ['envelope'] },
);
