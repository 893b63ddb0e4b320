/**
 * Redis goes away under a running service (codes, sessions and BullMQ all behind one TCP
 * relay the test controls): /readyz says 503, requests get a quick JSON 503 (no hang, no
 * crash, nothing half done), and the service heals by itself when Redis is back.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendFlagKey, smsCodeKey } from '../src/domain/verification.js';
import { BACKEND_URLS, has } from './backends.js';
import { createRelay, type Relay } from './fixtures/multi/relay.js';
import { buildTestApp, imageCode, randomIp, randomMobile, smsCode, type TestApp } from './helper.js';

const redisUp = await has('redis');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!redisUp)('Redis outage', () => {
  let relay: Relay;
  let t: TestApp;
  beforeAll(async () => {
    const target = new URL(BACKEND_URLS.redis);
    relay = createRelay(await freePort(), { host: target.hostname, port: Number(target.port || 6379) });
    await relay.up();
    t = await buildTestApp({ REDIS_URL: `redis://127.0.0.1:${relay.port}/5` }, { backend: 'redis' });
  });
  afterAll(async () => {
    await relay.up();
    await t?.close();
    await relay.close();
  });

  const ready = async () => (await t.client().get('/readyz')).statusCode;

  it('answers 503 while Redis is gone and heals by itself', async () => {
    // An address of its own: Redis keeps the per-address SMS counters of earlier runs.
    const c = t.client({ ip: randomIp() });
    await c.fetchCsrf();
    expect(await ready()).toBe(200);
    const before = randomMobile();
    await smsCode(t, c, before);
    const pending = await imageCode(t, c);

    // a browser that holds a session id: looking it up needs the session store
    c.cookies.set('sessionid', 'k'.repeat(32));
    await relay.down();
    const readyz = await c.get('/readyz');
    expect(readyz.statusCode).toBe(503);
    expect(readyz.json()).toMatchObject({
      code: 503,
      error: 'SERVICE_UNAVAILABLE',
      checks: { database: true, code_store: false, session_store: false, queue: false },
    });
    const mobile = randomMobile();
    const started = Date.now();
    const answers = await Promise.all([
      c.get(`/sms_codes/${mobile}/?image_code=${pending.answer}&image_code_id=${pending.uuid}`),
      c.get('/image_codes/during-outage/'),
      c.get('/info/'),
      c.post('/login/', { username: 'someone1', password: 'whatever1' }),
    ]);
    for (const res of answers) {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toMatchObject({ error: 'SERVICE_UNAVAILABLE', message: '服务繁忙，请稍后再试' });
    }
    // fail fast: well within the client's patience, not a hang until some far timeout
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await c.get('/csrf_token/')).statusCode).toBe(200);

    await relay.up();
    await until('/readyz 200', async () => ((await ready()) === 200 ? true : undefined));
    // nothing half done: the refused request left no flag and no code
    expect(await t.deps.codeStore.get(sendFlagKey(mobile))).toBeNull();
    expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();
    // and the flow works again, through the reconnected queue
    expect(await smsCode(t, c, mobile)).toMatch(/^\d{6}$/);
  });

  it('logs a stack once per dependency per outage, one line per failed request, and the recovery', async () => {
    const parsed = (from = 0) =>
      t.logs.slice(from).map((line) => JSON.parse(line) as Record<string, unknown>);
    const count = (lines: Array<Record<string, unknown>>, msg: string) =>
      lines.filter((l) => String(l.msg).startsWith(msg)).length;
    // earlier outages of this file are over (each 'failed' has its 'recovered')
    await until('earlier outages closed', async () => {
      const all = parsed();
      return count(all, 'dependency failed') === count(all, 'dependency recovered') ? true : undefined;
    });
    const c = t.client();
    c.cookies.set('sessionid', 'k'.repeat(32));
    const from = t.logs.length;
    await relay.down();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => [c.get(`/image_codes/flood-${i}/`), c.get('/info/')]).flat(),
    );
    for (const res of answers) expect(res.statusCode).toBe(503);
    const during = parsed(from);
    const withStack = during.filter((l) => JSON.stringify(l).includes('"stack"'));
    expect(withStack.map((l) => l.dependency).sort()).toEqual(['code-store', 'session-store']);
    // every failed request has its line: the first of each dependency with the stack, the rest without
    expect(count(during, 'dependency failed')).toBe(2);
    expect(count(during, 'dependency still unavailable')).toBe(38);

    await relay.up();
    const recovered = await until('the recovery lines', async () => {
      const lines = parsed(from).filter((l) => l.msg === 'dependency recovered');
      return lines.length === 2 ? lines : undefined;
    });
    expect(recovered.map((l) => [l.dependency, l.failedRequests]).sort()).toEqual([
      ['code-store', 20],
      ['session-store', 20],
    ]);
  });

  it('under steady load through a pause: every 200 sent once, every 503 sent nothing, healed by itself', async () => {
    // one browser per request, each from its own address, so that no per-IP limit interferes
    const requests = [];
    for (let i = 0; i < 30; i++) {
      const client = t.client({ ip: randomIp() });
      requests.push({ client, mobile: randomMobile(), captcha: await imageCode(t, client) });
    }
    const answers: Array<{ mobile: string; status: number }> = [];
    for (const [i, { client, mobile, captcha }] of requests.entries()) {
      if (i === 10) await relay.down();
      if (i === 18) await relay.up();
      const res = await client.get(
        `/sms_codes/${mobile}/?image_code=${captcha.answer}&image_code_id=${captcha.uuid}`,
      );
      expect([200, 503]).toContain(res.statusCode);
      answers.push({ mobile, status: res.statusCode });
    }
    const accepted = answers.filter((a) => a.status === 200).map((a) => a.mobile);
    const refused = answers.filter((a) => a.status === 503).map((a) => a.mobile);
    expect(refused.length).toBeGreaterThanOrEqual(8);
    // healed by itself: the requests at the end of the run were served
    expect(answers.at(-1)?.status).toBe(200);
    await until('every accepted code sent', async () =>
      accepted.every((m) => t.sent.some((s) => s.mobile === m)) ? true : undefined,
    );
    for (const mobile of accepted) expect(t.sent.filter((s) => s.mobile === mobile)).toHaveLength(1);
    for (const mobile of refused) {
      expect(t.sent.some((s) => s.mobile === mobile)).toBe(false);
      expect(await t.deps.codeStore.get(sendFlagKey(mobile))).toBeNull();
      expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();
    }
  }, 60_000);

  it('answers 503 when Redis stops answering without closing connections', async () => {
    const c = t.client();
    await relay.hang();
    const started = Date.now();
    const res = await c.get('/image_codes/hung/');
    expect(res.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await c.get('/readyz')).statusCode).toBe(503);
    await relay.up();
    await until('/readyz 200', async () => ((await ready()) === 200 ? true : undefined));
    expect((await c.get('/image_codes/after-hang/')).statusCode).toBe(200);
  });
});
