import { describe, expect, it } from 'vitest';
import {
  chinaDayIndex,
  createListMatcher,
  hourIndex,
  ipPrefix,
  type ListEntry,
  normaliseListValue,
  ratioCheck,
  ratioExceeded,
  ratioFields,
  ratioThreshold,
  scopeCounts,
} from './sms-abuse.js';

const T0 = Date.UTC(2026, 11, 4, 12);

describe('the unverified-code ratio', () => {
  it('allows the floor when nothing was verified, and k × the best day beyond it', () => {
    expect(ratioThreshold(20, 2, 0)).toBe(20);
    expect(ratioThreshold(20, 2, 9)).toBe(20);
    expect(ratioThreshold(20, 2, 30)).toBe(60);
    expect(ratioThreshold(20, 1.5, 15)).toBe(22);
  });

  it('refuses once the unverified sends of the window reach the threshold', () => {
    expect(ratioExceeded({ sent: 19, verified: 0, maxDailyVerified: 0 }, 20, 2)).toBe(false);
    expect(ratioExceeded({ sent: 20, verified: 0, maxDailyVerified: 0 }, 20, 2)).toBe(true);
    // Verified codes of the window do not count as unverified sends.
    expect(ratioExceeded({ sent: 30, verified: 11, maxDailyVerified: 11 }, 20, 2)).toBe(false);
    // A busy verified baseline raises the threshold.
    expect(ratioExceeded({ sent: 100, verified: 50, maxDailyVerified: 30 }, 20, 2)).toBe(false);
    expect(ratioExceeded({ sent: 120, verified: 50, maxDailyVerified: 30 }, 20, 2)).toBe(true);
  });

  it('never checks a scope whose floor is 0', () => {
    expect(ratioExceeded({ sent: 1e6, verified: 0, maxDailyVerified: 0 }, 0, 2)).toBe(false);
  });

  it('reads the window of hours and the baseline of days, today included', () => {
    const check = { hour: 100, day: 10, windowHours: 3, baselineDays: 2 };
    expect(ratioFields(check)).toEqual({
      sent: ['s98', 's99', 's100'],
      verified: ['v98', 'v99', 'v100'],
      daily: ['d9', 'd10'],
    });
    const values: Record<string, number> = { s97: 50, s98: 1, s100: 2, v99: 1, d8: 99, d9: 4, d10: 3 };
    expect(scopeCounts(check, (f) => values[f] ?? 0)).toEqual({ sent: 3, verified: 1, maxDailyVerified: 4 });
  });

  it('counts days in China time and hours from the epoch', () => {
    // 15:59 UTC is 23:59 in Beijing; 16:00 UTC is the next day there.
    const before = Date.UTC(2026, 11, 4, 15, 59);
    const after = Date.UTC(2026, 11, 4, 16, 0);
    expect(chinaDayIndex(after) - chinaDayIndex(before)).toBe(1);
    expect(hourIndex(after) - hourIndex(before)).toBe(1);
  });

  it('names the block, the IP prefix and the global scope; off means no check at all', () => {
    const settings = {
      SMS_RATIO_MODE: 'refuse' as const,
      SMS_RATIO_WINDOW_HOURS: 24,
      SMS_RATIO_BASELINE_DAYS: 14,
      SMS_RATIO_MULTIPLIER: 2,
      SMS_RATIO_FLOOR_PER_BLOCK: 20,
      SMS_RATIO_FLOOR_PER_IP: 10,
      SMS_RATIO_FLOOR_GLOBAL: 500,
      SMS_RATIO_IPV4_PREFIX_BITS: 24,
      SMS_RATIO_IPV6_PREFIX_BITS: 48,
      SMS_VERIFIED_MEMORY_DAYS: 365,
    };
    const check = ratioCheck('13800138000', '198.18.7.9', T0, settings);
    expect(check?.scopes).toEqual([
      { kind: 'block', key: 'meiduo-users:ratio:block:1380013', floor: 20 },
      { kind: 'ip', key: 'meiduo-users:ratio:ip:198.18.7.0/24', floor: 10 },
      { kind: 'global', key: 'meiduo-users:ratio:global', floor: 500 },
    ]);
    expect(check?.enforce).toBe(true);
    expect(
      ratioCheck('13800138000', '::1', T0, { ...settings, SMS_RATIO_MODE: 'record-only' })?.enforce,
    ).toBe(false);
    expect(ratioCheck('13800138000', '::1', T0, { ...settings, SMS_RATIO_MODE: 'off' })).toBeNull();
  });
});

describe('IP prefixes', () => {
  it('masks IPv4 and IPv6 (mapped IPv4 as IPv4) to their network', () => {
    expect(ipPrefix('198.18.7.9')).toBe('198.18.7.0/24');
    expect(ipPrefix('::ffff:198.18.7.9', 16)).toBe('198.18.0.0/16');
    expect(ipPrefix('2001:db8:abcd:12:1::7')).toBe('2001:db8:abcd::/48');
    expect(ipPrefix('2001:db8:abcd:12:1::7', 24, 64)).toBe('2001:db8:abcd:12::/64');
    expect(ipPrefix('2001:db8:abcd:12:1::7', 24, 36)).toBe('2001:db8:a000::/36');
    expect(ipPrefix('1.2.3.4', 32)).toBe('1.2.3.4/32');
    expect(ipPrefix('2001:db8::1', 24, 128)).toBe('2001:db8:0:0:0:0:0:1/128');
  });
});

describe('block and allow lists', () => {
  it('normalises values and refuses what is not of its kind', () => {
    expect(normaliseListValue('mobile', ' 13800138000 ')).toBe('13800138000');
    expect(normaliseListValue('mobile', '1380013800')).toBeNull();
    expect(normaliseListValue('prefix', '170')).toBe('170');
    expect(normaliseListValue('prefix', '12345678901')).toBeNull();
    expect(normaliseListValue('ip', '203.0.113.77/24')).toBe('203.0.113.0/24');
    expect(normaliseListValue('ip', '203.0.113.77')).toBe('203.0.113.77/32');
    expect(normaliseListValue('ip', '2001:DB8::/32')).toBe('2001:db8::/32');
    expect(normaliseListValue('ip', '203.0.113.0/33')).toBeNull();
    expect(normaliseListValue('ip', 'example.com')).toBeNull();
    expect(normaliseListValue('ip', '1.2.3.4/8/9')).toBeNull();
  });

  const entry = (id: number, e: Partial<ListEntry>): ListEntry => ({
    id,
    list: 'block',
    kind: 'mobile',
    value: '',
    note: '',
    createdAtMs: T0,
    expiresAtMs: null,
    ...e,
  });

  it('matches numbers, prefixes and IPv4/IPv6 ranges; expired entries do not match', () => {
    const matcher = createListMatcher([
      entry(1, { kind: 'mobile', value: '13800138000' }),
      entry(2, { kind: 'prefix', value: '170' }),
      entry(3, { kind: 'ip', value: '203.0.113.0/24' }),
      entry(4, { kind: 'ip', value: '2001:db8::/32', expiresAtMs: T0 + 1000 }),
      entry(5, { list: 'allow', kind: 'ip', value: '198.51.100.0/24' }),
    ]);
    const blockedBy = (mobile: string, ip: string, at = T0) =>
      matcher.match(mobile, ip, at).blocked?.id ?? null;
    expect(blockedBy('13800138000', '192.0.2.1')).toBe(1);
    expect(blockedBy('17012345678', '192.0.2.1')).toBe(2);
    expect(blockedBy('13900000000', '203.0.113.200')).toBe(3);
    expect(blockedBy('13900000000', '::ffff:203.0.113.200')).toBe(3);
    expect(blockedBy('13900000000', '2001:db8:1::5')).toBe(4);
    expect(blockedBy('13900000000', '2001:db8:1::5', T0 + 1000)).toBeNull();
    expect(blockedBy('13900000000', '192.0.2.1')).toBeNull();
    expect(matcher.match('13900000000', '198.51.100.9', T0).allowed?.id).toBe(5);
    expect(matcher.match('13900000000', '198.51.101.9', T0).allowed).toBeNull();
  });
});
