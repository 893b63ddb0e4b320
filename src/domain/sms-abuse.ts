import { BlockList, isIPv4, isIPv6 } from 'node:net';

/*
 * SMS-abuse rules past the quotas of limits.ts (docs/operations.md "SMS abuse defence"):
 *
 * - the unverified-code ratio: per number block (first 7 digits), per client IP prefix and for
 *   the whole service, sends that were never verified within a rolling window may not pass
 *   max(floor, multiplier × the largest daily count of verified codes over the baseline days);
 * - block and allow lists of numbers, number prefixes and IP ranges.
 *
 * Everything here is pure: the counters live in the code store (and are checked inside its one
 * atomic issue step), the lists in the SQL database (src/domain/sms-lists.ts caches them).
 */

export const RATIO_PREFIX = 'meiduo-users:ratio:';
/** Marks a mobile that once verified a code: the ratio rule never refuses it. */
export const verifiedMobileKey = (mobile: string) => `meiduo-users:verified:${mobile}`;
/** Which ratio scopes a mobile's current code was counted under, for crediting its check. */
export const codeOriginKey = (mobile: string) => `meiduo-users:code-origin:${mobile}`;

const HOUR_MS = 3_600_000;
const CHINA_OFFSET_MS = 8 * HOUR_MS;

export type RatioMode = 'off' | 'record-only' | 'refuse' | 'silent';
export type RatioScopeKind = 'block' | 'ip' | 'global';

export interface RatioSettings {
  SMS_RATIO_MODE: RatioMode;
  SMS_RATIO_WINDOW_HOURS: number;
  SMS_RATIO_BASELINE_DAYS: number;
  SMS_RATIO_MULTIPLIER: number;
  SMS_RATIO_FLOOR_PER_BLOCK: number;
  SMS_RATIO_FLOOR_PER_IP: number;
  SMS_RATIO_FLOOR_GLOBAL: number;
  SMS_RATIO_IPV4_PREFIX_BITS: number;
  SMS_RATIO_IPV6_PREFIX_BITS: number;
  SMS_VERIFIED_MEMORY_DAYS: number;
}

/** One counter set of the ratio rule; `floor` 0 means this scope is not checked (only counted). */
export interface RatioScope {
  kind: RatioScopeKind;
  /** Full store key of the scope's counters. */
  key: string;
  floor: number;
}

/**
 * What the atomic issue step needs to apply the ratio rule. Buckets are indexes computed from
 * the domain's clock, so every backend (and every test) agrees on "now".
 */
export interface RatioCheck {
  scopes: RatioScope[];
  /** Hours since the epoch: the current hourly bucket of sends and verifications. */
  hour: number;
  /** Days since the epoch in China time (UTC+8): the current daily bucket of verifications. */
  day: number;
  windowHours: number;
  baselineDays: number;
  multiplier: number;
  /** false (record-only): report the scope that would refuse, but issue anyway. */
  enforce: boolean;
  /** verifiedMobileKey(mobile): when present the rule is skipped for this send. */
  verifiedKey: string;
  /** codeOriginKey(mobile): set on issue (with the code's lifetime) to the scopes counted. */
  originKey: string;
  /** Lifetime of the counters after their last write: window and baseline, plus a day. */
  countersTtlSeconds: number;
}

/** Credit a successful code check: the scopes named under originKey, and the mobile's mark. */
export interface RatioCredit {
  hour: number;
  day: number;
  originKey: string;
  verifiedKey: string;
  verifiedTtlSeconds: number;
  countersTtlSeconds: number;
}

/** Hash fields (Redis) / rows (SQLite) of one scope's counters. */
export const sentField = (hour: number) => `s${hour}`;
export const verifiedField = (hour: number) => `v${hour}`;
export const dailyVerifiedField = (day: number) => `d${day}`;

export function hourIndex(nowMs: number): number {
  return Math.floor(nowMs / HOUR_MS);
}

export function chinaDayIndex(nowMs: number): number {
  return Math.floor((nowMs + CHINA_OFFSET_MS) / (24 * HOUR_MS));
}

/** The fields a check reads: window of sends and verifications, then the baseline days. */
export function ratioFields(check: Pick<RatioCheck, 'hour' | 'day' | 'windowHours' | 'baselineDays'>) {
  const sent: string[] = [];
  const verified: string[] = [];
  for (let h = check.hour - check.windowHours + 1; h <= check.hour; h++) {
    sent.push(sentField(h));
    verified.push(verifiedField(h));
  }
  const daily: string[] = [];
  for (let d = check.day - check.baselineDays + 1; d <= check.day; d++) daily.push(dailyVerifiedField(d));
  return { sent, verified, daily };
}

/** The rule's threshold: `max(floor, ⌊multiplier × baseline⌋)` unverified sends. */
export function ratioThreshold(floor: number, multiplier: number, maxDailyVerified: number): number {
  return Math.max(floor, Math.floor(multiplier * maxDailyVerified));
}

export interface ScopeCounts {
  /** Sends in the window. */
  sent: number;
  /** Verified codes in the window. */
  verified: number;
  /** Largest count of verified codes of one day over the baseline days (today included). */
  maxDailyVerified: number;
}

/**
 * Whether one more send would be refused: the sends of the window that were not verified have
 * reached the threshold. A scope with floor 0 is never checked.
 */
export function ratioExceeded(counts: ScopeCounts, floor: number, multiplier: number): boolean {
  if (floor <= 0) return false;
  return counts.sent - counts.verified >= ratioThreshold(floor, multiplier, counts.maxDailyVerified);
}

/** Reads a scope's counters out of its fields (missing fields are zero). */
export function scopeCounts(
  check: Pick<RatioCheck, 'hour' | 'day' | 'windowHours' | 'baselineDays'>,
  value: (field: string) => number,
): ScopeCounts {
  const fields = ratioFields(check);
  const sum = (names: string[]) => names.reduce((total, f) => total + value(f), 0);
  return {
    sent: sum(fields.sent),
    verified: sum(fields.verified),
    maxDailyVerified: fields.daily.reduce((max, f) => Math.max(max, value(f)), 0),
  };
}

/** The first 7 digits of a mainland mobile: carrier segment and area block. */
export function numberBlock(mobile: string): string {
  return mobile.slice(0, 7);
}

function expandIPv6(ip: string): number[] {
  const [head = '', tail = ''] = ip.split('%')[0]?.split('::') ?? [];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const groups = (parts: string[]) =>
    parts.flatMap((g) => {
      if (!g.includes('.')) return [Number.parseInt(g || '0', 16)];
      const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  const l = groups(left);
  const r = groups(right);
  const missing = ip.includes('::') ? 8 - l.length - r.length : 0;
  return [...l, ...Array<number>(Math.max(0, missing)).fill(0), ...r];
}

/** An IPv4-mapped IPv6 address as the IPv4 address it is. */
export function plainIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped?.[1] ?? ip;
}

/**
 * The client's network as a CIDR: IPv4 by `v4Bits` (default /24), IPv6 by `v6Bits` (default
 * /48, a site). Pumping rents addresses by the network, so single addresses are too narrow.
 */
export function ipPrefix(ip: string, v4Bits = 24, v6Bits = 48): string {
  const address = plainIp(ip);
  if (isIPv4(address)) {
    const bytes = address.split('.').map(Number);
    const value =
      ((bytes[0] ?? 0) * 2 ** 24 + (bytes[1] ?? 0) * 2 ** 16 + (bytes[2] ?? 0) * 256 + (bytes[3] ?? 0)) >>> 0;
    const masked = v4Bits === 0 ? 0 : (value & (~0 << (32 - v4Bits))) >>> 0;
    const parts = [masked >>> 24, (masked >>> 16) & 255, (masked >>> 8) & 255, masked & 255];
    return `${parts.join('.')}/${v4Bits}`;
  }
  if (isIPv6(address)) {
    const groups = expandIPv6(address).map((g, i) => {
      const bitsLeft = v6Bits - i * 16;
      if (bitsLeft >= 16) return g;
      if (bitsLeft <= 0) return 0;
      return g & (0xffff << (16 - bitsLeft)) & 0xffff;
    });
    // Shortest form: trailing zero groups folded into '::'.
    let end = groups.length;
    while (end > 0 && groups[end - 1] === 0) end--;
    const head = groups.slice(0, end).map((g) => g.toString(16));
    return `${end === 8 ? head.join(':') : `${head.join(':')}::`}/${v6Bits}`;
  }
  // Not an address (a test's made-up key): as it is, bounded.
  return address.slice(0, 64);
}

/** The store keys of the three ratio scopes of one send. */
export function ratioScopes(
  mobile: string,
  ip: string,
  settings: Pick<
    RatioSettings,
    | 'SMS_RATIO_FLOOR_PER_BLOCK'
    | 'SMS_RATIO_FLOOR_PER_IP'
    | 'SMS_RATIO_FLOOR_GLOBAL'
    | 'SMS_RATIO_IPV4_PREFIX_BITS'
    | 'SMS_RATIO_IPV6_PREFIX_BITS'
  >,
): RatioScope[] {
  const prefix = ipPrefix(ip, settings.SMS_RATIO_IPV4_PREFIX_BITS, settings.SMS_RATIO_IPV6_PREFIX_BITS);
  return [
    {
      kind: 'block',
      key: `${RATIO_PREFIX}block:${numberBlock(mobile)}`,
      floor: settings.SMS_RATIO_FLOOR_PER_BLOCK,
    },
    { kind: 'ip', key: `${RATIO_PREFIX}ip:${prefix}`, floor: settings.SMS_RATIO_FLOOR_PER_IP },
    { kind: 'global', key: `${RATIO_PREFIX}global`, floor: settings.SMS_RATIO_FLOOR_GLOBAL },
  ];
}

const DAY_SECONDS = 86_400;

/** The ratio part of one send's atomic step, or null when the rule is off. */
export function ratioCheck(
  mobile: string,
  ip: string,
  nowMs: number,
  settings: RatioSettings,
): RatioCheck | null {
  if (settings.SMS_RATIO_MODE === 'off') return null;
  return {
    scopes: ratioScopes(mobile, ip, settings),
    hour: hourIndex(nowMs),
    day: chinaDayIndex(nowMs),
    windowHours: settings.SMS_RATIO_WINDOW_HOURS,
    baselineDays: settings.SMS_RATIO_BASELINE_DAYS,
    multiplier: settings.SMS_RATIO_MULTIPLIER,
    enforce: settings.SMS_RATIO_MODE !== 'record-only',
    verifiedKey: verifiedMobileKey(mobile),
    originKey: codeOriginKey(mobile),
    countersTtlSeconds: countersTtlSeconds(settings),
  };
}

function countersTtlSeconds(
  settings: Pick<RatioSettings, 'SMS_RATIO_WINDOW_HOURS' | 'SMS_RATIO_BASELINE_DAYS'>,
) {
  return (
    Math.max(settings.SMS_RATIO_WINDOW_HOURS * 3600, settings.SMS_RATIO_BASELINE_DAYS * DAY_SECONDS) +
    DAY_SECONDS
  );
}

/** The credit part of a code check: always (a verified mobile is remembered even with the rule off). */
export function ratioCredit(mobile: string, nowMs: number, settings: RatioSettings): RatioCredit {
  return {
    hour: hourIndex(nowMs),
    day: chinaDayIndex(nowMs),
    originKey: codeOriginKey(mobile),
    verifiedKey: verifiedMobileKey(mobile),
    verifiedTtlSeconds: settings.SMS_VERIFIED_MEMORY_DAYS * DAY_SECONDS,
    countersTtlSeconds: countersTtlSeconds(settings),
  };
}

// ---- block and allow lists -------------------------------------------------------------

export type ListName = 'block' | 'allow';
/** `mobile`: one number; `prefix`: 1–10 leading digits (a number block is 7); `ip`: a CIDR. */
export type ListKind = 'mobile' | 'prefix' | 'ip';

export interface ListEntry {
  id: number;
  list: ListName;
  kind: ListKind;
  /** Normalised: 11 digits, 1–10 digits, or a CIDR `address/bits`. */
  value: string;
  note: string;
  createdAtMs: number;
  /** null: until removed. */
  expiresAtMs: number | null;
}

export type NewListEntry = Omit<ListEntry, 'id' | 'createdAtMs'>;

/** Validates and normalises an entry's value; null when it is not one of its kind. */
export function normaliseListValue(kind: ListKind, value: string): string | null {
  const v = value.trim();
  switch (kind) {
    case 'mobile':
      return /^1[3-9]\d{9}$/.test(v) ? v : null;
    case 'prefix':
      return /^1\d{0,9}$/.test(v) ? v : null;
    case 'ip': {
      const [address = '', bitsText, ...rest] = v.split('/');
      if (rest.length > 0) return null;
      const plain = plainIp(address);
      const v4 = isIPv4(plain);
      if (!v4 && !isIPv6(plain)) return null;
      const max = v4 ? 32 : 128;
      const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : Number.NaN;
      if (!(bits >= 0 && bits <= max)) return null;
      return v4 ? ipPrefix(plain, bits, 48) : ipPrefix(plain, 24, bits);
    }
  }
}

export interface ListVerdict {
  /** A block-list entry matched: the send is refused (block wins over allow). */
  blocked: ListEntry | null;
  /** An allow-list entry matched: the ratio rule is not applied. */
  allowed: ListEntry | null;
}

/** Matches a send against the live entries; built once per list version, used per request. */
export function createListMatcher(entries: readonly ListEntry[]) {
  const byList = (list: ListName) => {
    const mobiles = new Map<string, ListEntry>();
    const prefixes = new Map<string, ListEntry>();
    const ranges: Array<{ entry: ListEntry; net: BlockList }> = [];
    for (const entry of entries) {
      if (entry.list !== list) continue;
      if (entry.kind === 'mobile') mobiles.set(entry.value, entry);
      else if (entry.kind === 'prefix') prefixes.set(entry.value, entry);
      else {
        const [address = '', bits = '0'] = entry.value.split('/');
        const net = new BlockList();
        net.addSubnet(address, Number(bits), isIPv4(address) ? 'ipv4' : 'ipv6');
        ranges.push({ entry, net });
      }
    }
    return { mobiles, prefixes, ranges };
  };
  const lists = { block: byList('block'), allow: byList('allow') };

  const find = (list: ListName, mobile: string, ip: string, nowMs: number): ListEntry | null => {
    const live = (e: ListEntry | undefined) =>
      e && (e.expiresAtMs === null || e.expiresAtMs > nowMs) ? e : null;
    const l = lists[list];
    const exact = live(l.mobiles.get(mobile));
    if (exact) return exact;
    for (let n = 10; n >= 1; n--) {
      const hit = live(l.prefixes.get(mobile.slice(0, n)));
      if (hit) return hit;
    }
    const address = plainIp(ip);
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
    if (!family) return null;
    for (const range of l.ranges) {
      if (live(range.entry) && range.net.check(address, family)) return range.entry;
    }
    return null;
  };

  return {
    size: entries.length,
    match(mobile: string, ip: string, nowMs: number): ListVerdict {
      return { blocked: find('block', mobile, ip, nowMs), allowed: find('allow', mobile, ip, nowMs) };
    },
  };
}

export type ListMatcher = ReturnType<typeof createListMatcher>;

/** 13155667788 → 131****7788: enough to find a complaint in the log, not to spam the owner. */
export function maskMobile(mobile: string): string {
  if (mobile.length < 8) return '*'.repeat(mobile.length);
  return `${mobile.slice(0, 3)}****${mobile.slice(-4)}`;
}
