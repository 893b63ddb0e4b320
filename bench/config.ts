/**
 * Every setting of `npm run bench` in one place. BENCH_QUICK=1 shortens every timed run to a
 * smoke run; the figures of a quick run are indicative only.
 */
import { availableParallelism } from 'node:os';

export const QUICK = process.env.BENCH_QUICK === '1';
/** BENCH_CPU_PROF=1: the web processes run with --cpu-prof (profiles in bench/results/profiles). */
export const CPU_PROFILE = process.env.BENCH_CPU_PROF === '1';
/**
 * BENCH_ONLY=django,baselines,embedded,redis-postgres,queue (any of them): run only these parts
 * (for diagnosis; targets then stay partly open).
 */
export const ONLY = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

export const REDIS_SERVER = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** A database number of its own, so nothing of the bench meets other users of the server. */
export const REDIS_DB = Number(process.env.BENCH_REDIS_DB ?? 7);
export const REDIS_URL = `${REDIS_SERVER}/${REDIS_DB}`;

export const BENCH = {
  /** Seconds of each HTTP run and of each baseline. */
  durationSeconds: QUICK ? 2 : 8,
  /** Seconds of warm-up load before each measured HTTP run (JIT, pools, caches). */
  warmupSeconds: QUICK ? 0.5 : 1.5,
  /** autocannon connections (one client process, pipelining 1). */
  connections: 32,
  /** Rate of the captcha probe while /register/ runs at full load (requests/s, 2 connections). */
  probeRate: 20,
  probeConnections: 2,
  /** /proc/<pid>/status sampling period for VmRSS (VmHWM gives the peak in any case). */
  rssSampleMs: 100,
  /** The mixed run is made twice, each in a fresh web process, to compare peak RSS. */
  rssRepeats: 2,
} as const;

/**
 * The web process environment: production defaults except where a load test must differ.
 * RATE_LIMITS=off because one client address sends everything; CSRF stays ON (the token is
 * fetched from /csrf_token/ with its cookie, as a browser does). The hasher settings are the
 * service defaults (argon2id m=19456 KiB, t=2, p=1; WEB_CONCURRENCY = cores, HASH_CONCURRENCY =
 * its share of the cores per process) and the hasher baseline uses the same ones.
 */
export const SERVICE_ENV = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  RATE_LIMITS: 'off',
  CSRF_ENABLED: 'true',
  SMS_PROVIDER: 'console',
  PASSWORD_HASHER: 'argon2',
  ARGON2_MEMORY_KIB: '19456',
  ARGON2_TIME_COST: '2',
  ARGON2_PARALLELISM: '1',
} as const;

/**
 * On Redis the web process runs with RUN_WORKER=false, as a deployment with separate workers
 * (gunicorn + Celery in the original): the HTTP runs measure the web process, the queue run
 * measures the workers. The jobs it enqueues are removed after each run.
 */
export const REDIS_WEB_ENV = { RUN_WORKER: 'false' } as const;

/**
 * The Django original (bench/django/) beside meiduo-users: gunicorn sync workers and Celery
 * prefork processes, as many as cores (as the course deploys it), on the bench's Redis server in
 * databases of its own (BENCH_DJANGO_REDIS_DBS: codes, sessions, broker; the course uses 2, 1, 15).
 */
const djangoDbs = (process.env.BENCH_DJANGO_REDIS_DBS ?? '8,9,10').split(',').map(Number);
export const DJANGO = {
  processes: availableParallelism(),
  verifyDb: djangoDbs[0] ?? 8,
  sessionDb: djangoDbs[1] ?? 9,
  brokerDb: djangoDbs[2] ?? 10,
} as const;

/**
 * The runs against Django (issue 11): the same autocannon load for both, alternated Django,
 * meiduo-users, Django, meiduo-users so that the ratio survives a noisy machine.
 */
export const VERSUS = {
  rounds: 2,
  connections: 50,
  durationSeconds: QUICK ? 2 : 10,
  warmupSeconds: QUICK ? 0.5 : 2,
  /** End to end: /sms_codes/ at full load this long, counting the SMS the workers sent in it. */
  endToEndSeconds: QUICK ? 3 : 30,
  /** After a run, the queue is drained before the next one starts (at most this long). */
  drainSeconds: 120,
} as const;

/**
 * meiduo-users as a user runs it for the comparison: `npm start` with REDIS_URL (a database
 * of its own), PBKDF2-SHA256 at Django 3.2's default cost, rate limits off (one client
 * address sends everything), every other setting at its default.
 */
export const VERSUS_SERVICE_ENV = {
  HOST: '127.0.0.1',
  RATE_LIMITS: 'off',
  PASSWORD_HASHER: 'pbkdf2_sha256',
  PBKDF2_ITERATIONS: '260000',
} as const;

export const QUEUE = {
  /** Jobs of the throughput run. */
  jobs: QUICK ? 2000 : 10_000,
  /** Worker processes, each one BullMQ Worker with the service's default concurrency. */
  workerProcesses: 2,
  workerConcurrency: 32,
  /** Enqueues in flight from the producer (many web processes enqueue at once). */
  producerConcurrency: 64,
  /** The steady run: this many jobs per second for this long. */
  steadyRate: 500,
  steadySeconds: QUICK ? 2 : 8,
} as const;

/**
 * The targets of issue 11. Ratios to own baselines (hello-world, renderer, hasher) are
 * reported beside them as explanation and meet no target.
 */
export const TARGETS = {
  captchaP99UnderRegisterMs: 50,
  queueJobsPerSecond: 5000,
  queueP99Ms: 50,
  peakRssMb: 200,
  rssRepeatTolerance: 0.1,
  /** meiduo-users ÷ Django in the same run. */
  versus: {
    image: 2.5,
    sms: 10,
    register: 1.5,
    login: 1.5,
    endToEnd: 10,
  },
} as const;
