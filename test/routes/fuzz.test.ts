/**
 * Whatever a client sends, the answer is JSON (or the captcha image) and never a 5xx:
 * random paths, query strings, headers and bodies against the real app.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type Client, randomMobile, registration, smsCode, type TestApp } from '../helper.js';

let t: TestApp;
/** A logged-in browser, so that the user-centre routes get past their session check. */
let user: Client;
beforeAll(async () => {
  // The user centre's per-user limits off: the fuzzer should reach the checks behind them.
  t = await buildTestApp({
    CSRF_ENABLED: 'false',
    USER_ACTIONS_PER_IP_PER_MINUTE: '0',
    USER_ACTIONS_PER_USER_PER_MINUTE: '0',
    EMAIL_SENDS_PER_USER_PER_HOUR: '0',
    // The admin API and /metrics exist (their tokens are set) but no request here has them.
    ADMIN_TOKEN: 'f'.repeat(40),
    METRICS_TOKEN: 'g'.repeat(40),
  });
  user = t.client();
  const mobile = randomMobile();
  const res = await user.post('/register/', registration(mobile, await smsCode(t, user, mobile)));
  if (res.statusCode !== 200) throw new Error(res.body);
});
afterAll(() => t.close());

const segment = fc.oneof(
  fc.constantFrom(
    'image_codes',
    'sms_codes',
    'usernames',
    'mobiles',
    'count',
    'register',
    'login',
    'logout',
    'info',
    'csrf_token',
    'readyz',
    'docs',
    'openapi.json',
    'admin',
    'queue',
    'failed',
    'audit',
    'metrics',
    'emails',
    'verification',
    'password',
    'password_reset',
    'mobile',
    'sessions',
    '..',
    '%2e%2e',
    '%00',
    '',
  ),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.stringMatching(/^1[3-9]\d{9}$/),
);
const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const query = fc.dictionary(
  fc.constantFrom('image_code', 'image_code_id', 'token', 'x', 'image_code[]', '__proto__'),
  fc.string({ maxLength: 70 }),
  { maxKeys: 3 },
);
const method = fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS') as fc.Arbitrary<
  'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'HEAD' | 'OPTIONS'
>;
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const body = fc.oneof(
  jsonValue.map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        username: jsonValue,
        password: jsonValue,
        password2: jsonValue,
        mobile: jsonValue,
        sms_code: jsonValue,
        allow: jsonValue,
        remembered: jsonValue,
        email: jsonValue,
        old_password: jsonValue,
        new_password: jsonValue,
        new_password2: jsonValue,
        account: jsonValue,
        image_code: jsonValue,
        image_code_id: jsonValue,
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  '',
);

function assertSane(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  method: string,
) {
  expect(res.statusCode).toBeLessThan(500);
  const type = String(res.headers['content-type'] ?? '');
  if (method === 'HEAD' || res.statusCode === 204) return;
  // The built pages are the only non-JSON text, and only as a successful GET of a page or asset.
  if (
    res.statusCode === 200 &&
    method === 'GET' &&
    /^(text\/(html|css|javascript)|application\/javascript)/.test(type)
  )
    return;
  expect(type).toMatch(/^(application\/json|image\/(png|jpeg))/);
  expect(res.body.toLowerCase()).not.toContain('<html');
  if (type.startsWith('application/json')) {
    const json = JSON.parse(res.body);
    // The one JSON answer outside the envelope: the OpenAPI document.
    if (res.statusCode === 200 && typeof json.openapi === 'string') return;
    expect(typeof json.code).toBe('number');
    expect(json.message).toBe(json.errmsg);
  }
}

describe('fuzzing the HTTP surface', () => {
  it('answers every random request with JSON and no 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(method, path, query, body, contentType, async (m, p, q, b, ct) => {
        const search = new URLSearchParams(q).toString();
        const res = await t.app.inject({
          method: m,
          url: `${p}/${search ? `?${search}` : ''}`,
          headers: ct ? { 'content-type': ct } : {},
          payload: m === 'GET' || m === 'HEAD' ? undefined : b,
        });
        assertSane(res, m);
      }),
      { numRuns: 300 },
    );
    // nothing a client sent made the service log a stack trace
    expect(t.logs.filter((line) => line.includes('"stack"'))).toEqual([]);
  });

  it('survives random headers, cookies and proxies on every route', async () => {
    const header = fc.dictionary(
      fc.constantFrom('cookie', 'x-csrftoken', 'origin', 'x-forwarded-for', 'x-request-id', 'accept', 'host'),
      fc.string({ maxLength: 80 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      { maxKeys: 5 },
    );
    const route = fc.constantFrom(
      ['GET', '/csrf_token/'],
      ['GET', '/image_codes/abc/'],
      ['GET', '/sms_codes/13155667788/?image_code=AAAA&image_code_id=abc'],
      ['GET', '/usernames/someone1/count/'],
      ['GET', '/info/'],
      ['POST', '/login/'],
      ['POST', '/register/'],
      ['DELETE', '/logout/'],
      ['GET', '/readyz'],
      ['GET', '/docs'],
      ['GET', '/docs/openapi.json'],
      ['GET', '/admin/queue/'],
      ['DELETE', '/admin/queue/failed/abc/'],
      ['GET', '/metrics'],
      ['PUT', '/emails/'],
      ['PUT', '/emails/verification/?token=abc'],
      ['PUT', '/password/'],
      ['POST', '/password_reset/sms_codes/'],
      ['POST', '/password_reset/'],
      ['POST', '/mobile/sms_codes/'],
      ['PUT', '/mobile/'],
      ['GET', '/sessions/'],
      ['DELETE', '/sessions/'],
      ['DELETE', '/sessions/AAAAAAAAAAAAAAAAAAAAAA/'],
    ) as fc.Arbitrary<['GET' | 'POST' | 'DELETE' | 'PUT', string]>;
    await fc.assert(
      fc.asyncProperty(route, header, body, async ([m, url], h, b) => {
        const headers = Object.fromEntries(
          Object.entries(h).filter(([k, v]) => k !== 'host' || v.length > 0),
        );
        const res = await t.app.inject({
          method: m,
          url,
          headers: m === 'GET' ? headers : { ...headers, 'content-type': 'application/json' },
          payload: m === 'GET' ? undefined : b,
        });
        assertSane(res, m);
      }),
      { numRuns: 200 },
    );
  });

  it('answers the user centre of a logged-in user with JSON and no 5xx, whatever the body', async () => {
    const route = fc.constantFrom(
      ['PUT', '/emails/'],
      ['PUT', '/password/'],
      ['POST', '/mobile/sms_codes/'],
      ['PUT', '/mobile/'],
      ['POST', '/password_reset/sms_codes/'],
      ['POST', '/password_reset/'],
      ['GET', '/sessions/'],
      ['DELETE', '/sessions/AAAAAAAAAAAAAAAAAAAAAA/'],
    ) as fc.Arbitrary<['GET' | 'POST' | 'DELETE' | 'PUT', string]>;
    await fc.assert(
      fc.asyncProperty(route, body, contentType, async ([m, url], b, ct) => {
        const res = await user.request(m, url, {
          raw: m === 'GET' ? undefined : b,
          headers: ct ? { 'content-type': ct } : {},
        });
        assertSane(res, m);
      }),
      { numRuns: 200 },
    );
    // Still logged in: no random body changed the password or ended this session.
    expect((await user.get('/info/')).statusCode).toBe(200);
  });
});
