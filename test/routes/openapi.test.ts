/**
 * The OpenAPI document describes every route the app registers — whoever added it — with a
 * summary and its answers; every example in it validates against its schema; real answers
 * validate against the documented ones in both error-status modes; the /docs page is served
 * from this origin under a strict CSP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as appPlugin } from '../../src/app.js';
import { createFastify } from '../../src/build.js';
import { loadConfig } from '../../src/config.js';
import { createDeps, type Deps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { logSink } from '../log-sink.js';

const TOKEN = `${'o'.repeat(20)}-openapi-token-0123456789`;

interface Built {
  app: FastifyInstance;
  deps: Deps;
  /** Every route Fastify registered, as onRoute saw it. */
  routes: Array<{ method: string; url: string }>;
  close(): Promise<void>;
}

/** The real app, as buildServer makes it, with an onRoute hook added before any plugin. */
async function build(env: Record<string, string>): Promise<Built> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-openapi-'));
  const config = loadConfig({ DATA_DIR: dataDir, ADMIN_TOKEN: TOKEN, METRICS_TOKEN: TOKEN, ...env });
  const log = createLogger(config, logSink().stream);
  const deps = await createDeps(config, log, { migrate: true });
  const app = createFastify(config, log);
  const routes: Built['routes'] = [];
  app.addHook('onRoute', (route) => {
    // The built pages (web/dist, after npm start or npm run build) are files, not API: their
    // routes are hidden from the document by @fastify/static and left out here too.
    if ((route.schema as { hide?: boolean } | undefined)?.hide) return;
    for (const method of [route.method].flat()) routes.push({ method: String(method), url: route.url });
  });
  await app.register(appPlugin, { config, deps });
  await app.ready();
  return {
    app,
    deps,
    routes,
    async close() {
      await app.close();
      await deps.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Json = Record<string, unknown>;

const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Every schema node carrying `examples`, with where it is. */
function examplesIn(node: unknown, where: string, found: Array<{ where: string; schema: Json }>) {
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) examplesIn(n, `${where}[${i}]`, found);
    return found;
  }
  if (node === null || typeof node !== 'object') return found;
  const obj = node as Json;
  if (Array.isArray(obj.examples) && ('type' in obj || 'anyOf' in obj || 'properties' in obj)) {
    found.push({ where, schema: obj });
  }
  for (const [key, value] of Object.entries(obj)) examplesIn(value, `${where}/${key}`, found);
  return found;
}

const ajv = new Ajv({ strict: false, allErrors: true });

describe.each(['http', 'meiduo'] as const)('OpenAPI document (%s status mode)', (mode) => {
  let b: Built;
  let doc: Json;
  beforeAll(async () => {
    b = await build({ ERROR_STATUS_MODE: mode });
    const res = await b.app.inject({ method: 'GET', url: '/docs/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(() => b.close());

  const operation = (method: string, url: string): Json | undefined => {
    const paths = doc.paths as Record<string, Record<string, Json>>;
    return paths[openapiPath(url)]?.[method.toLowerCase()];
  };

  it('describes every registered route with a summary and its answers', () => {
    expect(doc.openapi).toBe('3.1.0');
    const described = b.routes.filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
    // The admin API, /metrics and the docs themselves are among them (tokens are set).
    for (const known of ['GET /admin/queue/', 'GET /admin/audit/', 'GET /metrics', 'POST /register/']) {
      expect(described.map((r) => `${r.method} ${r.url}`)).toContain(known);
    }
    const missing = described
      .filter((r) => {
        const op = operation(r.method, r.url);
        return !op || typeof op.summary !== 'string' || op.summary === '' || !(op.responses as Json)?.['200'];
      })
      .map((r) => `${r.method} ${r.url}`);
    expect(missing, 'routes without a summary (src/routes/docs.ts or schema.summary)').toEqual([]);
  });

  it('lists the error ids each route answers with, under the statuses of this mode', () => {
    const sms = operation('GET', '/sms_codes/:mobile/') as Json;
    const responses = sms.responses as Record<string, Json>;
    const idsOf = (r: Json | undefined): string[] => {
      const content = (r?.content as Json | undefined)?.['application/json'] as Json | undefined;
      const schema = content?.schema as Json | undefined;
      const variants = (schema?.oneOf as Json[] | undefined) ?? (schema ? [schema] : []);
      return variants.flatMap(
        (v) => (((v.properties as Json | undefined)?.error as Json | undefined)?.enum as string[]) ?? [],
      );
    };
    if (mode === 'http') {
      expect(idsOf(responses['429'])).toEqual(
        expect.arrayContaining(['SMS_TOO_FREQUENT', 'SMS_IP_LIMIT', 'SMS_BLOCKED']),
      );
      expect(idsOf(responses['400'])).toEqual(expect.arrayContaining(['MOBILE_INVALID', 'IMAGE_CODE_WRONG']));
      expect(idsOf(responses['200'])).toEqual([]);
    } else {
      expect(responses['429']).toBeUndefined();
      expect(idsOf(responses['200'])).toEqual(expect.arrayContaining(['SMS_TOO_FREQUENT', 'MOBILE_INVALID']));
    }
    expect(idsOf(responses['503'])).toEqual(['SERVICE_UNAVAILABLE']);
    const admin = operation('GET', '/admin/queue/') as Json;
    expect(admin.security).toEqual([{ adminBearer: [] }]);
    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    expect(schemas.ErrorId?.enum).toEqual(expect.arrayContaining(['ADMIN_UNAUTHORIZED', 'SMS_BLOCKED']));
  });

  it('has examples, and every example validates against its schema', () => {
    const found = examplesIn(doc, '#', []);
    expect(found.length).toBeGreaterThanOrEqual(10);
    for (const { where, schema } of found) {
      const { examples, ...rest } = schema;
      const check = ajv.compile(rest);
      for (const example of examples as unknown[]) {
        expect(check(example), `${where}: ${JSON.stringify(example)} ${ajv.errorsText(check.errors)}`).toBe(
          true,
        );
      }
    }
    // The check can fail: a wrong body does not pass the register body's schema.
    const register = operation('POST', '/register/') as Json;
    const body = ((register.requestBody as Json).content as Json)['application/json'] as Json;
    const { examples: _, ...registerSchema } = body.schema as Json;
    expect(ajv.validate(registerSchema, { username: 5 })).toBe(false);
  });

  it('documents the answers the service really gives', async () => {
    const answers: Array<[string, string, Record<string, string>?]> = [
      ['GET', '/csrf_token/'],
      ['GET', '/image_codes/bad!uuid/'],
      ['GET', '/sms_codes/12/?image_code=x&image_code_id=y'],
      ['GET', '/usernames/someone_here/count/'],
      ['GET', '/info/'],
      ['GET', '/admin/queue/'],
      ['GET', '/admin/queue/', { authorization: `Bearer ${TOKEN}` }],
      ['GET', '/admin/audit/?limit=0', { authorization: `Bearer ${TOKEN}` }],
      ['GET', '/readyz'],
    ];
    for (const [method, url, headers] of answers) {
      const res = await b.app.inject({ method: method as 'GET', url, headers: headers ?? {} });
      const route = b.routes.find(
        (r) =>
          r.method === method &&
          new RegExp(`^${r.url.replace(/:[^/]+/g, '[^/]+')}$`).test(url.split('?')[0] as string),
      );
      expect(route, url).toBeDefined();
      const op = operation(method, (route as { url: string }).url) as Json;
      const documented = (op.responses as Record<string, Json>)[String(res.statusCode)];
      expect(documented, `${url} answered ${res.statusCode}`).toBeDefined();
      const content = (documented?.content ?? {}) as Record<string, Json>;
      const schema = content['application/json']?.schema as Json;
      expect(ajv.validate(schema, res.json()), `${url}: ${res.body} ${ajv.errorsText()}`).toBe(true);
    }
  });

  it('serves /docs from this origin only, under a strict CSP', async () => {
    const page = await b.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('<script src="/docs/docs.js"');
    expect(page.body).not.toMatch(/<script>|<style>| on[a-z]+=|https?:\/\//);
    const script = await b.app.inject({ method: 'GET', url: '/docs/docs.js' });
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    expect(script.body).toContain("fetch('/docs/openapi.json'");
    expect(script.body).not.toContain('innerHTML');
    const css = await b.app.inject({ method: 'GET', url: '/docs/docs.css' });
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });
});
