import { createHash, randomBytes } from 'node:crypto';
import { isObject } from './body.js';
import { ApiError } from './errors.js';
import { fixedWindow, quota, type Window } from './limits.js';
import type { Clock, CodeStore, PasswordHasher, Quota, SessionStore, User, UserRepository } from './ports.js';
import { MOBILE_RULE } from './verification.js';

export const PERSISTENT_SESSION_SECONDS = 14 * 24 * 3600;
export const BROWSER_SESSION_SECONDS = 24 * 3600;
const LOGIN_WINDOW_SECONDS = 15 * 60;
const SESSION_ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A new session id: 32 characters of [a-z0-9] as Django's, from 32 random bytes. */
export function newSessionId(): string {
  const bytes = randomBytes(32);
  let id = '';
  // 252 = 7 × 36: bytes above it are dropped so every character is equally likely.
  for (const b of bytes) if (b < 252 && id.length < 32) id += SESSION_ID_CHARS[b % 36];
  return id.length === 32 ? id : newSessionId();
}

/** Only this hash is stored: a leaked store does not hand out live cookies. */
export function sessionIdHash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** Where a session was started or last used from (API.md: GET /sessions/). */
export interface SessionSeen {
  ipPrefix: string;
  userAgent: string;
}

export interface StartedSession {
  id: string;
  persistent: boolean;
  maxAgeSeconds: number;
}

export interface AccountsDeps {
  users: UserRepository;
  hasher: PasswordHasher;
  sessionStore: SessionStore;
  codeStore: CodeStore;
  clock: Clock;
  settings: {
    LOGIN_FAILURES_PER_ACCOUNT_IP: number;
    LOGIN_FAILURES_PER_IP: number;
    RATE_LIMITS: 'on' | 'off';
  };
}

/** Login, sessions, logout and the session's user (API.md §2). */
export function createAccounts(deps: AccountsDeps) {
  const { users, hasher, sessionStore, codeStore, clock, settings } = deps;
  const limitsOn = settings.RATE_LIMITS === 'on';

  /**
   * The per-account counter is keyed by the account, not by the name as typed: a user's
   * username and mobile share one counter. An unknown name keeps a counter of its own.
   */
  function failureQuotas(user: User | null, account: string, client: string): Quota[] {
    const now = clock.nowMs();
    // A known account by its username (which every spelling resolves to and which, unlike
    // an id, is not reused by another database sharing the store).
    const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
    const subject = user ? `user:${digest(user.username)}` : `name:${digest(account)}`;
    const quotas: Array<[Window, string, number]> = [
      [
        fixedWindow('login-account-ip', `${subject}:${client}`, LOGIN_WINDOW_SECONDS, now),
        'account',
        settings.LOGIN_FAILURES_PER_ACCOUNT_IP,
      ],
      [fixedWindow('login-ip', client, LOGIN_WINDOW_SECONDS, now), 'ip', settings.LOGIN_FAILURES_PER_IP],
    ];
    if (!limitsOn) return [];
    return quotas.filter(([, , limit]) => limit > 0).map(([window, id, limit]) => quota(window, limit, id));
  }

  async function startSession(
    user: User,
    persistent: boolean,
    previousId?: string,
    seen?: SessionSeen,
  ): Promise<StartedSession> {
    // A new id on every login; the one the browser had before is ended (session fixation).
    if (previousId) await sessionStore.delete(sessionIdHash(previousId));
    const id = newSessionId();
    const lifetime = persistent ? PERSISTENT_SESSION_SECONDS : BROWSER_SESSION_SECONDS;
    const now = clock.nowMs();
    await sessionStore.create(sessionIdHash(id), {
      userId: user.id,
      createdAtMs: now,
      expiresAtMs: now + lifetime * 1000,
      persistent,
      ...(seen ? { lastSeenAtMs: now, ipPrefix: seen.ipPrefix, userAgent: seen.userAgent } : {}),
    });
    return { id, persistent, maxAgeSeconds: lifetime };
  }

  return {
    startSession,

    /**
     * A logged-in user's password re-entered (password change, mobile change): checked like a
     * login of that account from this client, counted against the same counters first.
     */
    async reauthenticate(user: User, password: string, client: string): Promise<boolean> {
      const quotas = failureQuotas(user, user.username, client);
      const attempt = await codeStore.countAttempt(quotas);
      if (attempt.kind === 'limited')
        throw new ApiError('LOGIN_LIMIT', { retry_after: attempt.retryAfterSeconds });
      let verdict: { ok: boolean };
      try {
        verdict = await hasher.verify(password, user.password);
      } catch (err) {
        await codeStore.refundAttempt(quotas.map((q) => q.key)).catch(() => {});
        throw err;
      }
      if (!verdict.ok) return false;
      // As after a login: only failures count.
      await codeStore.refundAttempt(quotas.map((q) => q.key));
      return true;
    },

    async login(
      body: unknown,
      client: string,
      previousId?: string,
      seen?: SessionSeen,
    ): Promise<{ user: User; session: StartedSession }> {
      if (!isObject(body)) throw new ApiError('BAD_JSON');
      const { username: account, password, remembered } = body;
      if (account === undefined || account === null || account === '') throw new ApiError('MISSING_PARAMS');
      if (password === undefined || password === null || password === '')
        throw new ApiError('MISSING_PARAMS');
      if (
        typeof account !== 'string' ||
        typeof password !== 'string' ||
        (remembered !== undefined &&
          remembered !== null &&
          typeof remembered !== 'boolean' &&
          typeof remembered !== 'string')
      ) {
        throw new ApiError('BAD_REQUEST');
      }
      const persistent = remembered === true || remembered === 'true';

      const user = MOBILE_RULE.test(account)
        ? await users.findByMobile(account)
        : await users.findByUsername(account);

      // Each attempt is counted before its password is checked, in one atomic step with the
      // limit check: concurrent guesses cannot all pass a limit read before any was counted.
      const quotas = failureQuotas(user, account, client);
      const attempt = await codeStore.countAttempt(quotas);
      if (attempt.kind === 'limited')
        throw new ApiError('LOGIN_LIMIT', { retry_after: attempt.retryAfterSeconds });

      let ok = false;
      let mustUpdate = false;
      try {
        if (user) {
          // Inactive accounts are verified too, so that they cost what active ones do.
          const verdict = await hasher.verify(password, user.password);
          ok = verdict.ok && user.isActive;
          mustUpdate = verdict.mustUpdate;
        } else {
          await hasher.burn(password);
        }
      } catch (err) {
        // Not a failed guess: the attempt is given back.
        await codeStore.refundAttempt(quotas.map((q) => q.key)).catch(() => {});
        throw err;
      }
      if (!ok || !user) throw new ApiError('LOGIN_FAILED');

      // The right password: this account's failures from here are forgotten, and the attempt
      // is taken back from the address's count (only failures count there).
      const accountQuota = quotas.find((q) => q.id === 'account');
      if (accountQuota) await codeStore.delete(accountQuota.key);
      const ipQuota = quotas.find((q) => q.id === 'ip');
      if (ipQuota) await codeStore.refundAttempt([ipQuota.key]);
      if (mustUpdate) await users.updatePassword(user.id, await hasher.hash(password));
      const now = new Date(clock.nowMs());
      await users.updateLastLogin(user.id, now);
      const session = await startSession(user, persistent, previousId, seen);
      return { user: { ...user, lastLogin: now }, session };
    },

    async logout(sessionId: string | undefined): Promise<void> {
      if (sessionId) await sessionStore.delete(sessionIdHash(sessionId));
    },

    /** The logged-in user, or null. A session whose user is gone or inactive is ended. */
    async currentUser(sessionId: string | undefined): Promise<User | null> {
      if (!sessionId || sessionId.length > 128) return null;
      const hash = sessionIdHash(sessionId);
      const record = await sessionStore.get(hash);
      if (!record || record.expiresAtMs <= clock.nowMs()) return null;
      const user = await users.findById(record.userId);
      if (!user) {
        await sessionStore.delete(hash);
        return null;
      }
      if (!user.isActive) {
        await sessionStore.deleteAllForUser(user.id);
        return null;
      }
      return user;
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
