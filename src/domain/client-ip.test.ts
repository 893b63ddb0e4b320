import { describe, expect, it } from 'vitest';
import { clientKey } from './client-ip.js';

describe('clientKey', () => {
  it('keeps IPv4 addresses and unwraps IPv4-mapped IPv6', () => {
    expect(clientKey('203.0.113.5')).toBe('203.0.113.5');
    expect(clientKey('::ffff:203.0.113.5')).toBe('203.0.113.5');
  });

  it('groups IPv6 addresses by /64, however they are written', () => {
    const a = clientKey('2001:db8:0:1:aaaa:bbbb:cccc:dddd');
    expect(a).toBe('2001:db8:0:1::/64');
    expect(clientKey('2001:0db8:0000:0001::1')).toBe(a);
    expect(clientKey('2001:db8::1:0:0:0:1')).toBe(a);
    expect(clientKey('2001:db8:0:2::1')).not.toBe(a);
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});
