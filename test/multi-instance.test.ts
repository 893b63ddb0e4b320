/**
 * Scaling out by adding processes: two web processes (RUN_WORKER=false) and two SMS workers,
 * started from the commands of deploy/Procfile (after its `release` step migrated a fresh
 * database), share one Redis database and one user database (PostgreSQL, then MariaDB), and
 * agree as one service would:
 * (a) 100 concurrent SMS requests for one mobile, spread over both web processes: one code,
 *     one SMS;
 * (b) 1,000 SMS requests for distinct mobiles: 1,000 SMS even though a worker is SIGKILLed
 *     halfway through the sends; a mobile gets a second SMS only if its job was in the killed
 *     worker's hands, and the survivor's log counts each such repeat;
 * (c) 50 concurrent registrations of one username through both web processes: one user.
 * Sends are observed as production prints them with SMS_PROVIDER=console: the
 * `[mobile: …] [sms_code: …]` lines on the workers' stdout. The captcha answers are read from
 * Redis (`img_{uuid}`), where a person would read the image.
 *
 * Redis database 6 belongs to this file (BullMQ's prefix is not a setting, so the queue is
 * kept apart by database number); it is emptied once, at the start.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BULLMQ_DEFAULTS } from '../src/adapters/job-queue/bullmq.js';
import { maskMobile } from '../src/adapters/job-queue/outcome.js';
import { KEY_PREFIX } from '../src/domain/keys.js';
import { SEND_SMS_JOB } from '../src/jobs/send-sms.js';
import { BACKEND_URLS, has } from './backends.js';
import { type DatabaseKind, type FreshDatabase, freshDatabase } from './databases.js';
import { type Answer, Browser } from './fixtures/multi/browser.js';
import {
  PROCFILE,
  type ProcessCommand,
  parseProcfile,
  REPO_ROOT,
  readProcfile,
} from './fixtures/multi/procfile.js';
import {
  freePort,
  killAll,
  mapLimit,
  type Service,
  type Sms,
  startService,
  waitFor,
  waitForHttp,
} from './fixtures/multi/service.js';

const REDIS_URL = (() => {
  const url = new URL(BACKEND_URLS.redis);
  url.pathname = '/6';
  return url.toString();
})();
/** deps.ts's BullMQ prefix (importing deps.ts would load every adapter). */
const QUEUE_PREFIX = `${KEY_PREFIX}bull`;
const WORKER_CONCURRENCY = 8;
/** HTTP requests in flight at once: the machine is shared with other suites. */
const IN_FLIGHT = 50;
const PASSWORD = 'Passw0rd!x';

/**
 * PostgreSQL by default. Each database costs a whole deployment (five processes started on
 * this 2-core machine); MULTI_INSTANCE_DATABASES=postgres,mysql adds MariaDB, whose HTTP-level
 * behaviour is also covered by db-outage.test.ts and its concurrency by the repository suite.
 */
const wanted = (process.env.MULTI_INSTANCE_DATABASES ?? 'postgres').split(',').map((s) => s.trim());
const redisHere = await has('redis');
const databases: Array<{ kind: DatabaseKind; name: string; here: boolean }> = [];
if (wanted.includes('postgres'))
  databases.push({ kind: 'postgres', name: 'PostgreSQL', here: redisHere && (await has('postgres')) });
if (wanted.includes('mysql'))
  databases.push({ kind: 'mysql', name: 'MariaDB', here: redisHere && (await has('mysql')) });

// ---- helpers --------------------------------------------------------------------------

/** Valid, distinct mobiles whose masked log form (131****7788) is distinct too. */
const masksUsed = new Set<string>();
function uniqueMobile(): string {
  for (;;) {
    const mobile = `1${randomInt(3, 10)}${String(randomInt(0, 1e9)).padStart(9, '0')}`;
    if (!masksUsed.has(maskMobile(mobile))) {
      masksUsed.add(maskMobile(mobile));
      return mobile;
    }
  }
}

const uniqueUsername = () => `m_${randomBytes(6).toString('hex')}`;

async function countUsers(kind: DatabaseKind, url: string, username: string) {
  if (kind === 'postgres') {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query('select mobile from tb_users where username = $1', [username]);
      return rows.map((r: { mobile: string }) => r.mobile);
    } finally {
      await client.end();
    }
  }
  const conn = await mysql.createConnection({ uri: url });
  try {
    const [rows] = await conn.query('select mobile from tb_users where username = ?', [username]);
    return (rows as Array<{ mobile: string }>).map((r) => r.mobile);
  } finally {
    await conn.end();
  }
}

interface Deployment {
  db: FreshDatabase;
  webs: Array<{ service: Service; base: string }>;
  workers: Service[];
  redis: Redis;
  queue: Queue;
  /** Every SMS any worker printed, with the worker's name. */
  sends: Array<Sms & { worker: string }>;
  /** Resolves with the next SMS printed for this mobile. */
  nextSms(mobile: string): Promise<Sms>;
  startedMs: number;
}

async function deploy(kind: DatabaseKind): Promise<Deployment> {
  const started = Date.now();
  const procfile = readProcfile();
  const command = (name: string): ProcessCommand => {
    const c = procfile.get(name);
    if (!c) throw new Error(`deploy/Procfile has no ${name} process`);
    return c;
  };
  const db = await freshDatabase(kind);
  const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-multi-'));
  // Replaced below once the processes run; this one covers a failed release.
  cleanupDeployment = async () => {
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const env = {
    REDIS_URL,
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    SMS_PROVIDER: 'console',
    RATE_LIMITS: 'off',
    WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
    // Jobs of 2 SMS: (b)'s kill must land while the victim holds jobs, and 25-SMS jobs let both
    // workers finish all 1,000 before this process has read 500 lines of their output.
    SMS_JOB_BATCH_MAX: '2',
    // Cheap hashes: this machine is shared; the cost is not what is tested here.
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1',
    HASH_CONCURRENCY: '2',
  };

  const release = startService('release', command('release'), env);
  const released = await release.exited;
  if (released !== 0) throw new Error(`release exited ${released}: ${release.stderr()}`);
  expect(release.logs.some((l) => /tb_users created/.test(String(l.msg)))).toBe(true);

  const webs = await Promise.all(
    [1, 2].map(async (n) => {
      const port = await freePort();
      const service = startService(`web.${n}`, command('web'), { ...env, PORT: String(port) });
      return { service, base: `http://127.0.0.1:${port}` };
    }),
  );
  const workers = [1, 2].map((n) => startService(`worker.${n}`, command('worker'), env));
  const sends: Deployment['sends'] = [];
  const waiters = new Map<string, Array<(sms: Sms) => void>>();
  for (const w of workers) {
    w.onSms((sms) => {
      sends.push({ ...sms, worker: w.name });
      for (const resolve of waiters.get(sms.mobile) ?? []) resolve(sms);
      waiters.delete(sms.mobile);
    });
  }
  const redis = new Redis(REDIS_URL);
  const queue = new Queue(SEND_SMS_JOB, { connection: new Redis(REDIS_URL), prefix: QUEUE_PREFIX });
  const deployment: Deployment = {
    db,
    webs,
    workers,
    redis,
    queue,
    sends,
    nextSms: (mobile) =>
      new Promise((resolve) => {
        waiters.set(mobile, [...(waiters.get(mobile) ?? []), resolve]);
      }),
    startedMs: started,
  };
  cleanupDeployment = async () => {
    await killAll([...webs.map((w) => w.service), ...workers]);
    await queue.close();
    redis.disconnect();
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };

  await Promise.all(webs.map((w) => waitForHttp(w.service, w.base, '/readyz')));
  await waitFor(
    'both workers ready',
    () => workers.every((w) => w.logs.some((l) => l.msg === 'sms worker ready')),
    60_000,
  );
  return deployment;
}

let cleanupDeployment: (() => Promise<void>) | undefined;

/** Loads a captcha from one web process and reads its answer where the image came from. */
async function imageCode(d: Deployment, base: string): Promise<{ uuid: string; answer: string }> {
  const uuid = `mi-${randomBytes(8).toString('hex')}`;
  const res = await fetch(`${base}/image_codes/${uuid}/`, { signal: AbortSignal.timeout(15_000) });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`image code: ${res.status}`);
  const answer = await d.redis.get(`img_${uuid}`);
  if (!answer) throw new Error('image code not in Redis');
  return { uuid, answer };
}

function requestSms(browser: Browser, base: string, mobile: string, code: { uuid: string; answer: string }) {
  return browser.get(base, `/sms_codes/${mobile}/?image_code=${code.answer}&image_code_id=${code.uuid}`);
}

async function queueIdle(queue: Queue): Promise<boolean> {
  const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).every((n) => n === 0);
}

const tally = (answers: Answer[]) => {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const key = `${a.status} ${String(a.body.error ?? a.body.code)}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

// ---- the tests ------------------------------------------------------------------------

beforeAll(async () => {
  if (!redisHere) return;
  const redis = new Redis(REDIS_URL);
  await redis.flushdb(); // database 6 is this file's alone
  redis.disconnect();
});

afterAll(async () => {
  await cleanupDeployment?.();
});

describe.each(databases)('two web processes and two workers on one Redis and $name', ({ kind, here }) => {
  let d: Deployment;

  beforeAll(async () => {
    if (!here) return;
    await cleanupDeployment?.(); // the previous database's processes
    cleanupDeployment = undefined;
    d = await deploy(kind);
    console.info(`${kind}: release + 2 web + 2 workers ready after ${Date.now() - d.startedMs} ms`);
  }, 120_000);

  it.skipIf(!here)(
    '(a) 100 concurrent SMS requests for one mobile over both web processes: one code, one SMS',
    async () => {
      const mobile = uniqueMobile();
      const [a, b] = d.webs as [Deployment['webs'][0], Deployment['webs'][0]];
      const codes = await mapLimit(Array.from({ length: 100 }), IN_FLIGHT, (_, i) =>
        imageCode(d, i % 2 ? a.base : b.base),
      );
      const sent = d.nextSms(mobile);
      const answers = await Promise.all(
        codes.map((code, i) => requestSms(new Browser(), i % 2 ? b.base : a.base, mobile, code)),
      );
      expect(tally(answers)).toEqual({ '200 0': 1, '429 SMS_TOO_FREQUENT': 99 });
      expect(answers.find((x) => x.status === 200)?.body).toMatchObject({
        message: '发送短信成功',
        resend_after: 60,
      });

      const sms = await sent;
      await waitFor('the queue to be idle', () => queueIdle(d.queue));
      const forMobile = d.sends.filter((s) => s.mobile === mobile);
      expect(forMobile).toHaveLength(1);
      expect(sms.code).toMatch(/^\d{6}$/);
      expect(await d.redis.get(`sms_${mobile}`)).toBe(sms.code);
    },
  );

  it.skipIf(!here)(
    '(c) 50 concurrent registrations of one username through both web processes: one user',
    async () => {
      const username = uniqueUsername();
      const [a, b] = d.webs as [Deployment['webs'][0], Deployment['webs'][0]];
      // Each person loads the pages from one process and posts to the other.
      const people = await mapLimit(Array.from({ length: 50 }), 25, async (_, i) => {
        const [here, there] = i % 2 ? [a, b] : [b, a];
        const browser = new Browser();
        const mobile = uniqueMobile();
        const code = await imageCode(d, here.base);
        const sent = d.nextSms(mobile);
        expect((await requestSms(browser, there.base, mobile, code)).status).toBe(200);
        await browser.get(here.base, '/csrf_token/');
        return { browser, mobile, code: (await sent).code, post: there, other: here };
      });
      const answers = await Promise.all(
        people.map((p) =>
          p.browser.post(p.post.base, '/register/', {
            username,
            password: PASSWORD,
            password2: PASSWORD,
            mobile: p.mobile,
            sms_code: p.code,
            allow: true,
          }),
        ),
      );
      expect(tally(answers)).toEqual({ '200 0': 1, '409 USERNAME_EXISTS': 49 });
      const winner = people[answers.findIndex((x) => x.status === 200)] as (typeof people)[0];
      expect(await countUsers(kind, d.db.url, username)).toEqual([winner.mobile]);
      // Logged in on one process, known to the other: sessions live in the shared Redis.
      const info = await winner.browser.get(winner.other.base, '/info/');
      expect(info.body).toMatchObject({ code: 0, info_data: { username, mobile: winner.mobile } });
    },
  );

  it.skipIf(!here)(
    '(b) 1,000 SMS requests for distinct mobiles: 1,000 sent although a worker is SIGKILLed halfway',
    async () => {
      const started = Date.now();
      const [victim, survivor] = d.workers as [Service, Service];
      const mobiles = Array.from({ length: 1000 }, uniqueMobile);
      const ours = new Set(mobiles);
      // Hold the jobs while the requests come in, so that both workers then work through one
      // backlog and the kill lands while each holds a full set of jobs.
      await d.queue.pause();
      const answers = await mapLimit(mobiles, IN_FLIGHT, async (mobile, i) => {
        const code = await imageCode(d, d.webs[i % 2]?.base as string);
        return requestSms(new Browser(), d.webs[(i + 1) % 2]?.base as string, mobile, code);
      });
      expect(tally(answers)).toEqual({ '200 0': 1000 });
      const requestsMs = Date.now() - started;
      expect(d.sends.filter((s) => ours.has(s.mobile))).toHaveLength(0);

      let killedAtMs = 0;
      let sentAtKill = 0;
      let victimSentAtKill = 0;
      const count = () => {
        if (killedAtMs) return;
        const mine = d.sends.filter((s) => ours.has(s.mobile));
        const byVictim = mine.filter((s) => s.worker === victim.name).length;
        if (mine.length >= 500 && byVictim > 0) {
          victim.kill('SIGKILL');
          killedAtMs = Date.now();
          sentAtKill = mine.length;
          victimSentAtKill = byVictim;
        }
      };
      victim.onSms(count);
      survivor.onSms(count);
      await d.queue.resume();
      await waitFor('the kill halfway', () => killedAtMs > 0, 30_000);
      expect(await victim.exited).toBe('SIGKILL');

      const distinctSent = () => new Set(d.sends.filter((s) => ours.has(s.mobile)).map((s) => s.mobile)).size;
      await waitFor(
        'every mobile sent and the queue idle',
        async () => distinctSent() === 1000 && (await queueIdle(d.queue)),
        60_000,
      );
      const doneMs = Date.now();
      expect(survivor.alive()).toBe(true);
      expect(await d.queue.getJobCounts('failed')).toEqual({ failed: 0 });

      // Every mobile got its code, the one in Redis.
      const mine = d.sends.filter((s) => ours.has(s.mobile));
      const perMobile = new Map<string, Array<Sms & { worker: string }>>();
      for (const s of mine) perMobile.set(s.mobile, [...(perMobile.get(s.mobile) ?? []), s]);
      expect(perMobile.size).toBe(1000);
      const stored = await d.redis.mget(mobiles.map((m) => `sms_${m}`));
      expect(mobiles.filter((m, i) => perMobile.get(m)?.some((s) => s.code !== stored[i]))).toEqual([]);

      // Log lines leave in batches (src/stdout.ts) while the console provider's SMS lines are
      // printed at once: wait until the survivor has logged the end of every job it printed.
      const survivorEnds = () => survivor.logs.filter((l) => String(l.msg).startsWith('sms job finished'));
      await waitFor(
        'the survivor to log every job it sent',
        () => survivorEnds().length >= survivor.sms.length,
      );

      // The killed worker's jobs in hand: the survivor found them stalled and ran them again.
      const after = survivor.logs.filter((l) => (l.time ?? 0) >= killedAtMs);
      const stalled = new Set(
        after.filter((l) => String(l.msg).startsWith('sms job stalled')).map((l) => String(l.jobId)),
      );
      const finished = after.filter((l) => String(l.msg).startsWith('sms job finished'));
      const repeats = finished.filter((l) => l.repeat === true);
      // An SMS that shared its job with others (requested together) names the job as batchId.
      const jobOf = (l: (typeof finished)[number]) => String(l.batchId ?? l.jobId);
      expect(stalled.size).toBeGreaterThan(0);
      expect(stalled.size).toBeLessThanOrEqual(WORKER_CONCURRENCY);
      for (const id of stalled) expect(finished.some((l) => jobOf(l) === id)).toBe(true);
      expect(repeats.every((l) => stalled.has(jobOf(l)))).toBe(true);
      expect(repeats.every((l) => l.msg === 'sms job finished (possible duplicate send)')).toBe(true);

      // A second SMS only for those jobs: once by the victim before it died, once by the survivor.
      const twice = [...perMobile].filter(([, s]) => s.length > 1);
      const repeatedMasks = new Set(repeats.map((l) => String(l.mobile)));
      for (const [mobile, s] of twice) {
        expect(repeatedMasks.has(maskMobile(mobile))).toBe(true);
        expect(s.map((x) => x.worker).sort()).toEqual([victim.name, survivor.name].sort());
      }
      expect(mine.length).toBe(1000 + twice.length);

      const takeoverMs =
        Math.min(...finished.filter((l) => stalled.has(String(l.jobId))).map((l) => l.time as number)) -
        killedAtMs;
      const bound = BULLMQ_DEFAULTS.lockDurationMs + 2 * BULLMQ_DEFAULTS.stalledIntervalMs + 3000;
      expect(takeoverMs).toBeLessThan(bound);
      console.info(
        `${kind} (b): 1000 requests in ${requestsMs} ms; kill after ${sentAtKill} sends ` +
          `(${victimSentAtKill} by the victim); ${stalled.size} jobs in its hands, ${repeats.length} logged ` +
          `as possible duplicates, ${twice.length} mobiles sent twice; ${mine.length} SMS in all; ` +
          `takeover ${takeoverMs} ms (bound ${bound} ms); all sent ${doneMs - killedAtMs} ms after the kill`,
      );
    },
    120_000,
  );

  it.skipIf(!here)('SIGTERM: every remaining process finishes what it holds and exits 0', async () => {
    const services = [...d.webs.map((w) => w.service), ...d.workers.filter((w) => w.alive())];
    const started = Date.now();
    for (const s of services) s.kill('SIGTERM');
    const codes = await Promise.all(services.map((s) => s.exited));
    expect(codes).toEqual(services.map(() => 0));
    console.info(`${kind}: ${services.length} processes stopped on SIGTERM in ${Date.now() - started} ms`);
  });
});

const systemdThere = await has('systemd');

describe('deploy/: the systemd units run what the Procfile runs', () => {
  const units = join(REPO_ROOT, 'deploy', 'systemd');
  const procfile = parseProcfile(readFileSync(PROCFILE, 'utf8'));
  const unit = (name: string) => {
    const text = readFileSync(join(units, name), 'utf8');
    const values = (key: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${key}=`))
        .map((l) => l.slice(key.length + 1));
    return { text, values };
  };

  it('one release, web and worker process type; web processes run no worker', () => {
    expect([...procfile.keys()].sort()).toEqual(['release', 'web', 'worker']);
    expect(readProcfile().get('web')?.env).toEqual({ RUN_WORKER: 'false' });
  });

  it.each([
    ['meiduo-users-web@.service', 'web'],
    ['meiduo-users-worker@.service', 'worker'],
  ])('%s: the %s command, restarted, stopped by SIGTERM with time to finish', (file, type) => {
    const { values } = unit(file);
    const [execStart] = values('ExecStart');
    // `/usr/bin/env VAR=… /usr/bin/node x` is the Procfile's `VAR=… node x`, plus the instance's port.
    const command = String(execStart)
      .replace(/^\/usr\/bin\/env /, '')
      .replace(/PORT=%i /, '')
      .replace(/\/usr\/bin\/node /, 'node ');
    expect(command).toBe(procfile.get(type));
    expect(values('EnvironmentFile')).toEqual(['/etc/meiduo-users/env']);
    expect(values('Restart')).toEqual(['always']);
    expect(values('KillSignal')).toEqual(['SIGTERM']);
    // Longer than the web process's own 25 s shutdown deadline and the worker's 10 s drain.
    expect(Number(values('TimeoutStopSec')[0])).toBeGreaterThanOrEqual(30);
  });

  // verify also checks that ExecStart's binaries exist, and the units name /usr/bin/node.
  const analyze = systemdThere && existsSync('/usr/bin/node');
  it.skipIf(!analyze)('systemd-analyze verify finds nothing to say about either unit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meiduo-units-'));
    try {
      for (const file of ['meiduo-users-web@.service', 'meiduo-users-worker@.service']) {
        copyFileSync(join(units, file), join(dir, file));
      }
      // It warns on stderr (bad keys, unknown signals, missing binaries) and still exits 0.
      const run = spawnSync(
        '/usr/bin/systemd-analyze',
        ['verify', 'meiduo-users-web@8001.service', 'meiduo-users-worker@1.service'],
        { cwd: dir, encoding: 'utf8', timeout: 20_000 },
      );
      expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
        status: 0,
        stdout: '',
        stderr: '',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
