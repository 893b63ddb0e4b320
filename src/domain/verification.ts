import { randomInt } from 'node:crypto';
import { generateCaptchaText } from './captcha.js';
import { type DecisionRecorder, decisionId as newDecisionId, recordMask } from './decision-records.js';
import { ApiError, DependencyError, type ErrorId } from './errors.js';
import { KEY_PREFIX } from './keys.js';
import { chinaDayWindow, createLimiter, fixedWindow, quota } from './limits.js';
import type {
  CaptchaImage,
  CaptchaRenderer,
  Clock,
  CodeStore,
  IssueCodeInput,
  IssueResult,
  JobQueue,
  Quota,
  SmsJob,
  SmsPurpose,
} from './ports.js';
import { type RatioSettings, ratioCheck } from './sms-abuse.js';
import type { SmsLists } from './sms-lists.js';

/** Django's own key names (API.md §3): no prefix, plain values. */
export const imageCodeKey = (uuid: string) => `img_${uuid}`;
export const smsCodeKey = (mobile: string) => `sms_${mobile}`;
export const sendFlagKey = (mobile: string) => `send_flag_${mobile}`;
/** Ours, under the service's prefix. */
export const smsAttemptsKey = (mobile: string) => `${KEY_PREFIX}sms-attempts:${mobile}`;

export const UUID_RULE = /^[A-Za-z0-9_-]{1,64}$/;
export const MOBILE_RULE = /^1[3-9]\d{9}$/;

export interface VerificationSettings extends RatioSettings {
  IMAGE_CODE_TTL_SECONDS: number;
  SMS_CODE_TTL_SECONDS: number;
  SMS_RESEND_INTERVAL_SECONDS: number;
  SMS_PER_MOBILE_PER_DAY: number;
  SMS_PER_IP_PER_HOUR: number;
  SMS_GLOBAL_PER_HOUR: number;
  IMAGE_CODES_PER_IP_PER_MINUTE: number;
  RATE_LIMITS: 'on' | 'off';
  TEST_CAPTCHA_ANSWER?: string | undefined;
  testSmsNumbers: Map<string, string>;
}

export interface VerificationDeps {
  codeStore: CodeStore;
  queue: JobQueue;
  captcha: CaptchaRenderer;
  clock: Clock;
  settings: VerificationSettings;
  /** Block/allow lists, matched in-process (no round trip). */
  lists: SmsLists;
  /** Decision records, written in batches off the request path. */
  decisions: DecisionRecorder;
  log: { info(obj: object, msg: string): void };
  /** 6-digit code source; cryptographically random by default. */
  newSmsCode?: () => string;
  newCaptchaText?: () => string;
}

export interface SmsRequest {
  mobile: string;
  imageCode: string | undefined;
  imageCodeId: string | undefined;
  /** Client key from clientKey(): IPv4 or IPv6 /64. */
  client: string;
  /** The client's address as seen, for the IP prefix of the ratio rule, the lists and the record. */
  ip: string;
}

const randomSmsCode = () => String(randomInt(0, 1_000_000)).padStart(6, '0');

/** Records one of an SMS request's decisions and returns the record's id (`id` when given). */
export type RecordDecision = (
  decision: 'sent' | 'refused' | 'failed',
  rule: string | null,
  detail?: string | null,
  id?: string,
) => string;

/**
 * The decisions of one SMS request past the captcha (docs/operations.md "Decision records"):
 * each is recorded, and anything but a plain send is also logged, with the mobile masked.
 */
export function decisionsOf(
  deps: Pick<VerificationDeps, 'decisions' | 'log'>,
  request: { mobile: string; ip: string; purpose: SmsPurpose },
): RecordDecision {
  const { mobile, purpose } = request;
  return (decision, rule, detail = null, given) => {
    const id = deps.decisions.decide({ ...request, decision, rule, detail, id: given });
    if (decision !== 'sent' || detail !== null) {
      const sms = { mobile: recordMask(mobile), purpose, decision, rule, detail, record: id };
      deps.log.info({ sms }, 'sms decision');
    }
    return id;
  };
}

/**
 * The atomic issue step's answer as the request's, whatever the code is for: a refusal throws
 * its error (recorded once the captcha was solved; refusals before it cost the sender nothing);
 * a block in the ratio rule's silent mode is recorded and gives null (answered as a send, so
 * the sender learns nothing); an issued code is recorded as sent and gives its record's id.
 */
function settleIssue(
  result: IssueResult,
  context: {
    blockedKind: string | undefined;
    ratioMode: RatioSettings['SMS_RATIO_MODE'];
    /** The id the `sent` record takes (the job already carries it). */
    decisionId?: string;
  },
  record: RecordDecision,
): string | null {
  switch (result.kind) {
    case 'flagged':
      throw new ApiError('SMS_TOO_FREQUENT', { retry_after: result.retryAfterSeconds });
    case 'expired':
      throw new ApiError('IMAGE_CODE_EXPIRED');
    case 'wrong':
      throw new ApiError('IMAGE_CODE_WRONG');
    case 'limited':
      record('refused', `quota:${result.id}`);
      throw new ApiError(result.id as ErrorId, { retry_after: result.retryAfterSeconds });
    case 'blocked': {
      const rule =
        result.by === 'list' ? `block-list:${context.blockedKind ?? 'entry'}` : `ratio:${result.by}`;
      const silent = result.by !== 'list' && context.ratioMode === 'silent';
      record('refused', rule, silent ? 'silent' : null);
      if (silent) return null;
      throw new ApiError('SMS_BLOCKED');
    }
    case 'issued':
      return record(
        'sent',
        null,
        result.ratioTripped ? `record-only:ratio:${result.ratioTripped}` : null,
        context.decisionId,
      );
    case 'unqueued':
      // The store took the flag and the code back in the same step: nothing was issued.
      record('failed', 'queue', null, context.decisionId);
      throw new DependencyError('queue', new Error(result.reason));
  }
}

/**
 * The atomic issue step and the job of an SMS request of any purpose. Where the queue can ride
 * in the code store's step (the same Redis database) both are one script and one round trip;
 * otherwise the job is queued after the code is issued, and the code undone if it cannot be.
 * Gives nothing back: a refusal throws (settleIssue), a silent block sends nothing.
 */
export async function issueAndQueue(
  deps: Pick<VerificationDeps, 'queue' | 'codeStore'>,
  input: IssueCodeInput,
  job: Omit<SmsJob, 'decisionId'>,
  context: { blockedKind: string | undefined; ratioMode: RatioSettings['SMS_RATIO_MODE'] },
  record: RecordDecision,
): Promise<void> {
  // The job names its decision record before the record is written (one id, made here).
  const queued: SmsJob = { ...job, decisionId: newDecisionId() };
  const step = await deps.queue.scriptedEnqueue?.(queued);
  const result = await deps.codeStore.issueCode(step ? { ...input, enqueue: step } : input);
  const decisionId = settleIssue(result, { ...context, decisionId: queued.decisionId }, record);
  if (decisionId !== null && !step) {
    await enqueueOrUndo(deps, queued, { flag: input.flagKey, code: input.codeKey }, record);
  }
}

/** Queues the send; a job that cannot be queued must not leave a flag or code without a send (503). */
async function enqueueOrUndo(
  deps: Pick<VerificationDeps, 'queue' | 'codeStore'>,
  job: SmsJob,
  issuedKeys: { flag: string; code: string },
  record: RecordDecision,
): Promise<void> {
  try {
    await deps.queue.enqueue(job);
  } catch (err) {
    record('failed', 'queue');
    await deps.codeStore.delete(issuedKeys.flag, issuedKeys.code).catch(() => {});
    throw err instanceof DependencyError ? err : new DependencyError('queue', err);
  }
}

/**
 * The SMS quotas of API.md §4 for one send, whatever its purpose: they count the messages a
 * phone, an address and the service receive. Test numbers obey the per-IP limit only.
 */
export function smsQuotas(
  settings: Pick<
    VerificationSettings,
    'RATE_LIMITS' | 'SMS_PER_IP_PER_HOUR' | 'SMS_PER_MOBILE_PER_DAY' | 'SMS_GLOBAL_PER_HOUR'
  >,
  nowMs: number,
  mobile: string,
  client: string,
  testNumber = false,
): Quota[] {
  if (settings.RATE_LIMITS !== 'on') return [];
  const quotas: Quota[] = [];
  if (settings.SMS_PER_IP_PER_HOUR > 0) {
    quotas.push(
      quota(fixedWindow('sms-ip', client, 3600, nowMs), settings.SMS_PER_IP_PER_HOUR, 'SMS_IP_LIMIT'),
    );
  }
  if (!testNumber && settings.SMS_PER_MOBILE_PER_DAY > 0) {
    quotas.push(
      quota(chinaDayWindow('sms-mobile', mobile, nowMs), settings.SMS_PER_MOBILE_PER_DAY, 'SMS_DAILY_LIMIT'),
    );
  }
  if (!testNumber && settings.SMS_GLOBAL_PER_HOUR > 0) {
    quotas.push(
      quota(
        fixedWindow('sms-global', 'all', 3600, nowMs),
        settings.SMS_GLOBAL_PER_HOUR,
        'SMS_BUDGET_EXHAUSTED',
      ),
    );
  }
  return quotas;
}

/** Image codes and SMS codes: GET /image_codes/ and GET /sms_codes/ (API.md §2). */
export function createVerification(deps: VerificationDeps) {
  const { codeStore, captcha, clock, settings, lists } = deps;
  const newSmsCode = deps.newSmsCode ?? randomSmsCode;
  const newCaptchaText = deps.newCaptchaText ?? (() => generateCaptchaText());
  const limitsOn = settings.RATE_LIMITS === 'on';
  const limiter = createLimiter({ codeStore, clock, enabled: limitsOn });

  return {
    async imageCode(uuid: string, client: string): Promise<CaptchaImage> {
      if (!UUID_RULE.test(uuid)) throw new ApiError('UUID_INVALID');
      await limiter.countAgainst(
        'img-ip',
        client,
        settings.IMAGE_CODES_PER_IP_PER_MINUTE,
        60,
        'IMAGE_CODE_LIMIT',
      );
      const text = newCaptchaText();
      const image = await captcha.render(text);
      await codeStore.set(imageCodeKey(uuid), text, settings.IMAGE_CODE_TTL_SECONDS);
      return image;
    },

    async sendSmsCode(request: SmsRequest): Promise<{ resendAfterSeconds: number }> {
      const { mobile, imageCode, imageCodeId, client, ip } = request;
      if (!MOBILE_RULE.test(mobile)) throw new ApiError('MOBILE_INVALID');
      // 1. parameters
      if (!imageCode || !imageCodeId) throw new ApiError('MISSING_PARAMS');
      const flagKey = sendFlagKey(mobile);
      // From here on each request is recorded: a solved captcha bounds how many there can be.
      const record = decisionsOf(deps, { mobile, ip, purpose: 'register' });
      // 2–6 in one atomic step (one round trip on Redis): the resend block (before the image
      // code is spent), one use of the image code even when the guess is wrong, the
      // case-insensitive constant-time compare, quotas, lists, the unverified-code ratio,
      // then flag + code. (An id outside the uuid rule names no image code: none was stored.)
      const nowMs = clock.nowMs();
      const testCode = settings.testSmsNumbers.get(mobile);
      const verdict = lists.current().match(mobile, ip, nowMs);
      // Allowed entries and test numbers are outside the ratio rule (neither checked nor counted).
      const ratio =
        limitsOn && testCode === undefined && !verdict.allowed
          ? ratioCheck(mobile, ip, nowMs, settings)
          : null;
      const issue: IssueCodeInput = {
        flagKey,
        flagTtlSeconds: settings.SMS_RESEND_INTERVAL_SECONDS,
        imageKey: imageCodeKey(imageCodeId),
        guess: imageCode,
        alsoAccept: settings.TEST_CAPTCHA_ANSWER,
        codeKey: smsCodeKey(mobile),
        code: testCode ?? newSmsCode(),
        codeTtlSeconds: settings.SMS_CODE_TTL_SECONDS,
        attemptsKey: smsAttemptsKey(mobile),
        quotas: smsQuotas(settings, nowMs, mobile, client, testCode !== undefined),
        blocked: verdict.blocked !== null,
        ratio,
      };
      // 7. enqueue, in the same step where it can be (a silent-mode block answers as a send
      // and sends nothing)
      await issueAndQueue(
        deps,
        issue,
        { mobile, purpose: 'register' },
        { blockedKind: verdict.blocked?.kind, ratioMode: settings.SMS_RATIO_MODE },
        record,
      );
      return { resendAfterSeconds: settings.SMS_RESEND_INTERVAL_SECONDS };
    },
  };
}

export type Verification = ReturnType<typeof createVerification>;
