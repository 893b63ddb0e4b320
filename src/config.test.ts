import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('gives the embedded default with nothing set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 8000,
      database: { kind: 'sqlite', path: 'data/meiduo.sqlite3' },
      SMS_PROVIDER: 'console',
      PASSWORD_HASHER: 'argon2',
      ERROR_STATUS_MODE: 'http',
      CSRF_ENABLED: true,
      RATE_LIMITS: 'on',
      SMS_RESEND_INTERVAL_SECONDS: 60,
      SMS_PER_IP_PER_HOUR: 20,
      testMode: false,
    });
    expect(c.redis).toEqual({ verify: undefined, session: undefined, queue: undefined });
    expect(c.warnings).toEqual([]);
  });

  it('converts and validates values, naming the bad setting in one line', () => {
    expect(loadConfig({ PORT: '9000', CSRF_ENABLED: 'false' })).toMatchObject({
      PORT: 9000,
      CSRF_ENABLED: false,
    });
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/^Invalid setting PORT: .*\(got "eighty"\)$/);
    expect(() => loadConfig({ ERROR_STATUS_MODE: 'django' })).toThrow(/^Invalid setting ERROR_STATUS_MODE/);
    expect(() => loadConfig({ SMS_PROVIDER: 'console,sendgrid' })).toThrow(/^Invalid setting SMS_PROVIDER/);
    expect(() => loadConfig({ REDIS_URL: 'localhost:6379' })).toThrow(/^Invalid setting REDIS_URL/);
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/^Invalid setting CORS_ORIGINS/);
    expect(() => loadConfig({ DATABASE_URL: 'oracle://x' })).toThrow(/^Invalid setting DATABASE_URL/);
    expect(() => loadConfig({ RUN_WORKER: 'false' })).toThrow(/^Invalid setting RUN_WORKER/);
  });

  it('reads DATABASE_URL once into the database it names', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite:/srv/users.db' }).database).toEqual({
      kind: 'sqlite',
      path: '/srv/users.db',
    });
    for (const url of ['postgres://u@db/meiduo', 'postgresql://u@db/meiduo']) {
      expect(loadConfig({ DATABASE_URL: url }).database).toEqual({ kind: 'postgres', url });
    }
    for (const url of ['mysql://root@db/meiduo', 'mariadb://root@db/meiduo']) {
      expect(loadConfig({ DATABASE_URL: url }).database).toEqual({ kind: 'mysql', url });
    }
    expect(loadConfig({ DATA_DIR: '/var/lib/meiduo' }).database).toEqual({
      kind: 'sqlite',
      path: '/var/lib/meiduo/meiduo.sqlite3',
    });
  });

  it('reads a Redis Sentinel URL for every Redis setting, and refuses a bad one in one line', () => {
    const c = loadConfig({
      REDIS_URL: 'redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2',
      QUEUE_REDIS_URL: 'redis+sentinel://app:pw@s1:5000/queue-master?sentinel_password=sp',
    });
    const verify = {
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
      db: 2,
      password: 's3cret',
    };
    expect(c.redis.verify).toMatchObject(verify);
    expect(c.redis.session).toEqual(c.redis.verify);
    expect(c.redis.queue).toMatchObject({
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 5000 }],
      name: 'queue-master',
      db: 0,
      username: 'app',
      password: 'pw',
      sentinelPassword: 'sp',
    });
    expect(c.warnings.join('\n')).toMatch(/REDIS_WAIT_REPLICAS=0/);
    expect(
      loadConfig({ REDIS_URL: 'redis+sentinel://h:1/m', REDIS_WAIT_REPLICAS: '1' }).warnings.join(),
    ).not.toMatch(/REDIS_WAIT_REPLICAS/);
    for (const [name, value] of [
      ['SESSION_REDIS_URL', 'redis+sentinel://h1:26379'],
      ['VERIFY_REDIS_URL', 'redis+sentinel://h1:99999/m'],
      ['REDIS_URL', 'redis+sentinel://h1/m?password=x'],
      ['QUEUE_REDIS_URL', 'sentinel://h1/m'],
    ]) {
      expect(() => loadConfig({ [name as string]: value })).toThrow(
        new RegExp(`^Invalid setting ${name}: [^\n]+$`),
      );
    }
  });

  it('checks the settings of the SMS vendors SMS_PROVIDER names, in one line like any other', () => {
    expect(() => loadConfig({ SMS_PROVIDER: 'console,aliyun' })).toThrow(
      /^Invalid setting ALIYUN_ACCESS_KEY_ID: required when SMS_PROVIDER includes aliyun$/,
    );
    const tencent = {
      TENCENT_SECRET_ID: 'AKIDexample',
      TENCENT_SECRET_KEY: 'secret',
      TENCENT_SMS_SDK_APP_ID: '1400006666',
      TENCENT_SMS_SIGN_NAME: '美多商城',
      TENCENT_SMS_TEMPLATE_ID: '449739',
    };
    expect(() =>
      loadConfig({ SMS_PROVIDER: 'tencent', ...tencent, TENCENT_SMS_REGION: 'Guangzhou' }),
    ).toThrow(/^Invalid setting TENCENT_SMS_REGION: must be a region like ap-guangzhou$/);
    expect(loadConfig({ SMS_PROVIDER: 'tencent', ...tencent }).sms).toEqual({
      tencent: {
        secretId: 'AKIDexample',
        secretKey: 'secret',
        sdkAppId: '1400006666',
        signName: '美多商城',
        templateId: '449739',
        templates: {},
        region: 'ap-guangzhou',
        endpoint: 'https://sms.tencentcloudapi.com',
      },
    });
    // Settings of vendors not named are not required.
    expect(loadConfig({ TWILIO_FROM: '15005550006' }).sms).toEqual({});
  });

  it('reads the per-purpose SMS templates; each one missing is a start-up warning, not an error', () => {
    const ronglian = {
      SMS_PROVIDER: 'ronglian',
      RONGLIAN_ACCOUNT_SID: 'a'.repeat(32),
      RONGLIAN_AUTH_TOKEN: 'token',
      RONGLIAN_APP_ID: 'b'.repeat(32),
    };
    const only = loadConfig(ronglian);
    expect(only.sms.ronglian?.templates).toEqual({});
    expect(only.warnings).toEqual([
      'no SMS template for password_reset (docs/sms-vendors.md): POST /password_reset/sms_codes/ answers 503 SMS_PURPOSE_NOT_CONFIGURED',
      'no SMS template for mobile_change (docs/sms-vendors.md): POST /mobile/sms_codes/ answers 503 SMS_PURPOSE_NOT_CONFIGURED',
      'no SMS template for mobile_changed (docs/sms-vendors.md): POST /mobile/sms_codes/ answers 503 SMS_PURPOSE_NOT_CONFIGURED',
    ]);
    const full = loadConfig({
      ...ronglian,
      RONGLIAN_TEMPLATE_ID_PASSWORD_RESET: '2001',
      RONGLIAN_TEMPLATE_ID_MOBILE_CHANGE: '2002',
      RONGLIAN_TEMPLATE_ID_MOBILE_CHANGED: '2003',
    });
    expect(full.sms.ronglian?.templates).toEqual({
      password_reset: '2001',
      mobile_change: '2002',
      mobile_changed: '2003',
    });
    expect(full.warnings).toEqual([]);
    expect(() => loadConfig({ ...ronglian, RONGLIAN_TEMPLATE_ID_MOBILE_CHANGED: 'SMS_1' })).toThrow(
      /^Invalid setting RONGLIAN_TEMPLATE_ID_MOBILE_CHANGED: must be a number/,
    );
    // A chain sends a purpose when any vendor has its template (Twilio writes its own texts).
    const chain = loadConfig({
      ...ronglian,
      SMS_PROVIDER: 'ronglian,twilio',
      TWILIO_ACCOUNT_SID: `AC${'a'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 't',
      TWILIO_FROM: '+15005550006',
    });
    expect(chain.warnings).toEqual([]);
    // The embedded default (console) prints every purpose.
    expect(loadConfig({}).warnings).toEqual([]);
  });

  it('derives the Redis URLs and warns for unusual combinations', () => {
    const c = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      VERIFY_REDIS_URL: 'redis://127.0.0.1:6379/2',
    });
    expect(c.redis).toEqual({
      verify: { kind: 'standalone', url: 'redis://127.0.0.1:6379/2' },
      session: { kind: 'standalone', url: 'redis://127.0.0.1:6379/0' },
      queue: { kind: 'standalone', url: 'redis://127.0.0.1:6379/0' },
    });
    expect(c.warnings.join('\n')).toMatch(/SQLite/);
    expect(c.warnings.join('\n')).toMatch(/console SMS provider/);
  });

  it('reads admin tokens (a fingerprint names ADMIN_TOKEN) and refuses short or doubled ones without echoing them', () => {
    const single = 'x'.repeat(32);
    expect(loadConfig({}).adminTokens).toEqual([]);
    const c = loadConfig({
      ADMIN_TOKEN: single,
      ADMIN_TOKENS: `alice:${'a'.repeat(32)},ci:${'c'.repeat(40)}`,
    });
    expect(c.adminTokens.map((t) => t.id)).toEqual([
      expect.stringMatching(/^token-[0-9a-f]{12}$/),
      'alice',
      'ci',
    ]);
    expect(c.adminTokens[0]?.id).not.toContain(single.slice(0, 12));
    expect(() => loadConfig({ ADMIN_TOKEN: 'short-token' })).toThrow(/^Invalid setting ADMIN_TOKEN: [^\n]*$/);
    expect(() => loadConfig({ ADMIN_TOKEN: 'short-token' })).not.toThrow(/short-token/);
    expect(() => loadConfig({ ADMIN_TOKENS: `alice:${'a'.repeat(31)}` })).toThrow(/ADMIN_TOKENS/);
    expect(() => loadConfig({ ADMIN_TOKENS: `a:${'a'.repeat(32)},a:${'b'.repeat(32)}` })).toThrow(
      'Invalid setting ADMIN_TOKENS: a name is listed twice',
    );
    expect(() => loadConfig({ ADMIN_TOKENS: `a:${'a'.repeat(32)},b:${'a'.repeat(32)}` })).toThrow(
      'Invalid setting ADMIN_TOKENS: two names share one token',
    );
  });

  it('parses test mode only with ALLOW_TEST_MODE', () => {
    expect(() => loadConfig({ TEST_SMS_NUMBERS: '13800000000:123456' })).toThrow(/ALLOW_TEST_MODE/);
    const c = loadConfig({
      ALLOW_TEST_MODE: 'true',
      TEST_SMS_NUMBERS: '13800000000:123456,13900000000:654321',
    });
    expect(c.testMode).toBe(true);
    expect(c.testSmsNumbers.get('13900000000')).toBe('654321');
    expect(c.warnings.join('\n')).toMatch(/TEST MODE/);
    expect(() => loadConfig({ ALLOW_TEST_MODE: 'true', TEST_SMS_NUMBERS: '138:1' })).toThrow(
      /TEST_SMS_NUMBERS/,
    );
  });
});
