/**
 * One contract for both job queues: the in-process queue (embedded default) and BullMQ on
 * Redis (production). What the suite checks is what a user or an operator notices: every SMS
 * is sent once when the vendor accepts it, retried with growing delays when the vendor is
 * briefly unavailable, never repeated when it may already have arrived, at most
 * `concurrency` at a time, the ending of every job in the log, and no code in the log or in
 * Redis.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteCodeStore } from '../../src/adapters/code-store/sqlite.js';
import { retryDelayMs } from '../../src/adapters/job-queue/backoff.js';
import { type BullmqQueueOptions, createBullmqQueue } from '../../src/adapters/job-queue/bullmq.js';
import { createInProcessQueue, type SetTimer } from '../../src/adapters/job-queue/in-process.js';
import { connectRedis } from '../../src/adapters/redis.js';
import { createConsoleProvider } from '../../src/adapters/sms-provider/console.js';
import { openSqlite } from '../../src/adapters/sqlite.js';
import { DependencyError } from '../../src/domain/errors.js';
import type {
  FailedJob,
  JobInfo,
  JobOutcome,
  JobQueue,
  SendOutcomeKind,
  SmsJob,
} from '../../src/domain/ports.js';
import { createSendSmsHandler, SEND_SMS_JOB } from '../../src/jobs/send-sms.js';
import { BACKEND_URLS, has } from '../backends.js';
import { logSink } from '../log-sink.js';

const REDIS_URL = (() => {
  const url = new URL(BACKEND_URLS.redis);
  url.pathname = '/4';
  return url.toString();
})();

// ---- helpers --------------------------------------------------------------------------

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger writing into memory, as the service's logger writes to stdout. */
function captureLog() {
  const { stream, raw, lines } = logSink<LogLine>();
  const log = pino({ level: 'debug' }, stream);
  const ends = () => lines.filter((l) => l.msg.startsWith('sms job finished'));
  return { log, raw, lines, ends };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const randomMobile = () => `13${String(randomBytes(4).readUInt32BE() % 1e9).padStart(9, '0')}`;
const masked = (mobile: string) => `${mobile.slice(0, 3)}****${mobile.slice(-4)}`;

interface Call {
  mobile: string;
  id: string;
  attempt: number;
  atMs: number;
}

/** A handler scripted per call; records every call with the harness clock. */
function scripted(
  now: () => number,
  answer: (job: SmsJob, info: JobInfo) => JobOutcome | Promise<JobOutcome>,
) {
  const calls: Call[] = [];
  const handler = async (job: SmsJob, info: JobInfo) => {
    calls.push({ mobile: job.mobile, id: info.id, attempt: info.attempt, atMs: now() });
    return answer(job, info);
  };
  return { calls, handler };
}

/** Gates of the running test, opened for good after it so that a failed test can clean up. */
const gates: Array<{ open(): void }> = [];

/** Calls that wait until the test lets them go, to hold jobs in flight. */
function gate() {
  const held: Array<() => void> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let opened = false;
  const pass = async (): Promise<void> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (!opened) await new Promise<void>((resolve) => held.push(resolve));
    inFlight--;
  };
  const releaseAll = () => {
    for (const release of held.splice(0)) release();
  };
  gates.push({
    open: () => {
      opened = true;
      releaseAll();
    },
  });
  return {
    pass,
    releaseAll,
    held: () => held.length,
    maxInFlight: () => maxInFlight,
  };
}

const ok: JobOutcome = { kind: 'ok', provider: 'test' };

// ---- the two backends -----------------------------------------------------------------

interface Harness {
  queue: JobQueue;
  /** The clock retry delays are measured with. */
  now(): number;
  /** The backoff the queue was made with (virtual ms for the in-process queue). */
  backoffMs: number;
  /** True when no job waits for a slot or a retry. */
  idle(): Promise<boolean>;
  /** BullMQ only: the hashes of the jobs stored in Redis. */
  jobHashes?(): Promise<Array<Record<string, string>>>;
  /** BullMQ only: jobs kept in the completed and failed sets. */
  kept?(): Promise<{ completed: number; failed: number }>;
  cleanup(): Promise<void>;
}

type MakeHarness = (options: { log: Logger; attempts: number }) => Harness;

/**
 * In-process: a virtual clock. A timer fires on the next turn of the event loop and moves the
 * clock to its due time, so delays are checked exactly and the test never waits for them.
 */
const inProcess: MakeHarness = ({ log, attempts }) => {
  let nowMs = 0;
  let pending = 0;
  const setTimer: SetTimer = (callback, delayMs) => {
    let cancelled = false;
    const due = nowMs + delayMs;
    pending++;
    setImmediate(() => {
      pending--;
      if (cancelled) return;
      nowMs = Math.max(nowMs, due);
      callback();
    });
    return () => {
      cancelled = true;
    };
  };
  const queue = createInProcessQueue({ log, attempts, backoffMs: 1000, setTimer });
  return {
    queue,
    now: () => nowMs,
    backoffMs: 1000,
    idle: async () => pending === 0,
    cleanup: () => queue.close(),
  };
};

/** BullMQ: real Redis (db 4), a random prefix per test, tiny real delays. */
const bullmq: MakeHarness = ({ log, attempts }) => {
  const prefix = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
  const backoffMs = 20;
  const queue = createBullmqQueue({
    connection: connectRedis(REDIS_URL, 'queue', log),
    prefix,
    log,
    attempts,
    backoffMs,
  });
  const redis = new Redis(REDIS_URL);
  const key = (type: string) => `${prefix}:${SEND_SMS_JOB}:${type}`;
  const keys = async () => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found;
  };
  return {
    queue,
    now: () => Date.now(),
    backoffMs,
    idle: async () => {
      const [wait, active, delayed, prioritized] = await Promise.all([
        redis.llen(key('wait')),
        redis.llen(key('active')),
        redis.zcard(key('delayed')),
        redis.zcard(key('prioritized')),
      ]);
      return wait + active + delayed + prioritized === 0;
    },
    kept: async () => ({
      completed: await redis.zcard(key('completed')),
      failed: await redis.zcard(key('failed')),
    }),
    jobHashes: async () => {
      const jobKey = new RegExp(
        `^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${SEND_SMS_JOB}:[0-9a-f-]{36}$`,
      );
      const hashes = [];
      for (const k of (await keys()).filter((k) => jobKey.test(k))) hashes.push(await redis.hgetall(k));
      return hashes;
    },
    cleanup: async () => {
      await queue.close();
      const found = await keys();
      if (found.length > 0) await redis.unlink(...found);
      redis.disconnect();
    },
  };
};

const redisHere = await has('redis');
const backends: Array<[string, boolean, MakeHarness]> = [
  ['in-process queue', true, inProcess],
  ['BullMQ', redisHere, bullmq],
];

// ---- the contract ---------------------------------------------------------------------

for (const [name, available, make] of backends) {
  describe.skipIf(!available)(`job queue contract: ${name}`, () => {
    let harness: Harness | undefined;
    const open = (options: { log: Logger; attempts: number }) => {
      harness = make(options);
      return harness;
    };
    afterEach(async () => {
      for (const g of gates.splice(0)) g.open();
      await harness?.cleanup();
      harness = undefined;
    });
    /** One job through a one-slot worker, until its ending is logged and the queue is idle. */
    const runOneJob = async (attempts: number, answer: () => JobOutcome) => {
      const { log, ends } = captureLog();
      const h = open({ log, attempts });
      const { calls, handler } = scripted(h.now, answer);
      h.queue.startWorker(handler, 1);
      await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
      await waitFor('the ending', () => ends().length === 1);
      await waitFor('an idle queue', h.idle);
      return { calls, ends };
    };
    /** A worker of that concurrency whose every call waits at a gate the test opens; one attempt a job. */
    const gatedWorker = (concurrency: number) => {
      const { log, ends } = captureLog();
      const h = open({ log, attempts: 1 });
      const g = gate();
      h.queue.startWorker(async () => {
        await g.pass();
        return ok;
      }, concurrency);
      return { h, g, ends };
    };

    it('runs jobs enqueued before the worker starts, each once, and logs each ending once', async () => {
      const { log, ends } = captureLog();
      const h = open({ log, attempts: 5 });
      const { calls, handler } = scripted(h.now, () => ok);
      const mobiles = Array.from({ length: 10 }, randomMobile);
      for (const mobile of mobiles) await h.queue.enqueue({ mobile, purpose: 'register' });
      expect(calls).toHaveLength(0);

      h.queue.startWorker(handler, 4);
      await waitFor('10 endings', () => ends().length === 10);
      await waitFor('an idle queue', h.idle);

      expect(calls.map((c) => c.mobile).sort()).toEqual([...mobiles].sort());
      expect(new Set(calls.map((c) => c.id)).size).toBe(10);
      expect(
        ends()
          .map((l) => [l.mobile, l.outcome, l.attempts])
          .sort(),
      ).toEqual(mobiles.map((m) => [masked(m), 'ok', 1]).sort());
      expect(ends().every((l) => typeof l.jobId === 'string' && l.provider === 'test')).toBe(true);
      // Redis does not fill up with sent jobs.
      if (h.kept) expect(await h.kept()).toEqual({ completed: 0, failed: 0 });
    });

    it('keeps failed jobs for the operator: counted, listed newest first, retried under their id, or discarded', async () => {
      const { log, ends } = captureLog();
      const h = open({ log, attempts: 2 });
      let refuse = true;
      const { calls, handler } = scripted(h.now, () =>
        refuse ? { kind: 'invalid_number', provider: 'test', detail: '160' } : ok,
      );
      h.queue.startWorker(handler, 2);
      const [first, second] = [randomMobile(), randomMobile()];
      await h.queue.enqueue({ mobile: first, purpose: 'register' });
      await waitFor('the first ending', () => ends().length === 1);
      await h.queue.enqueue({ mobile: second, purpose: 'register' });
      await waitFor('two failed jobs', async () => (await h.queue.counts()).failed === 2);
      await waitFor('an idle queue', h.idle);
      expect(await h.queue.counts()).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 2 });

      const failed = await h.queue.failedJobs(10, 0);
      expect(failed.map((f) => f.job.mobile)).toEqual([second, first]);
      expect(failed[1]).toMatchObject({ attempts: 1, job: { purpose: 'register' } });
      expect(failed[1]?.reason).toContain('invalid_number: 160');
      expect(await h.queue.failedJobs(1, 1)).toMatchObject([{ id: failed[1]?.id }]);

      const [newer, older] = failed as [FailedJob, FailedJob];
      refuse = false;
      expect(await h.queue.retryFailed(older.id)).toBe(true);
      await waitFor('the retried ending', () => ends().length === 3);
      await waitFor('an idle queue', h.idle);
      // Run again from its first attempt, under the id vendors deduplicate by.
      expect(calls.at(-1)).toMatchObject({ mobile: first, id: older.id, attempt: 1 });
      expect(ends().at(-1)).toMatchObject({ outcome: 'ok', attempts: 1 });
      expect(await h.queue.retryFailed(older.id)).toBe(false);

      expect(await h.queue.discardFailed(newer.id)).toBe(true);
      expect(await h.queue.discardFailed(newer.id)).toBe(false);
      expect(await h.queue.retryFailed(newer.id)).toBe(false);
      expect(await h.queue.failedJobs(10, 0)).toEqual([]);
      expect(await h.queue.counts()).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });
      expect(await h.queue.retryFailed('no-such-job')).toBe(false);
      expect(calls).toHaveLength(3);
    });

    it('retries a transient failure with growing delays, keeping the job id', async () => {
      const { log, ends, lines } = captureLog();
      const h = open({ log, attempts: 5 });
      const { calls, handler } = scripted(h.now, (_job, info) =>
        info.attempt < 4 ? { kind: 'transient', provider: 'test', detail: 'HTTP 503' } : ok,
      );
      h.queue.startWorker(handler, 2);
      await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
      await waitFor('the ending', () => ends().length === 1);

      expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
      expect(new Set(calls.map((c) => c.id)).size).toBe(1);
      const gaps = calls.slice(1).map((c, i) => c.atMs - (calls[i] as Call).atMs);
      gaps.forEach((gap, i) => {
        // Retry i+1 waits at least half of backoffMs·2^i (the fixed half of the jitter).
        expect(gap).toBeGreaterThanOrEqual(Math.floor((h.backoffMs * 2 ** i) / 2));
      });
      expect(lines.filter((l) => l.msg === 'sms job will be retried')).toHaveLength(3);
      expect(ends()[0]).toMatchObject({ outcome: 'ok', attempts: 4 });
    });

    it('does not repeat permanent failures, per-number limits, nor a send that may have arrived (unknown)', async () => {
      const { log, ends } = captureLog();
      const h = open({ log, attempts: 5 });
      const kinds: SendOutcomeKind[] = [
        'invalid_number',
        'blocked_number',
        'config_error',
        'rate_limited',
        'unknown',
      ];
      const kindOf = new Map(kinds.map((kind) => [randomMobile(), kind]));
      const { calls, handler } = scripted(h.now, (job) => ({
        kind: kindOf.get(job.mobile) as SendOutcomeKind,
        provider: 'test',
        detail: 'vendor said no',
      }));
      h.queue.startWorker(handler, 4);
      for (const mobile of kindOf.keys()) await h.queue.enqueue({ mobile, purpose: 'register' });
      await waitFor('5 endings', () => ends().length === 5);
      await waitFor('an idle queue', h.idle);

      expect(calls).toHaveLength(5);
      expect(
        ends()
          .map((l) => [l.mobile, l.outcome, l.attempts, l.detail])
          .sort(),
      ).toEqual([...kindOf].map(([m, kind]) => [masked(m), kind, 1, 'vendor said no']).sort());
      expect(ends().every((l) => l.level >= 40)).toBe(true);
      // Failed jobs stay for inspection.
      if (h.kept) expect(await h.kept()).toEqual({ completed: 0, failed: 5 });
    });

    it('gives up after the allowed attempts and logs that final failure once', async () => {
      const { calls, ends } = await runOneJob(3, () => ({
        kind: 'transient',
        provider: 'test',
        detail: 'E429',
      }));

      expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
      expect(ends()[0]).toMatchObject({
        level: 40,
        outcome: 'transient',
        detail: 'E429',
        attempts: 3,
        reason: 'attempts exhausted',
      });
    });

    it('ends a skipped job (its code expired) without retrying it', async () => {
      const { calls, ends } = await runOneJob(5, () => ({
        kind: 'skipped',
        provider: 'test',
        detail: 'code expired',
      }));

      expect(calls).toHaveLength(1);
      expect(ends()[0]).toMatchObject({ outcome: 'skipped', attempts: 1, level: 30 });
    });

    it('counts a handler that throws as transient and retries it', async () => {
      const { log, ends, lines } = captureLog();
      const h = open({ log, attempts: 3 });
      const { calls, handler } = scripted(h.now, (_job, info) => {
        if (info.attempt === 1) throw new Error('socket hang up');
        return ok;
      });
      h.queue.startWorker(handler, 1);
      await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
      await waitFor('the ending', () => ends().length === 1);

      expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
      expect(lines.find((l) => l.msg === 'sms job will be retried')).toMatchObject({ outcome: 'transient' });
      expect(ends()[0]).toMatchObject({ outcome: 'ok', attempts: 2 });
    });

    it('never has more jobs in flight than the concurrency', async () => {
      const { h, g, ends } = gatedWorker(3);
      for (let i = 0; i < 9; i++) await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
      for (let round = 1; round <= 3; round++) {
        await waitFor(`3 jobs in flight (round ${round})`, () => g.held() === 3);
        g.releaseAll();
      }
      await waitFor('9 endings', () => ends().length === 9);
      expect(g.maxInFlight()).toBe(3);
    });

    it('close() waits for the jobs in flight and refuses new jobs', async () => {
      const { h, g, ends } = gatedWorker(2);
      await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
      await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
      await waitFor('2 jobs in flight', () => g.held() === 2);

      let closed = false;
      const closing = h.queue.close().then(() => {
        closed = true;
      });
      const refused = await h.queue.enqueue({ mobile: randomMobile(), purpose: 'register' }).catch((e) => e);
      expect(refused).toBeInstanceOf(DependencyError);
      expect(closed).toBe(false);
      expect(ends()).toHaveLength(0);

      g.releaseAll();
      await closing;
      expect(ends().map((l) => l.outcome)).toEqual(['ok', 'ok']);
    });

    it('keeps the code out of the queue and out of the log', async () => {
      const { log, ends, raw } = captureLog();
      const h = open({ log, attempts: 2 });
      const db = openSqlite(':memory:');
      try {
        const store = createSqliteCodeStore(db, { nowMs: () => Date.now() });
        const printed: string[] = [];
        const handler = createSendSmsHandler({
          codeStore: store,
          sms: createConsoleProvider((line) => printed.push(line)),
          log,
          codeTtlSeconds: 300,
          testNumbers: new Map(),
        });
        const mobile = randomMobile();
        const code = String(randomBytes(4).readUInt32BE() % 1e6).padStart(6, '0');
        await store.set(`sms_${mobile}`, code, 300);
        // A careless caller passing the code along: the queue keeps only mobile and purpose.
        await h.queue.enqueue({ mobile, purpose: 'register', code } as SmsJob);

        if (h.jobHashes) {
          const hashes = await h.jobHashes();
          expect(hashes).toHaveLength(1);
          expect(JSON.parse(hashes[0]?.data ?? 'null')).toEqual({ mobile, purpose: 'register' });
          expect(JSON.stringify(hashes)).not.toContain(code);
        }

        h.queue.startWorker(handler, 1);
        await waitFor('the ending', () => ends().length === 1);
        expect(printed).toEqual([`[mobile: ${mobile}] [sms_code: ${code}]`]);
        expect(ends()[0]).toMatchObject({ outcome: 'ok', provider: 'console', mobile: masked(mobile) });
        for (const line of raw) {
          expect(line).not.toContain(code);
          expect(line).not.toContain(mobile);
        }
      } finally {
        db.close();
      }
    });
  });
}

// ---- in-process only: timers and shutdown -----------------------------------------------

describe('in-process queue', () => {
  /** Timers the test fires by hand. */
  function manualTimers() {
    const timers: Array<{ delayMs: number; fire: () => void; cancelled: boolean }> = [];
    const setTimer: SetTimer = (callback, delayMs) => {
      const timer = { delayMs, fire: callback, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    };
    return { timers, setTimer };
  }

  it('waits retryDelayMs(n) with the injected random before retry n', async () => {
    const { log, ends } = captureLog();
    const { timers, setTimer } = manualTimers();
    const draws = [0.9, 0.1, 0.5];
    const random = () => draws[timers.length] ?? 0;
    const queue = createInProcessQueue({ log, attempts: 4, backoffMs: 2000, random, setTimer });
    queue.startWorker(async () => ({ kind: 'transient', provider: 'test' }), 1);
    await queue.enqueue({ mobile: randomMobile(), purpose: 'register' });
    for (let n = 1; n <= 3; n++) {
      await waitFor(`retry ${n} scheduled`, () => timers.length === n);
      timers[n - 1]?.fire();
    }
    await waitFor('the ending', () => ends().length === 1);
    expect(timers.map((t) => t.delayMs)).toEqual(draws.map((r, i) => retryDelayMs(i + 1, 2000, () => r)));
    await queue.close();
  });

  it('close() drops retries still waiting for their backoff, logging each and their number', async () => {
    const { log, ends, lines } = captureLog();
    const { timers, setTimer } = manualTimers();
    const queue = createInProcessQueue({ log, attempts: 5, backoffMs: 60_000, setTimer });
    const { calls, handler } = scripted(Date.now, () => ({
      kind: 'transient',
      provider: 'test',
      detail: 'down',
    }));
    queue.startWorker(handler, 1);
    const mobile = randomMobile();
    await queue.enqueue({ mobile, purpose: 'register' });
    await waitFor('a retry scheduled', () => timers.length === 1);

    await queue.close();

    expect(timers[0]?.cancelled).toBe(true);
    timers[0]?.fire(); // a late timer does nothing once the queue is closed
    expect(calls).toHaveLength(1);
    expect(ends()).toHaveLength(1);
    expect(ends()[0]).toMatchObject({
      mobile: masked(mobile),
      outcome: 'transient',
      attempts: 1,
      reason: 'queue closed during the backoff',
    });
    expect(lines.find((l) => l.dropped === 1)).toMatchObject({ level: 40 });
  });
});

// ---- BullMQ only: Redis down ----------------------------------------------------------

describe('BullMQ queue with its Redis down', () => {
  it('rejects enqueue and ping promptly instead of hanging', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const { log } = captureLog();
    const queue = createBullmqQueue({
      connection: connectRedis(`redis://127.0.0.1:${port}/0`, 'queue', log),
      prefix: 'meiduo-users-test:down',
      log,
      attempts: 3,
      backoffMs: 1000,
    });
    try {
      for (const attempt of [1, 2]) {
        const started = Date.now();
        const err = await queue.enqueue({ mobile: randomMobile(), purpose: 'register' }).catch((e) => e);
        const elapsed = Date.now() - started;
        expect(err, `enqueue #${attempt}`).toBeInstanceOf(DependencyError);
        expect(elapsed, `enqueue #${attempt} took ${elapsed} ms`).toBeLessThan(2000);
      }
      const started = Date.now();
      await expect(queue.ping()).rejects.toBeInstanceOf(DependencyError);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await queue.close();
    }
  });
});

describe.skipIf(!redisHere)('BullMQ queue asking for replica acknowledgements', () => {
  it('refuses a job no replica acknowledged (the test Redis has none)', async () => {
    const prefix = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
    const { log } = captureLog();
    const queue = createBullmqQueue({
      connection: connectRedis(REDIS_URL, 'queue', log),
      prefix,
      log,
      attempts: 1,
      backoffMs: 10,
      acks: { replicas: 1, timeoutMs: 50 },
    });
    try {
      await expect(queue.enqueue({ mobile: randomMobile(), purpose: 'register' })).rejects.toBeInstanceOf(
        DependencyError,
      );
    } finally {
      await queue.close();
    }
  });
});

/** A BullMQ queue whose locks lapse within a second (lock 1 s, stalled check every 300 ms). */
function lapsingBullmq(prefix: string, log: Logger, more: Partial<BullmqQueueOptions>) {
  return createBullmqQueue({
    connection: connectRedis(REDIS_URL, 'queue', log),
    prefix,
    log,
    attempts: 3,
    backoffMs: 20,
    lockDurationMs: 1000,
    stalledIntervalMs: 300,
    ...more,
  });
}

describe.skipIf(!redisHere)('BullMQ queue shutdown with a job that does not finish', () => {
  it('close() gives up after closeTimeoutMs and another worker takes the job over, logged as a repeat', async () => {
    const prefix = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
    const first = captureLog();
    const second = captureLog();
    const stuck = lapsingBullmq(prefix, first.log, { closeTimeoutMs: 300 });
    const taker = lapsingBullmq(prefix, second.log, { closeTimeoutMs: 300 });
    const redis = new Redis(REDIS_URL);
    try {
      const g = gate();
      const ids: string[] = [];
      stuck.startWorker(async (_job, info) => {
        ids.push(info.id);
        await g.pass(); // a vendor call that hangs past the shutdown
        return ok;
      }, 1);
      const mobile = randomMobile();
      await stuck.enqueue({ mobile, purpose: 'register' });
      await waitFor('the job in hand', () => g.held() === 1);

      const started = Date.now();
      await stuck.close();
      const closeMs = Date.now() - started;
      expect(closeMs).toBeLessThan(2000);
      expect(first.lines.some((l) => l.msg === 'sms worker did not finish in time')).toBe(true);

      const { calls, handler } = scripted(Date.now, () => ok);
      taker.startWorker(handler, 1);
      await waitFor('the takeover', () => second.ends().length === 1);
      expect(calls.map((c) => c.id)).toEqual(ids);
      expect(second.ends()[0]).toMatchObject({
        jobId: ids[0],
        mobile: masked(mobile),
        outcome: 'ok',
        attempts: 1,
        repeat: true,
        msg: 'sms job finished (possible duplicate send)',
      });
    } finally {
      for (const g of gates.splice(0)) g.open();
      await taker.close();
      await stuck.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    }
  });
});

describe.skipIf(!redisHere)('BullMQ queue after a lock lapsed during a run', () => {
  /** A queue whose locks lapse within a second, with its log, and a client to break locks. */
  const lapsingQueue = (lockCheckAfterMs: number) => {
    const prefix = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
    const captured = captureLog();
    const queue = lapsingBullmq(prefix, captured.log, { lockCheckAfterMs });
    return { ...captured, prefix, queue, redis: new Redis(REDIS_URL) };
  };

  it('the run that lost its job sends nothing, and the run that has it now sends the code once', async () => {
    // lockCheckAfterMs 0: every run asks before its send (by default only runs older than half the lock).
    const { log, lines, ends, prefix, queue, redis } = lapsingQueue(0);
    const sent: string[] = [];
    let reads = 0;
    try {
      const mobile = randomMobile();
      queue.startWorker(
        createSendSmsHandler({
          // The first read of the code outlives the job's lock, as a read waiting out a Redis
          // outage longer than the lock would: the lock is gone when it returns.
          codeStore: {
            get: async () => {
              if (reads++ === 0) {
                const locks = await redis.keys(`${prefix}:${SEND_SMS_JOB}:*:lock`);
                if (locks.length > 0) await redis.del(...locks);
              }
              return '246810';
            },
          } as unknown as Parameters<typeof createSendSmsHandler>[0]['codeStore'],
          sms: {
            name: 'recording',
            send: async (message) => {
              sent.push(`${message.mobile}:${message.code}`);
              return { kind: 'ok', provider: 'recording' };
            },
          },
          log,
          codeTtlSeconds: 300,
          testNumbers: new Map(),
        }),
        1,
      );
      await queue.enqueue({ mobile, purpose: 'register' });
      await waitFor('the run after the lapse to end', () => ends().length === 1, 10_000);
      expect(reads).toBe(2);
      expect(sent).toEqual([`${mobile}:246810`]);
      expect(lines.filter((l) => l.msg.startsWith('sms job lost its lock before the send'))).toHaveLength(1);
      expect(ends()[0]).toMatchObject({ mobile: masked(mobile), outcome: 'ok', repeat: true });
    } finally {
      await queue.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    }
  });

  it('a send whose end never reached Redis comes back to the worker that sent it and is not sent again', async () => {
    // The run's own check before the send does not ask: the lock lapses only after the send.
    const { log, lines, ends, prefix, queue, redis } = lapsingQueue(60_000);
    const sent: string[] = [];
    try {
      const mobile = randomMobile();
      queue.startWorker(
        createSendSmsHandler({
          codeStore: { get: async () => '135790' } as unknown as Parameters<
            typeof createSendSmsHandler
          >[0]['codeStore'],
          sms: {
            name: 'recording',
            send: async (message) => {
              sent.push(`${message.mobile}:${message.code}`);
              // The SMS went out; then the link to Redis broke for longer than the lock: the
              // job's end cannot be written, and the stalled check hands the job out again.
              const locks = await redis.keys(`${prefix}:${SEND_SMS_JOB}:*:lock`);
              if (locks.length > 0) await redis.del(...locks);
              return { kind: 'ok', provider: 'recording' };
            },
          },
          log,
          codeTtlSeconds: 300,
          testNumbers: new Map(),
        }),
        1,
      );
      await queue.enqueue({ mobile, purpose: 'register' });
      await waitFor(
        'the job to come back and end',
        async () =>
          lines.some((l) => l.msg.startsWith('sms job came back after its end was lost')) &&
          (await queue.counts()).active === 0,
        10_000,
      );
      expect(sent).toEqual([`${mobile}:135790`]);
      expect(ends()).toHaveLength(1);
      expect(await queue.counts()).toMatchObject({ waiting: 0, active: 0, failed: 0 });
    } finally {
      await queue.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    }
  });
});
