import type { Logger } from 'pino';
import type { Accounts } from './accounts.js';
import { ApiError } from './errors.js';
import { requireStrings } from './password-reset.js';
import type { JobQueue, User, UserRepository } from './ports.js';
import type { PurposeCodes } from './sms-purposes.js';
import { MOBILE_RULE } from './verification.js';

export interface MobileChangeDeps {
  accounts: Accounts;
  users: UserRepository;
  queue: JobQueue;
  codes: PurposeCodes;
  log: Pick<Logger, 'warn'>;
  settings: { SMS_RESEND_INTERVAL_SECONDS: number };
}

/** Mobile change (API.md §2 "User centre": POST /mobile/sms_codes/, PUT /mobile/). */
export function createMobileChange(deps: MobileChangeDeps) {
  const { accounts, users, queue, codes, log, settings } = deps;

  return {
    async sendCode(user: User, body: unknown, client: string): Promise<{ resendAfterSeconds: number }> {
      const {
        mobile,
        password,
        image_code: imageCode,
        image_code_id: imageCodeId,
      } = requireStrings(body, ['mobile', 'password', 'image_code', 'image_code_id'] as const);
      // The old number must be told of the change: without a notice template, no change starts.
      codes.requireTemplates('mobile_change', 'mobile_changed');
      if (!MOBILE_RULE.test(mobile)) throw new ApiError('MOBILE_INVALID');
      if (mobile === user.mobile) throw new ApiError('MOBILE_UNCHANGED');
      if (!(await accounts.reauthenticate(user, password, client))) throw new ApiError('PASSWORD_WRONG');
      if ((await users.countByMobile(mobile)) > 0) throw new ApiError('MOBILE_EXISTS');
      // The code is stored as `{user id}:{code}`: only the user who asked can use it.
      await codes.issue(
        'mobile_change',
        mobile,
        client,
        { code: imageCode, id: imageCodeId },
        String(user.id),
      );
      return { resendAfterSeconds: settings.SMS_RESEND_INTERVAL_SECONDS };
    },

    async change(user: User, body: unknown): Promise<string> {
      const { mobile, sms_code: smsCode } = requireStrings(body, ['mobile', 'sms_code'] as const);
      if (!MOBILE_RULE.test(mobile)) throw new ApiError('MOBILE_INVALID');
      if (mobile === user.mobile) throw new ApiError('MOBILE_UNCHANGED');
      await codes.check('mobile_change', mobile, `${user.id}:${smsCode}`);
      if (!(await users.updateMobile(user.id, mobile))) throw new ApiError('MOBILE_EXISTS');
      await codes.spend('mobile_change', mobile);
      // The old number is told; the change stands even when the notice cannot be queued.
      await queue.enqueue({ mobile: user.mobile, purpose: 'mobile_changed' }).catch((err: unknown) => {
        log.warn(
          { err: { message: (err as Error).message } },
          'mobile changed: the notice to the old number was not queued',
        );
      });
      return mobile;
    },
  };
}

export type MobileChange = ReturnType<typeof createMobileChange>;
