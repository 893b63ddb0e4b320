/**
 * Diagnosis: GET /sms_codes/ as the Django comparison runs it (npm start, REDIS_URL, its SMS
 * worker in the web processes), with the CPU each process used. `tsx bench/diag/sms.ts [K=V ...]`
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestSpec } from 'autocannon';
import { REDIS_URL, VERSUS_SERVICE_ENV } from '../config.js';
import { START_FLAGS } from '../http.js';
import { cleanBenchRedis, imageItems, nextMobile, nextUuid, Pool, redisWriter } from '../lib/fixtures.js';
import { load } from '../lib/load.js';
import { processTree, ROOT, startNode } from '../lib/process.js';

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
const dir = mkdtempSync(join(tmpdir(), 'meiduo-diag-'));
await cleanBenchRedis();
const items = imageItems(Math.ceil(12000 * (seconds + 2)));
const w = redisWriter();
await w.put(items, [], 3600);
await w.close();
const pool = new Pool(items);
const service = await startNode(
  [...START_FLAGS, join(ROOT, 'dist/server.js')],
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
  await load({ url: service.url, requests: [sms], connections, durationSeconds: 1.5 });
  const pids = [...processTree(service.pid), redisPid, process.pid];
  const before = pids.map(ticks);
  const r = await load({ url: service.url, requests: [sms], connections, durationSeconds: seconds });
  const after = pids.map(ticks);
  console.log(
    JSON.stringify(overrides),
    'sms/s',
    r.requestsPerSecond.toFixed(0),
    'p50',
    r.p50Ms,
    'p99',
    r.p99Ms,
    'errors',
    r.errors,
  );
  console.log(
    pids
      .map(
        (p, i) =>
          `${p === redisPid ? 'redis' : p === process.pid ? 'bench' : p}:${(((after[i] ?? 0) - (before[i] ?? 0)) / 100 / seconds).toFixed(2)}cpu`,
      )
      .join(' '),
  );
} finally {
  await service.stop();
  await cleanBenchRedis();
  rmSync(dir, { recursive: true, force: true });
}
