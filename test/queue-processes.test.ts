/**
 * The BullMQ queue with real worker processes (test/fixtures/queue-worker.ts): what happens
 * when a worker is killed mid-burst, and when Redis restarts under a running worker. No job
 * may be lost; a job may run twice only if it was in the killed worker's hands, and then the
 * survivor's log says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BULLMQ_DEFAULTS, createBullmqQueue } from '../src/adapters/job-queue/bullmq.js';
import { connectRedis } from '../src/adapters/redis.js';
import { DependencyError } from '../src/domain/errors.js';
import type { JobQueue } from '../src/domain/ports.js';
import { BACKEND_URLS, has } from './backends.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'queue-worker.ts');
const SHARED_REDIS_URL = (() => {
  const url = new URL(BACKEND_URLS.redis);
  url.pathname = '/4';
  return url.toString();
})();
const quiet = pino({ level: 'silent' });

// ---- helpers --------------------------------------------------------------------------

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Does a Redis answer PING on this port? One short connection, no client library retries. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(String(data).startsWith('+PONG')));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

interface Event {
  what: 'start' | 'sent';
  pid: number;
  id: string;
  mobile: string;
  atMs: number;
}

function readEvents(file: string): Event[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [what, pid, id, mobile, atMs] = line.split(' ');
      return { what, pid: Number(pid), id, mobile, atMs: Number(atMs) } as Event;
    });
}

interface Worker {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startWorker(env: Record<string, string>): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let rest = '';
  child.stdout?.on('data', (chunk) => {
    const lines = (rest + String(chunk)).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line));
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      if (stderr.trim()) console.error(`worker ${child.pid} stderr:\n${stderr}`);
      resolve(code);
    });
  });
  return { child, logs, exited };
}

const ready = (w: Worker) => w.logs.some((l) => l.msg === 'sms worker ready');
const randomMobile = () => `13${String(randomBytes(4).readUInt32BE() % 1e9).padStart(9, '0')}`;

async function enqueueAll(queue: JobQueue, mobiles: string[]) {
  for (let i = 0; i < mobiles.length; i += 100) {
    await Promise.all(
      mobiles.slice(i, i + 100).map((mobile) => queue.enqueue({ mobile, purpose: 'register' })),
    );
  }
}

// ---- the tests ------------------------------------------------------------------------

const redisHere = await has('redis');
/** The restart test runs its own redis-server (Debian package redis-server). */
const redisServerHere = (() => {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0) return true;
  const required = (process.env.REQUIRE_BACKENDS ?? '').split(',').map((s) => s.trim());
  if (required.includes('all') || required.includes('redis')) {
    throw new Error('REQUIRE_BACKENDS asks for redis, but the redis-server program is not installed');
  }
  console.warn('SKIPPED: the Redis restart test needs the redis-server program');
  return false;
})();

describe.skipIf(!redisHere)('BullMQ with real worker processes', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const spawnWorker = (env: Record<string, string>) => {
    const w = startWorker(env);
    cleanups.push(() => {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    });
    return w;
  };

  it('a worker killed with SIGKILL mid-burst: every job is sent, repeats only of its jobs, logged', async () => {
    const testStartMs = Date.now();
    const dir = mkdtempSync(join(tmpdir(), 'meiduo-queue-'));
    const prefix = `meiduo-users-test:${randomBytes(6).toString('hex')}`;
    const events = join(dir, 'events');
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      const redis = new Redis(SHARED_REDIS_URL);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    });
    const env = { REDIS_URL: SHARED_REDIS_URL, PREFIX: prefix, EVENTS_FILE: events, SEND_DELAY_MS: '10' };
    // The victim hangs in its vendor call from its 151st job on: when it is killed it holds
    // exactly its 8 slots' worth of jobs, mid-send, while the survivor keeps going.
    const victim = spawnWorker({ ...env, CONCURRENCY: '8', HOLD_AFTER: '150' });
    const survivor = spawnWorker({ ...env, CONCURRENCY: '8' });
    await waitFor('both workers ready', () => ready(victim) && ready(survivor));
    const readyAfterMs = Date.now() - testStartMs;

    const producer = createBullmqQueue({
      connection: connectRedis(SHARED_REDIS_URL, 'queue', quiet),
      prefix,
      log: quiet,
      attempts: 5,
      backoffMs: 50,
    });
    cleanups.push(() => producer.close());
    const mobiles = Array.from({ length: 1000 }, randomMobile);
    const enqueued = enqueueAll(producer, mobiles);

    const victimPid = victim.child.pid as number;
    const victimStarts = () => readEvents(events).filter((e) => e.pid === victimPid && e.what === 'start');
    await waitFor('the victim to hold 8 jobs', () => victimStarts().length === 158);
    victim.child.kill('SIGKILL');
    const killedAtMs = Date.now();
    await victim.exited;

    const atKill = readEvents(events);
    const victimStarted = new Set(victimStarts().map((e) => e.id));
    const victimSent = new Set(
      atKill.filter((e) => e.pid === victimPid && e.what === 'sent').map((e) => e.id),
    );
    const inFlightAtKill = [...victimStarted].filter((id) => !victimSent.has(id));
    expect(inFlightAtKill).toHaveLength(8);
    // Mid-burst: jobs were still waiting when the victim died.
    expect(new Set(atKill.filter((e) => e.what === 'sent').map((e) => e.mobile)).size).toBeLessThan(1000);
    await enqueued;

    const sentMobiles = () =>
      new Set(
        readEvents(events)
          .filter((e) => e.what === 'sent')
          .map((e) => e.mobile),
      );
    await waitFor('every job sent', () => sentMobiles().size === 1000, 30_000);
    const survivorEnds = () => survivor.logs.filter((l) => String(l.msg).startsWith('sms job finished'));
    const all = readEvents(events);
    const survivorIds = new Set(
      all.filter((e) => e.pid !== victimPid && e.what === 'start').map((e) => e.id),
    );
    await waitFor('the survivor to log every job it ran', () => survivorEnds().length === survivorIds.size);

    // Every job the victim held is run again by the survivor; nothing else runs twice.
    const rerun = [...victimStarted].filter((id) => survivorIds.has(id));
    expect(rerun.sort()).toEqual(expect.arrayContaining(inFlightAtKill.sort()));
    expect(rerun.length).toBeLessThanOrEqual(8);
    const sends = new Map<string, number>();
    for (const e of all.filter((e) => e.what === 'sent')) sends.set(e.id, (sends.get(e.id) ?? 0) + 1);
    const sentTwice = [...sends].filter(([, n]) => n > 1).map(([id]) => id);
    expect(rerun).toEqual(expect.arrayContaining(sentTwice));
    expect(sends.size).toBe(1000);

    // The survivor's log counts exactly those re-runs as possible duplicates.
    const logged = survivorEnds().filter((l) => l.repeat === true);
    expect(logged.map((l) => l.jobId).sort()).toEqual(rerun.sort());
    expect(logged.every((l) => l.msg === 'sms job finished (possible duplicate send)')).toBe(true);
    expect(
      survivor.logs
        .filter((l) => String(l.msg).startsWith('sms job stalled'))
        .map((l) => l.jobId)
        .sort(),
    ).toEqual(inFlightAtKill.sort());

    const takeoverMs =
      Math.min(...all.filter((e) => e.pid !== victimPid && rerun.includes(e.id)).map((e) => e.atMs)) -
      killedAtMs;
    // Lock expiry, then up to two stalled checks; the rest is slack for a loaded CI machine.
    const bound = BULLMQ_DEFAULTS.lockDurationMs + 2 * BULLMQ_DEFAULTS.stalledIntervalMs + 4000;
    expect(takeoverMs).toBeLessThan(bound);
    console.info(
      `SIGKILL: victim had ${inFlightAtKill.length} in flight, ${rerun.length} re-run by the survivor ` +
        `(${sentTwice.length} sent twice), takeover after ${takeoverMs} ms (bound ${bound} ms)`,
    );

    const stopAtMs = Date.now();
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
    console.info(
      `SIGTERM to exit: ${Date.now() - stopAtMs} ms; workers were ready after ${readyAfterMs} ms; ` +
        `test ${Date.now() - testStartMs} ms`,
    );
  });

  it.skipIf(!redisServerHere)(
    'Redis restarts under a running worker: it reconnects and no job is lost',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'meiduo-redis-'));
      const port = await freePort();
      const events = join(dir, 'events');
      // A private Redis with every write on disk, so that a restart keeps every queued job.
      const startRedis = () => {
        const server = spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--dir',
            dir,
            '--appendonly',
            'yes',
            '--appendfsync',
            'always',
            '--save',
            '',
          ],
          { stdio: 'ignore' },
        );
        const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
        cleanups.push(async () => {
          if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
          await exited;
        });
        return { server, exited };
      };
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      let redis = startRedis();
      await waitFor('the private redis', () => answersPing(port));

      const url = `redis://127.0.0.1:${port}/0`;
      const prefix = 'meiduo-users-test:restart';
      const worker = spawnWorker({
        REDIS_URL: url,
        PREFIX: prefix,
        EVENTS_FILE: events,
        SEND_DELAY_MS: '10',
        CONCURRENCY: '4',
      });
      await waitFor('the worker ready', () => ready(worker));
      const producer = createBullmqQueue({
        connection: connectRedis(url, 'queue', quiet),
        prefix,
        log: quiet,
        attempts: 5,
        backoffMs: 50,
      });
      cleanups.push(() => producer.close());

      const mobiles = Array.from({ length: 400 }, randomMobile);
      await enqueueAll(producer, mobiles);
      const sentMobiles = () =>
        new Set(
          readEvents(events)
            .filter((e) => e.what === 'sent')
            .map((e) => e.mobile),
        );
      await waitFor('100 sends', () => sentMobiles().size >= 100);

      redis.server.kill('SIGTERM'); // a clean shutdown: Redis writes its append-only file
      await redis.exited;
      const stoppedAtMs = Date.now();
      const sentBeforeRestart = sentMobiles().size;
      expect(sentBeforeRestart).toBeLessThan(400);

      // Meanwhile the web side is told at once that the queue is down (and answers 503).
      const started = Date.now();
      await expect(producer.enqueue({ mobile: randomMobile(), purpose: 'register' })).rejects.toBeInstanceOf(
        DependencyError,
      );
      const refusedInMs = Date.now() - started;
      expect(refusedInMs).toBeLessThan(2000);

      redis = startRedis();
      await waitFor('the private redis back', () => answersPing(port));
      const restartedAtMs = Date.now();
      await waitFor('every job sent', () => sentMobiles().size === 400, 30_000);
      const drainedAtMs = Date.now();
      expect(worker.child.exitCode).toBeNull();
      expect(worker.logs.some((l) => l.msg === 'redis connection lost; reconnecting')).toBe(true);

      // The producer is back too.
      await waitFor('the producer to accept jobs again', async () =>
        producer.enqueue({ mobile: '13900000000', purpose: 'register' }).then(
          () => true,
          () => false,
        ),
      );
      await waitFor('the last job sent', () => sentMobiles().has('13900000000'));

      console.info(
        `Redis restart: ${sentBeforeRestart}/400 sent before, down ${restartedAtMs - stoppedAtMs} ms, ` +
          `enqueue refused in ${refusedInMs} ms, the rest sent ${drainedAtMs - restartedAtMs} ms after the restart`,
      );
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    },
  );
});

describe('npm run worker', () => {
  it('stops with one line naming the bad setting and exit code 1', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'worker.ts')],
      {
        env: { ...process.env, WORKER_CONCURRENCY: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let stdout = '';
    child.stderr?.on('data', (chunk) => {
      stderr += String(chunk);
    });
    child.stdout?.on('data', (chunk) => {
      stdout += String(chunk);
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toEqual([expect.stringContaining('WORKER_CONCURRENCY')]);
  });
});
