/**
 * The bench harness works: a server child starts on a free port and is measured by
 * autocannon with its peak RSS read from /proc, and the report turns figures into targets
 * met or missed and draws one bar per target. The bench itself runs with `npm run bench`.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVICE_ENV, TARGETS } from '../bench/config.js';
import type { BackendResults } from '../bench/http.js';
import { load } from '../bench/lib/load.js';
import { ROOT, startNode } from '../bench/lib/process.js';
import { sentCounter } from '../bench/lib/sent-counter.js';
import {
  type BenchResults,
  evaluateTargets,
  ownBaselineRatios,
  readmeSection,
  replaceReadmeSection,
  targetsSvg,
} from '../bench/report.js';
import type { VersusRun, VersusSide } from '../bench/versus.js';

/** The machine line of the results the report tests build by hand. */
const MACHINE: BenchResults['machine'] = {
  date: '2026-01-01 00:00',
  node: process.versions.node,
  cpus: 2,
  cpuModel: 'test',
  loadAtStart: [0, 0, 0],
  loadAtEnd: [0, 0, 0],
  quick: true,
  durationSeconds: 1,
  connections: 1,
};

describe('bench harness', () => {
  it('measures a server child: requests answered without errors, a peak RSS', async () => {
    const hello = await startNode(
      ['--import', 'tsx', join(ROOT, 'bench/children/hello.ts')],
      { ...SERVICE_ENV },
      {
        readyPath: '/hello/',
        cwd: ROOT,
        name: 'smoke',
      },
    );
    try {
      const summary = await load({
        url: hello.url,
        requests: [{ method: 'GET', path: '/hello/' }],
        connections: 4,
        durationSeconds: 1,
      });
      expect(summary.requests).toBeGreaterThan(0);
      expect(summary.errors).toBe(0);
      expect(summary.p99Ms).toBeGreaterThanOrEqual(summary.p50Ms);
      expect(hello.peakRssMb()).toBeGreaterThan(10);
    } finally {
      await hello.stop();
    }
  }, 20_000);

  it('judges the queue targets and draws a bar per target, red when missed', () => {
    const results: Omit<BenchResults, 'targets'> = {
      machine: MACHINE,
      baselines: undefined,
      backends: [],
      queue: {
        jobs: 100,
        workers: 2,
        concurrency: 16,
        jobsPerSecond: TARGETS.queueJobsPerSecond * 2,
        burstP50Ms: 1,
        burstP99Ms: 2,
        steadyRate: 500,
        steadyJobs: 100,
        steadyAchievedRate: 500,
        steadyP50Ms: 1,
        steadyP99Ms: TARGETS.queueP99Ms * 3,
        lost: 0,
      },
    };
    const targets = evaluateTargets(results, TARGETS);
    expect(targets.map((t) => [t.id, t.met])).toEqual([
      ['queue-throughput', true],
      ['queue-latency', false],
    ]);
    const svg = targetsSvg({ ...results, targets });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<rect [^>]*fill="#2e8b57"/g)).toHaveLength(1);
    expect(svg.match(/<rect [^>]*fill="#c0392b"/g)).toHaveLength(1);
  });

  it('judges ours against Django by the paired rounds, and a round where Django did nothing is no ratio', () => {
    const run = (okPerSecond: number): VersusRun => ({
      requestsPerSecond: okPerSecond,
      okPerSecond,
      ok: okPerSecond * 10,
      p50Ms: 1,
      p99Ms: 2,
      requests: okPerSecond * 10,
      errors: 0,
      non2xx: 0,
      seconds: 10,
      exhausted: false,
    });
    const side = (image: number[], sms: number[]): VersusSide => ({
      label: 'side',
      image: image.map(run),
      sms: sms.map(run),
      register: [run(10), run(10)],
      login: [run(10), run(10)],
      probe: [],
      endToEnd: [],
      peakRssMb: null,
    });
    const results: Omit<BenchResults, 'targets'> = {
      machine: MACHINE,
      versus: {
        rounds: 2,
        connections: 50,
        durationSeconds: 10,
        endToEndSeconds: 30,
        djangoProcesses: 2,
        // image: ratios 2 and 8 (geometric mean 4); sms: Django did nothing in round 2.
        django: side([100, 50], [500, 0]),
        ours: side([200, 400], [6000, 6000]),
      },
      baselines: undefined,
      backends: [],
      queue: undefined,
    };
    const byId = new Map(evaluateTargets(results, TARGETS).map((t) => [t.id, t]));
    expect(byId.get('vs-image')?.value).toBeCloseTo(4);
    expect(byId.get('vs-image')?.met).toBe(true);
    expect(byId.get('vs-sms')?.value).toBeNaN();
    expect(byId.get('vs-sms')?.met).toBe(false);
    expect(byId.get('vs-register')?.value).toBeCloseTo(1);
  });

  it('reports each run against its own baseline as a share, and counts none of them as a target', () => {
    const run = (perSecond: number, baseline: number) =>
      ({
        requestsPerSecond: perSecond,
        p50Ms: 1,
        p99Ms: 2,
        errors: 0,
        peakRssMb: 100,
        exhausted: false,
        baseline: { kind: 'hello', samples: [baseline, baseline], perSecond: baseline },
      }) as unknown as BackendResults['image'];
    const probe = { requestsPerSecond: 20, p50Ms: 2, p99Ms: 30 } as BackendResults['responsiveness']['probe'];
    const backend: BackendResults = {
      name: 'redis-postgres',
      label: 'Redis + PostgreSQL',
      image: run(2500, 5000),
      sms: run(4000, 16000),
      register: run(120, 100),
      login: run(90, 100),
      responsiveness: { probe, register: probe, peakRssMb: 100 },
      mixed: [],
    };
    const results: Omit<BenchResults, 'targets'> = {
      machine: MACHINE,
      baselines: { hello: { requestsPerSecond: 16000 }, captchaPerSecond: 5000, hashesPerSecond: 100 },
      backends: [backend],
      queue: undefined,
    } as Omit<BenchResults, 'targets'>;
    const explanations = ownBaselineRatios(results);
    expect(explanations.map((e) => [e.id, Math.round(e.percent)])).toEqual([
      ['sms-redis-postgres', 25],
      ['image-redis-postgres', 50],
      ['register-redis-postgres', 120],
      ['login-redis-postgres', 90],
    ]);
    const targets = evaluateTargets(results, TARGETS);
    expect(targets.map((t) => t.id)).toEqual(['captcha-p99-redis-postgres', 'peak-rss']);
    const section = readmeSection({ ...results, targets, explanations });
    expect(section).toContain('2 of 2 targets met');
    expect(section).toMatch(/\| GET \/image_codes\/ on Redis \+ PostgreSQL vs renderer alone \| 50\.0 % \|/);
  });

  it('puts the bench section into the README in place of the old one, leaving the rest', () => {
    const readme = '# x\n\n## Benchmarks\n\nold\n\n### sub\n\nold too\n\n## Next\n\nkept\n';
    const out = replaceReadmeSection(readme, '## Benchmarks\n\nnew\n');
    expect(out).toBe('# x\n\n## Benchmarks\n\nnew\n\n## Next\n\nkept\n');
    expect(replaceReadmeSection('# no section\n', '## Benchmarks\n')).toBe('# no section\n');
  });

  it('counts the SMS printed in a growing log once each, a line cut by a read included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sent-counter-'));
    const file = join(dir, 'out.log');
    writeFileSync(file, '{"msg":"request completed"}\n[mobile: 19000000001] [sms_code: 123456]\n');
    const counter = sentCounter(file);
    try {
      expect(counter.count()).toBe(1);
      appendFileSync(file, '[mobile: 19000000002] [sms_co');
      const cut = counter.size();
      expect(counter.count()).toBe(1);
      appendFileSync(file, 'de: 654321]\n[mobile: 19000000003] [sms_code: 000001]\n');
      expect(counter.count(cut + 4)).toBe(1);
      expect(counter.count()).toBe(3);
      expect(counter.count()).toBe(3);
    } finally {
      counter.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
