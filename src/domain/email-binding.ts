import { createHash, randomBytes } from 'node:crypto';
import { ApiError, DependencyError } from './errors.js';
import { KEY_PREFIX } from './keys.js';
import { fixedWindow } from './limits.js';
import { requireStrings } from './password-reset.js';
import type { Clock, CodeStore, EmailJob, JobQueue, User, UserRepository } from './ports.js';

/** The course's pattern (its `user_center_info.html` and Django view), at most 254 characters. */
export const EMAIL_RULE = /^[a-z0-9][\w.-]*@[a-z0-9-]+(\.[a-z]{2,5}){1,2}$/;
const TOKEN_MAX_CHARS = 128;

const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');
const tokenKey = (hash: string) => `${KEY_PREFIX}email-token:${hash}`;
const currentTokenKey = (userId: number) => `${KEY_PREFIX}email-token-of:${userId}`;

/**
 * Verification tokens (API.md §3): random, stored only as a SHA-256, bound to (user, email),
 * one use, and one current token per user — a new one, or a new binding, voids the older.
 */
export function createEmailTokens(deps: { codeStore: CodeStore; ttlSeconds: number }) {
  const { codeStore, ttlSeconds } = deps;
  return {
    /** A new token for the user's email; only its hash is stored. Called by the worker as it sends. */
    async issue(userId: number, email: string): Promise<string> {
      const token = randomBytes(32).toString('base64url');
      const hash = tokenHash(token);
      await codeStore.set(tokenKey(hash), JSON.stringify({ userId, email }), ttlSeconds);
      // Replacing the user's current hash is what voids every older token.
      await codeStore.set(currentTokenKey(userId), hash, ttlSeconds);
      return token;
    },

    /** Voids every token of the user (a new binding). */
    async voidAll(userId: number): Promise<void> {
      await codeStore.delete(currentTokenKey(userId));
    },

    /** Takes the token (one use, atomic); its binding when it is the user's current one, else null. */
    async consume(token: string): Promise<{ userId: number; email: string } | null> {
      if (token.length > TOKEN_MAX_CHARS) return null;
      const hash = tokenHash(token);
      const stored = await codeStore.take(tokenKey(hash));
      if (stored === null) return null;
      let binding: { userId: number; email: string };
      try {
        binding = JSON.parse(stored) as { userId: number; email: string };
      } catch {
        return null;
      }
      if (!Number.isSafeInteger(binding.userId) || typeof binding.email !== 'string') return null;
      // Both sides are hashes from the store: a plain compare reveals nothing of a token.
      if ((await codeStore.get(currentTokenKey(binding.userId))) !== hash) return null;
      await codeStore.delete(currentTokenKey(binding.userId));
      return binding;
    },
  };
}

export type EmailTokens = ReturnType<typeof createEmailTokens>;

export interface EmailBindingDeps {
  users: UserRepository;
  codeStore: CodeStore;
  emailQueue: JobQueue<EmailJob>;
  tokens: EmailTokens;
  clock: Clock;
  settings: { EMAIL_SENDS_PER_USER_PER_HOUR: number; RATE_LIMITS: 'on' | 'off' };
}

/** PUT /emails/ and PUT /emails/verification/ (API.md §2 "User centre"). */
export function createEmailBinding(deps: EmailBindingDeps) {
  const { users, codeStore, emailQueue, tokens, clock, settings } = deps;
  return {
    async bind(user: User, body: unknown): Promise<string> {
      const { email } = requireStrings(body, ['email'] as const);
      if (email.length > 254 || !EMAIL_RULE.test(email)) throw new ApiError('EMAIL_INVALID');
      const limit = settings.EMAIL_SENDS_PER_USER_PER_HOUR;
      if (settings.RATE_LIMITS === 'on' && limit > 0) {
        const window = fixedWindow('email-user', String(user.id), 3600, clock.nowMs());
        if ((await codeStore.increment(window.key, window.ttlSeconds)) > limit)
          throw new ApiError('EMAIL_LIMIT', { retry_after: window.ttlSeconds });
      }
      await users.setEmail(user.id, email);
      await tokens.voidAll(user.id);
      try {
        await emailQueue.enqueue({ userId: user.id, email });
      } catch (err) {
        throw err instanceof DependencyError ? err : new DependencyError('queue', err);
      }
      return email;
    },

    async verify(token: string | undefined): Promise<string> {
      if (token === undefined || token === '') throw new ApiError('MISSING_PARAMS');
      const binding = await tokens.consume(token);
      if (!binding) throw new ApiError('EMAIL_TOKEN_INVALID');
      const user = await users.findById(binding.userId);
      if (!user?.isActive || user.email !== binding.email) throw new ApiError('EMAIL_TOKEN_INVALID');
      if (!(await users.activateEmail(user.id, binding.email))) throw new ApiError('EMAIL_TOKEN_INVALID');
      return binding.email;
    },
  };
}

export type EmailBinding = ReturnType<typeof createEmailBinding>;
