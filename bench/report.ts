/**
 * The bench's results as the targets see them, and their three renderings: a table for the
 * terminal, markdown for docs/bench, and an SVG chart drawn here (no chart library).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TARGETS } from './config.js';
import type { BackendResults, RunResult } from './http.js';
import type { LoadSummary } from './lib/load.js';
import { NOTES } from './notes.js';
import type { QueueResults } from './queue.js';
import type { VersusResults, VersusRun, VersusSide } from './versus.js';

export interface Baselines {
  hello: LoadSummary & { peakRssMb: number };
  /** Per second, measured alone for the same time at the same concurrency. */
  captchaPerSecond: number;
  hashesPerSecond: number;
  redisPingsPerSecond: number;
}

export interface Machine {
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  loadAtStart: number[];
  loadAtEnd: number[];
  quick: boolean;
  durationSeconds: number;
  connections: number;
}

export interface BenchResults {
  machine: Machine;
  /** The runs against the Django original; absent when skipped (versusSkipped says why). */
  versus?: VersusResults;
  versusSkipped?: string;
  baselines: Baselines | undefined;
  backends: BackendResults[];
  queue: QueueResults | undefined;
  targets: Target[];
  /** Each run against an own baseline of the same run: where the time goes, no target. */
  explanations?: OwnBaselineRatio[];
}

export interface OwnBaselineRatio {
  id: string;
  label: string;
  /** The run's rate as a percentage of the baseline's. */
  percent: number;
  /** The figures behind it, e.g. "812 req/s of 2,003 req/s". */
  detail: string;
}

export interface Target {
  id: string;
  /** What is compared, in words. */
  label: string;
  /** Measured value, in `unit`. */
  value: number;
  target: number;
  unit: '%' | 'ms' | 'jobs/s' | 'MB' | '×';
  /** 'min': the value must reach the target; 'max': stay under it. */
  kind: 'min' | 'max';
  met: boolean;
  /** The figures behind a ratio, e.g. "812 req/s of 2,003 req/s". */
  detail: string;
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '—';
const rate = (n: number) => fmt(n, n < 100 ? 1 : 0);

function limitTarget(
  id: string,
  label: string,
  value: number,
  target: number,
  unit: Target['unit'],
  kind: Target['kind'],
  detail: string,
): Target {
  return {
    id,
    label,
    value,
    target,
    unit,
    kind,
    met: kind === 'min' ? value >= target : value < target,
    detail,
  };
}

/**
 * Each run against the baseline measured just before and after it: hello-world for
 * /sms_codes/, the renderer alone for /image_codes/, the hasher alone for /register/ and
 * /login/. They explain the figures against Django; they are no target.
 */
export function ownBaselineRatios(results: Omit<BenchResults, 'targets'>): OwnBaselineRatio[] {
  const b = results.baselines;
  if (!b) return [];
  const out: OwnBaselineRatio[] = [];
  for (const be of results.backends) {
    const on = be.name === 'embedded' ? 'embedded' : 'Redis + PostgreSQL';
    const vsOwnBaseline = (
      id: string,
      label: string,
      run: RunResult,
      fallback: number,
      unit: string,
    ): OwnBaselineRatio => {
      const baseline = run.baseline?.perSecond ?? fallback;
      const samples = run.baseline?.samples;
      const bracket = samples ? ` (baseline before/after the run: ${samples.map(rate).join(' / ')})` : '';
      return {
        id: `${id}-${be.name}`,
        label,
        percent: (run.requestsPerSecond / baseline) * 100,
        detail: `${rate(run.requestsPerSecond)} of ${rate(baseline)} ${unit}${bracket}`,
      };
    };
    if (be.name !== 'embedded') {
      out.push(
        vsOwnBaseline(
          'sms',
          `GET /sms_codes/ on ${on} vs hello-world`,
          be.sms,
          b.hello.requestsPerSecond,
          'req/s',
        ),
      );
    }
    out.push(
      vsOwnBaseline(
        'image',
        `GET /image_codes/ on ${on} vs renderer alone`,
        be.image,
        b.captchaPerSecond,
        '/s',
      ),
      vsOwnBaseline(
        'register',
        `POST /register/ on ${on} vs hasher alone`,
        be.register,
        b.hashesPerSecond,
        '/s',
      ),
      vsOwnBaseline('login', `POST /login/ on ${on} vs hasher alone`, be.login, b.hashesPerSecond, '/s'),
    );
  }
  return out;
}

export function evaluateTargets(
  results: Omit<BenchResults, 'targets'>,
  t: {
    captchaP99UnderRegisterMs: number;
    queueJobsPerSecond: number;
    queueP99Ms: number;
    peakRssMb: number;
    rssRepeatTolerance: number;
    versus?: VersusGoals;
  },
): Target[] {
  const targets: Target[] = [];
  if (results.versus && t.versus) targets.push(...versusTargets(results.versus, t.versus));
  for (const be of results.backends) {
    const on = be.name === 'embedded' ? 'embedded' : 'Redis + PostgreSQL';
    const probe = be.responsiveness.probe;
    targets.push(
      limitTarget(
        `captcha-p99-${be.name}`,
        `captcha p99 under full /register/ load, ${on}`,
        probe.p99Ms,
        t.captchaP99UnderRegisterMs,
        'ms',
        'max',
        `p50 ${fmt(probe.p50Ms)} ms at ${rate(probe.requestsPerSecond)} req/s beside ${rate(be.responsiveness.register.requestsPerSecond)} registrations/s`,
      ),
    );
  }
  const q = results.queue;
  if (q) {
    targets.push(
      limitTarget(
        'queue-throughput',
        `queue: ${fmt(q.jobs)} SMS jobs, ${q.workers} workers × ${q.concurrency}`,
        q.jobsPerSecond,
        t.queueJobsPerSecond,
        'jobs/s',
        'min',
        `enqueue-to-send p50 ${fmt(q.burstP50Ms)} ms, p99 ${fmt(q.burstP99Ms)} ms in the burst`,
      ),
      limitTarget(
        'queue-latency',
        `queue: enqueue-to-send p99 at ${q.steadyRate} jobs/s`,
        q.steadyP99Ms,
        t.queueP99Ms,
        'ms',
        'max',
        `p50 ${fmt(q.steadyP50Ms, 1)} ms over ${fmt(q.steadyJobs)} jobs`,
      ),
    );
  }
  const runs = results.backends.flatMap((be) =>
    webRuns(be).map((r) => ({ peakRssMb: r.peakRssMb, where: `${r.name} on ${be.name}` })),
  );
  const versusPeak = results.versus?.ours.peakRssMb;
  if (versusPeak)
    runs.push({ peakRssMb: versusPeak, where: 'the runs against Django (pbkdf2, Redis + SQLite)' });
  if (runs.length > 0) {
    const top = runs.reduce((a, r) => (r.peakRssMb > a.peakRssMb ? r : a));
    targets.push(
      limitTarget(
        'peak-rss',
        'peak RSS of a web process under load (highest run)',
        top.peakRssMb,
        t.peakRssMb,
        'MB',
        'max',
        top.where,
      ),
    );
  }
  for (const be of results.backends) {
    const [first, second] = be.mixed;
    if (!first || !second) continue;
    const diff = Math.abs(first.peakRssMb - second.peakRssMb) / Math.min(first.peakRssMb, second.peakRssMb);
    targets.push(
      limitTarget(
        `rss-repeat-${be.name}`,
        `peak RSS, two identical mixed runs, ${be.name === 'embedded' ? 'embedded' : 'Redis + PostgreSQL'}`,
        diff * 100,
        t.rssRepeatTolerance * 100,
        '%',
        'max',
        `${fmt(first.peakRssMb)} MB and ${fmt(second.peakRssMb)} MB`,
      ),
    );
  }
  return targets;
}

export function webRuns(
  be: BackendResults,
): Array<{ name: string; run: LoadSummary; peakRssMb: number; exhausted?: boolean }> {
  const row = (name: string, run: RunResult) => ({
    name,
    run,
    peakRssMb: run.peakRssMb,
    exhausted: run.exhausted,
  });
  return [
    row('GET /image_codes/', be.image),
    row('GET /sms_codes/', be.sms),
    row('POST /register/', be.register),
    row('POST /login/', be.login),
    {
      name: 'POST /register/ (full load, beside the probe)',
      run: be.responsiveness.register,
      peakRssMb: be.responsiveness.peakRssMb,
    },
    {
      name: 'GET /image_codes/ (probe beside /register/)',
      run: be.responsiveness.probe,
      peakRssMb: be.responsiveness.peakRssMb,
    },
    ...be.mixed.map((m, i) => row(`mixed sign-up #${i + 1}`, m)),
  ];
}

// ---- against Django ---------------------------------------------------------------------

export interface VersusGoals {
  image: number;
  sms: number;
  register: number;
  login: number;
  endToEnd: number;
}

const mean = (values: number[]) => values.reduce((a, v) => a + v, 0) / values.length;
/** Geometric mean of the per-round ratios: each round pairs a Django run with the ours after it. */
const pairedRatio = (ours: number[], django: number[]) => {
  const ratios = ours.map((o, i) => o / (django[i] ?? Number.NaN));
  // A round where either side got nothing done is a broken comparison, not a ratio.
  if (ratios.length === 0 || !ratios.every((x) => Number.isFinite(x) && x > 0)) return Number.NaN;
  return Math.exp(mean(ratios.map(Math.log)));
};

/** A probe that got no answer at all in its run waited at least the whole run. */
const probeP99 = (p: VersusRun) => (p.ok > 0 ? p.p99Ms : p.seconds * 1000);

interface VersusRow {
  id: keyof VersusGoals | 'probe';
  label: string;
  unit: string;
  django: number[];
  ours: number[];
  /** For latencies smaller is better: the ratio is Django ÷ ours. */
  lowerIsBetter?: boolean;
}

export function versusRows(v: VersusResults): VersusRow[] {
  const ok = (runs: VersusRun[]) => runs.map((r) => r.okPerSecond);
  return [
    {
      id: 'image',
      label: 'GET /image_codes/',
      unit: 'req/s',
      django: ok(v.django.image),
      ours: ok(v.ours.image),
    },
    { id: 'sms', label: 'GET /sms_codes/', unit: 'req/s', django: ok(v.django.sms), ours: ok(v.ours.sms) },
    {
      id: 'register',
      label: 'POST /register/ (PBKDF2-SHA256 260,000 both)',
      unit: 'req/s',
      django: ok(v.django.register),
      ours: ok(v.ours.register),
    },
    {
      id: 'login',
      label: 'POST /login/ (PBKDF2-SHA256 260,000 both)',
      unit: 'req/s',
      django: ok(v.django.login),
      ours: ok(v.ours.login),
    },
    {
      id: 'endToEnd',
      label: `SMS codes requested, queued and sent (${v.endToEndSeconds} s)`,
      unit: 'sent/s',
      django: v.django.endToEnd.map((e) => e.sentPerSecond),
      ours: v.ours.endToEnd.map((e) => e.sentPerSecond),
    },
    {
      id: 'probe',
      label: 'captcha p99 while /register/ runs at full load',
      unit: 'ms',
      django: v.django.probe.map((p) => probeP99(p.probe)),
      ours: v.ours.probe.map((p) => probeP99(p.probe)),
      lowerIsBetter: true,
    },
  ];
}

const rowRatio = (row: VersusRow) =>
  row.lowerIsBetter ? pairedRatio(row.django, row.ours) : pairedRatio(row.ours, row.django);

function versusTargets(v: VersusResults, goals: VersusGoals): Target[] {
  return versusRows(v).flatMap((row) => {
    if (row.id === 'probe') return [];
    const goal = goals[row.id];
    const value = rowRatio(row);
    return [
      {
        id: `vs-${row.id}`,
        label: `${row.label} vs Django`,
        value,
        target: goal,
        unit: '×' as const,
        kind: 'min' as const,
        met: value >= goal,
        detail: `${rate(mean(row.ours))} vs ${rate(mean(row.django))} ${row.unit} (rounds: ${row.ours.map(rate).join(' / ')} vs ${row.django.map(rate).join(' / ')})`,
      },
    ];
  });
}

function versusTable(v: VersusResults, goals: VersusGoals | undefined): TableSpec {
  return {
    headers: ['', 'Django original', 'meiduo-users', 'ratio', 'goal'],
    rows: versusRows(v).map((row) => {
      const ratio = rowRatio(row);
      const goal = row.id === 'probe' ? undefined : goals?.[row.id];
      return [
        `${row.label}, ${row.unit}`,
        rate(mean(row.django)),
        rate(mean(row.ours)),
        Number.isFinite(ratio)
          ? `${fmt(ratio, ratio < 10 || goal !== undefined ? 2 : 0)}×${row.lowerIsBetter ? ' better' : ''}`
          : '— (a round without successes)',
        goal === undefined ? '' : `≥ ${fmt(goal, 1)}× ${ratio >= goal ? '(met)' : '(**missed**)'}`,
      ];
    }),
    align: ['l', 'r', 'r', 'r', 'l'],
  };
}

function versusSetup(v: VersusResults): string {
  const workers = v.djangoProcesses;
  return (
    `Django 3.2 (bench/django: the course’s views) under gunicorn with ${workers} sync workers (which close each connection after its answer) and Celery with ` +
    `concurrency ${workers}; meiduo-users as \`npm start\` with REDIS_URL, PASSWORD_HASHER=pbkdf2_sha256, ` +
    `PBKDF2_ITERATIONS=260000, RATE_LIMITS=off and every other setting at its default (so its SMS worker runs ` +
    `inside its web process(es)); both on the same ` +
    `Redis server (databases of their own) and each on a SQLite file (ours: its default; the same kind for both, and /register/ and /login/ are bound by the hash, not the insert). autocannon, ${v.connections} connections, ` +
    `${v.durationSeconds} s per run, each request with its own image code, mobile or user; each kind run ` +
    `Django, meiduo-users, ${v.rounds > 1 ? 'Django, meiduo-users ' : ''}(figures: mean of the rounds; ratio: ` +
    `geometric mean of the paired rounds). Successes only: HTTP 200 with a JPEG or \`"code": 0\`.`
  );
}

function endToEndLines(v: VersusResults): string[] {
  return (['django', 'ours'] as const).flatMap((name) =>
    v[name].endToEnd.map(
      (e, i) =>
        `${name === 'django' ? 'Django + Celery' : 'meiduo-users'} round ${i + 1}: ${rate(e.requestedPerSecond)} requested/s, ` +
        `${rate(e.sentPerSecond)} sent/s in the window, ${fmt(e.backlogAtEnd)} not yet sent at its end, all sent ${fmt(e.drainSeconds, 1)} s later`,
    ),
  );
}

/** Where the queue burst's CPU went: what bounds the jobs per second on this machine. */
function burstCpuLine(c: NonNullable<QueueResults['burstCpu']>): string {
  const total = c.redisUsPerJob + c.workersUsPerJob + c.producerUsPerJob;
  return (
    `CPU per job in the burst: Redis ${fmt(c.redisUsPerJob)} µs (${fmt(c.scriptsPerJob, 1)} Lua scripts), ` +
    `workers ${fmt(c.workersUsPerJob)} µs, producer ${fmt(c.producerUsPerJob)} µs; ${fmt(total)} µs in all, ` +
    `a ceiling of ${rate(1e6 / total)} jobs/s per core`
  );
}

// ---- text -------------------------------------------------------------------------------

/** A table's content, which the terminal and the markdown reports each lay out their own way. */
interface TableSpec {
  headers: string[];
  rows: string[][];
  align: Array<'l' | 'r'>;
}

function baselinesTable(b: Baselines, labels: { hello: string; hasher: string }): TableSpec {
  return {
    headers: ['baseline', 'per second', 'p50 ms', 'p99 ms'],
    rows: [
      [labels.hello, rate(b.hello.requestsPerSecond), fmt(b.hello.p50Ms), fmt(b.hello.p99Ms)],
      ['captcha renderer alone', rate(b.captchaPerSecond), '', ''],
      [labels.hasher, rate(b.hashesPerSecond), '', ''],
      ['Redis PING round trips', rate(b.redisPingsPerSecond), '', ''],
    ],
    align: ['l', 'r', 'r', 'r'],
  };
}

function webRunsTable(be: BackendResults): TableSpec {
  return {
    headers: ['run', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'peak RSS MB'],
    rows: webRuns(be).map((w) => [
      w.name + (w.exhausted ? ' (pool ran dry)' : ''),
      rate(w.run.requestsPerSecond),
      fmt(w.run.p50Ms),
      fmt(w.run.p99Ms),
      fmt(w.run.errors),
      fmt(w.peakRssMb),
    ]),
    align: ['l', 'r', 'r', 'r', 'r', 'r'],
  };
}

function table({ headers, rows, align }: TableSpec): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) =>
    align[i] === 'r' ? s.padStart(widths[i] ?? 0) : s.padEnd(widths[i] ?? 0);
  return [
    headers.map(cell).join('  '),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map((r) => r.map(cell).join('  ')),
  ];
}

const targetValue = (t: Target) =>
  t.unit === '×'
    ? `${Number.isFinite(t.value) ? fmt(t.value, 2) : '—'}×`
    : `${fmt(t.value, t.unit === '%' || t.unit === 'ms' ? 1 : 0)} ${t.unit}`;
const targetGoal = (t: Target) =>
  `${t.kind === 'min' ? '≥' : '<'} ${t.unit === '×' ? `${fmt(t.target, 1)}×` : `${fmt(t.target)} ${t.unit}`}`;

export function terminalReport(r: BenchResults): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(
    `meiduo-users bench — ${m.date}, node ${m.node}, ${m.cpus} × ${m.cpuModel}`,
    `load average at start ${m.loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${m.loadAtEnd.map((l) => l.toFixed(2)).join(' ')}${m.quick ? '  (QUICK run)' : ''}`,
    '',
  );
  if (r.versus) {
    lines.push('Against the Django original (same run, alternated)');
    lines.push(
      ...table(versusTable(r.versus, TARGETS.versus)),
      ...endToEndLines(r.versus).map((l) => `  ${l}`),
      '',
    );
  } else if (r.versusSkipped) {
    lines.push(`Against the Django original: SKIPPED (${r.versusSkipped})`, '');
  }
  if (r.baselines) {
    const b = r.baselines;
    lines.push('Baselines (same run, same duration and concurrency)');
    lines.push(
      ...table(
        baselinesTable(b, {
          hello: 'Fastify hello-world (service options)',
          hasher: 'password hasher alone (argon2id, service settings)',
        }),
      ),
      '',
    );
  }
  for (const be of r.backends) {
    lines.push(be.label);
    lines.push(...table(webRunsTable(be)), '');
  }
  if (r.queue) {
    const q = r.queue;
    lines.push(
      `Queue (BullMQ, ${q.workers} worker processes × concurrency ${q.concurrency}, no-op provider)`,
      `  ${fmt(q.jobs)} jobs at once: ${rate(q.jobsPerSecond)} jobs/s (enqueue-to-send p50 ${fmt(q.burstP50Ms)} ms, p99 ${fmt(q.burstP99Ms)} ms)`,
      `  ${q.steadyRate} jobs/s steady (${rate(q.steadyAchievedRate)} achieved): enqueue-to-send p50 ${fmt(q.steadyP50Ms, 1)} ms, p99 ${fmt(q.steadyP99Ms, 1)} ms; lost ${q.lost}`,
      ...(q.burstCpu ? [`  ${burstCpuLine(q.burstCpu)}`] : []),
      '',
    );
  }
  if (r.explanations?.length) {
    lines.push('Against its own baselines (where the time goes; no target)');
    lines.push(
      ...table({
        headers: ['run', 'of its baseline', 'figures'],
        rows: r.explanations.map((e) => [e.label, `${fmt(e.percent, 1)} %`, e.detail]),
        align: ['l', 'r', 'l'],
      }),
      '',
    );
  }
  lines.push('Targets');
  lines.push(
    ...table({
      headers: ['target', 'measured', 'goal', 'met', 'figures'],
      rows: r.targets.map((t) => [t.label, targetValue(t), targetGoal(t), t.met ? 'yes' : 'NO', t.detail]),
      align: ['l', 'r', 'r', 'l', 'l'],
    }),
  );
  return lines.join('\n');
}

// ---- markdown ---------------------------------------------------------------------------

function mdTable({ headers, rows, align }: TableSpec): string[] {
  return [
    `| ${headers.join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

export function machineLine(m: Machine): string {
  return `${m.date}; node ${m.node}; ${m.cpus} × ${m.cpuModel}; load average ${m.loadAtStart.map((l) => l.toFixed(2)).join(' / ')} at the start and ${m.loadAtEnd.map((l) => l.toFixed(2)).join(' / ')} at the end; ${m.durationSeconds} s per run, ${m.connections} connections${m.quick ? ' (QUICK run)' : ''}`;
}

export function targetsMarkdown(r: BenchResults, notes: Record<string, string>): string[] {
  return mdTable({
    headers: ['target', 'measured', 'goal', 'met', 'figures', 'why, when missed'],
    rows: r.targets.map((t) => [
      t.label,
      targetValue(t),
      targetGoal(t),
      t.met ? 'yes' : '**no**',
      t.detail,
      t.met ? '' : noteFor(notes, t.id),
    ]),
    align: ['l', 'r', 'r', 'l', 'l', 'l'],
  });
}

/** Notes are keyed by id without the backend suffix. */
const noteFor = (notes: Record<string, string>, id: string): string =>
  notes[id.replace(/-(embedded|redis-postgres)$/, '')] ?? notes[id] ?? '';

export function ownBaselinesMarkdown(r: BenchResults, notes: Record<string, string>): string[] {
  return mdTable({
    headers: ['run', 'of its baseline', 'figures', 'where the rest goes'],
    rows: (r.explanations ?? []).map((e) => [
      e.label,
      `${fmt(e.percent, 1)} %`,
      e.detail,
      noteFor(notes, e.id),
    ]),
    align: ['l', 'r', 'l', 'l'],
  });
}

export function resultsMarkdown(r: BenchResults, notes: Record<string, string>): string {
  const lines = ['# Benchmark results', '', `Measured by \`npm run bench\`: ${machineLine(r.machine)}.`, ''];
  lines.push(...versusMarkdown(r, true, '##'));
  if (r.baselines) {
    const b = r.baselines;
    lines.push(
      '## Baselines',
      '',
      ...mdTable(
        baselinesTable(b, {
          hello: 'Fastify hello-world with the service’s options',
          hasher: 'password hasher alone (argon2id m=19456 t=2 p=1, HASH_CONCURRENCY at its default)',
        }),
      ),
      '',
    );
  }
  for (const be of r.backends) {
    lines.push(`## ${be.label}`, '', ...mdTable(webRunsTable(be)), '');
  }
  if (r.queue) {
    const q = r.queue;
    lines.push(
      '## Queue',
      '',
      ...mdTable({
        headers: ['run', 'jobs', 'jobs/s', 'enqueue-to-send p50 ms', 'p99 ms'],
        rows: [
          [
            `all at once, ${q.workers} worker processes × ${q.concurrency}`,
            fmt(q.jobs),
            rate(q.jobsPerSecond),
            fmt(q.burstP50Ms),
            fmt(q.burstP99Ms),
          ],
          [
            `steady ${q.steadyRate} jobs/s`,
            fmt(q.steadyJobs),
            rate(q.steadyAchievedRate),
            fmt(q.steadyP50Ms, 1),
            fmt(q.steadyP99Ms, 1),
          ],
        ],
        align: ['l', 'r', 'r', 'r', 'r'],
      }),
      '',
      ...(q.burstCpu ? [`${burstCpuLine(q.burstCpu)}.`, ''] : []),
    );
  }
  lines.push('## Targets', '', ...targetsMarkdown(r, notes), '');
  if (r.explanations?.length) {
    lines.push('## Against its own baselines (no target)', '', ...ownBaselinesMarkdown(r, notes), '');
  }
  return lines.join('\n');
}

/** The lead of the README and of results.md: meiduo-users beside the Django original. */
function versusMarkdown(r: BenchResults, perRound: boolean, heading: string): string[] {
  const v = r.versus;
  if (!v) {
    return r.versusSkipped
      ? [`${heading} Against the Django original`, '', `Not measured in this run: ${r.versusSkipped}.`, '']
      : [];
  }
  const lines = [
    `${heading} Against the Django original`,
    '',
    versusSetup(v),
    '',
    ...mdTable(versusTable(v, TARGETS.versus)),
    '',
  ];
  lines.push(...endToEndLines(v).map((l) => `- ${l}`), '');
  if (perRound) {
    const run = (x: VersusRun) =>
      `${rate(x.okPerSecond)} (p50 ${fmt(x.p50Ms)} ms, p99 ${fmt(x.p99Ms)} ms, ${fmt(x.requests - x.ok)} failed${x.exhausted ? ', pool ran dry' : ''})`;
    const rows: string[][] = [];
    for (const name of ['django', 'ours'] as const) {
      const side = v[name];
      const who = name === 'django' ? 'Django' : 'meiduo-users';
      const kinds: Array<[string, VersusRun[]]> = [
        ['GET /image_codes/', side.image],
        ['GET /sms_codes/', side.sms],
        ['POST /register/', side.register],
        ['POST /login/', side.login],
      ];
      for (const [label, runs] of kinds) {
        for (const [i, x] of runs.entries()) rows.push([who, `${label} #${i + 1}`, run(x)]);
      }
      for (const [i, x] of side.probe.entries()) {
        rows.push([
          who,
          `captcha beside full /register/ load #${i + 1}`,
          `${run(x.probe)}; register ${run(x.register)}`,
        ]);
      }
    }
    lines.push(
      ...mdTable({
        headers: ['side', 'run', 'successes/s (latency, failures)'],
        rows,
        align: ['l', 'l', 'l'],
      }),
      '',
    );
  }
  const processes = (side: VersusSide) =>
    side.processes === undefined
      ? ''
      : `${side.processes} process${side.processes === 1 ? '' : 'es'}, the largest peaking at ${fmt(side.peakRssMb ?? Number.NaN)} MB RSS`;
  if (v.django.processes !== undefined) {
    lines.push(
      `Processes: Django ${processes(v.django)} (gunicorn arbiter and workers, Celery main process and pool); ` +
        `meiduo-users ${processes(v.ours)}.`,
      '',
    );
  }
  return lines;
}

// ---- SVG --------------------------------------------------------------------------------

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * One row per target: a bar whose length is the measured value over the target (the
 * dashed line is the target; a bar is capped at twice it), green when met, red when not;
 * the label on the right gives the measured value itself.
 */
export function targetsSvg(r: BenchResults): string {
  const rowH = 30;
  const labelW = 400;
  const barW = 300;
  const valueW = 190;
  const top = 54;
  const width = labelW + barW + valueW + 20;
  const height = top + r.targets.length * rowH + 30;
  const x0 = labelW + 10;
  const targetX = x0 + barW / 2;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12" role="img">`,
    `<title>meiduo-users benchmark: the targets of the same run, against the Django original first</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">meiduo-users: ratios to the Django original (top), then the other targets</text>`,
    `<text x="10" y="40" fill="#555">${escapeXml(machineLine(r.machine).slice(0, 130))}</text>`,
  ];
  r.targets.forEach((t, i) => {
    const y = top + i * rowH;
    const score = t.kind === 'min' ? t.value / t.target : t.value / t.target;
    const len = Math.max(1, Math.min(2, Number.isFinite(score) ? score : 0) * (barW / 2));
    const color = t.met ? '#2e8b57' : '#c0392b';
    parts.push(
      `<text x="${labelW}" y="${y + 19}" text-anchor="end">${escapeXml(t.label)}</text>`,
      `<rect x="${x0}" y="${y + 7}" width="${len.toFixed(1)}" height="16" fill="${color}" rx="2"/>`,
      `<text x="${x0 + barW + 8}" y="${y + 19}">${escapeXml(`${targetValue(t)} (goal ${targetGoal(t)})`)}</text>`,
    );
  });
  const bottom = top + r.targets.length * rowH;
  parts.push(
    `<line x1="${targetX}" y1="${top}" x2="${targetX}" y2="${bottom}" stroke="#333" stroke-dasharray="4 3"/>`,
    `<text x="${targetX}" y="${bottom + 16}" text-anchor="middle" fill="#333">target</text>`,
    `<text x="10" y="${bottom + 16}" fill="#777">bar: measured ÷ target (longer is more; for “&lt;” goals shorter is better)</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}

// ---- docs -------------------------------------------------------------------------------

export function readmeSection(r: BenchResults): string {
  const met = r.targets.filter((t) => t.met).length;
  return [
    '## Benchmarks',
    '',
    '```sh',
    'npm run bench                 # ~15 min: builds, then measures everything below',
    'BENCH_QUICK=1 npm run bench   # ~3 min smoke run (2 s per run); leaves docs/bench alone',
    '```',
    '',
    `Last full run: ${machineLine(r.machine)}. ${met} of ${r.targets.length} targets met.`,
    '',
    ...versusMarkdown(r, false, '###'),
    `![targets](docs/bench/bench.svg)`,
    '',
    '### Targets',
    '',
    'The issue’s targets: the ratios to Django above, the captcha’s p99 beside full /register/ load,',
    'the queue and memory. The service runs built (`node dist/server.js`) with `RATE_LIMITS=off` and',
    'CSRF on, on the embedded default and on Redis + BullMQ + PostgreSQL; each request carries a',
    'distinct captcha id, mobile and user, with valid codes prepared in the store beforehand.',
    'Settings: [bench/config.ts](bench/config.ts).',
    '',
    ...targetsMarkdown(r, NOTES),
    '',
    '### Against its own baselines',
    '',
    'Where the time goes, measured in the same run and no target: each run as a share of a baseline',
    'measured just before and after it, a Fastify hello-world with the service’s own options (the',
    'ceiling of one HTTP request), the captcha renderer alone on one thread, and the password hasher',
    'alone with the service’s settings.',
    '',
    ...ownBaselinesMarkdown(r, NOTES),
    '',
    'All figures (each round against Django, baselines, every run with p50/p99 latency, errors and',
    'peak RSS, the queue): [docs/bench/results.md](docs/bench/results.md).',
    '',
  ].join('\n');
}

/**
 * The README with its `## Benchmarks` section (up to the next `## ` heading) replaced by
 * `section`; unchanged when it has no such section.
 */
export function replaceReadmeSection(readme: string, section: string): string {
  const lines = readme.split('\n');
  const start = lines.indexOf('## Benchmarks');
  if (start < 0) return readme;
  let end = lines.findIndex((line, i) => i > start && line.startsWith('## '));
  if (end < 0) end = lines.length;
  return [...lines.slice(0, start), ...section.trimEnd().split('\n'), '', ...lines.slice(end)].join('\n');
}

/** docs/bench: the full results, the chart, and the README's Benchmarks section (also put in `readme`). */
export function writeDocs(results: BenchResults, dir: string, readme?: string): void {
  mkdirSync(dir, { recursive: true });
  const section = readmeSection(results);
  writeFileSync(join(dir, 'results.md'), resultsMarkdown(results, NOTES));
  writeFileSync(join(dir, 'bench.svg'), targetsSvg(results));
  writeFileSync(join(dir, 'README-section.md'), section);
  if (readme) writeFileSync(readme, replaceReadmeSection(readFileSync(readme, 'utf8'), section));
  // The tables are laid out by the project's formatter, so that a bench run leaves `npm run lint` green.
  const written = [join(dir, 'results.md'), join(dir, 'README-section.md'), ...(readme ? [readme] : [])];
  execFileSync('npx', ['biome', 'format', '--write', ...written], { stdio: 'ignore' });
}
