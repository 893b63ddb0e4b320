/**
 * The embedded default's queue: jobs live in this process's memory and run in it. Nothing
 * survives a restart — acceptable for one process whose codes live 5 minutes; production uses
 * BullMQ.
 *
 * Shutdown (close): new jobs are refused; jobs running and jobs already due (waiting only for a
 * free slot) are run to their end; retries still waiting for their backoff are dropped, each
 * one logged with its last outcome, plus one warning with their number. Waiting for them
 * could hold a shutdown for minutes, and a fresh process would not see them anyway; the user
 * can ask for a new code once the resend interval is over.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DependencyError } from '../../domain/errors.js';
import type { FailedJob, JobHandler, JobKind, JobOutcome, JobQueue, SmsJob } from '../../domain/ports.js';
import { SMS_JOB_KIND } from '../../jobs/send-sms.js';
import { retryDelayMs } from './backoff.js';
import { dispose, logJobEnd, outcomeOfError } from './outcome.js';

/** Runs `callback` after `delayMs`; returns a function that cancels it. */
export type SetTimer = (callback: () => void, delayMs: number) => () => void;

/** setTimeout, unref'd: a pending retry alone never keeps the process alive. */
export const realTimer: SetTimer = (callback, delayMs) => {
  const timer = setTimeout(callback, delayMs);
  timer.unref();
  return () => clearTimeout(timer);
};

export interface InProcessQueueOptions {
  log: Logger;
  /** Attempts in total for retryable outcomes (1 = never retry). */
  attempts: number;
  /** First retry delay; doubles each retry, with jitter (see backoff.ts). */
  backoffMs: number;
  random?: () => number;
  setTimer?: SetTimer;
  /** Stamps enqueue and failure times (default Date.now). */
  nowMs?: () => number;
}

/** Failed jobs kept for the admin API, as BullMQ keeps them (BULLMQ_DEFAULTS). */
const KEEP_FAILED_COUNT = 1000;
const KEEP_FAILED_MS = 7 * 24 * 3600 * 1000;

interface Entry<J> {
  id: string;
  job: J;
  attempt: number;
  enqueuedAtMs: number;
  /** Outcome of the attempt before, for the log line if the job is dropped. */
  last?: JobOutcome;
}

export function createInProcessQueue(options: InProcessQueueOptions): JobQueue<SmsJob>;
export function createInProcessQueue<J>(options: InProcessQueueOptions, kind: JobKind<J>): JobQueue<J>;
export function createInProcessQueue<J>(
  options: InProcessQueueOptions,
  kind: JobKind<J> = SMS_JOB_KIND as unknown as JobKind<J>,
): JobQueue<J> {
  const { log, attempts, backoffMs } = options;
  const random = options.random ?? Math.random;
  const setTimer = options.setTimer ?? realTimer;
  const nowMs = options.nowMs ?? Date.now;

  const due: Entry<J>[] = [];
  /** Retries waiting for their backoff, with the function that cancels the timer. */
  const backingOff = new Map<Entry<J>, () => void>();
  /** Ended without a send, oldest first (a Map keeps insertion order). */
  const failed = new Map<string, FailedJob<J>>();
  const pruneFailed = (): void => {
    const oldest = nowMs() - KEEP_FAILED_MS;
    for (const [id, f] of failed) {
      if (failed.size <= KEEP_FAILED_COUNT && f.failedAtMs >= oldest) break;
      failed.delete(id);
    }
  };
  let handler: JobHandler<J> | undefined;
  let concurrency = 0;
  let running = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  let onIdle: (() => void) | undefined;

  const drop = (entry: Entry<J>, outcome: JobOutcome, reason: string, attemptsUsed: number): void => {
    logJobEnd(log, {
      jobId: entry.id,
      fields: kind.logFields(entry.job),
      label: kind.label,
      outcome,
      attempts: attemptsUsed,
      reason,
    });
  };

  const settle = (): void => {
    if (onIdle && running === 0 && (due.length === 0 || !handler)) onIdle();
  };

  const pump = (): void => {
    while (handler && running < concurrency && due.length > 0) {
      const entry = due.shift() as Entry<J>;
      running++;
      void run(entry, handler).finally(() => {
        running--;
        pump();
        settle();
      });
    }
  };

  const run = async (entry: Entry<J>, handle: JobHandler<J>): Promise<void> => {
    let outcome: JobOutcome;
    try {
      // Promise.resolve().then: a handler that throws before returning a promise is caught too.
      outcome = await Promise.resolve().then(() =>
        handle(entry.job, {
          id: entry.id,
          attempt: entry.attempt,
          maxAttempts: attempts,
          enqueuedAtMs: entry.enqueuedAtMs,
        }),
      );
    } catch (err) {
      outcome = outcomeOfError(err);
    }
    const disposition = dispose(outcome, entry.attempt, attempts);
    if (disposition !== 'retry') {
      const exhausted = disposition === 'failed' && entry.attempt >= attempts && attempts > 1;
      const reason = exhausted && outcome.kind !== 'unknown' ? 'attempts exhausted' : undefined;
      logJobEnd(log, {
        jobId: entry.id,
        fields: kind.logFields(entry.job),
        label: kind.label,
        outcome,
        attempts: entry.attempt,
        ...(reason === undefined ? {} : { reason }),
      });
      if (disposition === 'failed') {
        const detail = outcome.detail ? `: ${outcome.detail}` : '';
        failed.set(entry.id, {
          id: entry.id,
          job: entry.job,
          attempts: entry.attempt,
          reason: `${outcome.kind}${detail} (${reason ?? 'not retried'})`,
          failedAtMs: nowMs(),
        });
        pruneFailed();
      }
      return;
    }
    if (closed) {
      drop(entry, outcome, 'queue closed before the retry', entry.attempt);
      log.warn({ dropped: 1 }, 'in-process queue closed: a retry was dropped');
      return;
    }
    const delayMs = retryDelayMs(entry.attempt, backoffMs, random);
    log.info(
      { jobId: entry.id, outcome: outcome.kind, provider: outcome.provider, attempt: entry.attempt, delayMs },
      `${kind.label} job will be retried`,
    );
    const next: Entry<J> = { ...entry, attempt: entry.attempt + 1, last: outcome };
    // Registered before the timer starts: an injected timer may fire at once.
    backingOff.set(next, () => {});
    const cancel = setTimer(() => {
      if (!backingOff.delete(next)) return;
      due.push(next);
      pump();
    }, delayMs);
    if (backingOff.has(next)) backingOff.set(next, cancel);
  };

  return {
    async enqueue(job) {
      if (closed) throw new DependencyError('queue', new Error('the in-process queue is closed'));
      due.push({ id: randomUUID(), job: kind.pick(job), attempt: 1, enqueuedAtMs: nowMs() });
      pump();
    },

    startWorker(h, n) {
      if (handler) throw new Error('the in-process queue already has a worker');
      if (closed) throw new Error('the in-process queue is closed');
      handler = h;
      concurrency = Math.max(1, Math.floor(n));
      pump();
    },

    async ping() {},

    async counts() {
      pruneFailed();
      return { waiting: due.length, active: running, delayed: backingOff.size, failed: failed.size };
    },

    async failedJobs(limit, offset) {
      pruneFailed();
      return [...failed.values()].reverse().slice(offset, offset + limit);
    },

    async retryFailed(id) {
      const f = failed.get(id);
      if (!f || closed) return false;
      failed.delete(id);
      // The same id: a vendor that deduplicates by it sees one message, as with BullMQ.
      due.push({ id, job: f.job, attempt: 1, enqueuedAtMs: nowMs() });
      pump();
      return true;
    },

    async discardFailed(id) {
      return failed.delete(id);
    },

    close() {
      if (closing) return closing;
      closed = true;
      const dropped = [...backingOff.entries()];
      backingOff.clear();
      for (const [entry, cancel] of dropped) {
        cancel();
        const last = entry.last ?? { kind: 'transient', provider: 'none' };
        drop(entry, last, 'queue closed during the backoff', entry.attempt - 1);
      }
      if (!handler) {
        for (const entry of due.splice(0)) {
          const never: JobOutcome = { kind: 'skipped', provider: 'none', detail: 'never run' };
          drop(entry, never, 'queue closed before a worker started', 0);
          dropped.push([entry, () => {}]);
        }
      }
      if (dropped.length > 0) {
        log.warn(
          { dropped: dropped.length },
          'in-process queue closed: jobs not run to their end were dropped',
        );
      }
      closing = new Promise<void>((resolve) => {
        onIdle = resolve;
        settle();
      });
      return closing;
    },
  };
}
