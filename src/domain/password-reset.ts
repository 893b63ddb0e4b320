import { isObject } from './body.js';
import { ApiError } from './errors.js';
import type { PasswordHasher, SessionStore, User, UserRepository } from './ports.js';
import { PASSWORD_RULE } from './registration.js';
import { maskedMobile, type PurposeCodes } from './sms-purposes.js';
import { MOBILE_RULE } from './verification.js';

export interface PasswordResetDeps {
  users: UserRepository;
  hasher: PasswordHasher;
  sessionStore: SessionStore;
  codes: PurposeCodes;
  settings: { SMS_RESEND_INTERVAL_SECONDS: number };
}

/** Throws MISSING_PARAMS / BAD_REQUEST unless every field is a non-empty string. */
function strings<K extends string>(body: unknown, fields: readonly K[]): Record<K, string> {
  if (!isObject(body)) throw new ApiError('BAD_JSON');
  for (const field of fields) {
    const value = body[field];
    if (value === undefined || value === null || value === '') throw new ApiError('MISSING_PARAMS');
  }
  for (const field of fields) if (typeof body[field] !== 'string') throw new ApiError('BAD_REQUEST');
  return body as Record<K, string>;
}

/** Password reset by SMS (API.md §2 "User centre": POST /password_reset/sms_codes/, /password_reset/). */
export function createPasswordReset(deps: PasswordResetDeps) {
  const { users, hasher, sessionStore, codes, settings } = deps;

  /** Looked up as at login: a mobile-shaped account by mobile, else by username. */
  async function accountUser(account: string): Promise<User | null> {
    if (account.length > 150) return null;
    const user = MOBILE_RULE.test(account)
      ? await users.findByMobile(account)
      : await users.findByUsername(account);
    return user?.isActive ? user : null;
  }

  return {
    async sendCode(body: unknown, client: string): Promise<{ mobile: string; resendAfterSeconds: number }> {
      const {
        account,
        image_code: imageCode,
        image_code_id: imageCodeId,
      } = strings(body, ['account', 'image_code', 'image_code_id'] as const);
      codes.requireTemplates('password_reset');
      const user = await accountUser(account);
      if (!user) {
        // No answer about the account without a solved, one-use captcha.
        await codes.spendImageCode(imageCode, imageCodeId);
        throw new ApiError('ACCOUNT_NOT_FOUND');
      }
      await codes.issue('password_reset', user.mobile, client, { code: imageCode, id: imageCodeId });
      return { mobile: maskedMobile(user.mobile), resendAfterSeconds: settings.SMS_RESEND_INTERVAL_SECONDS };
    },

    /** Sets the password and ends every session of the user. */
    async reset(body: unknown): Promise<void> {
      const {
        account,
        sms_code: smsCode,
        password,
        password2,
      } = strings(body, ['account', 'sms_code', 'password', 'password2'] as const);
      if (!PASSWORD_RULE.test(password)) throw new ApiError('PASSWORD_INVALID');
      if (password2 !== password) throw new ApiError('PASSWORD_MISMATCH');
      const user = await accountUser(account);
      // No such account has no code: the same answer as a code that expired.
      if (!user) throw new ApiError('SMS_CODE_EXPIRED');
      await codes.check('password_reset', user.mobile, smsCode);
      await users.updatePassword(user.id, await hasher.hash(password));
      await codes.spend('password_reset', user.mobile);
      await sessionStore.deleteAllForUser(user.id);
    },
  };
}

export { strings as requireStrings };
export type PasswordReset = ReturnType<typeof createPasswordReset>;
