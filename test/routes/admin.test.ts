/**
 * The admin API as an operator meets it: off without a token, 401 for a wrong or missing one,
 * its own per-IP limit, every request written to the audit log (who, what, when, from where)
 * and the log queryable, failed SMS jobs retried and discarded, a user's sessions ended. On
 * the embedded default and on Redis + BullMQ with each server database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobOutcome } from '../../src/domain/ports.js';
import {
  backendMatrix,
  buildTestApp,
  type Client,
  randomIp,
  randomMobile,
  randomUsername,
  type TestApp,
} from '../helper.js';

const matrix = await backendMatrix();

const ALICE = `${'a'.repeat(20)}lice-token-0123456789`;
const CI = `${'c'.repeat(24)}i-token-0123456789`;
const SINGLE = 's'.repeat(40);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('admin API switched off', () => {
  it('answers 404 under /admin/ when no token is configured, whatever the header', async () => {
    const t = await buildTestApp();
    try {
      for (const path of ['/admin/queue/', '/admin/audit/', '/admin/queue/failed/']) {
        const res = await t.client().get(path, { headers: bearer(SINGLE) });
        expect(res.statusCode).toBe(404);
        expect(res.json()).toMatchObject({ error: 'NOT_FOUND' });
      }
    } finally {
      await t.close();
    }
  });
});

describe.each(matrix)('admin API on $name', ({ store: backend, database }) => {
  let t: TestApp;
  /** What the queue's worker answers; the tests switch it. */
  let answer: JobOutcome = { kind: 'invalid_number', provider: 'test', detail: '160' };
  beforeAll(async () => {
    t = await buildTestApp(
      {
        ADMIN_TOKEN: SINGLE,
        ADMIN_TOKENS: `alice:${ALICE},ci:${CI}`,
        ADMIN_REQUESTS_PER_IP_PER_MINUTE: '5',
      },
      { backend, database, startWorker: false },
    );
    t.deps.queue.startWorker(async () => answer, 2);
  });
  afterAll(() => t.close());

  /** An operator's client from its own address (the limit is per IP). */
  const operator = (): Client => t.client({ ip: randomIp() });

  it('refuses a missing, malformed or wrong token with 401 ADMIN_UNAUTHORIZED and writes no audit row', async () => {
    const before = (await t.deps.audit.query({ limit: 500 })).length;
    const headers: Array<Record<string, string>> = [
      {},
      { authorization: SINGLE },
      { authorization: `Basic ${Buffer.from(`x:${SINGLE}`).toString('base64')}` },
      bearer(`${SINGLE}x`),
      bearer(SINGLE.slice(1)),
      bearer(''),
    ];
    for (const h of headers) {
      const res = await operator().get('/admin/queue/', { headers: h });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="meiduo-users admin"');
      expect(res.json()).toMatchObject({ code: 401, error: 'ADMIN_UNAUTHORIZED' });
    }
    expect((await t.deps.audit.query({ limit: 500 })).length).toBe(before);
    // The token never reaches the log.
    expect(t.logs.join('\n')).not.toContain(SINGLE);
  });

  it('limits each client address on its own, wrong tokens included', async () => {
    const c = operator();
    for (let i = 0; i < 3; i++) expect((await c.get('/admin/queue/')).statusCode).toBe(401);
    for (let i = 0; i < 2; i++) {
      expect((await c.get('/admin/queue/', { headers: bearer(SINGLE) })).statusCode).toBe(200);
    }
    const refused = await c.get('/admin/queue/', { headers: bearer(SINGLE) });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'ADMIN_LIMIT' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await operator().get('/admin/queue/', { headers: bearer(SINGLE) })).statusCode).toBe(200);
  });

  it('lists, retries and discards failed SMS jobs', async () => {
    answer = { kind: 'invalid_number', provider: 'test', detail: '160' };
    const [first, second] = [randomMobile(), randomMobile()];
    await t.deps.queue.enqueue({ mobile: first, purpose: 'register' });
    await waitFor('one failed job', async () => (await t.deps.queue.counts()).failed === 1);
    await t.deps.queue.enqueue({ mobile: second, purpose: 'register' });
    await waitFor('two failed jobs', async () => (await t.deps.queue.counts()).failed === 2);

    const auth = { headers: bearer(ALICE) };
    const counts = await operator().get('/admin/queue/', auth);
    expect(counts.json()).toMatchObject({ code: 0, counts: { failed: 2, waiting: 0 } });
    const list = (await operator().get('/admin/queue/failed/?limit=10', auth)).json();
    expect(list.jobs.map((j: { mobile: string }) => j.mobile)).toEqual([
      `${second.slice(0, 3)}****${second.slice(-4)}`,
      `${first.slice(0, 3)}****${first.slice(-4)}`,
    ]);
    expect(list.jobs[0]).toMatchObject({ purpose: 'register', attempts: 1 });
    expect(list.jobs[0].reason).toContain('invalid_number: 160');
    const [newer, older] = list.jobs as Array<{ id: string }>;

    answer = { kind: 'ok', provider: 'test' };
    const retried = await operator().request('POST', `/admin/queue/failed/${older?.id}/retry/`, auth);
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ code: 0, id: older?.id, retried: true });
    await waitFor('the retried job to leave the failed set', async () => {
      const n = await t.deps.queue.counts();
      return n.failed === 1 && n.waiting + n.active === 0;
    });
    const again = await operator().request('POST', `/admin/queue/failed/${older?.id}/retry/`, auth);
    expect(again.statusCode).toBe(404);
    expect(again.json()).toMatchObject({ error: 'ADMIN_NOT_FOUND' });

    const discarded = await operator().delete(`/admin/queue/failed/${newer?.id}/`, auth);
    expect(discarded.json()).toMatchObject({ code: 0, discarded: true });
    expect((await operator().get('/admin/queue/failed/', auth)).json().jobs).toEqual([]);
    expect((await operator().delete(`/admin/queue/failed/${newer?.id}/`, auth)).statusCode).toBe(404);
  });

  it("ends a user's sessions by id or by username", async () => {
    const username = randomUsername();
    const password = 'Passw0rd!x';
    const created = await t.deps.users.create({
      username,
      passwordHash: await t.deps.hasher.hash(password),
      mobile: randomMobile(),
      dateJoined: new Date(),
    });
    if (!created.ok) throw new Error('user not created');
    const login = async () => {
      const browser = t.client({ ip: randomIp() });
      await browser.fetchCsrf();
      const res = await browser.post('/login/', { username, password, remembered: true });
      expect(res.statusCode).toBe(200);
      return browser;
    };
    const [laptop, phone] = [await login(), await login()];
    expect((await laptop.get('/info/')).statusCode).toBe(200);

    const byId = await operator().delete(`/admin/users/${created.user.id}/sessions/`, {
      headers: bearer(CI),
    });
    expect(byId.json()).toMatchObject({ code: 0, user_id: created.user.id, ended: 2 });
    expect((await laptop.get('/info/')).statusCode).toBe(401);
    expect((await phone.get('/info/')).statusCode).toBe(401);

    const tablet = await login();
    const byName = await operator().delete(`/admin/users/by-username/${username}/sessions/`, {
      headers: bearer(CI),
    });
    expect(byName.json()).toMatchObject({ user_id: created.user.id, ended: 1 });
    expect((await tablet.get('/info/')).statusCode).toBe(401);

    const unknown = await operator().delete('/admin/users/by-username/nobody_here_at_all/sessions/', {
      headers: bearer(CI),
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'ADMIN_NOT_FOUND' });
    const badId = await operator().delete('/admin/users/abc/sessions/', { headers: bearer(CI) });
    expect(badId.statusCode).toBe(400);
  });

  it('writes every admin request to the audit log before acting, queryable by actor, action and time', async () => {
    const start = t.clock.nowMs();
    const ip = randomIp();
    const c = t.client({ ip });
    t.clock.advance(60_000);
    const marked = t.clock.nowMs();
    await c.get('/admin/queue/failed/?limit=3', { headers: bearer(ALICE) });
    await c.delete('/admin/queue/failed/no-such-job/', { headers: bearer(CI) });
    t.clock.advance(60_000);
    await c.get('/admin/queue/', { headers: bearer(SINGLE) });

    const query = async (q: string, token = ALICE) => {
      const res = await t.client({ ip: randomIp() }).get(`/admin/audit/?${q}`, { headers: bearer(token) });
      expect(res.statusCode).toBe(200);
      return res.json().records as Array<Record<string, unknown>>;
    };
    const byCi = await query(`actor=ci&from_ms=${marked}`);
    expect(byCi).toEqual([
      expect.objectContaining({
        actor: 'ci',
        action: 'queue.failed.discard',
        target: 'DELETE /admin/queue/failed/no-such-job/',
        ip,
        at_ms: marked,
      }),
    ]);
    expect(JSON.parse(byCi[0]?.detail as string)).toEqual({ params: { id: 'no-such-job' } });

    const window = await query(`from_ms=${marked}&to_ms=${marked + 60_000}`);
    expect(window.map((r) => [r.actor, r.action])).toEqual([
      ['ci', 'queue.failed.discard'],
      ['alice', 'queue.failed.list'],
    ]);
    const single = await query(`action=queue.counts&from_ms=${marked + 60_000}`);
    expect(single).toHaveLength(1);
    expect(single[0]?.actor).toMatch(/^token-[0-9a-f]{12}$/);
    expect(JSON.stringify(single)).not.toContain(SINGLE);

    // Newest first, paged with next_before_id; the audit queries themselves are in the log.
    const page1 = await t.client({ ip: randomIp() }).get(`/admin/audit/?limit=2&from_ms=${start}`, {
      headers: bearer(ALICE),
    });
    const body1 = page1.json();
    expect(body1.records).toHaveLength(2);
    expect(body1.records[0].action).toBe('audit.query');
    const page2 = await t
      .client({ ip: randomIp() })
      .get(`/admin/audit/?limit=2&from_ms=${start}&before_id=${body1.next_before_id}`, {
        headers: bearer(ALICE),
      });
    const ids = [...body1.records, ...page2.json().records].map((r: { id: number }) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(4);

    const bad = await t.client({ ip: randomIp() }).get('/admin/audit/?limit=0', { headers: bearer(ALICE) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'BAD_REQUEST' });
  });

  it('needs no CSRF token: the bearer header is its only credential', async () => {
    expect(t.config.CSRF_ENABLED).toBe(true);
    const res = await operator().request('POST', '/admin/queue/failed/no-such-job/retry/', {
      headers: { ...bearer(ALICE), origin: 'https://evil.example' },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'ADMIN_NOT_FOUND' });
    // The public routes still check it.
    expect((await t.client().post('/login/', {})).json()).toMatchObject({ error: 'CSRF_FAILED' });
  });
});
