/**
 * The bench harness works: a server child starts on a free port and is measured by
 * autocannon with its peak RSS read from /proc, and the report turns figures into targets
 * met or missed and draws one bar per target. The bench itself runs with `npm run bench`.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVICE_ENV, TARGETS } from '../bench/config.js';
import { load } from '../bench/lib/load.js';
import { ROOT, startNode } from '../bench/lib/process.js';
import { type BenchResults, evaluateTargets, targetsSvg } from '../bench/report.js';

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
      machine: {
        date: '2026-01-01 00:00',
        node: process.versions.node,
        cpus: 2,
        cpuModel: 'test',
        loadAtStart: [0, 0, 0],
        loadAtEnd: [0, 0, 0],
        quick: true,
        durationSeconds: 1,
        connections: 1,
      },
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
});
