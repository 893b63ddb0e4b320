/**
 * The user database goes away under a running web process (src/server.ts, spawned as in
 * production) and comes back, on PostgreSQL and on MariaDB. The process reaches the database
 * through a TCP relay (test/fixtures/multi/relay.ts) that the test stops, hangs and restarts:
 * - started while the database is unreachable, the process is alive (/healthz 200) but not
 *   ready: /readyz 503 with checks.database=false and every other check true;
 * - /register/ and /login/ answer a JSON 503 SERVICE_UNAVAILABLE within seconds, never a
 *   wrong-password or duplicate answer, and spend nothing: the SMS code of a registration
 *   refused during the outage still works afterwards;
 * - when the database is back, /readyz is 200 again and the same requests succeed, without
 *   restarting the process.
 * Codes and sessions stay in the embedded store (no Redis) and test mode supplies the captcha
 * answer and the SMS codes: the database is the only thing taken away here.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { has } from './backends.js';
import { type DatabaseKind, type FreshDatabase, freshDatabase } from './databases.js';
import { type Answer, Browser } from './fixtures/multi/browser.js';
import { resolveCommand } from './fixtures/multi/procfile.js';
import { createRelay, type Relay } from './fixtures/multi/relay.js';
import {
  freePort,
  killAll,
  type Service,
  startService,
  waitFor,
  waitForHttp,
} from './fixtures/multi/service.js';

/** A refused or timed-out database must not hold a request longer than this. */
const QUICK_MS = 3000;
/** A hung database: the connect timeout (2 s) or the read timeout (statement 1 s + 2 s). */
const HUNG_MS = 6000;
const STATEMENT_TIMEOUT_MS = 1000;
const TEST_CAPTCHA = 'TEST';
const PASSWORD = 'Passw0rd!x';

const randomMobile = () => `1${randomInt(3, 10)}${String(randomInt(0, 1e9)).padStart(9, '0')}`;
const randomUsername = () => `o_${randomBytes(6).toString('hex')}`;

const kinds: Array<{ kind: DatabaseKind; name: string; here: boolean }> = [
  { kind: 'postgres', name: 'PostgreSQL', here: await has('postgres') },
  { kind: 'mysql', name: 'MariaDB', here: await has('mysql') },
];

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function expectUnavailable(answer: Answer, boundMs: number) {
  expect(answer.status).toBe(503);
  expect(answer.body).toMatchObject({
    code: 503,
    error: 'SERVICE_UNAVAILABLE',
    message: '服务繁忙，请稍后再试',
  });
  expect(answer.ms).toBeLessThan(boundMs);
}

async function runMigrate(databaseUrl: string): Promise<void> {
  const migrate = startService('migrate', resolveCommand('npm run migrate'), {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
  });
  const code = await migrate.exited;
  if (code !== 0) throw new Error(`migrate exited ${code}: ${migrate.stderr()}`);
}

describe.each(kinds)('the user database ($name) goes away under a running web process', ({ kind, here }) => {
  it.skipIf(!here)(
    'not ready and 503 while it is unreachable, refused or hung; ready again when it is back',
    async () => {
      const started = Date.now();
      const db: FreshDatabase = await freshDatabase(kind);
      cleanups.push(() => db.drop());
      await runMigrate(db.url);

      const real = new URL(db.url);
      const relay: Relay = createRelay(await freePort(), {
        host: real.hostname,
        port: Number(real.port || (kind === 'postgres' ? 5432 : 3306)),
      });
      cleanups.push(() => relay.close());
      const viaRelay = new URL(db.url);
      viaRelay.hostname = '127.0.0.1';
      viaRelay.port = String(relay.port);

      const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-outage-'));
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      const mobiles = [randomMobile(), randomMobile(), randomMobile()];
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const web: Service = startService('web', resolveCommand('node dist/server.js'), {
        HOST: '127.0.0.1',
        PORT: String(port),
        DATA_DIR: dataDir,
        DATABASE_URL: viaRelay.toString(),
        DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
        LOG_LEVEL: 'warn',
        ARGON2_MEMORY_KIB: '1024',
        ARGON2_TIME_COST: '1',
        ALLOW_TEST_MODE: 'true',
        TEST_CAPTCHA_ANSWER: TEST_CAPTCHA,
        TEST_SMS_NUMBERS: mobiles.map((m, i) => `${m}:${String(123450 + i)}`).join(','),
      });
      cleanups.push(() => killAll([web]));

      // 1. Started while nothing listens on the database's port: alive, not ready.
      await waitForHttp(web, base, '/healthz');
      const browser = new Browser();
      const readiness = () => browser.get(base, '/readyz');
      const notReady = await readiness();
      expect(notReady.status).toBe(503);
      expect(notReady.body).toMatchObject({
        error: 'SERVICE_UNAVAILABLE',
        checks: { database: false, code_store: true, session_store: true, queue: true },
      });
      await browser.get(base, '/csrf_token/');

      /** Image code (test answer) and SMS code for a test number; neither touches the database. */
      const smsFor = async (b: Browser, index: number) => {
        const uuid = `o-${randomBytes(6).toString('hex')}`;
        expect((await b.get(base, `/image_codes/${uuid}/`)).status).toBe(200);
        const sent = await b.get(
          base,
          `/sms_codes/${mobiles[index]}/?image_code=${TEST_CAPTCHA}&image_code_id=${uuid}`,
        );
        expect(sent.body).toMatchObject({ code: 0 });
        return String(123450 + index);
      };
      const registration = (index: number, code: string) => ({
        username: randomUsername(),
        password: PASSWORD,
        password2: PASSWORD,
        mobile: mobiles[index],
        sms_code: code,
        allow: true,
      });

      const first = registration(0, await smsFor(browser, 0));
      expectUnavailable(await browser.post(base, '/register/', first), QUICK_MS);
      expectUnavailable(
        await browser.post(base, '/login/', {
          username: first.username,
          password: PASSWORD,
          remembered: false,
        }),
        QUICK_MS,
      );

      // 2. The database appears: ready without a restart; the refused registration's code still works.
      await relay.up();
      const appearedAt = Date.now();
      await waitFor('/readyz 200 once the database is there', async () => (await readiness()).status === 200);
      const readyAfterAppearMs = Date.now() - appearedAt;
      expect((await readiness()).body).toMatchObject({
        checks: { database: true, code_store: true, session_store: true, queue: true },
      });
      expect((await browser.post(base, '/register/', first)).body).toMatchObject({ code: 0 });
      const login = async () => {
        const b = new Browser();
        await b.get(base, '/csrf_token/');
        return b.post(base, '/login/', { username: first.username, password: PASSWORD, remembered: false });
      };
      expect((await login()).body).toMatchObject({ code: 0, message: '登录成功' });

      // 3. The database stops (connections reset, new ones refused).
      await relay.down();
      await waitFor('/readyz 503 with the database down', async () => (await readiness()).status === 503);
      expect((await readiness()).body).toMatchObject({
        checks: { database: false, code_store: true, session_store: true, queue: true },
      });
      const other = new Browser();
      await other.get(base, '/csrf_token/');
      const second = registration(1, await smsFor(other, 1));
      const refusedRegister = await other.post(base, '/register/', second);
      expectUnavailable(refusedRegister, QUICK_MS);
      const refusedLogin = await login();
      expectUnavailable(refusedLogin, QUICK_MS);
      expect((await browser.get(base, '/healthz')).status).toBe(200);

      // 4. Back: ready again, and the same requests succeed.
      await relay.up();
      const backAt = Date.now();
      await waitFor('/readyz 200 with the database back', async () => (await readiness()).status === 200);
      const readyAfterBackMs = Date.now() - backAt;
      expect((await login()).body).toMatchObject({ code: 0 });
      expect((await other.post(base, '/register/', second)).body).toMatchObject({ code: 0 });

      // 5. The host stops answering (no reset, no refusal: only timeouts tell).
      await relay.hang();
      const hungReadiness = await readiness();
      expect(hungReadiness.status).toBe(503);
      expect(hungReadiness.body).toMatchObject({ checks: { database: false, code_store: true } });
      expect(hungReadiness.ms).toBeLessThan(HUNG_MS);
      const third = new Browser();
      await third.get(base, '/csrf_token/');
      const thirdBody = registration(2, await smsFor(third, 2));
      const hungRegister = await third.post(base, '/register/', thirdBody);
      expectUnavailable(hungRegister, HUNG_MS);
      const hungLogin = await login();
      expectUnavailable(hungLogin, HUNG_MS);

      await relay.up();
      await waitFor('/readyz 200 after the hang', async () => (await readiness()).status === 200);
      expect((await third.post(base, '/register/', thirdBody)).body).toMatchObject({ code: 0 });
      expect((await login()).body).toMatchObject({ code: 0 });
      expect(web.alive()).toBe(true);

      console.info(
        `${kind} outage: refused → register ${refusedRegister.ms} ms, login ${refusedLogin.ms} ms; ` +
          `hung → readyz ${hungReadiness.ms} ms, register ${hungRegister.ms} ms, login ${hungLogin.ms} ms; ` +
          `ready ${readyAfterAppearMs} ms after the database appeared, ${readyAfterBackMs} ms after it came back; ` +
          `test ${Date.now() - started} ms`,
      );

      web.kill('SIGTERM');
      expect(await web.exited).toBe(0);
    },
    90_000,
  );
});
