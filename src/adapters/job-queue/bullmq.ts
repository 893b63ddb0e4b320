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
import { createSemaphore } from '../../domain/password.js';
import type { JobHandler, JobKind, JobOutcome, JobQueue, SmsJob } from '../../domain/ports.js';
import { SMS_JOB_KIND } from '../../jobs/send-sms.js';
import { awaitReplicas, duplicateRedis, type ReplicaAcks, whenReady, writeInTurns } from '../redis.js';
import { type AddTemplate, addTemplate, type RecordedAdd } from './add-template.js';
import { retryDelayMs } from './backoff.js';
import { type Disposition, dispose, logJobEnd, outcomeOfError } from './outcome.js';

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
  /**
   * Most SMS one job carries when the issue script writes it (1: one job per SMS). Requests
   * that arrive while the last job written is still waiting join it, so at full load a worker
   * takes up to this many sends per job instead of one (BullMQ's cost is per job).
   */
  batchMax?: number;
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
  batchMax: 25,
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

/**
 * The batching step of each BullMQ add script, built once: neither concatenated nor hashed
 * again per request (the code store finds its command by this source).
 */
const batchingLua = new Map<string, string>();
const batchingEnqueueLuaOf = (addLua: string) => {
  let lua = batchingLua.get(addLua);
  if (lua === undefined) {
    lua = batchingEnqueueLua(addLua);
    batchingLua.set(addLua, lua);
  }
  return lua;
};

/**
 * The enqueue step of the issue script when jobs may carry several SMS. KEYS: BullMQ's
 * addStandardJob keys, then the open-job key. ARGV: addStandardJob's arguments, then the job
 * key prefix, the new SMS (JSON) and the most SMS a job carries.
 * The job written last (the open job) takes the SMS into its `more` list while it is still the
 * newest job waiting (the head of the wait list: no worker has it now, and a worker takes it
 * atomically), no worker ever had it, and it has room; otherwise BullMQ's own add writes a new
 * job, which becomes the open one. The SMS a job has taken are counted in its hash (field `meiduoMore`, which BullMQ
 * ignores). Returns the id of the job that holds the SMS.
 */
function batchingEnqueueLua(addStandardJobLua: string): string {
  return `local function add(KEYS, ARGV)
${addStandardJobLua}
end
local openKey = KEYS[#KEYS]
local maxItems = tonumber(ARGV[#ARGV])
local item = ARGV[#ARGV - 1]
local jobPrefix = ARGV[#ARGV - 2]
local open = redis.call('GET', openKey)
if open and redis.call('LINDEX', KEYS[1], 0) == open then
  local jobKey = jobPrefix .. open
  -- A job a worker has taken once has processedOn, even when it is back in the wait list (a
  -- retry, a stalled run): an SMS joining it would inherit its attempts and stall count.
  local fields = redis.call('HMGET', jobKey, 'data', 'meiduoMore', 'processedOn')
  local data, n = fields[1], tonumber(fields[2] or '0')
  if fields[3] then data = nil end
  -- Spliced as text, not decoded and encoded again: the data is JSON.stringify's object, ending
  -- in '}' (no SMS added yet) or in ']}' (the end of its more list).
  if data and n + 1 < maxItems then
    local spliced = nil
    if n == 0 and #data > 2 and string.sub(data, -1) == '}' then
      spliced = string.sub(data, 1, -2) .. ',"more":[' .. item .. ']}'
    elseif n > 0 and string.sub(data, -2) == ']}' then
      spliced = string.sub(data, 1, -3) .. ',' .. item .. ']}'
    end
    if spliced then
      redis.call('HSET', jobKey, 'data', spliced, 'meiduoMore', n + 1)
      return open
    end
  end
end
local addKeys, addArgs = {}, {}
for i = 1, #KEYS - 1 do addKeys[i] = KEYS[i] end
for i = 1, #ARGV - 3 do addArgs[i] = ARGV[i] end
local id = add(addKeys, addArgs)
if type(id) == 'string' then redis.call('SET', openKey, id, 'PX', 60000) end
return id
`;
}

/** One SMS (or email) of a job: a job holds one, or with batching a head and \`more\`. */
interface Item<J> {
  data: J;
  /** The vendors' idempotency key, stable across retries (a job's id, or the SMS's own). */
  key: string;
  /** Attempts made before this job (a retry split off a batch). */
  tried: number;
  enqueuedAtMs: number;
  /** The outcome a batch run recorded when it split this SMS off as failed: not sent again. */
  failed?: JobOutcome;
}

/** What a job's data may hold besides the kind's own fields (kind.pick drops these). */
interface JobExtras {
  more?: unknown;
  key?: unknown;
  tried?: unknown;
  failed?: unknown;
  t?: unknown;
}

const triedOf = (data: unknown): number => {
  const tried = (data as JobExtras | undefined)?.tried;
  return typeof tried === 'number' && Number.isInteger(tried) && tried > 0 ? tried : 0;
};

function itemsOf<J>(job: Job, kind: JobKind<J>): Item<J>[] {
  const id = job.id as string;
  // The head carries the job's own fields; an SMS of `more` has no tried or failed of its own.
  const itemOf = (raw: J & JobExtras, fallbackKey: string): Item<J> => {
    const failed = raw.failed as JobOutcome | undefined;
    return {
      data: kind.pick(raw),
      key: typeof raw.key === 'string' ? raw.key : fallbackKey,
      tried: triedOf(raw),
      enqueuedAtMs: typeof raw.t === 'number' ? raw.t : job.timestamp,
      ...(failed && typeof failed.kind === 'string' && typeof failed.provider === 'string' ? { failed } : {}),
    };
  };
  const raw = (job.data ?? {}) as J & JobExtras;
  const more = Array.isArray(raw.more)
    ? (raw.more as unknown[]).filter((m): m is J & JobExtras => typeof m === 'object' && m !== null)
    : [];
  return [itemOf(raw, id), ...more.map((m, i) => itemOf(m, `${id}-${i + 1}`))];
}

/** How many sent SMS, and for how long, a worker remembers (a code lives minutes). */
const SENT_HERE_MAX = 20_000;
const SENT_HERE_MS = 15 * 60_000;

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
  /** The batching enqueue step's keys: the job written last, and every job hash's prefix. */
  const openJobKey = queue.toKey('meiduo-open-job');
  const jobKeyPrefix = queue.toKey('');

  let worker: Worker | undefined;
  let workerRedis: Redis | undefined;
  let closing: Promise<void> | undefined;

  const unavailable = (err: unknown) => new DependencyError('queue', err);

  /** A run's check that it still holds its job, shared by the SMS of a batch (one ask at a time). */
  const lockWatch = (job: Job, token: string | undefined) => {
    let lost = false;
    let checkFrom = (job.processedOn ?? Date.now()) + lockCheckAfterMs;
    let asking: Promise<boolean> | undefined;
    const stillHeld = (): Promise<boolean> => {
      if (lost) return Promise.resolve(false);
      // A younger run cannot have lost its lock, nor one that renewed it lately.
      if (token === undefined || Date.now() < checkFrom) return Promise.resolve(true);
      asking ??= job.extendLock(token, o.lockDurationMs).then(
        (renewed) => {
          asking = undefined;
          // 0 when it lapsed: another run may have the job now.
          lost = renewed !== 1;
          checkFrom = Date.now() + lockCheckAfterMs;
          return !lost;
        },
        (err: unknown) => {
          asking = undefined;
          throw err;
        },
      );
      return asking;
    };
    return { stillHeld, lost: () => lost };
  };

  const runJob = async (
    job: Job,
    handler: JobHandler<J>,
    token: string | undefined,
    sends: ReturnType<typeof createSemaphore>,
  ): Promise<JobOutcome> => {
    const id = job.id as string;
    const items = itemsOf(job, kind);
    const watch = lockWatch(job, token);
    // BullMQ counts every move to active; more starts than attempts means an earlier worker
    // was lost mid-job (stalled) and this run may repeat a send that already went out.
    const repeat = job.attemptsStarted > job.attemptsMade + 1;
    const runItem = async (item: Item<J>): Promise<ItemResult> => {
      const attempt = job.attemptsMade + 1 + item.tried;
      const before = sentHere.get(item.key);
      if (before) return { item, attempt, outcome: before.outcome, disposition: 'done', sentHere: true };
      let outcome: JobOutcome;
      if (item.failed) {
        outcome = item.failed;
      } else {
        try {
          outcome = await Promise.resolve().then(() =>
            handler(item.data, {
              id: item.key,
              attempt,
              maxAttempts: attempts,
              enqueuedAtMs: item.enqueuedAtMs,
              stillHeld: watch.stillHeld,
            }),
          );
        } catch (err) {
          outcome = outcomeOfError(err);
        }
        if (outcome.kind === 'ok') rememberSent(item.key, outcome);
      }
      return { item, attempt, outcome, disposition: dispose(outcome, attempt, attempts) };
    };
    const results = await Promise.all(items.map((item) => sends.run(() => runItem(item))));
    const first = results[0] as (typeof results)[number];
    if (watch.lost()) {
      // BullMQ cannot end the job for a run without its lock: the stalled check hands it on.
      log.warn(
        {
          jobId: id,
          ...kind.logFields(first.item.data),
          attempt: first.attempt,
          ...(items.length > 1 ? { batchSize: items.length } : {}),
        },
        `${kind.label} job lost its lock before the send (Redis was out of reach longer than the lock); not sent by this run, the next run sends it`,
      );
      return first.outcome;
    }
    if (items.length === 1) return endSingle(id, first, repeat);
    return endBatch(id, results, repeat);
  };

  interface ItemResult {
    item: Item<J>;
    attempt: number;
    outcome: JobOutcome;
    disposition: Disposition;
    /** This worker sent it before, in a run whose end never reached Redis: not sent again. */
    sentHere?: boolean;
  }

  /**
   * The SMS this worker sent lately, by idempotency key. A send that went out just before Redis
   * went out of reach (its job's end never written, its lock lapsed) comes back to a worker
   * through the stalled check; when it comes back to this one, it ends without a second SMS.
   * A run in another process (this one died) still sends again: at least once, as documented.
   */
  const sentHere = new Map<string, { outcome: JobOutcome; atMs: number }>();
  const rememberSent = (key: string, outcome: JobOutcome) => {
    const now = Date.now();
    sentHere.set(key, { outcome, atMs: now });
    for (const [oldest, entry] of sentHere) {
      if (sentHere.size <= SENT_HERE_MAX && now - entry.atMs < SENT_HERE_MS) break;
      sentHere.delete(oldest);
    }
  };
  const logSentHere = (jobId: string, r: ItemResult, batchId?: string) =>
    log.info(
      {
        jobId,
        ...(batchId === undefined ? {} : { batchId }),
        ...kind.logFields(r.item.data),
        attempt: r.attempt,
      },
      `${kind.label} job came back after its end was lost (Redis out of reach); this worker had sent it, not sent again`,
    );

  /** A job of one SMS ends as BullMQ ends it: retried by BullMQ, failed into the failed set. */
  const endSingle = (id: string, r: ItemResult, repeat: boolean): JobOutcome => {
    const { outcome, attempt, disposition } = r;
    if (r.sentHere) {
      logSentHere(id, r);
      return outcome;
    }
    const reason = (text: string) =>
      `${outcome.kind}${outcome.detail ? `: ${outcome.detail}` : ''} (${text})`;
    if (disposition === 'retry') {
      logRetry(id, r, repeat);
      const err = new Error(reason('retrying'));
      ours.add(err);
      throw err;
    }
    const exhausted = isExhausted(r);
    logJobEnd(log, {
      jobId: id,
      fields: kind.logFields(r.item.data),
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

  /**
   * A job of several SMS completes once each has ended or been split off: an SMS to retry, or
   * one that failed, becomes a job of its own (its idempotency key and attempts carried over;
   * a failed one keeps its outcome and goes to the failed set without another send), so that
   * the SMS that did go out are not repeated.
   */
  const endBatch = async (id: string, results: ItemResult[], repeat: boolean): Promise<JobOutcome> => {
    const split = results.filter((r) => r.disposition !== 'done');
    if (split.length > 0) {
      const jobs = split.map((r) => {
        const retry = r.disposition === 'retry';
        const { kind: outcomeKind, provider, detail } = r.outcome;
        return {
          name: kind.name,
          data: {
            ...r.item.data,
            key: r.item.key,
            t: r.item.enqueuedAtMs,
            ...(retry
              ? { tried: r.attempt }
              : {
                  tried: r.attempt - 1,
                  failed: { kind: outcomeKind, provider, ...(detail === undefined ? {} : { detail }) },
                }),
          },
          opts: {
            ...jobOptions(),
            // Named by the SMS and attempt: a batch run again after its split (its end lost)
            // finds the job there and adds no second one.
            jobId: `${r.item.key}-${retry ? 'retry' : 'failed'}-${r.attempt}`,
            attempts: retry ? Math.max(1, attempts - r.attempt) : 1,
            ...(retry ? { delay: retryDelayMs(r.attempt, backoffMs, random) } : {}),
          },
        };
      });
      // Failing here fails the whole job: BullMQ runs it again (its sent SMS may repeat).
      await withDeadline(queue.addBulk(jobs), o.enqueueTimeoutMs, 'splitting a job');
    }
    for (const r of results) {
      if (r.disposition === 'retry') logRetry(r.item.key, r, repeat, id);
      if (r.sentHere) logSentHere(r.item.key, r, id);
      if (r.disposition !== 'done' || r.sentHere) continue;
      logJobEnd(log, {
        jobId: r.item.key,
        fields: { ...kind.logFields(r.item.data), batchId: id },
        label: kind.label,
        outcome: r.outcome,
        attempts: r.attempt,
        repeat,
      });
    }
    const first = results[0] as ItemResult;
    return { kind: first.outcome.kind, provider: first.outcome.provider } as JobOutcome;
  };

  const isExhausted = (r: ItemResult) =>
    r.disposition === 'failed' && r.outcome.kind !== 'unknown' && r.attempt >= attempts && attempts > 1;

  const logRetry = (jobId: string, r: ItemResult, repeat: boolean, batchId?: string) => {
    log.info(
      {
        jobId,
        ...(batchId === undefined ? {} : { batchId }),
        outcome: r.outcome.kind,
        provider: r.outcome.provider,
        attempt: r.attempt,
        ...(repeat ? { repeat } : {}),
      },
      repeat
        ? `${kind.label} job will be retried (possible duplicate send)`
        : `${kind.label} job will be retried`,
    );
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

  /** The add queue.add() would send for this job, recorded instead of sent. */
  const recordAdd = async (data: J, jobId: string, nowMs: number): Promise<RecordedAdd> => {
    const opts = jobOptions(jobId);
    const { client, seen } = recordingClient(jobId);
    const built = new Job(queue, kind.name, data, opts, jobId);
    built.timestamp = nowMs;
    await built.addJob(client as unknown as Parameters<Job['addJob']>[0]);
    return { command: seen.command ?? '', args: seen.args ?? [] };
  };
  /** null: BullMQ's adds do not stamp (each is built by BullMQ); built once, by the first request. */
  let template: Promise<AddTemplate | null> | undefined;
  const buildTemplate = async (data: J): Promise<AddTemplate | null> => {
    const sample = async (sampleData: J, timestampMs: number) => {
      const id = randomUUID();
      const json = JSON.stringify(sampleData);
      return { ...(await recordAdd(sampleData, id, timestampMs)), id, timestampMs, data: json };
    };
    // Ids, times and data that share nothing: an option derived from any of them (a
    // deduplication id from the mobile, say) would differ between the two and fail the check.
    const nowMs = Date.now();
    const other = { templateCheck: randomUUID() } as J;
    return addTemplate(await sample(data, nowMs - 3_600_000), await sample(other, nowMs)) ?? null;
  };

  /** Every job's options: a fresh random id (the vendors' idempotency key), retries, cleanup. */
  const jobOptions = (jobId: string = randomUUID()) => ({
    jobId,
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
      const data = kind.pick(job);
      const jobId = randomUUID();
      const nowMs = Date.now();
      // A build that throws leaves every add to BullMQ, which then says what is wrong.
      template ??= buildTemplate(data).catch(() => null);
      const stamped = await template;
      const add = stamped
        ? { command: stamped.command, args: stamped.stamp(jobId, nowMs, JSON.stringify(data)) }
        : await recordAdd(data, jobId, nowMs);
      const script = bullmqScript(add.command.split(':')[0] ?? '');
      if (script?.name !== 'addStandardJob') return undefined;
      const keys = add.args.slice(0, script.keys).map(String);
      const args = add.args.slice(script.keys);
      if (o.batchMax <= 1) return { lua: script.content, keys, args };
      // The SMS as a batch keeps it: the kind's fields, its own key (this job id) and time.
      const item = JSON.stringify({ ...data, key: jobId, t: nowMs });
      return {
        lua: batchingEnqueueLuaOf(script.content),
        keys: [...keys, openJobKey],
        args: [...args, jobKeyPrefix, item, String(o.batchMax)],
      };
    },

    startWorker(handler, concurrency) {
      if (worker) throw new Error('this queue already has a worker');
      if (closed) throw new Error('the queue is closed');
      // Workers wait for Redis (no request limit): they must outlive a Redis restart.
      const runner = duplicateRedis(producer, 'queue-worker', 'blocking');
      // BullMQ blocks on a duplicate of its own; this one carries the job moves and lock extensions.
      writeInTurns(runner);
      workerRedis = runner;
      const lanes = Math.max(1, Math.floor(concurrency));
      // At most `concurrency` sends in flight over all the jobs in hand, as with a job per SMS.
      const sends = createSemaphore(lanes);
      const w = new Worker(kind.name, (job, token) => runJob(job, handler, token, sends), {
        connection: runner,
        prefix,
        concurrency: lanes,
        lockDuration: o.lockDurationMs,
        stalledInterval: o.stalledIntervalMs,
        maxStalledCount: o.maxStalledCount,
        settings: {
          // A retry split off a batch carries the attempts made before it: its delays go on growing.
          backoffStrategy: (retry: number, _type?: string, _err?: Error, job?: { data?: unknown }) =>
            retryDelayMs(retry + triedOf(job?.data), backoffMs, random),
        },
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
        if (err.name !== 'UnrecoverableError' && job.attemptsMade < (job.opts.attempts ?? attempts)) return;
        for (const item of itemsOf(job, kind)) {
          logJobEnd(log, {
            jobId: item.key,
            fields: kind.logFields(item.data),
            label: kind.label,
            outcome: { kind: 'unknown', provider: 'queue', detail: err.message.slice(0, 200) },
            attempts: job.attemptsMade + item.tried,
            reason: 'failed by the queue',
          });
        }
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
            attempts: j.attemptsMade + triedOf(j.data),
            reason: j.failedReason ?? '',
            failedAtMs: j.finishedOn ?? j.timestamp,
          }));
      }),

    retryFailed: (id) =>
      operate('retrying a failed job', async () => {
        const job = await failedJob(id);
        if (!job) return false;
        try {
          // A fresh start: an outcome recorded when the SMS was split off a batch, and the
          // attempts made before, go (the key stays, so the vendor still sees the same send).
          const { failed, tried, ...data } = job.data as SmsJob & JobExtras;
          if (failed !== undefined || tried !== undefined) await job.updateData(data);
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
