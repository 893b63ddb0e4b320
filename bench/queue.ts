/**
 * The queue: SMS jobs through BullMQ (the service's adapter) to several worker processes
 * whose provider sends nothing. Throughput of a burst of jobs, and enqueue-to-send latency
 * at a steady rate.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { createBullmqQueue } from '../src/adapters/job-queue/bullmq.js';
import { connectRedis } from '../src/adapters/redis.js';
import type { JobQueue } from '../src/domain/ports.js';
import { CPU_PROFILE, QUEUE, REDIS_URL } from './config.js';
import { WORKER_FLAGS } from './http.js';
import { cleanBenchRedis, RUN_TAG, redisWriter, smsItems } from './lib/fixtures.js';
import { RESULTS_DIR, ROOT } from './lib/process.js';

export interface QueueResults {
  jobs: number;
  workers: number;
  concurrency: number;
  /** Burst: all jobs enqueued at once; first enqueue to last send. */
  jobsPerSecond: number;
  burstP50Ms: number;
  burstP99Ms: number;
  /** Steady: enqueue-to-send latency at QUEUE.steadyRate jobs/s. */
  steadyRate: number;
  steadyJobs: number;
  steadyAchievedRate: number;
  steadyP50Ms: number;
  steadyP99Ms: number;
  /** Jobs not sent before the deadline (should be 0). */
  lost: number;
  /**
   * Where the burst's CPU went, in µs per job: the Redis server (INFO cpu), the worker
   * processes and the producer (this process), and BullMQ's Lua scripts run per job
   * (INFO commandstats). Whole-server figures: other clients of the server count too.
   */
  burstCpu?: {
    redisUsPerJob: number;
    workersUsPerJob: number;
    producerUsPerJob: number;
    scriptsPerJob: number;
  };
}

const now = () => performance.timeOrigin + performance.now();

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

interface Workers {
  pids: number[];
  /** Resolves when every mobile given has been sent (or at the deadline), with the send times. */
  waitFor(mobiles: string[], deadlineMs: number): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

async function startWorkers(prefix: string): Promise<Workers> {
  const sentAt = new Map<string, number>();
  let wake: (() => void) | undefined;
  const devNull = openSync('/dev/null', 'w');
  const children: ChildProcess[] = [];
  for (let i = 0; i < QUEUE.workerProcesses; i++) {
    const child = fork(join(ROOT, 'bench/children/queue-worker.ts'), [], {
      // node's flags of `npm run worker`, as a deployment runs its workers.
      execArgv: [
        ...WORKER_FLAGS,
        '--import',
        'tsx',
        ...(CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles')}`] : []),
      ],
      env: {
        ...process.env,
        QUEUE_URL: REDIS_URL,
        QUEUE_PREFIX: prefix,
        QUEUE_CONCURRENCY: String(QUEUE.workerConcurrency),
      },
      stdio: ['ignore', devNull, 'inherit', 'ipc'],
    });
    children.push(child);
  }
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`queue worker exited ${code}`)));
          child.on('message', (message) => {
            if (message === 'ready') return resolve();
            for (const [mobile, t] of message as Array<[string, number]>) sentAt.set(mobile, t);
            wake?.();
          });
        }),
    ),
  );
  return {
    pids: children.map((c) => c.pid as number),
    async waitFor(mobiles, deadlineMs) {
      const deadline = Date.now() + deadlineMs;
      while (Date.now() < deadline && !mobiles.every((m) => sentAt.has(m))) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
      return sentAt;
    },
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              child.removeAllListeners('exit');
              child.once('exit', () => resolve());
              child.send('stop');
              setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
            }),
        ),
      );
    },
  };
}

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** User + system CPU seconds of a process so far, from /proc. */
function cpuSecondsOf(pid: number): number {
  // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function redisCounters(redis: Redis): Promise<{ cpuSeconds: number; scripts: number }> {
  const cpu = await redis.info('cpu');
  const stats = await redis.info('commandstats');
  const number = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    cpuSeconds: number(cpu, /used_cpu_user:([\d.]+)/) + number(cpu, /used_cpu_sys:([\d.]+)/),
    scripts: number(stats, /cmdstat_evalsha:calls=(\d+)/) + number(stats, /cmdstat_eval:calls=(\d+)/),
  };
}

interface CpuSnapshot {
  redis: { cpuSeconds: number; scripts: number };
  workers: number;
  producer: number;
}

async function cpuSnapshot(redis: Redis, workers: Workers): Promise<CpuSnapshot> {
  const usage = process.cpuUsage();
  return {
    redis: await redisCounters(redis),
    workers: workers.pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0),
    producer: (usage.user + usage.system) / 1e6,
  };
}

function cpuPerJob(
  before: CpuSnapshot,
  after: CpuSnapshot,
  jobs: number,
): NonNullable<QueueResults['burstCpu']> {
  const us = (seconds: number) => (seconds * 1e6) / jobs;
  return {
    redisUsPerJob: us(after.redis.cpuSeconds - before.redis.cpuSeconds),
    workersUsPerJob: us(after.workers - before.workers),
    producerUsPerJob: us(after.producer - before.producer),
    scriptsPerJob: (after.redis.scripts - before.redis.scripts) / jobs,
  };
}

function latencies(mobiles: string[], enqueuedAt: Map<string, number>, sentAt: Map<string, number>) {
  const values = mobiles
    .filter((m) => sentAt.has(m))
    .map((m) => (sentAt.get(m) as number) - (enqueuedAt.get(m) as number))
    .sort((a, b) => a - b);
  return { p50: percentile(values, 50), p99: percentile(values, 99), lost: mobiles.length - values.length };
}

async function burst(producer: JobQueue, workers: Workers, mobiles: string[]) {
  const enqueuedAt = new Map<string, number>();
  const start = now();
  let next = 0;
  const loop = async () => {
    while (next < mobiles.length) {
      const mobile = mobiles[next++] as string;
      enqueuedAt.set(mobile, now());
      await producer.enqueue({ mobile, purpose: 'register' });
    }
  };
  await Promise.all(Array.from({ length: QUEUE.producerConcurrency }, loop));
  const sentAt = await workers.waitFor(mobiles, 120_000);
  const last = Math.max(...mobiles.map((m) => sentAt.get(m) ?? 0));
  const l = latencies(mobiles, enqueuedAt, sentAt);
  return { jobsPerSecond: (mobiles.length - l.lost) / ((last - start) / 1000), ...l };
}

async function steady(producer: JobQueue, workers: Workers, mobiles: string[]) {
  const enqueuedAt = new Map<string, number>();
  const start = now();
  let issued = 0;
  const pending: Array<Promise<void>> = [];
  // Every 2 ms, enqueue what the schedule says is due; enqueues do not wait for each other.
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(mobiles.length, Math.floor(((now() - start) / 1000) * QUEUE.steadyRate));
      while (issued < due) {
        const mobile = mobiles[issued++] as string;
        enqueuedAt.set(mobile, now());
        pending.push(producer.enqueue({ mobile, purpose: 'register' }));
      }
      if (issued >= mobiles.length) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  const elapsed = (now() - start) / 1000;
  await Promise.all(pending);
  const sentAt = await workers.waitFor(mobiles, 60_000);
  return { achievedRate: mobiles.length / elapsed, ...latencies(mobiles, enqueuedAt, sentAt) };
}

export async function runQueue(log: (line: string) => void): Promise<QueueResults> {
  const prefix = `meiduo-bench:${RUN_TAG}`;
  const steadyJobs = QUEUE.steadyRate * QUEUE.steadySeconds;
  // Each job finds its code in the store, as a real one does (else it is skipped, not sent).
  const warm = smsItems(200);
  const burstItems = smsItems(QUEUE.jobs);
  const steadyItems = smsItems(steadyJobs);
  const writer = redisWriter();
  await writer.put([], [...warm, ...burstItems, ...steadyItems], 3600);
  await writer.close();
  const producer = createBullmqQueue({
    connection: connectRedis(REDIS_URL, 'queue', pino({ level: 'warn' })),
    prefix,
    log: pino({ level: 'warn' }),
    attempts: 6,
    backoffMs: 2000,
  });
  const workers = await startWorkers(prefix);
  const admin = new Redis(REDIS_URL);
  try {
    log(`  queue: warm-up`);
    await burst(
      producer,
      workers,
      warm.map((s) => s.mobile),
    );
    log(`  queue: ${QUEUE.jobs} jobs, ${QUEUE.workerProcesses} worker processes`);
    const before = await cpuSnapshot(admin, workers);
    const b = await burst(
      producer,
      workers,
      burstItems.map((s) => s.mobile),
    );
    const burstCpu = cpuPerJob(before, await cpuSnapshot(admin, workers), QUEUE.jobs);
    log(`  queue: ${QUEUE.steadyRate} jobs/s for ${QUEUE.steadySeconds} s`);
    const s = await steady(
      producer,
      workers,
      steadyItems.map((i) => i.mobile),
    );
    return {
      jobs: QUEUE.jobs,
      workers: QUEUE.workerProcesses,
      concurrency: QUEUE.workerConcurrency,
      jobsPerSecond: b.jobsPerSecond,
      burstP50Ms: b.p50,
      burstP99Ms: b.p99,
      steadyRate: QUEUE.steadyRate,
      steadyJobs,
      steadyAchievedRate: s.achievedRate,
      steadyP50Ms: s.p50,
      steadyP99Ms: s.p99,
      lost: b.lost + s.lost,
      burstCpu,
    };
  } finally {
    admin.disconnect();
    await workers.stop();
    await producer.close();
    await cleanBenchRedis();
  }
}
