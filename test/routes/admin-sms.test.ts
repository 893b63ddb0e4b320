/**
 * The SMS-abuse admin endpoints as an operator uses them: block a number block and an IP range
 * at run time and see sends refused at once, lift it, and read the decision records by mobile,
 * block, IP prefix and time. Behind the admin token, each call in the audit log. On the
 * embedded default and on Redis + BullMQ with each server database.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { imageCodeKey } from '../../src/domain/verification.js';
import {
  backendMatrix,
  buildTestApp,
  type Client,
  NO_SEND_LIMITS,
  randomIp,
  type TestApp,
} from '../helper.js';

const matrix = await backendMatrix();
const TOKEN = 'o'.repeat(40);
const bearer = { authorization: `Bearer ${TOKEN}` };
const randomBlock = () => `1${randomInt(3, 10)}${String(randomInt(0, 100_000)).padStart(5, '0')}`;
const inBlock = (block: string) => `${block}${String(randomInt(0, 10_000)).padStart(4, '0')}`;

async function askSms(t: TestApp, client: Client, mobile: string) {
  const uuid = `t-${randomBytes(8).toString('hex')}`;
  await t.deps.codeStore.set(imageCodeKey(uuid), 'ABCD', 300);
  return client.get(`/sms_codes/${mobile}/?image_code=abcd&image_code_id=${uuid}`);
}

describe.each(matrix)('SMS abuse admin API on $name', ({ store: backend, database }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp(
      {
        ...NO_SEND_LIMITS,
        ADMIN_TOKEN: TOKEN,
        SMS_DECISION_MOBILE: 'full',
        SMS_DECISION_FLUSH_MS: '10',
        SMS_RATIO_MODE: 'refuse',
        SMS_RATIO_FLOOR_PER_BLOCK: '2',
        SMS_RATIO_FLOOR_PER_IP: '0',
        SMS_RATIO_FLOOR_GLOBAL: '0',
      },
      { backend, database },
    );
  });
  afterAll(() => t.close());
  const operator = () => t.client({ ip: randomIp() });

  it('refuses without the token', async () => {
    for (const path of ['/admin/sms-lists/', '/admin/sms-decisions/']) {
      expect((await operator().get(path)).json()).toMatchObject({ code: 401, error: 'ADMIN_UNAUTHORIZED' });
    }
    expect((await operator().delete('/admin/sms-lists/1/')).statusCode).toBe(401);
  });

  it('blocks a number block and an IPv4 range at run time, lists them, lifts them', async () => {
    const block = randomBlock();
    const put = await operator().request('PUT', '/admin/sms-lists/', {
      headers: bearer,
      body: { list: 'block', kind: 'prefix', value: block, note: 'pumping 12-04', ttl_seconds: 3600 },
    });
    expect(put.statusCode).toBe(200);
    const entry = put.json().entry;
    expect(entry).toMatchObject({ list: 'block', kind: 'prefix', value: block, note: 'pumping 12-04' });
    expect(entry.expires_at_ms - entry.created_at_ms).toBe(3_600_000);
    const range = await operator().request('PUT', '/admin/sms-lists/', {
      headers: bearer,
      body: { list: 'block', kind: 'ip', value: '198.51.100.77/24' },
    });
    expect(range.json().entry).toMatchObject({ value: '198.51.100.0/24', expires_at_ms: null });

    expect((await askSms(t, t.client(), inBlock(block))).json()).toMatchObject({ error: 'SMS_BLOCKED' });
    expect((await askSms(t, t.client({ ip: '198.51.100.3' }), inBlock(randomBlock()))).json()).toMatchObject({
      error: 'SMS_BLOCKED',
    });
    const listed = (await operator().get('/admin/sms-lists/', { headers: bearer })).json().entries;
    expect(listed.map((e: { value: string }) => e.value)).toEqual(
      expect.arrayContaining([block, '198.51.100.0/24']),
    );

    for (const id of [entry.id, range.json().entry.id]) {
      const removed = await operator().delete(`/admin/sms-lists/${id}/`, { headers: bearer });
      expect(removed.json()).toMatchObject({ code: 0, id, removed: true });
    }
    expect((await askSms(t, t.client(), inBlock(block))).statusCode).toBe(200);
    expect(
      (await operator().delete(`/admin/sms-lists/${entry.id}/`, { headers: bearer })).json().removed,
    ).toBe(false);
    // Each change is in the audit log under its action.
    const actions = (await t.deps.audit.query({ limit: 50 })).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['sms.lists.put', 'sms.lists.read', 'sms.lists.delete']));
  });

  it('refuses an entry that is not of its kind with 400 and changes nothing', async () => {
    const before = (await operator().get('/admin/sms-lists/', { headers: bearer })).json().entries.length;
    for (const body of [
      { list: 'block', kind: 'ip', value: '300.1.1.1/24' },
      { list: 'block', kind: 'mobile', value: '1380013' },
      { list: 'deny', kind: 'mobile', value: '13800138000' },
      { list: 'block', kind: 'prefix', value: '2380013' },
    ]) {
      const res = await operator().request('PUT', '/admin/sms-lists/', { headers: bearer, body });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'BAD_REQUEST' });
    }
    expect((await operator().get('/admin/sms-lists/', { headers: bearer })).json().entries.length).toBe(
      before,
    );
  });

  it('finds decision records by mobile, block, IP prefix, decision and time', async () => {
    const block = randomBlock();
    const mobile = inBlock(block);
    const from = t.clock.nowMs();
    const net = `10.${randomInt(0, 256)}.${randomInt(0, 256)}`;
    const client = t.client({ ip: `${net}.9` });
    const sms = t.nextSms(mobile);
    expect((await askSms(t, client, mobile)).statusCode).toBe(200);
    await sms;
    const get = async (query: string) =>
      (await operator().get(`/admin/sms-decisions/?${query}`, { headers: bearer })).json().records;
    await vi.waitFor(
      async () => {
        const [record] = await get(`mobile=${mobile}`);
        expect(record).toMatchObject({
          mobile,
          block,
          ip_prefix: `${net}.0/24`,
          purpose: 'register',
          decision: 'sent',
          rule: null,
          vendor: 'recording',
          outcome: 'ok',
          job_id: expect.any(String),
        });
      },
      { timeout: 30_000, interval: 20 },
    );
    expect((await get(`block=${block}`)).map((r: { mobile: string }) => r.mobile)).toEqual([mobile]);
    expect(
      (await get(`ip=${net}.200&from_ms=${from}`)).some((r: { mobile: string }) => r.mobile === mobile),
    ).toBe(true);
    expect(await get(`mobile=${mobile}&decision=refused`)).toEqual([]);
    expect(await get(`mobile=${mobile}&to_ms=${from}`)).toEqual([]);
    const bad = await operator().get('/admin/sms-decisions/?mobile=123&limit=5000', { headers: bearer });
    expect(bad.statusCode).toBe(400);
  });

  it('marks numbers verified (say, earlier users) so that the ratio rule serves them in a refused block', async () => {
    const block = randomBlock();
    const used = new Set<string>();
    const fresh = () => {
      let m = inBlock(block);
      while (used.has(m)) m = inBlock(block);
      used.add(m);
      return m;
    };
    for (let i = 0; i < 2; i++) expect((await askSms(t, t.client(), fresh())).statusCode).toBe(200);
    const [refused, earlierUser] = [fresh(), fresh()];
    expect((await askSms(t, t.client(), refused)).json()).toMatchObject({ error: 'SMS_BLOCKED' });
    const marked = await operator().request('PUT', '/admin/sms-verified/', {
      headers: bearer,
      body: { mobiles: [earlierUser, earlierUser] },
    });
    expect(marked.json()).toMatchObject({ code: 0, marked: 1, ttl_seconds: 365 * 86_400 });
    expect((await askSms(t, t.client(), earlierUser)).statusCode).toBe(200);
    const bad = await operator().request('PUT', '/admin/sms-verified/', {
      headers: bearer,
      body: { mobiles: ['12345'] },
    });
    expect(bad.json()).toMatchObject({ code: 400, error: 'BAD_REQUEST' });
  });
});
