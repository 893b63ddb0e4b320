import { createHash, createHmac } from 'node:crypto';

/*
 * The vendors' request-signing algorithms as pure functions (no clock, no randomness), so that
 * each one is tested against the vendor's published worked example
 * (docs: shared/reference/sms-providers.md §1.3, §2.3, §2.4, §3.3).
 */

const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');

// ---- Ronglian (容联云) ------------------------------------------------------------------

/** `yyyyMMddHHmmss` in China time (UTC+8), whatever the host's time zone. */
export function chinaTimestamp(at: Date): string {
  const china = new Date(at.getTime() + 8 * 3600_000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    p(china.getUTCFullYear(), 4) +
    p(china.getUTCMonth() + 1) +
    p(china.getUTCDate()) +
    p(china.getUTCHours()) +
    p(china.getUTCMinutes()) +
    p(china.getUTCSeconds())
  );
}

export interface RonglianSignature {
  /** Upper-case hex MD5 of sid + token + timestamp: the `sig` query parameter. */
  sig: string;
  /** Base64 of `sid:timestamp`: the Authorization header, sent without a scheme. */
  authorization: string;
}

export function signRonglian(accountSid: string, authToken: string, timestamp: string): RonglianSignature {
  const sig = createHash('md5')
    .update(accountSid + authToken + timestamp, 'utf8')
    .digest('hex')
    .toUpperCase();
  const authorization = Buffer.from(`${accountSid}:${timestamp}`, 'utf8').toString('base64');
  return { sig, authorization };
}

// ---- Aliyun -----------------------------------------------------------------------------

/**
 * RFC 3986 percent-encoding (only `A-Za-z0-9-_.~` stay), upper-case hex, space as `%20`:
 * encodeURIComponent leaves `!'()*` alone, Aliyun's POP rules do not.
 */
export function aliyunPercentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Pairs sorted by name (byte order), each side percent-encoded, joined with `&`. */
export function aliyunCanonicalQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${aliyunPercentEncode(k)}=${aliyunPercentEncode(params[k] as string)}`)
    .join('&');
}

export interface AliyunV1Signature {
  canonicalQuery: string;
  stringToSign: string;
  /** Base64 HMAC-SHA1; goes in the `Signature` parameter. */
  signature: string;
}

/** RPC signature `SignatureVersion=1.0` (HMAC-SHA1); `params` excludes `Signature`. */
export function signAliyunV1(
  method: 'GET' | 'POST',
  params: Record<string, string>,
  accessKeySecret: string,
): AliyunV1Signature {
  const canonicalQuery = aliyunCanonicalQuery(params);
  const stringToSign = `${method}&${aliyunPercentEncode('/')}&${aliyunPercentEncode(canonicalQuery)}`;
  const signature = createHmac('sha1', `${accessKeySecret}&`).update(stringToSign, 'utf8').digest('base64');
  return { canonicalQuery, stringToSign, signature };
}

export interface AliyunV3Input {
  method: string;
  /** `/` for RPC-style APIs. */
  path: string;
  query: Record<string, string>;
  /**
   * Headers to sign besides `x-acs-content-sha256` (added here): `host`, every `x-acs-*`,
   * `content-type` when there is a body.
   */
  headers: Record<string, string>;
  body: string;
  accessKeyId: string;
  accessKeySecret: string;
}

export interface AliyunV3Signature {
  contentSha256: string;
  canonicalRequest: string;
  signedHeaders: string;
  stringToSign: string;
  signature: string;
  authorization: string;
}

/** `ACS3-HMAC-SHA256` (V3 request structure). */
export function signAliyunV3(input: AliyunV3Input): AliyunV3Signature {
  const contentSha256 = sha256Hex(input.body);
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(input.headers)) headers.set(k.toLowerCase(), v.trim());
  headers.set('x-acs-content-sha256', contentSha256);
  const names = [...headers.keys()]
    .filter((n) => n === 'host' || n === 'content-type' || n.startsWith('x-acs-'))
    .sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers.get(n)}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    input.method.toUpperCase(),
    input.path,
    aliyunCanonicalQuery(input.query),
    canonicalHeaders,
    signedHeaders,
    contentSha256,
  ].join('\n');
  const stringToSign = `ACS3-HMAC-SHA256\n${sha256Hex(canonicalRequest)}`;
  const signature = createHmac('sha256', input.accessKeySecret).update(stringToSign, 'utf8').digest('hex');
  const authorization = `ACS3-HMAC-SHA256 Credential=${input.accessKeyId},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return { contentSha256, canonicalRequest, signedHeaders, stringToSign, signature, authorization };
}

/** `yyyy-MM-ddTHH:mm:ssZ` in UTC (no milliseconds), Aliyun's Timestamp / x-acs-date. */
export function aliyunTimestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---- Tencent Cloud ----------------------------------------------------------------------

export interface Tc3Input {
  method: string;
  /** Empty for POST. */
  canonicalQuery: string;
  /** Signed headers (at least content-type and host), names in any case, values as sent. */
  headers: Record<string, string>;
  body: string;
  /** The product: `sms` (the first label of the official host). */
  service: string;
  /** X-TC-Timestamp, Unix seconds. */
  timestamp: number;
  secretId: string;
  secretKey: string;
}

export interface Tc3Signature {
  date: string;
  credentialScope: string;
  canonicalRequest: string;
  stringToSign: string;
  signedHeaders: string;
  signature: string;
  authorization: string;
}

/** `TC3-HMAC-SHA256`; the scope date is the UTC date of the timestamp. */
export function signTc3(input: Tc3Input): Tc3Signature {
  const entries = Object.entries(input.headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim()] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonicalHeaders = entries.map(([k, v]) => `${k}:${v}\n`).join('');
  const signedHeaders = entries.map(([k]) => k).join(';');
  const canonicalRequest = [
    input.method.toUpperCase(),
    '/',
    input.canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    sha256Hex(input.body),
  ].join('\n');
  const date = new Date(input.timestamp * 1000).toISOString().slice(0, 10);
  const credentialScope = `${date}/${input.service}/tc3_request`;
  const stringToSign = `TC3-HMAC-SHA256\n${input.timestamp}\n${credentialScope}\n${sha256Hex(canonicalRequest)}`;
  const hmac = (key: string | Buffer, msg: string) => createHmac('sha256', key).update(msg, 'utf8').digest();
  const secretDate = hmac(`TC3${input.secretKey}`, date);
  const secretService = hmac(secretDate, input.service);
  const secretSigning = hmac(secretService, 'tc3_request');
  const signature = createHmac('sha256', secretSigning).update(stringToSign, 'utf8').digest('hex');
  const authorization = `TC3-HMAC-SHA256 Credential=${input.secretId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { date, credentialScope, canonicalRequest, stringToSign, signedHeaders, signature, authorization };
}

// ---- Twilio -----------------------------------------------------------------------------

/** HTTP Basic credentials (REST calls are not signed; TLS carries them). */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}
