/**
 * meiduo-users against the Django original in the same run (issue 11): the same autocannon
 * load for both (VERSUS.connections, each request with its own image code, mobile or user
 * prepared in the side's Redis), each kind run Django, ours, Django, ours so that the ratio
 * survives a noisy machine. Both stacks stay up through the runs; after every run that
 * enqueues SMS, the side's worker(s) must have sent them all before the next run starts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestSpec } from 'autocannon';
import { Redis } from 'ioredis';
import { DJANGO, REDIS_URL, VERSUS, VERSUS_SERVICE_ENV } from './config.js';
import { cleanDjangoRedis, type DjangoStack, djangoRedisUrl, startDjango } from './django.js';
import { type Csrf, csrfOf, START_FLAGS } from './http.js';
import {
  cleanBenchRedis,
  type ImageItem,
  imageItems,
  nextMobile,
  nextUsername,
  nextUuid,
  Pool,
  redisWriter,
  type SmsItem,
  smsItems,
} from './lib/fixtures.js';
import { type LoadSummary, load } from './lib/load.js';
import { memoryOf, processTree, ROOT, startNode } from './lib/process.js';
import { sentCounter } from './lib/sent-counter.js';

export type SideName = 'django' | 'ours';

/** One load run: what autocannon saw, and the answers that were a success by the contract. */
export interface VersusRun extends LoadSummary {
  /** 200 with a JPEG, or 200 with `"code": 0`. */
  ok: number;
  okPerSecond: number;
  exhausted: boolean;
}

export interface EndToEnd {
  seconds: number;
  /** /sms_codes/ answered `code 0` in the window (each one queued a send). */
  requested: number;
  /** SMS printed by the worker(s) in the same window. */
  sentInWindow: number;
  sentPerSecond: number;
  requestedPerSecond: number;
  /** Requested but not yet sent when the window closed. */
  backlogAtEnd: number;
  /** Seconds after the window until every requested SMS was sent (within 0.25 s). */
  drainSeconds: number;
}

export interface VersusSide {
  label: string;
  image: VersusRun[];
  sms: VersusRun[];
  register: VersusRun[];
  login: VersusRun[];
  /** The captcha at a modest rate while /register/ runs at full load beside it. */
  probe: Array<{ probe: VersusRun; register: VersusRun }>;
  endToEnd: EndToEnd[];
  /** Highest peak RSS of any one of the side's processes over all runs, MiB (VmHWM). */
  peakRssMb: number | null;
  /** The side's processes at the end (web processes, workers; for ours: the `npm start` tree). */
  processes?: number;
}

export interface VersusResults {
  rounds: number;
  connections: number;
  durationSeconds: number;
  endToEndSeconds: number;
  /** Web processes and SMS worker processes of each side. */
  djangoProcesses: number;
  django: VersusSide;
  ours: VersusSide;
}

interface Registered {
  username: string;
  mobile: string;
}

interface Side {
  name: SideName;
  url: string;
  /** Where this side's captcha texts and SMS codes live. */
  codesUrl: string;
  csrf: Csrf;
  registered: Registered[];
  /** Successful /sms_codes/ answers so far: each must end as one SMS sent. */
  requested: number;
  sent(): number;
  logSize(): number;
  sentBefore(offset: number): number;
  /** Pids of the side's processes (the whole tree). */
  pids(): number[];
  stop(): Promise<void>;
}

const PASSWORD = 'Passw0rdBench1';
const okJson = /"code":\s*0[,}]/;
const log = (line: string) => process.stderr.write(`${line}\n`);

async function startOurs(): Promise<Omit<Side, 'csrf' | 'registered' | 'requested'>> {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-bench-versus-'));
  const out = join(dir, 'stdout.log');
  const served = await startNode(
    [...START_FLAGS, join(ROOT, 'dist/server.js')],
    { ...VERSUS_SERVICE_ENV, REDIS_URL, DATA_DIR: dir },
    { readyPath: '/healthz', cwd: dir, name: 'versus', stdoutFile: out },
  );
  const counter = sentCounter(out);
  return {
    name: 'ours',
    url: served.url,
    codesUrl: REDIS_URL,
    sent: () => counter.count(),
    logSize: () => counter.size(),
    sentBefore: (offset) => counter.count(offset),
    pids: () => processTree(served.pid),
    async stop() {
      await served.stop();
      counter.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function djangoSide(stack: DjangoStack): Omit<Side, 'csrf' | 'registered' | 'requested'> {
  return {
    name: 'django',
    url: stack.url,
    codesUrl: djangoRedisUrl(DJANGO.verifyDb),
    sent: stack.sent,
    logSize: stack.logSize,
    sentBefore: stack.sentBefore,
    pids: stack.pids,
    stop: stack.stop,
  };
}

// ---- requests ---------------------------------------------------------------------------

/** A counter of successful answers shared by the specs of one load run. */
interface Tally {
  ok: number;
}

function kinds(side: Side, pools: { images: Pool<ImageItem>; sms: Pool<SmsItem> }, tally: Tally) {
  const okJsonResponse = (status: number, body: string) => {
    if (status === 200 && okJson.test(body)) tally.ok++;
  };
  let loginIndex = 0;
  const image: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: `/image_codes/${nextUuid()}/` }),
    onResponse: (status) => {
      if (status === 200) tally.ok++;
    },
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
    onResponse: (status, body) => {
      if (status === 200 && okJson.test(body)) {
        tally.ok++;
        side.requested++;
      }
    },
  };
  const register: RequestSpec = {
    method: 'POST',
    setupRequest: (req, context) => {
      const item = pools.sms.next(() => ({ mobile: nextMobile(), code: '000000' }));
      const username = nextUsername();
      context.user = { username, mobile: item.mobile };
      return {
        ...req,
        path: '/register/',
        headers: side.csrf.headers,
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
    onResponse: (status, body, context) => {
      if (status === 200 && okJson.test(body)) {
        tally.ok++;
        side.registered.push(context.user as Registered);
      }
    },
  };
  const login: RequestSpec = {
    method: 'POST',
    setupRequest: (req) => {
      const user = side.registered[loginIndex++ % side.registered.length];
      if (!user) throw new Error(`${side.name}: no registered user to log in with`);
      return {
        ...req,
        path: '/login/',
        headers: side.csrf.headers,
        body: JSON.stringify({ username: user.username, password: PASSWORD, remembered: true }),
      };
    },
    onResponse: okJsonResponse,
  };
  return { image, sms, register, login };
}

type Kind = 'image' | 'sms' | 'register' | 'login';

async function prepare(side: Side, images: number, sms: number) {
  const imageList = imageItems(images);
  const smsList = smsItems(sms);
  const writer = redisWriter(side.codesUrl);
  await writer.put(imageList, smsList, 3600);
  await writer.close();
  return { images: new Pool(imageList), sms: new Pool(smsList) };
}

const summaryOf = (s: LoadSummary, tally: Tally, exhausted: boolean): VersusRun => ({
  ...s,
  ok: tally.ok,
  okPerSecond: tally.ok / s.seconds,
  exhausted,
});

/** Generous sizes of what a run may use: per second of load, per side. */
const PER_SECOND: Record<SideName, { sms: number; register: number }> = {
  django: { sms: 3000, register: 300 },
  ours: { sms: 25_000, register: 600 },
};

async function loadRun(side: Side, kind: Kind, seconds: number, sized?: number): Promise<VersusRun> {
  const total = seconds + VERSUS.warmupSeconds;
  const images = kind === 'sms' ? Math.ceil((sized ?? PER_SECOND[side.name].sms) * total) + 500 : 0;
  const sms = kind === 'register' ? Math.ceil(PER_SECOND[side.name].register * total) + 200 : 0;
  const pools = await prepare(side, images, sms);
  const warm: Tally = { ok: 0 };
  // Hash-bound runs warm up with as many connections as cores, so nothing queued spills over.
  const hashBound = kind === 'register' || kind === 'login';
  await load({
    url: side.url,
    requests: [kinds(side, pools, warm)[kind]],
    connections: hashBound ? availableParallelism() : VERSUS.connections,
    durationSeconds: VERSUS.warmupSeconds,
  });
  await settle(side);
  const tally: Tally = { ok: 0 };
  const summary = await load({
    url: side.url,
    requests: [kinds(side, pools, tally)[kind]],
    connections: VERSUS.connections,
    durationSeconds: seconds,
  });
  await settle(side);
  return summaryOf(summary, tally, pools.images.exhausted || pools.sms.exhausted);
}

/**
 * Waits until the side has answered what the last run left in its sockets: a load run stops
 * with up to `connections` requests accepted and still being worked on (gunicorn's sync
 * workers keep serving them after the client has gone), which would otherwise run into the
 * next measurement. A cheap request queues behind them; its answer says they are done.
 */
async function settle(side: Side): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const res = await fetch(`${side.url}/csrf_token/`, { signal: AbortSignal.timeout(120_000) });
    await res.arrayBuffer();
    if (Date.now() - started < 50) return;
  }
}

/** Waits until the side's worker(s) have sent every SMS requested so far; seconds waited. */
async function drain(side: Side): Promise<number> {
  const start = Date.now();
  const deadline = start + VERSUS.drainSeconds * 1000;
  while (side.sent() < side.requested) {
    if (Date.now() > deadline) {
      // Reported (the end-to-end row shows the backlog); the next runs then share the machine with it.
      log(
        `  WARNING ${side.name}: ${side.requested - side.sent()} SMS still unsent after ${VERSUS.drainSeconds} s`,
      );
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return (Date.now() - start) / 1000;
}

async function probeRun(side: Side): Promise<{ probe: VersusRun; register: VersusRun }> {
  const seconds = VERSUS.durationSeconds;
  const pools = await prepare(side, 0, Math.ceil(PER_SECOND[side.name].register * (seconds + 2)) + 200);
  const registerTally: Tally = { ok: 0 };
  const probeTally: Tally = { ok: 0 };
  await load({
    url: side.url,
    requests: [kinds(side, pools, { ok: 0 }).register],
    connections: availableParallelism(),
    durationSeconds: VERSUS.warmupSeconds,
  });
  await settle(side);
  const [register, probe] = await Promise.all([
    load({
      url: side.url,
      requests: [kinds(side, pools, registerTally).register],
      connections: VERSUS.connections,
      durationSeconds: seconds,
    }),
    load({
      url: side.url,
      requests: [kinds(side, pools, probeTally).image],
      connections: 2,
      durationSeconds: seconds,
      overallRate: 20,
    }),
  ]);
  await settle(side);
  return {
    probe: summaryOf(probe, probeTally, false),
    register: summaryOf(register, registerTally, pools.sms.exhausted),
  };
}

async function endToEnd(side: Side, rate: number): Promise<EndToEnd> {
  const seconds = VERSUS.endToEndSeconds;
  const pools = await prepare(side, Math.ceil(rate * 1.5 * seconds) + 1000, 0);
  const sentBefore = side.sent();
  const requestedBefore = side.requested;
  const tally: Tally = { ok: 0 };
  const summary = await load({
    url: side.url,
    requests: [kinds(side, pools, tally).sms],
    connections: VERSUS.connections,
    durationSeconds: seconds,
  });
  const windowEnd = Date.now();
  const offset = side.logSize();
  await settle(side);
  const sentInWindow = side.sentBefore(offset) - sentBefore;
  const requested = side.requested - requestedBefore;
  await drain(side);
  const drainSeconds = (Date.now() - windowEnd) / 1000;
  return {
    seconds: summary.seconds,
    requested,
    sentInWindow,
    sentPerSecond: sentInWindow / summary.seconds,
    requestedPerSecond: requested / summary.seconds,
    // Requests still in flight when autocannon stopped are served and sent without being
    // counted as requested: the worker can be a few ahead of the count.
    backlogAtEnd: Math.max(0, requested - sentInWindow),
    drainSeconds,
  };
}

// ---- self-check -------------------------------------------------------------------------

async function json(res: Response): Promise<{ code: unknown }> {
  const text = await res.text();
  try {
    return JSON.parse(text) as { code: unknown };
  } catch {
    throw new Error(`not JSON (HTTP ${res.status}): ${text.slice(0, 200)}`);
  }
}

/**
 * One user through every view before any load, on both sides alike: a captcha whose text is
 * in the store, an SMS code sent by the worker, a second request refused (60 s flag), a
 * registration with the code, a login by username and by mobile, a wrong password refused.
 */
async function selfCheck(side: Side): Promise<void> {
  const fail = (what: string, detail: unknown) => {
    throw new Error(`${side.name} self-check: ${what}: ${JSON.stringify(detail)}`);
  };
  const redis = new Redis(side.codesUrl);
  try {
    const uuid = nextUuid();
    const image = await fetch(`${side.url}/image_codes/${uuid}/`);
    const jpeg = Buffer.from(await image.arrayBuffer());
    if (image.status !== 200 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8)
      fail('captcha is not a JPEG', image.status);
    const text = await redis.get(`img_${uuid}`);
    if (!text || !/^[A-Z3-9]{4}$/.test(text)) fail('captcha text not stored as img_<uuid>', text);
    const mobile = nextMobile();
    const smsUrl = `${side.url}/sms_codes/${mobile}/?image_code=${text?.toLowerCase()}&image_code_id=${uuid}`;
    const sent = side.sent();
    const first = await json(await fetch(smsUrl));
    if (first.code !== 0) fail('/sms_codes/ with the right text', first);
    side.requested++;
    const code = await redis.get(`sms_${mobile}`);
    if (!code || !/^\d{6}$/.test(code)) fail('SMS code not stored as sms_<mobile>', code);
    if ((await redis.ttl(`send_flag_${mobile}`)) <= 0) fail('no 60 s send flag', mobile);
    const again = await json(await fetch(smsUrl));
    if (again.code === 0) fail('a second /sms_codes/ within 60 s was accepted', again);
    const deadline = Date.now() + 20_000;
    while (side.sent() <= sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (side.sent() <= sent) fail('the worker printed no SMS within 20 s', mobile);
    const username = nextUsername();
    const post = async (path: string, body: unknown) =>
      json(
        await fetch(`${side.url}${path}`, {
          method: 'POST',
          headers: side.csrf.headers,
          body: JSON.stringify(body),
        }),
      );
    const reg = await post('/register/', {
      username,
      password: PASSWORD,
      password2: PASSWORD,
      mobile,
      sms_code: code,
      allow: true,
    });
    if (reg.code !== 0) fail('/register/', reg);
    for (const account of [username, mobile]) {
      const ok = await post('/login/', { username: account, password: PASSWORD, remembered: true });
      if (ok.code !== 0) fail(`/login/ as ${account}`, ok);
    }
    const wrong = await post('/login/', { username, password: `${PASSWORD}x`, remembered: false });
    if (wrong.code === 0) fail('/login/ with a wrong password was accepted', wrong);
    side.registered.push({ username, mobile });
  } finally {
    redis.disconnect();
  }
}

// ---- the runs ---------------------------------------------------------------------------

const emptySide = (label: string): VersusSide => ({
  label,
  image: [],
  sms: [],
  register: [],
  login: [],
  probe: [],
  endToEnd: [],
  peakRssMb: null,
});

export async function runVersus(): Promise<VersusResults> {
  const sides: Side[] = [];
  try {
    log('  starting the Django original (gunicorn + Celery) and meiduo-users (npm start)');
    const stack = await startDjango();
    sides.push({ ...djangoSide(stack), csrf: { headers: {} }, registered: [], requested: 0 });
    sides.push({ ...(await startOurs()), csrf: { headers: {} }, registered: [], requested: 0 });
    for (const side of sides) {
      side.csrf = await csrfOf(side.url);
      await selfCheck(side);
    }
    log('  self-check passed on both (captcha, SMS sent, flag, register, login by username and mobile)');
    const [django, ours] = sides as [Side, Side];
    const results: Record<SideName, VersusSide> = {
      django: emptySide('Django 3.2 + gunicorn (sync workers) + Celery, Redis + SQLite'),
      ours: emptySide('meiduo-users (npm start), Redis + SQLite'),
    };
    const alternate = async (name: string, each: (side: Side) => Promise<void>) => {
      for (let round = 0; round < VERSUS.rounds; round++) {
        for (const side of [django, ours]) {
          log(`  ${name}: ${side.name === 'django' ? 'Django' : 'meiduo-users'} (round ${round + 1})`);
          await each(side);
        }
      }
      // Which kind drives the peak: VmHWM only rises, so each line shows the peak so far.
      const peak = Math.max(...ours.pids().map((pid) => memoryOf(pid)?.peakMb ?? 0));
      log(`    meiduo-users peak RSS so far: ${peak.toFixed(0)} MB`);
    };
    await alternate('GET /image_codes/', async (s) => {
      results[s.name].image.push(await loadRun(s, 'image', VERSUS.durationSeconds));
    });
    await alternate('GET /sms_codes/', async (s) => {
      results[s.name].sms.push(await loadRun(s, 'sms', VERSUS.durationSeconds));
      await drain(s);
    });
    await alternate('POST /register/', async (s) => {
      results[s.name].register.push(await loadRun(s, 'register', VERSUS.durationSeconds));
    });
    await alternate('POST /login/', async (s) => {
      results[s.name].login.push(await loadRun(s, 'login', VERSUS.durationSeconds));
    });
    await alternate('captcha under register load', async (s) => {
      results[s.name].probe.push(await probeRun(s));
    });
    await alternate(`SMS end to end, ${VERSUS.endToEndSeconds} s`, async (s) => {
      const smsRate = Math.max(...results[s.name].sms.map((r) => r.okPerSecond));
      results[s.name].endToEnd.push(await endToEnd(s, smsRate));
    });
    for (const side of [django, ours]) {
      const pids = side.pids();
      results[side.name].processes = pids.length;
      results[side.name].peakRssMb = Math.max(...pids.map((pid) => memoryOf(pid)?.peakMb ?? 0));
    }
    return {
      rounds: VERSUS.rounds,
      connections: VERSUS.connections,
      durationSeconds: VERSUS.durationSeconds,
      endToEndSeconds: VERSUS.endToEndSeconds,
      djangoProcesses: availableParallelism(),
      ...results,
    };
  } finally {
    for (const side of sides) await side.stop();
    await cleanDjangoRedis();
    await cleanBenchRedis();
  }
}
