/**
 * Diagnosis: the captcha probe beside full /register/ load, every probe latency listed.
 * `tsx bench/diag/probe.ts [KEY=VALUE ...]` (environment overrides for the web process).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestSpec } from 'autocannon';
import { BENCH, SERVICE_ENV } from '../config.js';
import { csrfOf, START_FLAGS } from '../http.js';
import {
  nextMobile,
  nextUsername,
  nextUuid,
  PASSWORD,
  Pool,
  smsItems,
  sqliteWriter,
} from '../lib/fixtures.js';
import { load } from '../lib/load.js';
import { ROOT, startNode } from '../lib/process.js';

const overrides = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const dir = mkdtempSync(join(tmpdir(), 'meiduo-diag-'));
const file = join(dir, 'm.sqlite3');
const items = smsItems(6000);
const w = sqliteWriter(file);
await w.put([], items, 3600);
await w.close();
const pool = new Pool(items);
// DIAG_NODE_FLAGS replaces the node flags of `npm start` (e.g. to try V8's GC settings).
const nodeFlags = process.env.DIAG_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? START_FLAGS;
const service = await startNode(
  [...nodeFlags, join(ROOT, 'dist/server.js')],
  { ...SERVICE_ENV, DATA_DIR: dir, DATABASE_URL: `sqlite:${file}`, ...overrides },
  { readyPath: '/healthz', cwd: dir, name: 'diag' },
);
try {
  const csrf = await csrfOf(service.url);
  const register: RequestSpec = {
    method: 'POST',
    setupRequest: (req) => {
      const item = pool.next(() => ({ mobile: nextMobile(), code: '000000' }));
      return {
        ...req,
        path: '/register/',
        headers: csrf.headers,
        body: JSON.stringify({
          username: nextUsername(),
          password: PASSWORD,
          password2: PASSWORD,
          mobile: item.mobile,
          sms_code: item.code,
          allow: true,
        }),
      };
    },
  };
  await load({ url: service.url, requests: [register], connections: 2, durationSeconds: 1.5 });
  if (process.env.DIAG_WARM_CAPTCHA === '1') {
    const image: RequestSpec = {
      method: 'GET',
      setupRequest: (req) => ({ ...req, path: `/image_codes/${nextUuid()}/` }),
    };
    await load({ url: service.url, requests: [image], connections: 2, durationSeconds: 1.5 });
  }
  const lat: number[] = [];
  const probe = (async () => {
    const end = Date.now() + BENCH.durationSeconds * 1000;
    let i = 0;
    while (Date.now() < end) {
      const t = performance.now();
      const res = await fetch(`${service.url}/image_codes/${nextUuid()}/`);
      await res.arrayBuffer();
      lat.push(performance.now() - t);
      i++;
      const wait = i * 50 - (Date.now() - (end - BENCH.durationSeconds * 1000));
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const reg = await load({
    url: service.url,
    requests: [register],
    connections: BENCH.connections,
    durationSeconds: BENCH.durationSeconds,
  });
  await probe;
  const sorted = [...lat].sort((a, b) => a - b);
  console.log(
    JSON.stringify(overrides),
    'register/s',
    reg.requestsPerSecond.toFixed(1),
    'errors',
    reg.errors,
  );
  console.log(
    'probe n',
    lat.length,
    'p50',
    sorted[Math.floor(lat.length / 2)]?.toFixed(1),
    'p99',
    sorted[Math.floor(lat.length * 0.99)]?.toFixed(1),
    'max',
    sorted.at(-1)?.toFixed(1),
  );
  console.log(
    'first 5',
    lat
      .slice(0, 5)
      .map((x) => x.toFixed(1))
      .join(' '),
    'worst',
    sorted
      .slice(-6)
      .map((x) => x.toFixed(1))
      .join(' '),
  );
} finally {
  await service.stop();
  rmSync(dir, { recursive: true, force: true });
}
