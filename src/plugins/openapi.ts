/**
 * OpenAPI 3.1 at GET /docs/openapi.json and a page reading it at GET /docs (docs/api.md §11).
 *
 * @fastify/swagger collects every route as it is registered (so this plugin comes before the
 * routes) with the schemas it validates with; the transform below adds what the schemas do not
 * say — summary, documentation-only bodies, success answers, the error ids with their statuses
 * in the running ERROR_STATUS_MODE — from the route's own `schema.summary` or from the table in
 * routes/docs.ts. Admin routes carry the admin bearer scheme, /metrics the metrics one.
 *
 * The page is our own (openapi-page.ts): a script and a style sheet from this origin, no
 * inline code, no other host, under a CSP that allows nothing else. Swagger UI was not taken:
 * its page needs inline styles and, by default, calls an outside validator.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifySchema, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { ERRORS, type ErrorId } from '../domain/errors.js';
import { ROUTE_DOCS, type RouteDoc } from '../routes/docs.js';
import { MEIDUO_FOLDED } from './envelope.js';
import { DOCS_CSS, DOCS_HTML, DOCS_JS } from './openapi-page.js';

export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

type Json = Record<string, unknown>;

const ALL_IDS = Object.keys(ERRORS) as ErrorId[];

const okEnvelope = (extra: Json | undefined): Json => {
  const properties = (extra?.properties as Json | undefined) ?? {};
  const required = (extra?.required as string[] | undefined) ?? [];
  return {
    type: 'object',
    required: ['code', 'message', 'errmsg', ...required],
    properties: {
      code: { type: 'integer', enum: [0] },
      message: { type: 'string' },
      errmsg: { type: 'string', description: 'the same text as message' },
      ...properties,
    },
  };
};

const errorEnvelope = (ids: ErrorId[], codes: number[]): Json => ({
  type: 'object',
  required: ['code', 'error', 'message', 'errmsg'],
  properties: {
    code: { type: 'integer', enum: codes, description: 'the HTTP status, or 400 when folded (meiduo mode)' },
    error: { type: 'string', enum: ids },
    message: { type: 'string', description: 'Chinese text for the user' },
    errmsg: { type: 'string', description: 'the same text as message' },
    retry_after: {
      type: 'integer',
      description: 'seconds (limits; also the Retry-After header in http mode)',
    },
    attempts_left: { type: 'integer', description: 'wrong SMS code guesses left' },
  },
});

/** A route's responses in the running mode: success, then its error ids grouped by status. */
function responses(doc: RouteDoc | undefined, validates: boolean, mode: 'http' | 'meiduo'): Json {
  const out: Json = {};
  const success: Json = doc?.okType
    ? { description: 'OK', content: { [doc.okType]: { schema: { type: 'string' } } } }
    : { description: 'OK', ...okEnvelope(doc?.ok as Json | undefined) };
  out['200'] = success;
  const ids = new Set<ErrorId>([...(doc?.errors ?? []), 'SERVICE_UNAVAILABLE']);
  if (validates) ids.add('BAD_REQUEST');
  const byStatus = new Map<number, ErrorId[]>();
  for (const id of ids) {
    const status = ERRORS[id][0];
    const answered = mode === 'meiduo' && MEIDUO_FOLDED.has(status) ? 200 : status;
    byStatus.set(answered, [...(byStatus.get(answered) ?? []), id]);
  }
  for (const [status, group] of [...byStatus].sort(([a], [b]) => a - b)) {
    const codes = [...new Set(group.map((id) => (status === 200 ? 400 : ERRORS[id][0])))];
    const text = `${status === 200 ? 'Folded error (code 400): ' : ''}${group.join(', ')}`;
    if (status === 200) {
      // meiduo mode: the success and the folded errors share HTTP 200; `code` tells them apart.
      const folded = errorEnvelope(group, codes);
      out['200'] = doc?.okType
        ? {
            description: `OK, or ${text}`,
            content: {
              [doc.okType]: { schema: { type: 'string' } },
              'application/json': { schema: folded },
            },
          }
        : { description: `OK, or ${text}`, oneOf: [okEnvelope(doc?.ok as Json | undefined), folded] };
      continue;
    }
    out[String(status)] = { description: text, ...errorEnvelope(group, codes) };
  }
  return out;
}

const STATIC_FILE = /(^\/$|\.[a-z0-9]+$)/i;

/** The route's documentation: its own schema.summary first, then the table. */
export function routeDoc(method: string, url: string): RouteDoc | undefined {
  return ROUTE_DOCS[`${method} ${url}`];
}

export interface OpenapiOptions {
  mode: 'http' | 'meiduo';
}

export const openapi = fp(
  async (app: FastifyInstance, opts: OpenapiOptions) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'meiduo-users',
          version: '0.1.0',
          description:
            'The Meiduo mall user module (docs/api.md). Every JSON answer is an envelope ' +
            '`{code, message, errmsg, …}`; errors add a stable `error` id. ERROR_STATUS_MODE=http ' +
            '(default): errors use their HTTP status. ERROR_STATUS_MODE=meiduo: 400, 401, 409, 413, ' +
            '414, 415 and 429 are answered as HTTP 200 with `code` 400, as the Django original did. ' +
            `This document describes the mode the service runs in: ${opts.mode}. Unsafe methods of the ` +
            'public API need the X-CSRFToken header (GET /csrf_token/); the admin API and /metrics ' +
            'take a bearer token instead.',
        },
        components: {
          schemas: {
            ErrorId: { type: 'string', enum: ALL_IDS },
            ErrorEnvelope: errorEnvelope(ALL_IDS, [...new Set(ALL_IDS.map((id) => ERRORS[id][0]))]),
          },
          securitySchemes: {
            adminBearer: {
              type: 'http',
              scheme: 'bearer',
              description: 'ADMIN_TOKEN or a token of ADMIN_TOKENS',
            },
            metricsBearer: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' },
          },
        },
      },
      exposeHeadRoutes: false,
      transform: ({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }) => {
        const method = Array.isArray(route.method) ? String(route.method[0]) : String(route.method);
        const doc = routeDoc(method, route.url);
        const own = (schema ?? {}) as Json;
        const validates = ['body', 'querystring', 'params', 'headers'].some((k) => own[k] !== undefined);
        const page = doc === undefined && own.summary === undefined && STATIC_FILE.test(route.url);
        const out: Json = {
          ...own,
          summary: own.summary ?? doc?.summary ?? (page ? `Page or asset ${route.url}` : undefined),
          tags: [
            route.url.startsWith('/admin/')
              ? 'admin'
              : page || route.url.startsWith('/docs')
                ? 'pages'
                : route.url === '/metrics' || /^\/(healthz|readyz)$/.test(route.url)
                  ? 'operations'
                  : 'api',
          ],
          response: page
            ? { '200': { description: 'OK', content: { '*/*': { schema: { type: 'string' } } } } }
            : responses(doc, validates, opts.mode),
        };
        if (own.body === undefined && doc?.body) out.body = doc.body;
        if (doc?.description && own.description === undefined) out.description = doc.description;
        if (route.url.startsWith('/admin/')) out.security = [{ adminBearer: [] }];
        if (route.url === '/metrics') out.security = [{ metricsBearer: [] }];
        if (out.summary === undefined) delete out.summary;
        return { schema: out as FastifySchema, url };
      },
    });

    app.get('/docs/openapi.json', async (_request, reply) =>
      reply.header('Cache-Control', 'no-cache').send(app.swagger()),
    );
    const page = (type: string, body: string) => async (_request: unknown, reply: FastifyReply) =>
      reply
        .header('Content-Security-Policy', DOCS_CSP)
        .header('Cache-Control', 'no-cache')
        .type(type)
        .send(body);
    app.get('/docs', page('text/html; charset=utf-8', DOCS_HTML));
    app.get('/docs/docs.js', page('text/javascript; charset=utf-8', DOCS_JS));
    app.get('/docs/docs.css', page('text/css; charset=utf-8', DOCS_CSS));
  },
  { name: 'openapi', dependencies: ['envelope'] },
);
