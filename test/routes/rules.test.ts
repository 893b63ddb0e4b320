/**
 * Rules that need time travel or other settings: the resend block's expiry, the §4 limits,
 * test mode, the Meiduo error mode, CSRF, the HTTP edges. Embedded default (fake clock).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sendFlagKey, smsCodeKey } from '../../src/domain/verification.js';
import { buildTestApp, imageCode, randomMobile, smsCode, type TestApp } from '../helper.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function app(env: Record<string, string> = {}) {
  t = await buildTestApp(env);
  return t;
}

async function askSms(t: TestApp, client: ReturnType<TestApp['client']>, mobile: string) {
  const { uuid, answer } = await imageCode(t, client);
  return client.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
}

describe('resend block', () => {
  it('lifts after SMS_RESEND_INTERVAL_SECONDS and the new code replaces the old', async () => {
    const t = await app({ SMS_RESEND_INTERVAL_SECONDS: '5' });
    const c = t.client();
    const mobile = randomMobile();
    const first = await smsCode(t, c, mobile);
    const blocked = await askSms(t, c, mobile);
    expect(blocked.json()).toMatchObject({ error: 'SMS_TOO_FREQUENT', retry_after: 5 });
    t.clock.advance(3000);
    expect((await askSms(t, c, mobile)).json().retry_after).toBe(2);
    t.clock.advance(2000);
    const second = await smsCode(t, c, mobile);
    expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBe(second);
    expect(t.sent.filter((m) => m.mobile === mobile).map((m) => m.code)).toEqual([first, second]);
  });

  it('the code expires after SMS_CODE_TTL_SECONDS and the worker then sends nothing', async () => {
    const t = await app({ SMS_CODE_TTL_SECONDS: '60' });
    const c = t.client();
    const mobile = randomMobile();
    await smsCode(t, c, mobile);
    t.clock.advance(60_000);
    expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();
  });
});

describe('abuse limits', () => {
  it('limits image codes per IP per minute, counting each IP (IPv6 by /64) apart', async () => {
    const t = await app({ IMAGE_CODES_PER_IP_PER_MINUTE: '3' });
    const a = t.client({ ip: '2001:db8:1:2:aaaa::1' });
    const sameNet = t.client({ ip: '2001:db8:1:2:bbbb::2' });
    const other = t.client({ ip: '203.0.113.9' });
    for (let i = 0; i < 3; i++) expect((await a.get(`/image_codes/u${i}/`)).statusCode).toBe(200);
    const refused = await sameNet.get('/image_codes/u9/');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'IMAGE_CODE_LIMIT', message: '图形验证码请求过于频繁' });
    expect(refused.json().retry_after).toBeGreaterThan(0);
    expect(refused.json().retry_after).toBeLessThanOrEqual(60);
    expect(refused.headers['retry-after']).toBe(String(refused.json().retry_after));
    expect((await other.get('/image_codes/u10/')).statusCode).toBe(200);
    t.clock.advance(60_000);
    expect((await a.get('/image_codes/u11/')).statusCode).toBe(200);
  });

  it('ignores X-Forwarded-For without TRUST_PROXY: a spoofed address does not escape a per-IP limit', async () => {
    const t = await app({ IMAGE_CODES_PER_IP_PER_MINUTE: '2' });
    const c = t.client({ ip: '203.0.113.20' });
    const spoofed = (i: number) =>
      c.get(`/image_codes/x${i}/`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
    expect((await spoofed(1)).statusCode).toBe(200);
    expect((await spoofed(2)).statusCode).toBe(200);
    expect((await spoofed(3)).json().error).toBe('IMAGE_CODE_LIMIT');
  });

  it('limits SMS per IP per hour and counts only sends that went out', async () => {
    const t = await app({ SMS_PER_IP_PER_HOUR: '2' });
    const c = t.client({ ip: '198.51.100.7' });
    const wrong = await c.get(`/sms_codes/${randomMobile()}/?image_code=ZZZZ&image_code_id=nope`);
    expect(wrong.json().error).toBe('IMAGE_CODE_EXPIRED');
    await smsCode(t, c, randomMobile());
    await smsCode(t, c, randomMobile());
    const refused = await askSms(t, c, randomMobile());
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'SMS_IP_LIMIT', message: '短信发送过于频繁，请稍后再试' });
    expect((await askSms(t, t.client({ ip: '198.51.100.8' }), randomMobile())).statusCode).toBe(200);
    t.clock.advance(3600_000);
    expect((await askSms(t, c, randomMobile())).statusCode).toBe(200);
  });

  it('limits SMS per mobile per China calendar day', async () => {
    const t = await app({ SMS_PER_MOBILE_PER_DAY: '2', SMS_RESEND_INTERVAL_SECONDS: '1' });
    const mobile = randomMobile();
    for (let i = 0; i < 2; i++) {
      expect((await askSms(t, t.client({ ip: `10.0.0.${i}` }), mobile)).statusCode).toBe(200);
      t.clock.advance(1000);
    }
    const refused = await askSms(t, t.client({ ip: '10.0.0.9' }), mobile);
    expect(refused.json()).toMatchObject({ error: 'SMS_DAILY_LIMIT', message: '今日短信发送次数已达上限' });
    // The day ends at midnight UTC+8: retry_after points there.
    const midnight = new Date(t.clock.nowMs() + 8 * 3600_000);
    midnight.setUTCHours(24, 0, 0, 0);
    const untilMidnight = Math.ceil((midnight.getTime() - 8 * 3600_000 - t.clock.nowMs()) / 1000);
    expect(refused.json().retry_after).toBe(untilMidnight);
    t.clock.advance(untilMidnight * 1000);
    expect((await askSms(t, t.client({ ip: '10.0.0.10' }), mobile)).statusCode).toBe(200);
  });

  it('stops all sends when the global hourly budget is spent', async () => {
    const t = await app({ SMS_GLOBAL_PER_HOUR: '2' });
    await smsCode(t, t.client({ ip: '10.1.0.1' }), randomMobile());
    await smsCode(t, t.client({ ip: '10.1.0.2' }), randomMobile());
    const refused = await askSms(t, t.client({ ip: '10.1.0.3' }), randomMobile());
    expect(refused.json()).toMatchObject({
      error: 'SMS_BUDGET_EXHAUSTED',
      message: '短信服务繁忙，请稍后再试',
    });
  });

  it('RATE_LIMITS=off lifts every per-IP, daily and global limit but not the resend block', async () => {
    const t = await app({
      RATE_LIMITS: 'off',
      SMS_PER_IP_PER_HOUR: '1',
      SMS_GLOBAL_PER_HOUR: '1',
      IMAGE_CODES_PER_IP_PER_MINUTE: '1',
    });
    const c = t.client();
    for (let i = 0; i < 3; i++) expect((await askSms(t, c, randomMobile())).statusCode).toBe(200);
    const mobile = randomMobile();
    await smsCode(t, c, mobile);
    expect((await askSms(t, c, mobile)).json().error).toBe('SMS_TOO_FREQUENT');
    expect(t.config.warnings.join('\n')).toContain('RATE_LIMITS=off');
  });
});

describe('test mode', () => {
  it('accepts the test captcha answer and uses the fixed code of a test number without sending', async () => {
    const t = await app({
      ALLOW_TEST_MODE: 'true',
      TEST_CAPTCHA_ANSWER: 'TEST',
      TEST_SMS_NUMBERS: '13800000000:123456',
      SMS_PER_MOBILE_PER_DAY: '1',
    });
    const c = t.client();
    const { uuid } = await imageCode(t, c);
    const res = await c.get(`/sms_codes/13800000000/?image_code=test&image_code_id=${uuid}`);
    expect(res.statusCode).toBe(200);
    expect(await t.deps.codeStore.get(smsCodeKey('13800000000'))).toBe('123456');
    // still one use
    const again = await c.get(`/sms_codes/13800000001/?image_code=TEST&image_code_id=${uuid}`);
    expect(again.json().error).toBe('IMAGE_CODE_EXPIRED');
    // no daily quota for test numbers, but the resend interval holds
    t.clock.advance(60_000);
    expect((await askSms(t, c, '13800000000')).statusCode).toBe(200);
    expect((await askSms(t, c, '13800000000')).json().error).toBe('SMS_TOO_FREQUENT');
    expect((await c.get('/readyz')).json().test_mode).toBe(true);
    await t.deps.queue.close();
    expect(t.sent.filter((m) => m.mobile === '13800000000')).toHaveLength(0);
  });

  it('is refused without ALLOW_TEST_MODE', async () => {
    await expect(buildTestApp({ TEST_CAPTCHA_ANSWER: 'TEST' })).rejects.toThrow(
      'Invalid setting TEST_CAPTCHA_ANSWER: test mode needs ALLOW_TEST_MODE=true',
    );
  });

  it('is off by default and /readyz says so', async () => {
    const t = await app();
    const res = await t.client().get('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ code: 0, test_mode: false });
  });
});

describe('a failing queue', () => {
  it('answers 503 and undoes the flag and the code', async () => {
    const t = await app();
    t.deps.queue.enqueue = async () => {
      throw new Error('queue down');
    };
    const c = t.client();
    const mobile = randomMobile();
    const res = await askSms(t, c, mobile);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      code: 503,
      error: 'SERVICE_UNAVAILABLE',
      message: '服务繁忙，请稍后再试',
    });
    expect(await t.deps.codeStore.get(sendFlagKey(mobile))).toBeNull();
    expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();
  });
});

describe('ERROR_STATUS_MODE=meiduo', () => {
  it('sends client errors as HTTP 200 with code 400, keeps 403/404/405/503', async () => {
    const t = await app({ ERROR_STATUS_MODE: 'meiduo' });
    const c = t.client();
    const bad = await c.get('/sms_codes/123/?image_code=a&image_code_id=b');
    expect(bad.statusCode).toBe(200);
    expect(bad.json()).toMatchObject({
      code: 400,
      error: 'MOBILE_INVALID',
      message: '手机号格式有误',
      errmsg: '手机号格式有误',
    });
    const mobile = randomMobile();
    await smsCode(t, c, mobile);
    const limited = await askSms(t, c, mobile);
    expect(limited.statusCode).toBe(200);
    expect(limited.json()).toMatchObject({ code: 400, error: 'SMS_TOO_FREQUENT' });
    expect(limited.json().retry_after).toBeGreaterThan(0);
    expect(limited.headers['retry-after']).toBeUndefined();
    const csrf = await c.post('/login/', { username: 'x', password: 'y' });
    expect(csrf.statusCode).toBe(403);
    expect(csrf.json().code).toBe(403);
    expect((await c.get('/nope/')).statusCode).toBe(404);
    expect((await c.post('/image_codes/abc/')).statusCode).toBe(405);
  });
});

describe('CSRF', () => {
  it('refuses unsafe requests without a token, with a wrong one, or from a foreign origin', async () => {
    const t = await app({ CSRF_TRUSTED_ORIGINS: 'http://www.meiduo.site:8080' });
    const c = t.client();
    const none = await c.post('/login/', { username: 'someone', password: 'x' });
    expect(none.statusCode).toBe(403);
    expect(none.json()).toMatchObject({
      code: 403,
      error: 'CSRF_FAILED',
      message: 'CSRF验证失败，请刷新页面后重试',
    });
    await c.fetchCsrf();
    const wrong = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { 'x-csrftoken': 'a'.repeat(64) } },
    );
    expect(wrong.json().error).toBe('CSRF_FAILED');
    const foreign = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { origin: 'http://evil.example' } },
    );
    expect(foreign.json().error).toBe('CSRF_FAILED');
    // masked token, the plain secret, a trusted origin and the own origin all pass the check
    expect((await c.post('/login/', { username: 'someone', password: 'x' })).json().error).toBe(
      'LOGIN_FAILED',
    );
    const secret = c.cookies.get('csrftoken') as string;
    const plain = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { 'x-csrftoken': secret } },
    );
    expect(plain.json().error).toBe('LOGIN_FAILED');
    const trusted = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { origin: 'http://www.meiduo.site:8080' } },
    );
    expect(trusted.json().error).toBe('LOGIN_FAILED');
    const own = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { origin: 'http://meiduo.test', host: 'meiduo.test' } },
    );
    expect(own.json().error).toBe('LOGIN_FAILED');
    const otherPort = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { origin: 'http://meiduo.test:8080', host: 'meiduo.test' } },
    );
    expect(otherPort.json().error).toBe('CSRF_FAILED');
  });

  it('refuses Origin null and a token of another session (issue 14: keep what held tested)', async () => {
    const t = await app();
    const c = t.client();
    await c.fetchCsrf();
    const nullOrigin = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { origin: 'null' } },
    );
    expect(nullOrigin.json().error).toBe('CSRF_FAILED');
    // the token of another browser's cookie does not unmask to this browser's secret
    const other = t.client();
    const othersToken = await other.fetchCsrf();
    const crossed = await c.post(
      '/login/',
      { username: 'someone', password: 'x' },
      { headers: { 'x-csrftoken': othersToken } },
    );
    expect(crossed.json().error).toBe('CSRF_FAILED');
  });

  it('CSRF_ENABLED=false switches the check off', async () => {
    const t = await app({ CSRF_ENABLED: 'false' });
    const res = await t.client().post('/login/', { username: 'someone', password: 'x' });
    expect(res.json().error).toBe('LOGIN_FAILED');
  });
});

describe('HTTP edges', () => {
  it('answers JSON for unknown paths and methods, large and malformed bodies', async () => {
    const t = await app({ CSRF_ENABLED: 'false' });
    const c = t.client();
    const missing = await c.get('/no/such/path/');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 404, error: 'NOT_FOUND', message: '请求的资源不存在' });
    const method = await c.request('PUT', '/register/');
    expect(method.statusCode).toBe(405);
    expect(method.json()).toMatchObject({ error: 'METHOD_NOT_ALLOWED', message: '请求方法不被允许' });
    expect(method.headers.allow).toContain('POST');
    const big = await c.request('POST', '/register/', {
      raw: JSON.stringify({ username: 'x'.repeat(17_000) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: 'PAYLOAD_TOO_LARGE', message: '请求数据过大' });
    const form = await c.request('POST', '/register/', {
      raw: 'a=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.statusCode).toBe(415);
    expect(form.json().error).toBe('UNSUPPORTED_MEDIA_TYPE');
    const broken = await c.request('POST', '/register/', {
      raw: '{"username":',
      headers: { 'content-type': 'application/json' },
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().error).toBe('BAD_JSON');
    const empty = await c.request('POST', '/register/', {
      raw: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.json().error).toBe('BAD_JSON');
    const proto = await c.request('POST', '/register/', {
      raw: '{"__proto__":{"x":1}}',
      headers: { 'content-type': 'application/json' },
    });
    expect(proto.statusCode).toBe(400);
    expect(proto.json().error).toBe('BAD_JSON');
  });

  it('carries a request id and security headers', async () => {
    const t = await app();
    const res = await t.client().get('/healthz', { headers: { 'x-request-id': 'abc-123' } });
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const fresh = await t.client().get('/healthz', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('allows CORS with credentials for listed origins only', async () => {
    const t = await app({ CORS_ORIGINS: 'http://www.meiduo.site:8080' });
    const c = t.client();
    const pre = await c.request('OPTIONS', '/register/', {
      headers: {
        origin: 'http://www.meiduo.site:8080',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-csrftoken',
      },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('http://www.meiduo.site:8080');
    expect(pre.headers['access-control-allow-credentials']).toBe('true');
    expect(String(pre.headers['access-control-allow-headers'])).toContain('x-csrftoken');
    const other = await c.get('/csrf_token/', { headers: { origin: 'http://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});
