/**
 * Attack runs against GET /sms_codes/ with the abuse defence on: SMS pumping across rotating
 * numbers and networks, and SMS bombing of one number from many addresses, each beside
 * legitimate users who verify their codes by registering. What is asserted is what people
 * notice: which numbers received an SMS, which requests were answered SMS_BLOCKED, and that
 * the legitimate users were all served. On the embedded default and on Redis + BullMQ.
 *
 * Each run picks random number blocks and networks, so that runs sharing one Redis never meet.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { imageCodeKey, sendFlagKey } from '../../src/domain/verification.js';
import {
  type Backends,
  backendMatrix,
  buildTestApp,
  type Client,
  NO_SEND_LIMITS,
  registration,
  type TestApp,
} from '../helper.js';

const matrix = await backendMatrix();

/** A random 7-digit number block of a mainland mobile. */
const randomBlock = () => `1${randomInt(3, 10)}${String(randomInt(0, 100_000)).padStart(5, '0')}`;
const inBlock = (block: string) => `${block}${String(randomInt(0, 10_000)).padStart(4, '0')}`;
/** Numbers never handed out twice in a run (a repeat would meet its own resend block). */
function distinctNumbers() {
  const used = new Set<string>();
  return (block: string) => {
    let mobile = inBlock(block);
    while (used.has(mobile)) mobile = inBlock(block);
    used.add(mobile);
    return mobile;
  };
}
/** A random /24 of 10.0.0.0/8, and an address in it. */
const randomNet = () => `10.${randomInt(0, 256)}.${randomInt(0, 256)}`;
const inNet = (net: string) => `${net}.${randomInt(1, 255)}`;

/** One SMS request with a solved captcha (its answer stored as image_codes would). */
async function askSms(t: TestApp, client: Client, mobile: string) {
  const uuid = `t-${randomBytes(8).toString('hex')}`;
  await t.deps.codeStore.set(imageCodeKey(uuid), 'ABCD', 300);
  return client.get(`/sms_codes/${mobile}/?image_code=abcd&image_code_id=${uuid}`);
}

/** A person who asks for a code, receives it and registers with it. */
async function legitimateSignUp(t: TestApp, mobile: string, ip: string) {
  const client = t.client({ ip });
  await client.fetchCsrf();
  const sms = t.nextSms(mobile);
  const asked = await askSms(t, client, mobile);
  if (asked.statusCode !== 200) return { asked: asked.json(), registered: false };
  const { code } = await sms;
  const registered = await client.post('/register/', registration(mobile, code));
  return { asked: asked.json(), registered: registered.statusCode === 200 };
}

const sentTo = (t: TestApp, mobiles: Set<string>) => t.sent.filter((m) => mobiles.has(m.mobile)).length;

/** Waits until the worker has sent as many SMS as the service decided to send. */
async function drained(t: TestApp) {
  await vi.waitFor(
    async () => {
      const sent = (await t.deps.decisions.query({ decision: 'sent', limit: 1000 })).length;
      expect(t.sent.length).toBe(sent);
    },
    // A generous bound: under a full parallel run the worker may lag the requests by seconds.
    { timeout: 30_000, interval: 20 },
  );
}

const ABUSE_ON = {
  ...NO_SEND_LIMITS,
  SMS_RATIO_MODE: 'refuse',
  SMS_RATIO_FLOOR_PER_BLOCK: '5',
  SMS_RATIO_FLOOR_PER_IP: '8',
  // The service-wide scope sees every other test sharing the Redis: checked in its own test.
  SMS_RATIO_FLOOR_GLOBAL: '0',
  SMS_DECISION_FLUSH_MS: '10',
  PASSWORD_HASHER: 'pbkdf2_sha256',
  PBKDF2_ITERATIONS: '1000',
};

describe.each(matrix)('SMS abuse defence on $name', (backends: Backends) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const app = async (env: Record<string, string> = {}) => {
    t = await buildTestApp({ ...ABUSE_ON, ...env }, { backend: backends.store, database: backends.database });
    return t;
  };

  it('pumping: 240 never-verified numbers over 6 blocks and 12 networks get 30 SMS; 12 people who verify are all served', async () => {
    const t = await app();
    const blocks = Array.from({ length: 6 }, randomBlock);
    const nets = Array.from({ length: 12 }, randomNet);
    const pumped = new Set<string>();
    const next = distinctNumbers();
    const answers = { sent: 0, blocked: 0, other: [] as unknown[] };
    const people: Array<Promise<{ registered: boolean }>> = [];
    for (let i = 0; i < 240; i++) {
      const mobile = next(blocks[i % blocks.length] as string);
      pumped.add(mobile);
      const res = await askSms(t, t.client({ ip: inNet(nets[i % nets.length] as string) }), mobile);
      const body = res.json();
      if (res.statusCode === 200) answers.sent++;
      else if (body.error === 'SMS_BLOCKED') answers.blocked++;
      else answers.other.push(body);
      // Every 20 attack requests, one person signs up from a home network in another block.
      if (i % 20 === 10) people.push(legitimateSignUp(t, inBlock(randomBlock()), inNet(randomNet())));
    }
    const served = await Promise.all(people);
    await drained(t);

    // Every IP prefix carries 20 requests, above its floor of 8, and every block 40, above 5:
    // whichever fires first, the attacker's numbers stop at a few per block.
    expect(answers.other).toEqual([]);
    expect(answers.sent).toBeLessThanOrEqual(6 * 5);
    expect(answers.sent + answers.blocked).toBe(240);
    expect(sentTo(t, pumped)).toBe(answers.sent);
    // The message names whoever was not served, and why.
    expect(
      served.filter((p) => p.registered),
      JSON.stringify(served.filter((p) => !p.registered)),
    ).toHaveLength(12);
    // The refusal names no rule: the same body whichever fired.
    const refused = await askSms(t, t.client({ ip: inNet(nets[0] as string) }), next(blocks[0] as string));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeUndefined();
    expect(refused.json()).toEqual({
      code: 429,
      error: 'SMS_BLOCKED',
      message: '短信发送受限，请稍后再试',
      errmsg: '短信发送受限，请稍后再试',
    });
  });

  it('bombing: one number asked for 30 times from 30 networks receives 5 SMS; a neighbour in its block who verified earlier still gets hers', async () => {
    const t = await app({ SMS_PER_MOBILE_PER_DAY: '10' });
    const block = randomBlock();
    const victim = inBlock(block);
    let neighbour = inBlock(block);
    while (neighbour === victim) neighbour = inBlock(block);
    // The neighbour signed up last week: her number is verified.
    expect((await legitimateSignUp(t, neighbour, inNet(randomNet()))).registered).toBe(true);
    await t.deps.codeStore.delete(sendFlagKey(neighbour));

    const statuses: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await askSms(t, t.client({ ip: inNet(randomNet()) }), victim);
      statuses.push(res.statusCode === 200 ? 'sent' : res.json().error);
      // The resend interval has passed before the next attempt.
      await t.deps.codeStore.delete(sendFlagKey(victim));
    }
    // Her own block is over its floor by now, yet she is served.
    const again = t.nextSms(neighbour);
    expect((await askSms(t, t.client({ ip: inNet(randomNet()) }), neighbour)).statusCode).toBe(200);
    await again;
    await drained(t);

    // Block floor 5: the neighbour's code was verified, so the victim's 5 sends make 5 unverified.
    expect(statuses.filter((s) => s === 'sent')).toHaveLength(5);
    // Refusals count against the number's daily quota too (SMS_PER_MOBILE_PER_DAY=10).
    expect(statuses.slice(5)).toEqual([
      ...Array(5).fill('SMS_BLOCKED'),
      ...Array(20).fill('SMS_DAILY_LIMIT'),
    ]);
    expect(sentTo(t, new Set([victim]))).toBe(5);
    expect(sentTo(t, new Set([neighbour]))).toBe(2);
  });

  it('silent mode: the attacker is told every send went out, but only the floor is sent', async () => {
    const t = await app({ SMS_RATIO_MODE: 'silent', SMS_RATIO_FLOOR_PER_IP: '0' });
    const block = randomBlock();
    const pumped = new Set<string>();
    const next = distinctNumbers();
    for (let i = 0; i < 20; i++) {
      const mobile = next(block);
      pumped.add(mobile);
      const res = await askSms(t, t.client({ ip: inNet(randomNet()) }), mobile);
      expect(res.json()).toMatchObject({ code: 0, message: '发送短信成功', resend_after: 60 });
    }
    await drained(t);
    expect(sentTo(t, pumped)).toBe(5);
    const refused = await t.deps.decisions.query({ block, decision: 'refused', limit: 100 });
    expect(refused.length).toBe(20 - 5);
    expect(new Set(refused.map((r) => `${r.rule} ${r.detail}`))).toEqual(new Set(['ratio:block silent']));
  });

  it('record-only: every send goes out, and the records and log say which would have been refused', async () => {
    const t = await app({ SMS_RATIO_MODE: 'record-only', SMS_RATIO_FLOOR_PER_IP: '0' });
    const block = randomBlock();
    const pumped = new Set<string>();
    const next = distinctNumbers();
    for (let i = 0; i < 8; i++) {
      const mobile = next(block);
      pumped.add(mobile);
      expect((await askSms(t, t.client({ ip: inNet(randomNet()) }), mobile)).statusCode).toBe(200);
    }
    await drained(t);
    expect(sentTo(t, pumped)).toBe(8);
    const records = await t.deps.decisions.query({ block, limit: 100 });
    expect(records.map((r) => r.detail).filter(Boolean)).toEqual(Array(3).fill('record-only:ratio:block'));
    const logged = t.logs.filter((l) => l.includes('record-only:ratio:block'));
    expect(logged).toHaveLength(3);
    // The decision lines show the number block only, as the records do.
    for (const mobile of pumped) expect(logged.some((l) => l.includes(mobile))).toBe(false);
    expect(logged.every((l) => l.includes(`${block}****`))).toBe(true);
  });
});

describe.each(matrix)('SMS block/allow lists and decision records on $name', (backends: Backends) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const app = async (env: Record<string, string> = {}) => {
    t = await buildTestApp({ ...ABUSE_ON, ...env }, { backend: backends.store, database: backends.database });
    return t;
  };

  it('refuses a blocked number prefix and IPv6 range; an allowed network is outside the ratio rule', async () => {
    const t = await app({ SMS_RATIO_FLOOR_PER_IP: '2' });
    const block = randomBlock();
    const next = distinctNumbers();
    await t.deps.smsLists.put({ list: 'block', kind: 'prefix', value: block, note: 'pumped last night' });
    await t.deps.smsLists.put({ list: 'block', kind: 'ip', value: '2001:db8:bad::/48' });
    await t.deps.smsLists.put({ list: 'allow', kind: 'ip', value: '192.0.2.0/24', note: 'office NAT' });

    const fromBlock = await askSms(t, t.client({ ip: inNet(randomNet()) }), next(block));
    expect(fromBlock.json()).toMatchObject({ code: 429, error: 'SMS_BLOCKED' });
    const fromRange = await askSms(t, t.client({ ip: '2001:db8:bad:1::7' }), next(randomBlock()));
    expect(fromRange.json()).toMatchObject({ code: 429, error: 'SMS_BLOCKED' });
    // The office sends ten codes nobody verifies (its IP floor is 2): all go out.
    const office = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const mobile = next(randomBlock());
      office.add(mobile);
      expect((await askSms(t, t.client({ ip: `192.0.2.${i + 1}` }), mobile)).statusCode).toBe(200);
    }
    await drained(t);
    expect(sentTo(t, office)).toBe(10);
    const refused = await t.deps.decisions.query({ decision: 'refused', limit: 10 });
    expect(refused.map((r) => r.rule).sort()).toEqual(['block-list:ip', 'block-list:prefix']);
    expect(refused.find((r) => r.rule === 'block-list:ip')?.ipPrefix).toBe('2001:db8:bad::/48');
  });

  it('records each request past the captcha with the outcome the worker reports', async () => {
    const t = await app({
      SMS_DECISION_MOBILE: 'hashed',
      SMS_DECISION_HASH_KEY: 'k'.repeat(32),
      SMS_PER_MOBILE_PER_DAY: '1',
    });
    const mobile = inBlock(randomBlock());
    const net = randomNet();
    const client = t.client({ ip: `${net}.77` });
    const sms = t.nextSms(mobile);
    expect((await askSms(t, client, mobile)).statusCode).toBe(200);
    await sms;
    // A resend refused before the captcha is spent is not recorded; one refused after it is.
    expect((await askSms(t, client, mobile)).json().error).toBe('SMS_TOO_FREQUENT');
    await t.deps.codeStore.delete(sendFlagKey(mobile));
    t.clock.advance(1000);
    expect((await askSms(t, client, mobile)).json().error).toBe('SMS_DAILY_LIMIT');
    await vi.waitFor(
      async () => {
        const records = await t.deps.decisions.query({ mobile, limit: 10 });
        expect(records).toHaveLength(2);
        expect(records[1]).toMatchObject({
          decision: 'sent',
          vendor: 'recording',
          outcome: 'ok',
          jobId: expect.any(String),
        });
        expect(records[0]).toMatchObject({
          decision: 'refused',
          rule: 'quota:SMS_DAILY_LIMIT',
          outcome: null,
        });
      },
      { timeout: 30_000, interval: 20 },
    );
    const [record] = await t.deps.decisions.query({ ip: `${net}.0/24`, limit: 1 });
    expect(record).toMatchObject({
      mobile: `${mobile.slice(0, 7)}****`,
      block: mobile.slice(0, 7),
      ipPrefix: `${net}.0/24`,
      purpose: 'register',
    });
    // The record does not name the number; another number of its block is not its.
    expect(JSON.stringify(record)).not.toContain(mobile);
    expect(await t.deps.decisions.query({ mobile: `${mobile.slice(0, 7)}0000`, limit: 5 })).toEqual(
      mobile.endsWith('0000') ? expect.any(Array) : [],
    );
  });
});

describe.each(matrix)('user-centre SMS codes under the same defence on $name', (backends: Backends) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('password reset codes: block-listed numbers refused and recorded under their purpose; a verified number is served in a refused block', async () => {
    t = await buildTestApp(
      { ...ABUSE_ON, SMS_RATIO_FLOOR_PER_BLOCK: '1', SMS_RATIO_FLOOR_PER_IP: '0' },
      { backend: backends.store, database: backends.database },
    );
    const app = t;
    const block = randomBlock();
    const next = distinctNumbers();
    // Two people of one block register (verified), then the block is pumped over its floor.
    const [alice, bob] = [next(block), next(block)];
    const accounts: Record<string, string> = {};
    for (const mobile of [alice, bob]) {
      const client = app.client({ ip: inNet(randomNet()) });
      await client.fetchCsrf();
      const sms = app.nextSms(mobile);
      expect((await askSms(app, client, mobile)).statusCode).toBe(200);
      const body = registration(mobile, (await sms).code);
      expect((await client.post('/register/', body)).statusCode).toBe(200);
      accounts[mobile] = body.username;
    }
    // Threshold max(1, 2 × 2 verified) = 4 unverified sends; the fifth is refused.
    const pumped: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await askSms(app, app.client({ ip: inNet(randomNet()) }), next(block));
      pumped.push(res.statusCode === 200 ? 'sent' : res.json().error);
    }
    expect(pumped).toEqual(['sent', 'sent', 'sent', 'sent', 'SMS_BLOCKED']);
    const resetCode = async (mobile: string) => {
      const c = app.client({ ip: inNet(randomNet()) });
      await c.fetchCsrf();
      const uuid = `t-${randomBytes(8).toString('hex')}`;
      await app.deps.codeStore.set(imageCodeKey(uuid), 'ABCD', 300);
      return c.post('/password_reset/sms_codes/', {
        account: accounts[mobile],
        image_code: 'abcd',
        image_code_id: uuid,
      });
    };
    // Alice verified at registration: the ratio rule serves her although her block is over.
    const sms = app.nextSms(alice);
    expect((await resetCode(alice)).statusCode).toBe(200);
    await sms;
    // Bob's number is put on the block list: refused, and the record says why and for what.
    await app.deps.smsLists.put({ list: 'block', kind: 'mobile', value: bob });
    expect((await resetCode(bob)).json()).toMatchObject({ code: 429, error: 'SMS_BLOCKED' });
    const refused = await app.deps.decisions.query({ block, decision: 'refused', limit: 10 });
    expect(refused.map((r) => `${r.purpose} ${r.rule}`).sort()).toEqual([
      'password_reset block-list:mobile',
      'register ratio:block',
    ]);
  });
});

describe('SMS lists across instances (embedded default: two processes on one SQLite file)', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });

  it('a change on one instance applies there at once and on the other after its refresh interval', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-lists-'));
    try {
      const env = { ...ABUSE_ON, SMS_LISTS_REFRESH_MS: '5000' };
      const a = await buildTestApp(env, { dataDir });
      apps.push(a);
      const b = await buildTestApp(env, { dataDir });
      apps.push(b);
      const next = distinctNumbers();
      const block = randomBlock();
      await a.deps.smsLists.put({ list: 'block', kind: 'prefix', value: block });
      expect((await askSms(a, a.client(), next(block))).json().error).toBe('SMS_BLOCKED');
      // B still has its copy from start-up …
      expect((await askSms(b, b.client(), next(block))).statusCode).toBe(200);
      // … until it is older than SMS_LISTS_REFRESH_MS: the next request starts a reload.
      b.clock.advance(5000);
      await askSms(b, b.client(), next(block));
      await b.deps.smsLists.settled();
      expect((await askSms(b, b.client(), next(block))).json().error).toBe('SMS_BLOCKED');
    } finally {
      for (const a of apps.splice(0)) await a.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
