/**
 * The admin API's two domain parts: who is asking (bearer tokens, compared in constant time)
 * and the audit log every admin request is written to before it acts (docs/operations.md).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface AdminTokenEntry {
  /** The actor the audit log names. */
  id: string;
  token: string;
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * Compares two secrets in constant time: both sides are hashed first, so the compare runs
 * over 32 bytes whatever the lengths, and a wrong length says nothing either.
 */
export function secretEquals(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** `Authorization: Bearer <token>` → the token, or null for any other header. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}

/**
 * The actor a token belongs to, or null. Every configured token is compared (no early exit),
 * so the time taken does not tell which entry, if any, came close.
 */
export function createAdminAuth(tokens: readonly AdminTokenEntry[]) {
  const known = tokens.map((t) => ({ id: t.id, digest: digest(t.token) }));
  return {
    enabled: known.length > 0,
    actorOf(token: string | null): string | null {
      if (token === null) return null;
      const given = digest(token);
      let actor: string | null = null;
      for (const entry of known) {
        if (timingSafeEqual(given, entry.digest) && actor === null) actor = entry.id;
      }
      return actor;
    },
  };
}

export type AdminAuth = ReturnType<typeof createAdminAuth>;

// ---- Audit log ------------------------------------------------------------------------

export interface AuditEntry {
  atMs: number;
  /** Token id (ADMIN_TOKENS name or ADMIN_TOKEN's fingerprint). */
  actor: string;
  /** What was asked, e.g. `queue.failed.retry` (the route's `config.action`). */
  action: string;
  /** The request: method and path as sent (query included). */
  target: string;
  /** Parameters and body as JSON, cut to AUDIT_DETAIL_MAX characters. */
  detail: string;
  /** Client IP (after TRUST_PROXY) and request id. */
  ip: string;
  requestId: string;
}

export interface AuditRecord extends AuditEntry {
  /** Increasing with time of writing; the cursor of the query. */
  id: number;
}

export interface AuditQuery {
  fromMs?: number;
  toMs?: number;
  actor?: string;
  action?: string;
  /** Only records with a smaller id (the next page of a newest-first listing). */
  beforeId?: number;
  limit: number;
}

/**
 * Append-only: there is no update and no delete; the table is written by `append` alone.
 * Queries return the newest first.
 */
export interface AuditLog {
  append(entry: AuditEntry): Promise<void>;
  query(query: AuditQuery): Promise<AuditRecord[]>;
}

export const AUDIT_DETAIL_MAX = 2000;
export const AUDIT_TARGET_MAX = 500;
