/**
 * The job "send SMS code". It carries only the mobile and the purpose: the code is read from
 * the store when the job runs, so a queue (Redis, its backups, its dashboards) never holds a
 * code, and a job whose code expired or was used in the meantime sends nothing. Each purpose
 * reads its own key (a registration code never resets a password); `mobile_changed` is a
 * notice without a code.
 */
import type { Logger } from 'pino';
import type {
  CodeStore,
  JobKind,
  JobOutcome,
  SmsJob,
  SmsJobHandler,
  SmsProvider,
  SmsPurpose,
} from '../domain/ports.js';
import { sendsPurpose } from '../domain/ports.js';
import { maskMobile } from '../domain/sms-abuse.js';
import { mobileChangeCodeKey, passwordResetCodeKey } from '../domain/sms-purposes.js';
import { smsCodeKey } from '../domain/verification.js';

/** The fields a queued job keeps: whatever else a caller's object holds stays out of the queue. */
export function jobData(job: SmsJob): SmsJob {
  const data: SmsJob = { mobile: job.mobile, purpose: job.purpose };
  if (typeof job.decisionId === 'string') data.decisionId = job.decisionId;
  return data;
}

/** The BullMQ queue and job name (and the in-process queue's log name). */
export const SEND_SMS_JOB = 'send-sms-code';

export const SMS_JOB_KIND: JobKind<SmsJob> = {
  name: SEND_SMS_JOB,
  label: 'sms',
  pick: jobData,
  logFields: (job) => ({
    mobile: maskMobile(job.mobile),
    ...(job.purpose === 'register' ? {} : { purpose: job.purpose }),
  }),
};

/** Where each purpose's code is; null for a notice. */
function codeKeyOf(purpose: SmsPurpose, mobile: string): string | null {
  switch (purpose) {
    case 'register':
      return smsCodeKey(mobile);
    case 'password_reset':
      return passwordResetCodeKey(mobile);
    case 'mobile_change':
      return mobileChangeCodeKey(mobile);
    case 'mobile_changed':
      return null;
  }
}

export interface SendSmsDeps {
  codeStore: CodeStore;
  sms: SmsProvider;
  log: Logger;
  codeTtlSeconds: number;
  /** Test mode: these mobiles have fixed codes and are never sent an SMS. */
  testNumbers: Map<string, string>;
}

export function createSendSmsHandler(deps: SendSmsDeps): SmsJobHandler {
  const { codeStore, sms, testNumbers } = deps;
  // The text says "valid for N minutes"; never 0 for lifetimes under half a minute.
  const ttlMinutes = Math.max(1, Math.round(deps.codeTtlSeconds / 60));
  return async (job, info): Promise<JobOutcome> => {
    if (testNumbers.has(job.mobile)) {
      return { kind: 'skipped', provider: 'test-mode', detail: 'test number: no SMS is sent' };
    }
    const purpose: SmsPurpose = job.purpose ?? 'register';
    const key = codeKeyOf(purpose, job.mobile);
    // No template for the purpose (the web refuses such requests; a notice is skipped): never
    // sent with another purpose's text.
    if (!sendsPurpose(sms, purpose)) {
      return { kind: 'skipped', provider: sms.name, detail: `no template for ${purpose}` };
    }
    let code = '';
    if (key !== null) {
      // A store that is down throws here; the queue counts that as transient and retries.
      const stored = await codeStore.get(key);
      if (stored === null) {
        return { kind: 'skipped', provider: sms.name, detail: 'code expired or already used' };
      }
      // A mobile-change code is stored as `{user id}:{code}`, binding it to its user.
      code = stored.slice(stored.lastIndexOf(':') + 1);
    }
    // A run that lost its job (a Redis outage longer than the lock) leaves the send to the
    // run that has it now: the same code is not sent twice.
    if (info.stillHeld && !(await info.stillHeld())) {
      return { kind: 'skipped', provider: sms.name, detail: 'the job passed to another run before the send' };
    }
    return sms.send({
      mobile: job.mobile,
      code,
      ttlMinutes,
      purpose,
      // The job id is the same on every retry of this job, so vendors can drop duplicates.
      idempotencyKey: info.id,
    });
  };
}
