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
    expect(c.VERIFY_REDIS_URL).toBeUndefined();
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

  it('derives the Redis URLs and warns for unusual combinations', () => {
    const c = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      VERIFY_REDIS_URL: 'redis://127.0.0.1:6379/2',
    });
    expect(c.VERIFY_REDIS_URL).toBe('redis://127.0.0.1:6379/2');
    expect(c.SESSION_REDIS_URL).toBe('redis://127.0.0.1:6379/0');
    expect(c.QUEUE_REDIS_URL).toBe('redis://127.0.0.1:6379/0');
    expect(c.warnings.join('\n')).toMatch(/SQLite/);
    expect(c.warnings.join('\n')).toMatch(/console SMS provider/);
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
