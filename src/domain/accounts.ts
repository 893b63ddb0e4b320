import { createHash, randomBytes } from 'node:crypto';
import { isObject } from './body.js';
import { ApiError } from './errors.js';
import { fixedWindow } from './limits.js';
import type { Clock, CodeStore, PasswordHasher, SessionStore, User, UserRepository } from './ports.js';
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

  function failureWindows(account: string, client: string) {
    const now = clock.nowMs();
    const accountHash = createHash('sha256').update(account).digest('hex').slice(0, 32);
    return {
      perAccount: fixedWindow('login-account-ip', `${accountHash}:${client}`, LOGIN_WINDOW_SECONDS, now),
      perIp: fixedWindow('login-ip', client, LOGIN_WINDOW_SECONDS, now),
    };
  }

  async function startSession(user: User, persistent: boolean, previousId?: string): Promise<StartedSession> {
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
    });
    return { id, persistent, maxAgeSeconds: lifetime };
  }

  return {
    startSession,

    async login(
      body: unknown,
      client: string,
      previousId?: string,
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

      const windows = failureWindows(account, client);
      const checks: Array<[{ key: string; ttlSeconds: number }, number]> = [
        [windows.perAccount, settings.LOGIN_FAILURES_PER_ACCOUNT_IP],
        [windows.perIp, settings.LOGIN_FAILURES_PER_IP],
      ];
      const active = limitsOn ? checks.filter(([, limit]) => limit > 0) : [];
      for (const [window, limit] of active) {
        const failures = Number((await codeStore.get(window.key)) ?? 0);
        if (failures >= limit) throw new ApiError('LOGIN_LIMIT', { retry_after: window.ttlSeconds });
      }

      const user = MOBILE_RULE.test(account)
        ? await users.findByMobile(account)
        : await users.findByUsername(account);
      let ok = false;
      let mustUpdate = false;
      if (user) {
        // Inactive accounts are verified too, so that they cost what active ones do.
        const verdict = await hasher.verify(password, user.password);
        ok = verdict.ok && user.isActive;
        mustUpdate = verdict.mustUpdate;
      } else {
        await hasher.burn(password);
      }
      if (!ok || !user) {
        for (const [window] of active) await codeStore.increment(window.key, window.ttlSeconds);
        throw new ApiError('LOGIN_FAILED');
      }

      if (mustUpdate) await users.updatePassword(user.id, await hasher.hash(password));
      const now = new Date(clock.nowMs());
      await users.updateLastLogin(user.id, now);
      if (active.length > 0) await codeStore.delete(windows.perAccount.key);
      const session = await startSession(user, persistent, previousId);
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
