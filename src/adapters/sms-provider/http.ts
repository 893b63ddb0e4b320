import type { SendOutcome, SendOutcomeKind } from '../../domain/ports.js';

/** What every vendor client is given besides its settings. */
export interface VendorDeps {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Defaults to the system clock; timestamps and signatures are computed from it. */
  now?: () => Date;
  /** Longest one request may take, headers and body included. */
  timeoutMs: number;
  /** Fresh unique string per request (Aliyun's SignatureNonce); defaults to a random UUID. */
  nonce?: () => string;
}

export type HttpResult = { sent: true; status: number; body: string } | { sent: false; outcome: SendOutcome };

/*
 * Network failures that happen before a single byte of the request can have reached the
 * vendor: the request was certainly not processed, so another attempt is safe.
 */
const PRE_SEND_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

function errorCodes(err: unknown): string[] {
  const cause = (err as { cause?: unknown } | null)?.cause as
    | { code?: unknown; errors?: Array<{ code?: unknown }> }
    | undefined;
  if (!cause) return [];
  // Happy-eyeballs connects to several addresses and reports an AggregateError.
  if (Array.isArray(cause.errors)) return cause.errors.map((e) => String(e?.code ?? ''));
  return cause.code === undefined ? [] : [String(cause.code)];
}

export function outcome(
  provider: string,
  kind: SendOutcomeKind,
  detail?: string,
  messageId?: string,
): SendOutcome {
  const o: SendOutcome = { kind, provider };
  if (detail !== undefined) o.detail = detail;
  if (messageId !== undefined) o.messageId = messageId;
  return o;
}

/**
 * One vendor request under a deadline covering headers and body. Failures become outcomes:
 * refused/unresolvable before sending → transient; a timeout or a dropped connection once the
 * request may have been sent → unknown (vendors do not deduplicate, so it is not repeated).
 * A deadline that expires while still connecting is also reported as unknown: fetch does not
 * tell the two apart, and a duplicate SMS costs more than a missed retry.
 */
export async function vendorRequest(
  provider: string,
  deps: VendorDeps,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
): Promise<HttpResult> {
  const doFetch = deps.fetch ?? fetch;
  const signal = AbortSignal.timeout(deps.timeoutMs);
  try {
    const res = await doFetch(url, { ...init, signal, redirect: 'manual' });
    const body = await res.text();
    return { sent: true, status: res.status, body };
  } catch (err) {
    const name = (err as { name?: string } | null)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return { sent: false, outcome: outcome(provider, 'unknown', `timeout after ${deps.timeoutMs} ms`) };
    }
    const codes = errorCodes(err);
    if (codes.length > 0 && codes.every((c) => PRE_SEND_CODES.has(c))) {
      return { sent: false, outcome: outcome(provider, 'transient', `network ${codes[0]}`) };
    }
    return {
      sent: false,
      outcome: outcome(
        provider,
        'unknown',
        `connection failed after sending (${codes[0] ?? name ?? 'error'})`,
      ),
    };
  }
}

/** Parses a JSON object body; undefined when it is not one. */
export function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body);
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The service's mobiles are mainland 11-digit numbers. */
export const MAINLAND_MOBILE = /^1[3-9]\d{9}$/;
