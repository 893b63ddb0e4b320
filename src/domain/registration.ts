import { isObject } from './body.js';
import { ApiError } from './errors.js';
import type { Clock, CodeStore, PasswordHasher, User, UserRepository } from './ports.js';
import { type RatioSettings, ratioCredit } from './sms-abuse.js';
import { MOBILE_RULE, smsAttemptsKey, smsCodeKey } from './verification.js';

export const USERNAME_RULE = /^[a-zA-Z0-9_-]{5,20}$/;
/** Printable ASCII without the space, 8–20 characters. */
export const PASSWORD_RULE = /^[\x21-\x7e]{8,20}$/;

/** An all-digit name could collide with a mobile at login. */
export function usernameIsValid(username: string): boolean {
  return USERNAME_RULE.test(username) && !/^\d+$/.test(username);
}

const FIELDS = ['username', 'password', 'password2', 'mobile', 'sms_code', 'allow'] as const;

export interface RegistrationDeps {
  users: UserRepository;
  codeStore: CodeStore;
  hasher: PasswordHasher;
  clock: Clock;
  settings: { SMS_CODE_MAX_ATTEMPTS: number } & RatioSettings;
}

/** POST /register/: the twelve checks of API.md §2, in their order. */
export function createRegistration(deps: RegistrationDeps) {
  const { users, codeStore, hasher, clock, settings } = deps;

  return {
    async register(body: unknown): Promise<User> {
      if (!isObject(body)) throw new ApiError('BAD_JSON');
      for (const field of FIELDS) {
        const value = body[field];
        if (value === undefined || value === null || value === '') throw new ApiError('MISSING_PARAMS');
      }
      const { username, password, password2, mobile, sms_code: smsCode, allow } = body;
      if (
        typeof username !== 'string' ||
        typeof password !== 'string' ||
        typeof password2 !== 'string' ||
        typeof mobile !== 'string' ||
        typeof smsCode !== 'string' ||
        (typeof allow !== 'boolean' && typeof allow !== 'string')
      ) {
        throw new ApiError('BAD_REQUEST');
      }
      if (!usernameIsValid(username)) throw new ApiError('USERNAME_INVALID');
      if (!PASSWORD_RULE.test(password)) throw new ApiError('PASSWORD_INVALID');
      if (password2 !== password) throw new ApiError('PASSWORD_MISMATCH');
      if (!MOBILE_RULE.test(mobile)) throw new ApiError('MOBILE_INVALID');
      if (allow !== true && allow !== 'true') throw new ApiError('ALLOW_REQUIRED');

      const check = await codeStore.checkCode({
        codeKey: smsCodeKey(mobile),
        attemptsKey: smsAttemptsKey(mobile),
        guess: smsCode,
        maxAttempts: settings.SMS_CODE_MAX_ATTEMPTS,
        // A right code counts as verified for the ratio rule, in the same step.
        credit: ratioCredit(mobile, clock.nowMs(), settings),
      });
      if (check.kind === 'expired') throw new ApiError('SMS_CODE_EXPIRED');
      if (check.kind === 'wrong') throw new ApiError('SMS_CODE_WRONG', { attempts_left: check.attemptsLeft });

      const passwordHash = await hasher.hash(password);
      const created = await users.create({
        username,
        passwordHash,
        mobile,
        dateJoined: new Date(clock.nowMs()),
      });
      if (!created.ok) throw new ApiError(created.taken === 'username' ? 'USERNAME_EXISTS' : 'MOBILE_EXISTS');
      // The code has served its one use.
      await codeStore.delete(smsCodeKey(mobile), smsAttemptsKey(mobile));
      return created.user;
    },
  };
}

export type Registration = ReturnType<typeof createRegistration>;
