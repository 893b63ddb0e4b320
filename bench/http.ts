/**
 * HTTP load against the built service (`node dist/server.js`), one fresh web process per run
 * so that each run has its own peak RSS: captcha, SMS code, register, login, the captcha
 * under full register load, and a mixed sign-up run (twice, to compare peak RSS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestSpec } from 'autocannon';
import { freshDatabase } from '../test/databases.js';
import { BENCH, REDIS_URL, REDIS_WEB_ENV, SERVICE_ENV } from './config.js';
import {
  type CodeWriter,
  cleanBenchRedis,
  type ImageItem,
  imageItems,
  nextMobile,
  nextUsername,
  nextUuid,
  PASSWORD,
  Pool,
  redisWriter,
  type SmsItem,
  smsItems,
  sqliteWriter,
} from './lib/fixtures.js';
import { type LoadSummary, load } from './lib/load.js';
import { ROOT, type Served, startNode } from './lib/process.js';

export type BaselineKind = 'hello' | 'captcha' | 'hasher';

export interface RunResult extends LoadSummary {
  /** Peak RSS of the web process over its whole life (start, warm-up, run), MiB. */
  peakRssMb: number;
  /** A prepared pool ran dry: the late requests had no valid code (they show as errors). */
  exhausted: boolean;
  /** The run's own baseline, measured just before and just after it (per second). */
  baseline?: { kind: BaselineKind; samples: number[]; perSecond: number };
}

export interface ResponsivenessResult {
  probe: LoadSummary;
  register: LoadSummary;
  peakRssMb: number;
}

export interface BackendResults {
  name: string;
  label: string;
  image: RunResult;
  sms: RunResult;
  register: RunResult;
  login: RunResult;
  responsiveness: ResponsivenessResult;
  mixed: RunResult[];
}

/** Rates measured before, used to size what is prepared for the runs. */
export interface Sizing {
  helloRps: number;
  hasherRate: number;
}

/** Measures a baseline afresh; null when baselines are not part of this run. */
export type MeasureBaseline = ((kind: BaselineKind) => Promise<number>) | null;

interface Backend {
  name: string;
  label: string;
  env: Record<string, string>;
  cwd: string;
  writer(): CodeWriter;
  /** Between runs: the Redis keys (and queued jobs) the last run left. */
  afterRun(): Promise<void>;
  close(): Promise<void>;
}

async function embeddedBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-bench-'));
  const file = join(dir, 'meiduo.sqlite3');
  return {
    name: 'embedded',
    label: 'embedded default (SQLite, in-process queue)',
    env: { DATA_DIR: dir, DATABASE_URL: `sqlite:${file}` },
    cwd: dir,
    writer: () => sqliteWriter(file),
    afterRun: async () => {},
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function redisPostgresBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-bench-'));
  const database = await freshDatabase('postgres');
  // Server databases are migrated by `npm run migrate`, as in a deployment.
  execFileSync(process.execPath, [join(ROOT, 'dist/migrate.js')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: database.url, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return {
    name: 'redis-postgres',
    label: `Redis (db ${new URL(REDIS_URL).pathname.slice(1)}) + BullMQ + PostgreSQL`,
    env: { DATA_DIR: dir, DATABASE_URL: database.url, REDIS_URL, ...REDIS_WEB_ENV },
    cwd: dir,
    writer: redisWriter,
    afterRun: async () => void (await cleanBenchRedis()),
    close: async () => {
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** node's flags of an npm script (and deploy/Procfile), so the bench runs processes as shipped. */
const scriptFlags = (script: 'start' | 'worker') =>
  (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts[script]
    ?.split(/\s+/)
    .filter((word) => word.startsWith('--')) ?? [];
export const START_FLAGS = scriptFlags('start');
export const WORKER_FLAGS = scriptFlags('worker');

function startService(backend: Backend, name: string): Promise<Served> {
  return startNode(
    [...START_FLAGS, join(ROOT, 'dist/server.js')],
    { ...SERVICE_ENV, ...backend.env },
    {
      readyPath: '/healthz',
      cwd: backend.cwd,
      name: `${backend.name}-${name}`,
    },
  );
}

export interface Csrf {
  headers: Record<string, string>;
}

/** A token and its cookie from /csrf_token/, as the pages get them. */
export async function csrfOf(url: string): Promise<Csrf> {
  const res = await fetch(`${url}/csrf_token/`);
  const body = (await res.json()) as { csrf_token: string };
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .find((c) => c?.startsWith('csrftoken='));
  if (!cookie) throw new Error('no csrftoken cookie from /csrf_token/');
  return {
    headers: { 'content-type': 'application/json', cookie, 'x-csrftoken': body.csrf_token },
  };
}

interface Registered {
  username: string;
  password: string;
}

/** The request specs of each kind; each call to setupRequest takes fresh items. */
function requestKinds(
  pools: { images: Pool<ImageItem>; sms: Pool<SmsItem> },
  csrf: Csrf,
  registered: Registered[],
) {
  let loginIndex = 0;
  const image: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: `/image_codes/${nextUuid()}/` }),
  };
  const sms: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => {
      const item = pools.images.next(() => ({ uuid: nextUuid(), answer: 'NONE' }));
      return {
        ...req,
        path: `/sms_codes/${nextMobile()}/?image_code=${item.answer}&image_code_id=${item.uuid}`,
      };
    },
  };
  const register: RequestSpec = {
    method: 'POST',
    setupRequest: (req, context) => {
      const item = pools.sms.next(() => ({ mobile: nextMobile(), code: '000000' }));
      const username = nextUsername();
      context.username = username;
      return {
        ...req,
        path: '/register/',
        headers: csrf.headers,
        body: JSON.stringify({
          username,
          password: PASSWORD,
          password2: PASSWORD,
          mobile: item.mobile,
          sms_code: item.code,
          allow: true,
        }),
      };
    },
    onResponse: (status, _body, context) => {
      if (status === 200) registered.push({ username: String(context.username), password: PASSWORD });
    },
  };
  const login: RequestSpec = {
    method: 'POST',
    setupRequest: (req) => {
      const user = registered[loginIndex++ % registered.length];
      if (!user) throw new Error('no registered user to log in with');
      return {
        ...req,
        path: '/login/',
        headers: csrf.headers,
        body: JSON.stringify({ username: user.username, password: user.password, remembered: true }),
      };
    },
  };
  const csrfToken: RequestSpec = { method: 'GET', path: '/csrf_token/' };
  const usernameCount: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: `/usernames/${nextUsername()}/count/` }),
  };
  const mobileCount: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: `/mobiles/${nextMobile()}/count/` }),
  };
  return { image, sms, register, login, csrfToken, usernameCount, mobileCount };
}

type Kinds = ReturnType<typeof requestKinds>;

interface RunPlan {
  name: string;
  /** Captcha answers and SMS codes to prepare. */
  images: number;
  sms: number;
  requests(kinds: Kinds): RequestSpec[];
  /**
   * Bound by the password hasher: warmed up with one connection per core only, because
   * requests still queued for a hash when the warm-up ends would run into the measured time.
   */
  hashBound?: boolean;
}

/** Hash threads of all web processes together: one per core by default (WEB_CONCURRENCY × share). */
const HASH_THREADS = availableParallelism();

/** Warm-up load; for hash-bound runs few enough connections that nothing is left queued. */
async function warmUp(url: string, requests: RequestSpec[], hashBound: boolean): Promise<void> {
  await load({
    url,
    requests,
    connections: hashBound ? HASH_THREADS : BENCH.connections,
    durationSeconds: BENCH.warmupSeconds,
  });
}

/** One measured run in a fresh web process: prepare, start, warm up, measure, stop. */
async function measuredRun(backend: Backend, plan: RunPlan, registered: Registered[]): Promise<RunResult> {
  const images = imageItems(plan.images);
  const sms = smsItems(plan.sms);
  const writer = backend.writer();
  await writer.put(images, sms, 3600);
  await writer.close();
  const pools = { images: new Pool(images), sms: new Pool(sms) };
  const service = await startService(backend, plan.name);
  try {
    const csrf = await csrfOf(service.url);
    const requests = plan.requests(requestKinds(pools, csrf, registered));
    await warmUp(service.url, requests, plan.hashBound === true);
    const summary = await load({
      url: service.url,
      requests,
      connections: BENCH.connections,
      durationSeconds: BENCH.durationSeconds,
    });
    return {
      ...summary,
      peakRssMb: service.peakRssMb(),
      exhausted: pools.images.exhausted || pools.sms.exhausted,
    };
  } finally {
    await service.stop();
    await backend.afterRun();
  }
}

/** The captcha at a modest fixed rate while /register/ runs at full load beside it. */
async function responsivenessRun(
  backend: Backend,
  registerItems: number,
  registered: Registered[],
): Promise<ResponsivenessResult> {
  const sms = smsItems(registerItems);
  const writer = backend.writer();
  await writer.put([], sms, 3600);
  await writer.close();
  const pools = { images: new Pool<ImageItem>([]), sms: new Pool(sms) };
  const service = await startService(backend, 'responsiveness');
  try {
    const kinds = requestKinds(pools, await csrfOf(service.url), registered);
    const register = { url: service.url, requests: [kinds.register], connections: BENCH.connections };
    // Both routes warmed (JIT, the captcha threads' first drawings), as each measured run is.
    await Promise.all([
      warmUp(service.url, [kinds.register], true),
      load({
        url: service.url,
        requests: [kinds.image],
        connections: BENCH.probeConnections,
        durationSeconds: BENCH.warmupSeconds,
      }),
    ]);
    const [registerSummary, probe] = await Promise.all([
      load({ ...register, durationSeconds: BENCH.durationSeconds }),
      load({
        url: service.url,
        requests: [kinds.image],
        connections: BENCH.probeConnections,
        durationSeconds: BENCH.durationSeconds,
        overallRate: BENCH.probeRate,
      }),
    ]);
    return { probe, register: registerSummary, peakRssMb: service.peakRssMb() };
  } finally {
    await service.stop();
    await backend.afterRun();
  }
}

/** A run between two measurements of its baseline (the second one is passed on to the next). */
async function bracketed(
  baseline: MeasureBaseline,
  kind: BaselineKind,
  before: number | undefined,
  run: () => Promise<RunResult>,
): Promise<{ result: RunResult; after: number | undefined }> {
  if (!baseline) return { result: await run(), after: undefined };
  const first = before ?? (await baseline(kind));
  const result = await run();
  const after = await baseline(kind);
  const samples = [first, after];
  return { result: { ...result, baseline: { kind, samples, perSecond: (first + after) / 2 } }, after };
}

export async function runBackend(
  kind: 'embedded' | 'redis-postgres',
  sizing: Sizing,
  baseline: MeasureBaseline,
  log: (line: string) => void,
): Promise<BackendResults> {
  const backend = kind === 'embedded' ? await embeddedBackend() : await redisPostgresBackend();
  const seconds = BENCH.durationSeconds + BENCH.warmupSeconds;
  // Enough for a service as fast as the ceiling (+20 %); a run that still runs dry says so.
  // Floor of 6,000/s: the hello-world rate itself is noisy on a shared machine.
  const smsNeeded = Math.ceil(Math.max(sizing.helloRps * 1.2, 6000) * seconds) + 500;
  // Floor of 300/s: a hasher measured while the machine was busy understates a quiet minute.
  const hashNeeded = Math.ceil(Math.max(sizing.hasherRate * 3, 300) * seconds) + 200;
  const registered: Registered[] = [];
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    log(`  ${backend.name}: ${name}`);
    return run();
  };
  try {
    const { result: image } = await step('GET /image_codes/', () =>
      bracketed(baseline, 'captcha', undefined, () =>
        measuredRun(backend, { name: 'image', images: 0, sms: 0, requests: (k) => [k.image] }, registered),
      ),
    );
    const { result: sms } = await step('GET /sms_codes/', () =>
      bracketed(baseline, 'hello', undefined, () =>
        measuredRun(
          backend,
          { name: 'sms', images: smsNeeded, sms: 0, requests: (k) => [k.sms] },
          registered,
        ),
      ),
    );
    const { result: register, after: hasherAfter } = await step('POST /register/', () =>
      bracketed(baseline, 'hasher', undefined, () =>
        measuredRun(
          backend,
          { name: 'register', images: 0, sms: hashNeeded, requests: (k) => [k.register], hashBound: true },
          registered,
        ),
      ),
    );
    const { result: login } = await step('POST /login/', () =>
      bracketed(baseline, 'hasher', hasherAfter, () =>
        measuredRun(
          backend,
          { name: 'login', images: 0, sms: 0, requests: (k) => [k.login], hashBound: true },
          registered,
        ),
      ),
    );
    const responsiveness = await step('captcha under register load', () =>
      responsivenessRun(backend, hashNeeded, registered),
    );
    const mixed: RunResult[] = [];
    for (let i = 0; i < BENCH.rssRepeats; i++) {
      mixed.push(
        await step(`mixed sign-up #${i + 1}`, () =>
          measuredRun(
            backend,
            {
              name: `mixed${i + 1}`,
              images: hashNeeded,
              sms: hashNeeded,
              hashBound: true,
              requests: (k) => [
                k.csrfToken,
                k.image,
                k.usernameCount,
                k.mobileCount,
                k.sms,
                k.register,
                k.login,
              ],
            },
            registered,
          ),
        ),
      );
    }
    return { name: backend.name, label: backend.label, image, sms, register, login, responsiveness, mixed };
  } finally {
    await backend.close();
  }
}
