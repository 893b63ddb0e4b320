/**
 * Diagnosis: GET /sms_codes/ (or, with DIAG_ROUTE=image, GET /image_codes/) as the Django
 * comparison runs it (npm start, REDIS_URL, its SMS worker in the web processes), with the CPU
 * each process used. `tsx bench/diag/sms.ts [K=V ...]`
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestSpec } from 'autocannon';
import { REDIS_URL, VERSUS_SERVICE_ENV } from '../config.js';
import { START_FLAGS } from '../http.js';
import { cleanBenchRedis, imageItems, nextMobile, nextUuid, Pool, redisWriter } from '../lib/fixtures.js';
import { load } from '../lib/load.js';
import { memoryOf, processTree, ROOT, startNode } from '../lib/process.js';

const overrides = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const seconds = Number(process.env.DIAG_SECONDS ?? 8);
const connections = Number(process.env.DIAG_CONNECTIONS ?? 50);
const ticks = (pid: number) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
};
/** Write system calls a process made so far (/proc/<pid>/io syscw). */
const writeCalls = (pid: number) => {
  try {
    return Number(/syscw: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};
/** CPU ticks of each thread of a process, by name/thread id. */
const threadTicks = (pid: number): Map<string, number> => {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      out.set(`${name}/${tid}`, Number(f[11]) + Number(f[12]));
    }
  } catch {
    // gone
  }
  return out;
};
const dir = mkdtempSync(join(tmpdir(), 'meiduo-diag-'));
await cleanBenchRedis();
const items = imageItems(Math.ceil(12000 * (seconds + 2)));
const w = redisWriter();
await w.put(items, [], 3600);
await w.close();
const pool = new Pool(items);
// DIAG_NODE_FLAGS replaces the node flags of `npm start` (e.g. to try V8 heap settings).
const nodeFlags = process.env.DIAG_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? START_FLAGS;
const service = await startNode(
  [...nodeFlags, join(ROOT, 'dist/server.js')],
  { ...VERSUS_SERVICE_ENV, REDIS_URL, DATA_DIR: dir, ...overrides },
  { readyPath: '/healthz', cwd: dir, name: 'diag-sms', stdoutFile: join(dir, 'out.log') },
);
const redisPid = Number(execFileSync('pgrep', ['-f', 'redis-server.*6379']).toString().trim().split('\n')[0]);
try {
  const sms: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => {
      const item = pool.next(() => ({ uuid: nextUuid(), answer: 'NONE' }));
      return {
        ...req,
        path: `/sms_codes/${nextMobile()}/?image_code=${item.answer}&image_code_id=${item.uuid}`,
      };
    },
  };
  const image: RequestSpec = {
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: `/image_codes/${nextUuid()}/` }),
  };
  const route = process.env.DIAG_ROUTE === 'image' ? image : sms;
  await load({ url: service.url, requests: [route], connections, durationSeconds: 1.5 });
  const pids = [...processTree(service.pid), redisPid, process.pid];
  // SMS sent: the console provider's lines in the service's stdout.
  const sentSoFar = () => (readFileSync(join(dir, 'out.log'), 'utf8').match(/\[sms_code: /g) ?? []).length;
  const sentBefore = sentSoFar();
  const before = pids.map(ticks);
  const writesBefore = pids.map(writeCalls);
  const threadsBefore = pids.map(threadTicks);
  const r = await load({ url: service.url, requests: [route], connections, durationSeconds: seconds });
  const sentInWindow = sentSoFar() - sentBefore;
  const after = pids.map(ticks);
  const writesAfter = pids.map(writeCalls);
  const threadsAfter = pids.map(threadTicks);
  console.log(
    JSON.stringify(overrides),
    process.env.DIAG_ROUTE === 'image' ? 'images/s' : 'sms/s',
    r.requestsPerSecond.toFixed(0),
    'p50',
    r.p50Ms,
    'p99',
    r.p99Ms,
    'errors',
    r.errors,
    'sent/s in the window',
    (sentInWindow / seconds).toFixed(0),
  );
  console.log(
    pids
      .map(
        (p, i) =>
          `${p === redisPid ? 'redis' : p === process.pid ? 'bench' : p}:${(((after[i] ?? 0) - (before[i] ?? 0)) / 100 / seconds).toFixed(2)}cpu`,
      )
      .join(' '),
  );
  // CPU per request is steadier than requests/s on a noisy machine: it does not move with
  // how much CPU the machine happened to leave us.
  const usPerRequest = (i: number) =>
    ((((after[i] ?? 0) - (before[i] ?? 0)) / 100) * 1e6) / Math.max(1, r.requests);
  const web = pids.reduce(
    (sum, p, i) => (p === redisPid || p === process.pid ? sum : sum + usPerRequest(i)),
    0,
  );
  console.log(
    `CPU per request: web ${web.toFixed(0)} µs, redis ${usPerRequest(pids.indexOf(redisPid)).toFixed(0)} µs, load generator ${usPerRequest(pids.indexOf(process.pid)).toFixed(0)} µs`,
  );
  // Write system calls (sockets, pipes, files) of the web processes per request.
  const webWrites = pids.reduce(
    (sum, p, i) =>
      p === redisPid || p === process.pid ? sum : sum + ((writesAfter[i] ?? 0) - (writesBefore[i] ?? 0)),
    0,
  );
  console.log(`write system calls per request: web ${(webWrites / Math.max(1, r.requests)).toFixed(2)}`);
  console.log(
    'peak RSS',
    processTree(service.pid)
      .map((p) => `${p}:${((memoryOf(p)?.peakMb ?? 0) | 0).toString()}MB`)
      .join(' '),
  );
  // Per thread of each process: where inside a process the CPU went.
  pids.forEach((p, i) => {
    const was = threadsBefore[i] ?? new Map<string, number>();
    const parts = [...(threadsAfter[i] ?? [])]
      .map(([name, t]) => [name, (t - (was.get(name) ?? 0)) / 100 / seconds] as const)
      .filter(([, cpu]) => cpu >= 0.01)
      .map(([name, cpu]) => `${name}=${cpu.toFixed(2)}`);
    console.log(`  ${p}: ${parts.join(' ')}`);
  });
} finally {
  await service.stop();
  await cleanBenchRedis();
  rmSync(dir, { recursive: true, force: true });
}
