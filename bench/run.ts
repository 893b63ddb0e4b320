/**
 * `npm run bench`: builds the service, measures the baselines, the HTTP runs on the
 * embedded default and on Redis + PostgreSQL, and the queue, all in one run so that the
 * ratios hold on a noisy machine; prints a table and writes bench/results/latest.json,
 * docs/bench/results.md, docs/bench/bench.svg and docs/bench/README-section.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { has } from '../test/backends.js';
import { BENCH, ONLY, QUICK, REDIS_URL, SERVICE_ENV, TARGETS } from './config.js';
import { djangoMissing } from './django.js';
import { type BackendResults, type BaselineKind, runBackend, type Sizing } from './http.js';
import { cleanBenchRedis, redisKeyCount } from './lib/fixtures.js';
import { load } from './lib/load.js';
import { RESULTS_DIR, ROOT, runTsChild, startNode } from './lib/process.js';
import { type QueueResults, runQueue } from './queue.js';
import {
  type Baselines,
  type BenchResults,
  evaluateTargets,
  ownBaselineRatios,
  terminalReport,
  writeDocs,
} from './report.js';
import { runVersus, type VersusResults } from './versus.js';

const wanted = (part: string) => ONLY.length === 0 || ONLY.includes(part);
const log = (line: string) => process.stderr.write(`${line}\n`);

async function micro(kind: 'captcha' | 'hasher' | 'redis'): Promise<number> {
  const r = await runTsChild<{ perSecond: number }>('bench/children/micro.ts', [
    kind,
    String(BENCH.durationSeconds),
    String(BENCH.connections),
    String(BENCH.warmupSeconds),
  ]);
  return r.perSecond;
}

/** Requests/s of the Fastify hello-world, in a fresh process. */
async function helloWorld(): Promise<Baselines['hello']> {
  const hello = await startNode(
    ['--import', 'tsx', join(ROOT, 'bench/children/hello.ts')],
    { ...SERVICE_ENV },
    {
      readyPath: '/hello/',
      cwd: ROOT,
      name: 'hello',
    },
  );
  try {
    const common = {
      url: hello.url,
      requests: [{ method: 'GET', path: '/hello/' }],
      connections: BENCH.connections,
    };
    await load({ ...common, durationSeconds: BENCH.warmupSeconds });
    const summary = await load({ ...common, durationSeconds: BENCH.durationSeconds });
    return { ...summary, peakRssMb: hello.peakRssMb() };
  } finally {
    await hello.stop();
  }
}

/** Each baseline afresh, for the runs that are bracketed by theirs. */
async function measureBaseline(kind: BaselineKind): Promise<number> {
  return kind === 'hello' ? (await helloWorld()).requestsPerSecond : micro(kind);
}

async function baselines(): Promise<Baselines> {
  log('baselines: Fastify hello-world');
  const hello = await helloWorld();
  log('baselines: captcha renderer alone');
  const captchaPerSecond = await micro('captcha');
  log('baselines: password hasher alone');
  const hashesPerSecond = await micro('hasher');
  log('baselines: Redis round trips');
  const redisPingsPerSecond = (await has('redis')) ? await micro('redis') : Number.NaN;
  return { hello, captchaPerSecond, hashesPerSecond, redisPingsPerSecond };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const loadAtStart = loadavg();
  log(`building the service (npm run build)${QUICK ? '; QUICK run' : ''}`);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });

  const redis = await has('redis');
  const postgres = await has('postgres');
  if (redis) {
    const keys = await redisKeyCount();
    if (keys > 0)
      log(`note: ${REDIS_URL} holds ${keys} keys before the run; the bench removes only its own kinds`);
  }

  let versus: VersusResults | undefined;
  let versusSkipped: string | undefined;
  if (wanted('django')) {
    versusSkipped = redis ? (djangoMissing() ?? undefined) : 'Redis is not available on this machine';
    if (versusSkipped) {
      log(`SKIPPED: the runs against the Django original (${versusSkipped})`);
    } else {
      log('against the Django original (bench/django): Django, meiduo-users, Django, meiduo-users');
      versus = await runVersus();
    }
  }

  const base = wanted('baselines') ? await baselines() : undefined;
  const sizing: Sizing = {
    helloRps: base?.hello.requestsPerSecond ?? 20_000,
    hasherRate: base?.hashesPerSecond ?? 50,
  };
  const backends: BackendResults[] = [];
  if (wanted('embedded')) {
    log('HTTP runs: embedded default');
    backends.push(await runBackend('embedded', sizing, base ? measureBaseline : null, log));
  }
  if (wanted('redis-postgres')) {
    if (redis && postgres) {
      log('HTTP runs: Redis + PostgreSQL');
      backends.push(await runBackend('redis-postgres', sizing, base ? measureBaseline : null, log));
    } else {
      log('SKIPPED: Redis + PostgreSQL runs (Redis or PostgreSQL is not available on this machine)');
    }
  }
  let queue: QueueResults | undefined;
  if (wanted('queue')) {
    if (redis) {
      log('queue: BullMQ');
      queue = await runQueue(log);
    } else {
      log('SKIPPED: queue run (Redis is not available on this machine)');
    }
  }
  if (redis) await cleanBenchRedis();

  const cpu = cpus();
  const partial = {
    machine: {
      date: new Date().toISOString().slice(0, 16).replace('T', ' '),
      node: process.versions.node,
      cpus: cpu.length,
      cpuModel: (cpu[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
      loadAtStart,
      loadAtEnd: loadavg(),
      quick: QUICK,
      durationSeconds: BENCH.durationSeconds,
      connections: BENCH.connections,
    },
    versus,
    versusSkipped,
    baselines: base,
    backends,
    queue,
  };
  const results: BenchResults = {
    ...partial,
    targets: evaluateTargets(partial, TARGETS),
    explanations: ownBaselineRatios(partial),
  };

  process.stdout.write(`\n${terminalReport(results)}\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  // A quick or partial run does not replace the committed figures unless asked to.
  const docs = join(ROOT, 'docs/bench');
  if ((!QUICK && ONLY.length === 0) || process.env.BENCH_WRITE_DOCS === '1') {
    writeDocs(results, docs, join(ROOT, 'README.md'));
    log(
      `\nwrote bench/results/latest.json, docs/bench/{results.md,bench.svg,README-section.md} and the README’s Benchmarks section`,
    );
  } else {
    log('\nwrote bench/results/latest.json (quick/partial run: docs/bench left as they were)');
  }
  log(`the bench took ${((Date.now() - startedAt) / 60_000).toFixed(1)} min`);
}

main().catch((err: unknown) => {
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
