/**
 * The job "send SMS code". It carries only the mobile and the purpose: the code is read from
 * the store when the job runs, so a queue (Redis, its backups, its dashboards) never holds a
 * code, and a job whose code expired or was used in the meantime sends nothing.
 */
import type { Logger } from 'pino';
import type { CodeStore, JobOutcome, SmsJob, SmsJobHandler, SmsProvider } from '../domain/ports.js';
import { smsCodeKey } from '../domain/verification.js';

/** The fields a queued job keeps: whatever else a caller's object holds stays out of the queue. */
export function jobData(job: SmsJob): SmsJob {
  const data: SmsJob = { mobile: job.mobile, purpose: job.purpose };
  if (typeof job.decisionId === 'string') data.decisionId = job.decisionId;
  return data;
}

/** The BullMQ queue and job name (and the in-process queue's log name). */
export const SEND_SMS_JOB = 'send-sms-code';

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
    // A store that is down throws here; the queue counts that as transient and retries.
    const code = await codeStore.get(smsCodeKey(job.mobile));
    if (code === null) {
      return { kind: 'skipped', provider: sms.name, detail: 'code expired or already used' };
    }
    return sms.send({
      mobile: job.mobile,
      code,
      ttlMinutes,
      purpose: job.purpose,
      // The job id is the same on every retry of this job, so vendors can drop duplicates.
      idempotencyKey: info.id,
    });
  };
}
