/**
 * Production queue: BullMQ on Redis, any number of web processes enqueueing and any number of
 * workers consuming.
 *
 * - enqueue fails fast: the producer connection has no offline queue, so while Redis is down
 *   a call rejects within the readiness wait (src/adapters/redis.ts), and the
 *   route can undo its step and answer 503. It never hangs. An add that times out may still
 *   land later; its job then finds the code gone (the route undid it) and ends as skipped.
 * - A job holds {mobile, purpose} only and gets a random id: the idempotency key handed to
 *   vendors, stable across retries and never reused by a fresh Redis.
 * - transient outcomes are retried with exponential backoff and jitter (backoff.ts via a
 *   custom BullMQ strategy); permanent and unknown outcomes fail at once (UnrecoverableError).
 *   Completed jobs are removed; failed jobs are kept 7 days (at most 1000).
 * - Delivery is at least once. A worker killed mid-job holds its jobs only until its lock
 *   expires (`lockDurationMs`); the stalled check (every `stalledIntervalMs`) then hands them
 *   to another worker. Such a repeat is detected with a per-attempt start counter kept in the
 *   job's hash and logged as a possible duplicate send. A run that has lasted half its lock or
 *   more (Redis unreachable while it read the code, say) asks Redis whether it still holds the
 *   job before the send (JobInfo.stillHeld); when the lock lapsed meanwhile it sends nothing and
 *   leaves the job to the run the stalled check starts, so an outage longer than the lock does
 *   not send the same code twice.
 * - close() lets the worker finish the jobs in hand (bounded by `closeTimeoutMs`, after which
 *   their locks lapse and other workers take them over), then closes the connections.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { withDeadline } from '../../deadline.js';
import { DependencyError } from '../../domain/errors.js';
import type { JobHandler, JobKind, JobOutcome, JobQueue, SmsJob } from '../../domain/ports.js';
import { SMS_JOB_KIND } from '../../jobs/send-sms.js';
import { awaitReplicas, duplicateRedis, type ReplicaAcks, whenReady } from '../redis.js';
import { retryDelayMs } from './backoff.js';
import { dispose, logJobEnd, outcomeOfError } from './outcome.js';

export interface BullmqQueueOptions {
  /**
   * The producer's connection (connectRedis, `command` mode); the worker opens its own
   * alike in `blocking` mode. The queue closes both.
   */
  connection: Redis;
  /** Every BullMQ key starts with `{prefix}:`. */
  prefix: string;
  log: Logger;
  /** Attempts in total for retryable outcomes (1 = never retry). */
  attempts: number;
  /** First retry delay; doubles each retry, with jitter. */
  backoffMs: number;
  /** A lost worker's jobs are taken over after about this plus stalledIntervalMs. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /**
   * A run older than this asks Redis whether it still holds its job before sending (default
   * half of lockDurationMs: a younger run cannot have lost its lock, which spares the common
   * case a round trip).
   */
  lockCheckAfterMs?: number;
  /** Longest wait for Redis to answer an add or a ping (after the readiness wait). */
  enqueueTimeoutMs?: number;
  /** Replicas that must hold a new job before enqueue succeeds (see awaitReplicas). */
  acks?: ReplicaAcks;
  /** Longest wait of close() for the jobs in hand. */
  closeTimeoutMs?: number;
  /**
   * The code store lives on the same Redis database: scriptedEnqueue() hands it the add as a
   * step of its issue script (one round trip, the job exists exactly when the code does).
   */
  sharesCodeStoreDatabase?: boolean;
  random?: () => number;
}

export const BULLMQ_DEFAULTS = {
  lockDurationMs: 5000,
  stalledIntervalMs: 2000,
  enqueueTimeoutMs: 1500,
  closeTimeoutMs: 10_000,
  /** Times a job may lose its worker before it is failed (a job that kills every worker). */
  maxStalledCount: 2,
  keepFailedSeconds: 7 * 24 * 3600,
  keepFailedCount: 1000,
} as const;

interface BullmqScript {
  name: string;
  content: string;
  keys: number;
}

/** BullMQ's own Lua scripts by name (the ones its Queue runs), loaded on first need. */
let bullmqScripts: Map<string, BullmqScript> | undefined;
function bullmqScript(name: string): BullmqScript | undefined {
  bullmqScripts ??= new Map(
    Object.values(
      createRequire(import.meta.url)('bullmq/dist/cjs/scripts/index.js') as Record<string, BullmqScript>,
    ).map((script) => [script.name, script]),
  );
  return bullmqScripts.get(name);
}

/** Answers BullMQ's one command with `reply` and keeps its name and arguments. */
function recordingClient(reply: string) {
  const seen: { command?: string; args?: Array<string | Buffer> } = {};
  const client = {
    runCommand(command: string, args: Array<string | Buffer>) {
      seen.command = command;
      seen.args = args;
      return Promise.resolve(reply);
    },
  };
  return { client, seen };
}

/** Marks the errors the processor throws on purpose, so the `failed` listener skips them. */
const ours = new WeakSet<Error>();

export function createBullmqQueue(options: BullmqQueueOptions): JobQueue<SmsJob>;
export function createBullmqQueue<J>(options: BullmqQueueOptions, kind: JobKind<J>): JobQueue<J>;
export function createBullmqQueue<J>(
  options: BullmqQueueOptions,
  kind: JobKind<J> = SMS_JOB_KIND as unknown as JobKind<J>,
): JobQueue<J> {
  const { connection: producer, prefix, log, attempts, backoffMs } = options;
  const o = { ...BULLMQ_DEFAULTS, ...stripUndefined(options) };
  const random = options.random ?? Math.random;
  const lockCheckAfterMs = options.lockCheckAfterMs ?? o.lockDurationMs / 2;
  let closed = false;

  /** Ready now, or within the readiness wait; a closed queue refuses at once. */
  const producerReady = (): Promise<void> =>
    closed ? Promise.reject(new Error('the queue is closed')) : whenReady(producer);
  const queue = new Queue(kind.name, { connection: producer, prefix });
  queue.on('error', () => {}); // the connection's own listener logs it

  let worker: Worker | undefined;
  let workerRedis: Redis | undefined;
  let closing: Promise<void> | undefined;

  const unavailable = (err: unknown) => new DependencyError('queue', err);

  const runJob = async (job: Job, handler: JobHandler<J>, token: string | undefined): Promise<JobOutcome> => {
    const id = job.id as string;
    const data: J = kind.pick(job.data as J);
    const attempt = job.attemptsMade + 1;
    const takenAtMs = job.processedOn ?? Date.now();
    let lost = false;
    const stillHeld = async (): Promise<boolean> => {
      if (token === undefined || Date.now() - takenAtMs < lockCheckAfterMs) return true;
      // Renews the lock when it is still ours; 0 when it lapsed (another run may have it).
      lost = (await job.extendLock(token, o.lockDurationMs)) !== 1;
      return !lost;
    };
    // BullMQ counts every move to active; more starts than attempts means an earlier worker
    // was lost mid-job (stalled) and this run may repeat a send that already went out.
    const repeat = job.attemptsStarted > attempt;
    let outcome: JobOutcome;
    try {
      outcome = await Promise.resolve().then(() =>
        handler(data, { id, attempt, maxAttempts: attempts, enqueuedAtMs: job.timestamp, stillHeld }),
      );
    } catch (err) {
      outcome = outcomeOfError(err);
    }
    if (lost) {
      // BullMQ cannot end the job for a run without its lock: the stalled check hands it on.
      log.warn(
        { jobId: id, ...kind.logFields(data), attempt },
        `${kind.label} job lost its lock before the send (Redis was out of reach longer than the lock); not sent by this run, the next run sends it`,
      );
      return outcome;
    }
    const disposition = dispose(outcome, attempt, attempts);
    const reason = (text: string) =>
      `${outcome.kind}${outcome.detail ? `: ${outcome.detail}` : ''} (${text})`;
    if (disposition === 'retry') {
      log.info(
        {
          jobId: id,
          outcome: outcome.kind,
          provider: outcome.provider,
          attempt,
          ...(repeat ? { repeat } : {}),
        },
        repeat
          ? `${kind.label} job will be retried (possible duplicate send)`
          : `${kind.label} job will be retried`,
      );
      const err = new Error(reason('retrying'));
      ours.add(err);
      throw err;
    }
    const exhausted =
      disposition === 'failed' && outcome.kind !== 'unknown' && attempt >= attempts && attempts > 1;
    logJobEnd(log, {
      jobId: id,
      fields: kind.logFields(data),
      label: kind.label,
      outcome,
      attempts: attempt,
      repeat,
      ...(exhausted ? { reason: 'attempts exhausted' } : {}),
    });
    if (disposition === 'failed') {
      const err = new UnrecoverableError(reason(exhausted ? 'attempts exhausted' : 'not retried'));
      ours.add(err);
      throw err;
    }
    return { kind: outcome.kind, provider: outcome.provider } as JobOutcome;
  };

  /** An admin read or change: the same readiness wait and deadline as enqueue, 503 past them. */
  const operate = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    try {
      await producerReady();
      return await withDeadline(step(), o.enqueueTimeoutMs, what);
    } catch (err) {
      throw unavailable(err);
    }
  };

  /** The job when it is in the failed set; BullMQ's own scripts re-check the state atomically. */
  const failedJob = async (id: string): Promise<Job<SmsJob> | undefined> => {
    const job = (await queue.getJob(id)) as Job<SmsJob> | undefined;
    if (!job || (await job.getState()) !== 'failed') return undefined;
    return job;
  };

  /** A job that left the failed set between our check and BullMQ's script: not ours to act on. */
  const notFailedAnymore = (err: unknown) =>
    err instanceof Error && /not in the failed state|Missing key|does not exist/i.test(err.message);

  /** Every job's options: a fresh random id (the vendors' idempotency key), retries, cleanup. */
  const jobOptions = () => ({
    jobId: randomUUID(),
    attempts,
    backoff: { type: 'meiduo-jitter' },
    removeOnComplete: true,
    removeOnFail: { age: o.keepFailedSeconds, count: o.keepFailedCount },
  });

  return {
    async enqueue(job) {
      if (closed) throw unavailable(new Error('the queue is closed'));
      try {
        await producerReady();
        // Only the kind's fields: whatever else a caller's object holds stays out of Redis.
        const add = queue.add(kind.name, kind.pick(job), jobOptions());
        await withDeadline(add, o.enqueueTimeoutMs, 'enqueue');
        // A job only the primary holds would be lost by a failover now; the caller undoes its
        // code on failure, so a job that does survive finds nothing to send.
        await awaitReplicas(producer, options.acks);
      } catch (err) {
        throw unavailable(err);
      }
    },

    /*
     * The add exactly as queue.add() would send it: BullMQ's own Job builds the command (its
     * script name and arguments, recorded instead of sent) and its own Lua script is the step.
     * A BullMQ whose add takes another shape (delayed, prioritised, a script not found) gives
     * undefined, and the caller enqueues the usual way.
     */
    async scriptedEnqueue(job) {
      if (closed) throw unavailable(new Error('the queue is closed'));
      if (!options.sharesCodeStoreDatabase) return undefined;
      const opts = jobOptions();
      const { client, seen } = recordingClient(opts.jobId);
      await new Job(queue, kind.name, kind.pick(job), opts, opts.jobId).addJob(
        client as unknown as Parameters<Job['addJob']>[0],
      );
      const script = bullmqScript(seen.command?.split(':')[0] ?? '');
      if (script?.name !== 'addStandardJob' || !seen.args) return undefined;
      return {
        lua: script.content,
        keys: seen.args.slice(0, script.keys).map(String),
        args: seen.args.slice(script.keys),
      };
    },

    startWorker(handler, concurrency) {
      if (worker) throw new Error('this queue already has a worker');
      if (closed) throw new Error('the queue is closed');
      // Workers wait for Redis (no request limit): they must outlive a Redis restart.
      const runner = duplicateRedis(producer, 'queue-worker', 'blocking');
      workerRedis = runner;
      const w = new Worker(kind.name, (job, token) => runJob(job, handler, token), {
        connection: runner,
        prefix,
        concurrency: Math.max(1, Math.floor(concurrency)),
        lockDuration: o.lockDurationMs,
        stalledInterval: o.stalledIntervalMs,
        maxStalledCount: o.maxStalledCount,
        settings: { backoffStrategy: (retry: number) => retryDelayMs(retry, backoffMs, random) },
      });
      worker = w;
      w.on('error', () => {}); // the connection's own listener logs it
      w.on('stalled', (jobId) => {
        // Its worker died, or the job was handed out just as the link to Redis broke.
        log.warn({ jobId }, `${kind.label} job stalled (no worker held it); it will run again`);
      });
      // Ends this listener did not see in the processor: a job failed by BullMQ itself
      // (stalled too often). It may have been sent, so its outcome is unknown.
      w.on('failed', (job, err) => {
        if (!job || ours.has(err)) return;
        if (err.name !== 'UnrecoverableError' && job.attemptsMade < attempts) return;
        logJobEnd(log, {
          jobId: job.id as string,
          fields: kind.logFields(kind.pick(job.data as J)),
          label: kind.label,
          outcome: { kind: 'unknown', provider: 'queue', detail: err.message.slice(0, 200) },
          attempts: job.attemptsMade,
          reason: 'failed by the queue',
        });
      });
      w.waitUntilReady().then(
        () => log.info({ concurrency, queue: kind.name }, `${kind.label} worker ready`),
        () => {},
      );
    },

    async ping() {
      try {
        await producerReady();
        await withDeadline(producer.ping(), o.enqueueTimeoutMs, 'ping');
      } catch (err) {
        throw unavailable(err);
      }
    },

    counts: () =>
      operate('counts', async () => {
        const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
        return {
          waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          failed: c.failed ?? 0,
        };
      }),

    failedJobs: (limit, offset) =>
      operate('listing failed jobs', async () => {
        const jobs = (await queue.getFailed(offset, offset + limit - 1)) as Array<Job | undefined>;
        return jobs
          .filter((j): j is Job => j !== undefined)
          .map((j) => ({
            id: j.id as string,
            job: kind.pick(j.data as J),
            attempts: j.attemptsMade,
            reason: j.failedReason ?? '',
            failedAtMs: j.finishedOn ?? j.timestamp,
          }));
      }),

    retryFailed: (id) =>
      operate('retrying a failed job', async () => {
        const job = await failedJob(id);
        if (!job) return false;
        try {
          // Both counters reset: the repeat check in runJob compares them.
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          return true;
        } catch (err) {
          if (notFailedAnymore(err)) return false;
          throw err;
        }
      }),

    discardFailed: (id) =>
      operate('discarding a failed job', async () => {
        const job = await failedJob(id);
        if (!job) return false;
        try {
          await job.remove();
          return true;
        } catch (err) {
          if (notFailedAnymore(err)) return false;
          throw err;
        }
      }),

    close() {
      if (closing) return closing;
      closed = true;
      closing = (async () => {
        if (worker) {
          const w = worker;
          try {
            await withDeadline(w.close(), o.closeTimeoutMs, 'finishing the jobs in hand');
          } catch (err) {
            // Cutting the connections below leaves the jobs in hand to lapse: once their locks
            // expire, another worker takes them over (a possible duplicate send, logged there).
            log.warn(
              { err: { message: (err as Error).message } },
              `${kind.label} worker did not finish in time`,
            );
          }
        }
        await withDeadline(queue.close(), o.enqueueTimeoutMs, 'closing the queue').catch(() => {});
        producer.disconnect();
        workerRedis?.disconnect();
      })();
      return closing;
    },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
