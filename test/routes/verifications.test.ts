import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { csrfSecretOf } from '../../src/domain/csrf.js';
import { imageCodeKey, sendFlagKey, smsCodeKey } from '../../src/domain/verification.js';
import { BACKEND_URLS, has } from '../backends.js';
import {
  backendMatrix,
  buildTestApp,
  imageCode,
  NO_SEND_LIMITS,
  randomMobile,
  smsCode,
  type TestApp,
} from '../helper.js';

const matrix = await backendMatrix();

describe.each(matrix)('verifications on $name', ({ store: backend, database }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp(NO_SEND_LIMITS, { backend, database });
  });
  afterAll(() => t.close());

  describe('GET /csrf_token/', () => {
    it('returns a masked 64-character token of the secret in a 32-character cookie', async () => {
      const c = t.client();
      const res = await c.get('/csrf_token/');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({ code: 0, message: 'OK', errmsg: 'OK' });
      expect(body.csrf_token).toMatch(/^[a-zA-Z0-9]{64}$/);
      const cookie = res.cookies.find((k) => k.name === 'csrftoken');
      expect(cookie?.value).toMatch(/^[a-zA-Z0-9]{32}$/);
      expect(cookie).toMatchObject({ path: '/', sameSite: 'Lax', maxAge: 31_449_600 });
      expect(cookie?.httpOnly).toBeFalsy();
      expect(csrfSecretOf(body.csrf_token)).toBe(cookie?.value);
    });

    it('keeps the secret of an existing cookie and masks it afresh each time', async () => {
      const c = t.client();
      const first = (await c.get('/csrf_token/')).json().csrf_token;
      const secret = c.cookies.get('csrftoken');
      const second = (await c.get('/csrf_token/')).json().csrf_token;
      expect(second).not.toBe(first);
      expect(c.cookies.get('csrftoken')).toBe(secret);
      expect(csrfSecretOf(second)).toBe(secret);
    });
  });

  describe('GET /image_codes/{uuid}/', () => {
    it('answers an image that is not cached and stores its 4-character text for 300 s', async () => {
      const c = t.client();
      const res = await c.get('/image_codes/5b3efb25-f1e3-482f-b8c9-507e72e315a3/');
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^image\/(png|jpeg)/);
      expect(res.headers['cache-control']).toBe('no-store');
      const png = String(res.headers['content-type']).startsWith('image/png');
      const magic = res.rawPayload.subarray(0, png ? 4 : 3).toString('hex');
      expect(magic).toBe(png ? '89504e47' : 'ffd8ff');
      const text = await t.deps.codeStore.get(imageCodeKey('5b3efb25-f1e3-482f-b8c9-507e72e315a3'));
      expect(text).toMatch(/^[ABCDEFGHJKLMNPQRSTUVWXYZ3456789]{4}$/);
      const ttl = await t.deps.codeStore.ttlSeconds(imageCodeKey('5b3efb25-f1e3-482f-b8c9-507e72e315a3'));
      expect(ttl).toBeGreaterThan(295);
      expect(ttl).toBeLessThanOrEqual(300);
    });

    it('is served without the trailing slash too', async () => {
      const res = await t.client().get('/image_codes/abc_DEF-123');
      expect(res.statusCode).toBe(200);
    });

    it('refuses a uuid outside [A-Za-z0-9_-]{1,64}', async () => {
      for (const uuid of ['a.b', 'x'.repeat(65), '%E4%BD%A0', 'a%20b']) {
        const res = await t.client().get(`/image_codes/${uuid}/`);
        expect(res.statusCode, uuid).toBe(400);
        expect(res.json()).toMatchObject({ code: 400, error: 'UUID_INVALID', message: '图形验证码标识有误' });
      }
    });

    it('replaces the text when the same uuid asks again', async () => {
      const c = t.client();
      const { uuid, answer } = await imageCode(t, c);
      let again = answer;
      // A new draw can repeat the old text (1 in 31^4); draw until it differs.
      for (let i = 0; i < 5 && again === answer; i++) {
        await c.get(`/image_codes/${uuid}/`);
        again = (await t.deps.codeStore.get(imageCodeKey(uuid))) ?? '';
      }
      expect(again).not.toBe(answer);
      const mobile = randomMobile();
      const res = await c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
      expect(res.json().error).toBe('IMAGE_CODE_WRONG');
    });
  });

  describe('GET /sms_codes/{mobile}/', () => {
    it('sends a 6-digit code through the queue and answers resend_after', async () => {
      const c = t.client();
      const mobile = randomMobile();
      const { uuid, answer } = await imageCode(t, c);
      const sent = t.nextSms(mobile);
      const res = await c.get(
        `/sms_codes/${mobile}/?image_code=${answer.toLowerCase()}&image_code_id=${uuid}`,
      );
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        code: 0,
        message: '发送短信成功',
        errmsg: '发送短信成功',
        resend_after: 60,
      });
      const message = await sent;
      expect(message.code).toMatch(/^\d{6}$/);
      expect(message.ttlMinutes).toBe(5);
      expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBe(message.code);
      expect(await t.deps.codeStore.get(sendFlagKey(mobile))).toBe('1');
      const flagTtl = await t.deps.codeStore.ttlSeconds(sendFlagKey(mobile));
      expect(flagTtl).toBeGreaterThan(55);
      expect(flagTtl).toBeLessThanOrEqual(60);
    });

    it('refuses a mobile outside 1[3-9] + 9 digits', async () => {
      for (const mobile of ['12345678901', '1315566778', '131556677889', 'abc']) {
        const res = await t.client().get(`/sms_codes/${mobile}/?image_code=AAAA&image_code_id=x`);
        expect(res.statusCode, mobile).toBe(400);
        expect(res.json().error).toBe('MOBILE_INVALID');
      }
    });

    it('asks for both parameters first', async () => {
      const mobile = randomMobile();
      for (const query of ['', '?image_code=ABCD', '?image_code_id=x', '?image_code=&image_code_id=x']) {
        const res = await t.client().get(`/sms_codes/${mobile}/${query}`);
        expect(res.statusCode, query).toBe(400);
        expect(res.json()).toMatchObject({
          error: 'MISSING_PARAMS',
          message: '缺少必传参数',
          errmsg: '缺少必传参数',
        });
      }
    });

    it('says the image code expired when it was never issued', async () => {
      const res = await t
        .client()
        .get(`/sms_codes/${randomMobile()}/?image_code=ABCD&image_code_id=never-issued`);
      expect(res.json()).toMatchObject({ code: 400, error: 'IMAGE_CODE_EXPIRED', message: '图形验证码失效' });
    });

    it('spends the image code on a wrong guess', async () => {
      const c = t.client();
      const { uuid, answer } = await imageCode(t, c);
      const mobile = randomMobile();
      const wrong = answer === 'AAAA' ? 'BBBB' : 'AAAA';
      const first = await c.get(`/sms_codes/${mobile}/?image_code=${wrong}&image_code_id=${uuid}`);
      expect(first.json()).toMatchObject({ error: 'IMAGE_CODE_WRONG', message: '图形验证码有误' });
      const second = await c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
      expect(second.json().error).toBe('IMAGE_CODE_EXPIRED');
      expect(t.sent.filter((m) => m.mobile === mobile)).toHaveLength(0);
    });

    it('blocks a resend for 60 s without spending the new image code', async () => {
      const c = t.client();
      const mobile = randomMobile();
      await smsCode(t, c, mobile);
      const { uuid, answer } = await imageCode(t, c);
      const res = await c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
      expect(res.statusCode).toBe(429);
      const body = res.json();
      expect(body).toMatchObject({ code: 429, error: 'SMS_TOO_FREQUENT', message: '发送短信过于频繁' });
      expect(body.retry_after).toBeGreaterThan(55);
      expect(body.retry_after).toBeLessThanOrEqual(60);
      expect(res.headers['retry-after']).toBe(String(body.retry_after));
      expect(await t.deps.codeStore.get(imageCodeKey(uuid))).toBe(answer);
    });

    it('gives 50 concurrent requests for one mobile exactly one code and one send', async () => {
      const c = t.client();
      const mobile = randomMobile();
      // Jobs queued after the code step, and jobs written by the code step itself (a BullMQ
      // queue on the code store's Redis database).
      const enqueue = t.deps.queue.enqueue.bind(t.deps.queue);
      const issueCode = t.deps.codeStore.issueCode.bind(t.deps.codeStore);
      let jobs = 0;
      t.deps.queue.enqueue = async (job) => {
        if (job.mobile === mobile) jobs++;
        return enqueue(job);
      };
      t.deps.codeStore.issueCode = async (input) => {
        const result = await issueCode(input);
        if (input.enqueue && result.kind === 'issued' && input.codeKey === smsCodeKey(mobile)) jobs++;
        return result;
      };
      const codes = await Promise.all(Array.from({ length: 50 }, () => imageCode(t, c)));
      const sent = t.nextSms(mobile);
      const answers = await Promise.all(
        codes.map(({ uuid, answer }) =>
          c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`),
        ),
      );
      const ok = answers.filter((r) => r.statusCode === 200);
      expect(ok).toHaveLength(1);
      expect(answers.filter((r) => r.json().error === 'SMS_TOO_FREQUENT')).toHaveLength(49);
      const message = await sent;
      expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBe(message.code);
      expect(jobs).toBe(1);
      t.deps.queue.enqueue = enqueue;
      t.deps.codeStore.issueCode = issueCode;
    });

    it('logs one access line per request: id, method, url without the answer, status, time', async () => {
      const c = t.client();
      const mobile = randomMobile();
      const { uuid, answer } = await imageCode(t, c);
      const requests = [
        `/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`,
        `/sms_codes/${mobile}/?image_code_id=${uuid}&image_code=${answer}`,
        `/image_codes/${uuid}/`,
      ];
      for (const url of requests) {
        const res = await c.get(url);
        const id = String(res.headers['x-request-id']);
        const lines = t.logs.map((l) => JSON.parse(l)).filter((l) => l.reqId === id);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({
          level: 30,
          msg: 'request completed',
          req: { method: 'GET', url: url.replace(`image_code=${answer}`, 'image_code=[redacted]') },
          res: { statusCode: res.statusCode },
        });
        expect(lines[0].responseTime).toBeGreaterThan(0);
      }
    });

    it('never writes the captcha answer or the SMS code into the log', async () => {
      const c = t.client();
      const mobile = randomMobile();
      const { uuid, answer } = await imageCode(t, c);
      const sent = t.nextSms(mobile);
      await c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
      const { code } = await sent;
      const joined = t.logs.join('\n');
      expect(joined).toContain('/sms_codes/');
      expect(joined).not.toContain(`image_code=${answer}`);
      expect(joined).not.toMatch(new RegExp(`(?<![0-9])${code}(?![0-9])`));
    });
  });
});

describe.skipIf(!(await has('redis')))('GET /sms_codes/ on Redis', () => {
  // A database of its own, so that the commands seen are this app's alone.
  const url = `${BACKEND_URLS.redis}/7`;
  let t: TestApp;
  let monitor: Redis;
  beforeAll(async () => {
    t = await buildTestApp({ ...NO_SEND_LIMITS, REDIS_URL: url }, { backend: 'redis', startWorker: false });
    monitor = new Redis(url, { lazyConnect: true });
    await monitor.connect();
  });
  afterAll(async () => {
    monitor.disconnect();
    await t.close();
  });

  it('answers in one Redis round trip: the atomic code step, which also queues the job', async () => {
    const c = t.client();
    // The first request loads the scripts; a user's steady state is every request after it.
    await smsCodeRequest(t, c, randomMobile());
    const { uuid, answer } = await imageCode(t, c);
    const mobile = randomMobile();
    const waitingBefore = (await t.deps.queue.counts()).waiting;
    const seen: string[] = [];
    const watching = await monitor.monitor();
    // (Commands that scripts run inside Redis show up too, with the source "lua": not round trips.)
    watching.on('monitor', (_time: string, args: string[], source: string, database: string) => {
      if (database === '7' && source !== 'lua') seen.push(String(args[0]).toLowerCase());
    });
    // MONITOR answers each command it relays in order, so a marker before and after brackets the request.
    await t.deps.codeStore.get('meiduo-users-test:monitor-start');
    const res = await c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
    await t.deps.codeStore.get('meiduo-users-test:monitor-end');
    expect(res.statusCode).toBe(200);
    await vi.waitFor(() => expect(seen.filter((command) => command === 'get')).toHaveLength(2));
    watching.disconnect();
    const during = seen.slice(seen.indexOf('get') + 1, seen.lastIndexOf('get'));
    expect(during).toEqual(['evalsha']);
    // The SMS waits in BullMQ's waiting list: in a job of its own, as queue.add() leaves it,
    // or in the job still waiting that an earlier request wrote (src/adapters/job-queue/bullmq.ts).
    expect(await t.deps.queue.counts()).toMatchObject({ waiting: waitingBefore, failed: 0 });
    const redis = new Redis(url);
    try {
      // (Every test app's queue on this database: the mobile is this test's alone.)
      const jobs: Array<string | null> = [];
      for (const waitKey of await redis.keys('*send-sms-code:wait')) {
        const prefix = waitKey.slice(0, -'wait'.length);
        for (const id of await redis.lrange(waitKey, 0, -1))
          jobs.push(await redis.hget(`${prefix}${id}`, 'data'));
      }
      expect(jobs.filter((data) => data?.includes(mobile))).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  });
});

async function smsCodeRequest(t: TestApp, c: ReturnType<TestApp['client']>, mobile: string): Promise<void> {
  const { uuid, answer } = await imageCode(t, c);
  const res = await c.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
  expect(res.statusCode).toBe(200);
}
