/**
 * The admin API's frame (docs/api.md §10): every route registered through it answers only to a
 * configured bearer token, counts against its own per-IP limit, and is written to the audit
 * log before its handler runs. Registered under /admin only when a token is configured; with
 * none, /admin/… is an unknown path (404).
 *
 * Adding admin endpoints: write a plugin `(app, opts: AdminRouteOptions) => …` in
 * src/routes/ (see admin.ts there), give each route a schema and `config: { action: 'x.y' }`
 * (the audit log's name of it), and add the plugin to the `routes` list in app.ts.
 *
 * No CSRF check: these routes read no cookie. Their one credential is the Authorization
 * header, which a browser never attaches by itself to a cross-site request, so there is
 * nothing ambient for another site to ride on.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Deps } from '../deps.js';
import { type AdminAuth, type AuditLog, bearerToken } from '../domain/admin.js';
import { clientKey } from '../domain/client-ip.js';
import { ApiError } from '../domain/errors.js';
import type { Limiter } from '../domain/limits.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The audit log's name of an admin route, e.g. `queue.failed.retry`. */
    action?: string;
  }
  interface FastifyRequest {
    /** The authenticated admin's token id (admin routes only). */
    adminActor?: string;
  }
}

export interface AdminRouteOptions {
  deps: Deps;
  config: Config;
}

export type AdminRoutes = FastifyPluginAsync<AdminRouteOptions>;

export interface AdminOptions extends AdminRouteOptions {
  auth: AdminAuth;
  audit: AuditLog;
  /** Counts every admin request, authenticated or not, per client IP and minute. */
  limiter: Limiter;
  perIpPerMinute: number;
  routes: AdminRoutes[];
}

export const ADMIN_REALM = 'Bearer realm="meiduo-users admin"';

/** What the audit row records of the request: its parameters and body, as JSON. */
function detailOf(request: FastifyRequest): string {
  const detail: Record<string, unknown> = {};
  const { params, query, body } = request;
  if (params && Object.keys(params).length > 0) detail.params = params;
  if (query && Object.keys(query).length > 0) detail.query = query;
  if (body !== undefined && body !== null) detail.body = body;
  return JSON.stringify(detail);
}

/** Encapsulated (no fastify-plugin): its hooks apply to the admin routes alone. */
export async function admin(app: FastifyInstance, opts: AdminOptions) {
  const { auth, audit, limiter, deps } = opts;

  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, csrf: false };
  });

  app.addHook('onRequest', async (request, reply) => {
    // Before the token check, so guessing tokens is limited too.
    await limiter.countAgainst('admin-ip', clientKey(request.ip), opts.perIpPerMinute, 60, 'ADMIN_LIMIT');
    const actor = auth.actorOf(bearerToken(request.headers.authorization));
    if (actor === null) {
      request.log.warn({ ip: request.ip }, 'admin: missing or wrong token');
      reply.header('WWW-Authenticate', ADMIN_REALM);
      throw new ApiError('ADMIN_UNAUTHORIZED');
    }
    request.adminActor = actor;
  });

  // Write-ahead: a request whose audit row cannot be written does not act (503).
  app.addHook('preHandler', async (request) => {
    await audit.append({
      atMs: deps.clock.nowMs(),
      actor: request.adminActor ?? 'unknown',
      action: request.routeOptions.config.action ?? `${request.method} ${request.routeOptions.url}`,
      target: `${request.method} ${request.url}`,
      detail: detailOf(request),
      ip: request.ip,
      requestId: request.id,
    });
  });

  for (const routes of opts.routes) await app.register(routes, { deps, config: opts.config });
}
