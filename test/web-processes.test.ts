/**
 * WEB_CONCURRENCY web processes from one `node dist/server.js` (run from source, as the
 * Procfile tests do): one port, answered by every process; one SQLite file shared by all of
 * them (a person registers across processes); a crashed process started again; SIGTERM
 * drains them all and ends the primary with 0; a start that cannot listen ends with 1.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCommand } from './fixtures/multi/procfile.js';
import {
  freePort,
  killAll,
  type Service,
  startService,
  waitFor,
  waitForHttp,
} from './fixtures/multi/service.js';

const MOBILE = '13800000017';
const SMS = '246810';

/** The children of a process (the web processes of a primary). */
function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(' ').map(Number);
  } catch {
    return [];
  }
}

/** One request on a connection of its own, so that the primary may hand it to any process. */
function call(
  port: number,
  method: 'GET' | 'POST',
  path: string,
  jar: Map<string, string>,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const token = jar.get('csrf-header');
    if (method === 'POST' && token) headers['x-csrftoken'] = token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        for (const cookie of res.headers['set-cookie'] ?? []) {
          const [pair = ''] = cookie.split(';');
          const eq = pair.indexOf('=');
          if (!/max-age=0/i.test(cookie)) jar.set(pair.slice(0, eq), pair.slice(eq + 1));
        }
        const json = (res.headers['content-type'] ?? '').includes('json')
          ? (JSON.parse(text) as Record<string, unknown>)
          : {};
        if (typeof json.csrf_token === 'string') jar.set('csrf-header', json.csrf_token);
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${path}: no answer in 20 s`)));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('WEB_CONCURRENCY web processes', () => {
  const services: Service[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await killAll(services);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const start = (port: number, env: Record<string, string> = {}) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-cluster-'));
    dirs.push(dataDir);
    const web = startService('web', resolveCommand('node dist/server.js'), {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      WEB_CONCURRENCY: '2',
      ARGON2_MEMORY_KIB: '1024',
      ARGON2_TIME_COST: '1',
      ALLOW_TEST_MODE: 'true',
      TEST_CAPTCHA_ANSWER: 'TEST',
      TEST_SMS_NUMBERS: `${MOBILE}:${SMS}`,
      ...env,
    });
    services.push(web);
    return web;
  };

  it('serves one port from every process, shares the SQLite file, restarts a crash and drains on SIGTERM', async () => {
    const port = await freePort();
    const web = start(port);
    await waitForHttp(web, `http://127.0.0.1:${port}`, '/healthz');
    const listening = () => web.logs.filter((l) => String(l.msg).startsWith('Server listening')).length;
    await waitFor('two web processes listening', () => listening() === 2, 60_000);
    const processes = childrenOf(web.pid);
    expect(processes).toHaveLength(2);

    // A person registers with every request on a fresh connection: the steps land on both
    // processes, which agree because they share one database file.
    const jar = new Map<string, string>();
    expect((await call(port, 'GET', '/csrf_token/', jar)).status).toBe(200);
    const uuid = `c-${randomBytes(6).toString('hex')}`;
    expect((await call(port, 'GET', `/image_codes/${uuid}/`, jar)).status).toBe(200);
    const sms = await call(port, 'GET', `/sms_codes/${MOBILE}/?image_code=test&image_code_id=${uuid}`, jar);
    expect(sms.status).toBe(200);
    const again = await call(port, 'GET', `/sms_codes/${MOBILE}/?image_code=test&image_code_id=${uuid}`, jar);
    expect(again.json.error).toBe('SMS_TOO_FREQUENT');
    const username = `u_${randomBytes(5).toString('hex')}`;
    const registered = await call(port, 'POST', '/register/', jar, {
      username,
      password: 'pass12345',
      password2: 'pass12345',
      mobile: MOBILE,
      sms_code: SMS,
      allow: true,
    });
    expect(registered.status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const info = await call(port, 'GET', '/info/', jar);
      expect(info.json.info_data).toMatchObject({ username, mobile: MOBILE });
    }
    // Access lines leave each process in batches (src/stdout.ts): wait for every process's.
    const served = () =>
      [...new Set(web.logs.filter((l) => l.msg === 'request completed').map((l) => l.pid as number))].sort();
    await waitFor('a request line from every web process', () => served().length === processes.length, 5_000);
    expect(served()).toEqual([...processes].sort());

    // A web process that dies is started again; the port keeps answering meanwhile.
    const victim = processes[0] as number;
    process.kill(victim, 'SIGKILL');
    // (A connection the primary hands over in the instant before it sees the death is lost
    // with the process, as with any crash; from then on the survivor takes every connection.)
    await waitFor('the primary to see the crash', () =>
      web.logs.some((l) => l.msg === 'web process exited; starting it again'),
    );
    expect((await call(port, 'GET', '/healthz', new Map())).status).toBe(200);
    await waitFor('a new web process', () => {
      const now = childrenOf(web.pid);
      return now.length === 2 && !now.includes(victim);
    });
    await waitFor('the new web process to listen', () => listening() === 3, 60_000);

    // SIGTERM to the primary alone: every process drains and the primary ends with 0.
    const before = childrenOf(web.pid);
    process.kill(web.pid, 'SIGTERM');
    const exited = await Promise.race([
      web.exited,
      new Promise((r) => setTimeout(() => r('still running'), 40_000)),
    ]);
    if (exited !== 0) console.error(web.logs.slice(-20), web.stderr());
    expect(exited).toBe(0);
    for (const pid of before) expect(() => process.kill(pid, 0)).toThrow();
    expect(web.logs.filter((l) => l.msg === 'stopped')).toHaveLength(3);
  }, 180_000);

  it('ends the start with 1 when the web processes cannot listen', async () => {
    const taken = createServer();
    const port = await new Promise<number>((resolve) =>
      taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)),
    );
    try {
      const web = start(port);
      expect(await web.exited).toBe(1);
      expect(web.logs.some((l) => l.msg === 'a web process failed to start; stopping')).toBe(true);
    } finally {
      taken.close();
    }
  }, 120_000);
});
