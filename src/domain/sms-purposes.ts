import { captchaMatches } from './captcha.js';
import type { DecisionRecorder } from './decision-records.js';
import { ApiError } from './errors.js';
import { KEY_PREFIX } from './keys.js';
import type { CheckCodeResult, Clock, CodeStore, IssueCodeInput, JobQueue, SmsPurpose } from './ports.js';
import { type RatioSettings, ratioCheck, ratioCredit } from './sms-abuse.js';
import type { SmsLists } from './sms-lists.js';
import {
  decisionsOf,
  imageCodeKey,
  issueAndQueue,
  smsQuotas,
  type VerificationSettings,
} from './verification.js';

/*
 * SMS codes of the user centre (API.md §2 "User centre", §3): the registration's rules under
 * keys of their own, so that a registration code never resets a password or changes a
 * mobile, nor the reverse.
 */

export const passwordResetCodeKey = (mobile: string) => `${KEY_PREFIX}reset-sms:${mobile}`;
const passwordResetFlagKey = (mobile: string) => `${KEY_PREFIX}reset-flag:${mobile}`;
const passwordResetAttemptsKey = (mobile: string) => `${KEY_PREFIX}reset-attempts:${mobile}`;
export const mobileChangeCodeKey = (mobile: string) => `${KEY_PREFIX}mobile-sms:${mobile}`;
const mobileChangeFlagKey = (mobile: string) => `${KEY_PREFIX}mobile-flag:${mobile}`;
const mobileChangeAttemptsKey = (mobile: string) => `${KEY_PREFIX}mobile-attempts:${mobile}`;

type CodePurpose = Extract<SmsPurpose, 'password_reset' | 'mobile_change'>;

const KEYS: Record<CodePurpose, (mobile: string) => { code: string; flag: string; attempts: string }> = {
  password_reset: (m) => ({
    code: passwordResetCodeKey(m),
    flag: passwordResetFlagKey(m),
    attempts: passwordResetAttemptsKey(m),
  }),
  mobile_change: (m) => ({
    code: mobileChangeCodeKey(m),
    flag: mobileChangeFlagKey(m),
    attempts: mobileChangeAttemptsKey(m),
  }),
};

export type PurposeSettings = Pick<
  VerificationSettings,
  | 'SMS_CODE_TTL_SECONDS'
  | 'SMS_RESEND_INTERVAL_SECONDS'
  | 'SMS_PER_MOBILE_PER_DAY'
  | 'SMS_PER_IP_PER_HOUR'
  | 'SMS_GLOBAL_PER_HOUR'
  | 'RATE_LIMITS'
  | 'TEST_CAPTCHA_ANSWER'
> & { SMS_CODE_MAX_ATTEMPTS: number } & RatioSettings;

export interface PurposeCodesDeps {
  codeStore: CodeStore;
  queue: JobQueue;
  clock: Clock;
  settings: PurposeSettings;
  newSmsCode: () => string;
  /** The SMS-abuse defence, as for registration codes (docs/operations.md). */
  lists: SmsLists;
  decisions: DecisionRecorder;
  log: { info(obj: object, msg: string): void };
  /** Whether the SMS provider has a template for the purpose (sendsPurpose). */
  canSend: (purpose: SmsPurpose) => boolean;
}

/**
 * The address behind a client key (limits' clientKey): IPv4 as it is, IPv6 by its /64's first
 * address, which is inside every range of /64 or wider and gives the same /48 prefix.
 */
function addressOf(client: string): string {
  return client.endsWith('/64') ? client.slice(0, -3) : client;
}

/** 13812345678 → 138****5678 (API.md: the answer of POST /password_reset/sms_codes/). */
export function maskedMobile(mobile: string): string {
  return `${mobile.slice(0, 3)}****${mobile.slice(-4)}`;
}

/** Image codes, issuing and checking the user centre's SMS codes. */
export function createPurposeCodes(deps: PurposeCodesDeps) {
  const { codeStore, clock, settings, lists } = deps;
  const limitsOn = settings.RATE_LIMITS === 'on';

  return {
    /**
     * Refuses (503 SMS_PURPOSE_NOT_CONFIGURED) a flow whose SMS has no template, before the
     * account is looked up or the image code spent: a code is never sent under another
     * purpose's text, and the answer says nothing about the account.
     */
    requireTemplates(...purposes: SmsPurpose[]): void {
      if (!purposes.every(deps.canSend)) throw new ApiError('SMS_PURPOSE_NOT_CONFIGURED');
    },

    /**
     * One use of the image code and its compare, alone: for an answer that must come after a
     * solved captcha but issues nothing (an unknown account).
     */
    async spendImageCode(imageCode: string, imageCodeId: string): Promise<void> {
      const stored = imageCodeId.length <= 128 ? await codeStore.take(imageCodeKey(imageCodeId)) : null;
      if (stored === null) throw new ApiError('IMAGE_CODE_EXPIRED');
      const testAnswer = settings.TEST_CAPTCHA_ANSWER;
      const right =
        captchaMatches(imageCode, stored) ||
        (testAnswer !== undefined && captchaMatches(imageCode, testAnswer));
      if (!right) throw new ApiError('IMAGE_CODE_WRONG');
    },

    /**
     * Flag, code and quotas in one atomic step, then the job; a job that cannot be queued
     * undoes the flag and the code (503). `binding` is stored before the code (`{binding}:{code}`).
     */
    async issue(
      purpose: CodePurpose,
      mobile: string,
      client: string,
      image: { code: string; id: string },
      binding?: string,
    ): Promise<void> {
      const keys = KEYS[purpose](mobile);
      const code = deps.newSmsCode();
      const ip = addressOf(client);
      const nowMs = clock.nowMs();
      // Lists and the unverified-code ratio ride in the same step, as for registration codes.
      const verdict = lists.current().match(mobile, ip, nowMs);
      const ratio = limitsOn && !verdict.allowed ? ratioCheck(mobile, ip, nowMs, settings) : null;
      // Requests past the captcha are recorded (docs/operations.md "Decision records").
      const record = decisionsOf(deps, { mobile, ip, purpose });
      // The resend block (before the image code is spent), one use of the image code, its
      // compare, quotas, lists, ratio, flag and code: one atomic step, as for registration codes.
      const issue: IssueCodeInput = {
        flagKey: keys.flag,
        flagTtlSeconds: settings.SMS_RESEND_INTERVAL_SECONDS,
        imageKey: imageCodeKey(image.id.length <= 128 ? image.id : ''),
        guess: image.code,
        alsoAccept: settings.TEST_CAPTCHA_ANSWER,
        codeKey: keys.code,
        code: binding === undefined ? code : `${binding}:${code}`,
        codeTtlSeconds: settings.SMS_CODE_TTL_SECONDS,
        attemptsKey: keys.attempts,
        quotas: smsQuotas(settings, nowMs, mobile, client),
        blocked: verdict.blocked !== null,
        ratio,
      };
      await issueAndQueue(
        deps,
        issue,
        { mobile, purpose },
        { blockedKind: verdict.blocked?.kind, ratioMode: settings.SMS_RATIO_MODE },
        record,
      );
    },

    /** Atomic guess (constant time, counted); throws SMS_CODE_EXPIRED / SMS_CODE_WRONG. */
    async check(purpose: CodePurpose, mobile: string, guess: string): Promise<void> {
      const keys = KEYS[purpose](mobile);
      const result: CheckCodeResult = await codeStore.checkCode({
        codeKey: keys.code,
        attemptsKey: keys.attempts,
        guess,
        maxAttempts: settings.SMS_CODE_MAX_ATTEMPTS,
        // A right code counts as verified for the ratio rule, in the same step.
        credit: ratioCredit(mobile, clock.nowMs(), settings),
      });
      if (result.kind === 'expired') throw new ApiError('SMS_CODE_EXPIRED');
      if (result.kind === 'wrong')
        throw new ApiError('SMS_CODE_WRONG', { attempts_left: result.attemptsLeft });
    },

    /** The code has served its one use. */
    async spend(purpose: CodePurpose, mobile: string): Promise<void> {
      const keys = KEYS[purpose](mobile);
      await codeStore.delete(keys.code, keys.attempts);
    },
  };
}

export type PurposeCodes = ReturnType<typeof createPurposeCodes>;
