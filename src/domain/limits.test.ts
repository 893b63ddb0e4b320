import { describe, expect, it } from 'vitest';
import { chinaDayWindow, fixedWindow } from './limits.js';

describe('limit windows', () => {
  it('aligns fixed windows to the clock and reports the rest as ttl', () => {
    const start = Date.UTC(2026, 10, 27, 10, 0, 0);
    const a = fixedWindow('sms-ip', '1.2.3.4', 3600, start + 1000);
    const b = fixedWindow('sms-ip', '1.2.3.4', 3600, start + 3599_000);
    const c = fixedWindow('sms-ip', '1.2.3.4', 3600, start + 3600_000);
    expect(a.key).toBe(b.key);
    expect(c.key).not.toBe(a.key);
    expect(a.ttlSeconds).toBe(3599);
    expect(b.ttlSeconds).toBe(1);
    expect(c.ttlSeconds).toBe(3600);
    expect(a.key.startsWith('meiduo-users:quota:sms-ip:1.2.3.4:')).toBe(true);
  });

  it('changes the SMS day at midnight in China (16:00 UTC)', () => {
    const before = chinaDayWindow('sms-mobile', '13155667788', Date.UTC(2026, 10, 27, 15, 59, 59));
    const after = chinaDayWindow('sms-mobile', '13155667788', Date.UTC(2026, 10, 27, 16, 0, 0));
    expect(before.key).toBe('meiduo-users:quota:sms-mobile:13155667788:20261127');
    expect(before.ttlSeconds).toBe(1);
    expect(after.key).toBe('meiduo-users:quota:sms-mobile:13155667788:20261128');
    expect(after.ttlSeconds).toBe(86_400);
  });
});
