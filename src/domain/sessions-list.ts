import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { type Accounts, type SessionSeen, sessionIdHash } from './accounts.js';
import { ApiError } from './errors.js';
import type { Clock, SessionStore, StoredSession, User } from './ports.js';

/** Activity is written at most this often per session and process (a write per request would be waste). */
const TOUCH_INTERVAL_MS = 60_000;
const TOUCH_MEMORY = 10_000;
const USER_AGENT_CHARS = 256;

/** An address cut to /24 (IPv4) or /48 (IPv6): enough to recognise a network, not a host. */
export function ipPrefix(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const address = mapped?.[1] ?? ip;
  if (isIPv4(address)) return `${address.split('.').slice(0, 3).join('.')}.0/24`;
  if (!isIPv6(address)) return '';
  const [head = '', tail = ''] = address.split('%')[0]?.split('::') ?? [];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = address.includes('::') ? 8 - left.length - right.length : 0;
  const groups = [...left, ...Array<string>(missing).fill('0'), ...right];
  return `${groups
    .slice(0, 3)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/48`;
}

export function sessionSeen(ip: string, userAgent: string | undefined): SessionSeen {
  return { ipPrefix: ipPrefix(ip), userAgent: (userAgent ?? '').slice(0, USER_AGENT_CHARS) };
}

/**
 * The handle GET /sessions/ shows for a session: one-way from the stored hash of its id, so
 * that it names the session without revealing the id or the hash the store is keyed by.
 */
export function sessionHandle(idHash: string): string {
  return createHash('sha256')
    .update(`meiduo-users:session-handle:${idHash}`)
    .digest('base64url')
    .slice(0, 22);
}

export interface SessionView {
  handle: string;
  current: boolean;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  persistent: boolean;
  ip_prefix: string | null;
  user_agent: string | null;
}

export interface SessionsDeps {
  accounts: Accounts;
  sessionStore: SessionStore;
  clock: Clock;
}

/** The logged-in user of a request, and the list/end operations of GET/DELETE /sessions/. */
export function createSessions(deps: SessionsDeps) {
  const { accounts, sessionStore, clock } = deps;
  /** idHash → when this process last recorded activity for it. */
  const touched = new Map<string, number>();

  const view = (session: StoredSession, currentHash: string): SessionView => {
    const r = session.record;
    return {
      handle: sessionHandle(session.idHash),
      current: session.idHash === currentHash,
      created_at: new Date(r.createdAtMs).toISOString(),
      last_seen_at: new Date(r.lastSeenAtMs ?? r.createdAtMs).toISOString(),
      expires_at: new Date(r.expiresAtMs).toISOString(),
      persistent: r.persistent,
      ip_prefix: r.ipPrefix ?? null,
      user_agent: r.userAgent ?? null,
    };
  };

  return {
    /**
     * The session's user (or null) — as accounts.currentUser — and its activity recorded,
     * at most once a minute per session and process.
     */
    async current(
      sessionId: string | undefined,
      seen: SessionSeen,
    ): Promise<{ user: User; idHash: string } | null> {
      const user = await accounts.currentUser(sessionId);
      if (!user || !sessionId) return null;
      const idHash = sessionIdHash(sessionId);
      const now = clock.nowMs();
      const last = touched.get(idHash);
      if (last === undefined || now - last >= TOUCH_INTERVAL_MS) {
        if (touched.size >= TOUCH_MEMORY) touched.clear();
        touched.set(idHash, now);
        await sessionStore.touch(idHash, { lastSeenAtMs: now, ...seen });
      }
      return { user, idHash };
    },

    /** The user's live sessions, most recently seen first. */
    async list(userId: number, currentHash: string): Promise<SessionView[]> {
      const sessions = await sessionStore.listForUser(userId);
      return sessions
        .map((s) => view(s, currentHash))
        .sort(
          (a, b) => b.last_seen_at.localeCompare(a.last_seen_at) || b.created_at.localeCompare(a.created_at),
        );
    },

    /** Ends the user's session named by `handle`; SESSION_NOT_FOUND for any other handle. */
    async endOne(userId: number, handle: string, currentHash: string): Promise<{ current: boolean }> {
      const sessions = handle.length === 22 ? await sessionStore.listForUser(userId) : [];
      const match = sessions.find((s) => sessionHandle(s.idHash) === handle);
      if (!match) throw new ApiError('SESSION_NOT_FOUND');
      await sessionStore.delete(match.idHash);
      touched.delete(match.idHash);
      return { current: match.idHash === currentHash };
    },

    /**
     * Ends every session of the user but this one, in one atomic step of the store (listing
     * then deleting would spare a session created in between); returns how many.
     */
    async endOthers(userId: number, currentHash: string): Promise<number> {
      return sessionStore.deleteOthersForUser(userId, currentHash);
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
