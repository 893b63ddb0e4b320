/**
 * What both queue adapters do with a handler's outcome: retry it, end the job, and write the
 * one log line of the job's end. Shared so that the embedded queue and BullMQ act alike.
 */
import type { Logger } from 'pino';
import { type JobOutcome, RETRYABLE_OUTCOMES, type SendOutcomeKind } from '../../domain/ports.js';
import { maskMobile } from '../../domain/sms-abuse.js';

/** `retry`: attempt again later; `done`: ended well; `failed`: ended without a send. */
export type Disposition = 'done' | 'retry' | 'failed';

/**
 * ok and skipped are done; transient outcomes are retried while attempts remain;
 * permanent outcomes are not worth another attempt, and `unknown` may already have reached
 * the phone, so it is not blindly repeated either.
 */
export function dispose(outcome: JobOutcome, attempt: number, maxAttempts: number): Disposition {
  if (outcome.kind === 'ok' || outcome.kind === 'skipped') return 'done';
  if (RETRYABLE_OUTCOMES.has(outcome.kind as SendOutcomeKind) && attempt < maxAttempts) return 'retry';
  return 'failed';
}

/** A handler that throws has sent nothing we know of: transient, like a network error. */
export function outcomeOfError(err: unknown): JobOutcome {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { kind: 'transient', provider: 'handler', detail: `handler threw ${text.slice(0, 200)}` };
}

export { maskMobile };

export interface JobEnd {
  jobId: string;
  /** The job kind's log fields (JobKind.logFields: masked mobile, masked address, user id). */
  fields: Record<string, unknown>;
  /** "sms", "email": the start of the message. */
  label?: string;
  outcome: JobOutcome;
  /** Attempts used, the last one included. */
  attempts: number;
  /** Started again after its worker was lost: the SMS may have gone out twice. */
  repeat?: boolean;
  /** Why the job ended other than by its outcome (attempts exhausted, dropped on close). */
  reason?: string;
}

/** The one line that records how a job ended. Never the code: it is not in anything passed here. */
export function logJobEnd(log: Logger, end: JobEnd): void {
  const { outcome } = end;
  const fields = {
    jobId: end.jobId,
    ...end.fields,
    outcome: outcome.kind,
    provider: outcome.provider,
    attempts: end.attempts,
    ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
    ...('messageId' in outcome && outcome.messageId !== undefined ? { messageId: outcome.messageId } : {}),
    ...(end.repeat ? { repeat: true } : {}),
    ...(end.reason === undefined ? {} : { reason: end.reason }),
  };
  const label = end.label ?? 'sms';
  const msg = end.repeat ? `${label} job finished (possible duplicate send)` : `${label} job finished`;
  if (outcome.kind === 'ok' || outcome.kind === 'skipped') log.info(fields, msg);
  else if (outcome.kind === 'config_error') log.error(fields, msg);
  else log.warn(fields, msg);
}
