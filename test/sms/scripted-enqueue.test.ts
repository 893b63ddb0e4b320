/**
 * A BullMQ queue on the code store's own Redis database: the SMS job is written by the issue
 * script itself (one round trip). What a user notices: the code is sent exactly as a job queued
 * by queue.add() would send it (same options: retries, cleanup), a refused request queues
 * nothing, and a job that cannot be written leaves no code and no 60 s block behind (503, and
 * asking again works at once).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisCodeStore } from '../../src/adapters/code-store/redis.js';
import { createBullmqQueue } from '../../src/adapters/job-queue/bullmq.js';
import { connectRedis } from '../../src/adapters/redis.js';
import type {
  CodeStore,
  IssueCodeInput,
  JobHandler,
  JobOutcome,
  JobQueue,
  ScriptedEnqueue,
  SmsJob,
} from '../../src/domain/ports.js';
import { imageCodeKey, sendFlagKey, smsCodeKey } from '../../src/domain/verification.js';
import { BACKEND_URLS, has } from '../backends.js';
import { buildTestApp, imageCode, NO_SEND_LIMITS, randomMobile, type TestApp, until } from '../helper.js';
import { logSink } from '../log-sink.js';

const URL_6 = `${BACKEND_URLS.redis}/6`;
const silent = pino({ level: 'silent' });

describe.skipIf(!(await has('redis')))('the SMS job written by the issue step', () => {
  let redis: Redis;
  let codeStore: CodeStore;
  let queue: JobQueue;
  let prefix: string;

  beforeAll(async () => {
    redis = new Redis(URL_6);
    codeStore = createRedisCodeStore(connectRedis({ kind: 'standalone', url: URL_6 }, 'verify', silent));
  });
  afterEach(async () => {
    await queue?.close();
  });
  afterAll(async () => {
    await codeStore.close();
    redis.disconnect();
  });

  const openQueue = (sharesCodeStoreDatabase: boolean, more: { batchMax?: number; log?: Logger } = {}) => {
    prefix = `meiduo-users-test:${randomBytes(4).toString('hex')}`;
    queue = createBullmqQueue({
      connection: connectRedis({ kind: 'standalone', url: URL_6 }, 'queue', silent),
      prefix,
      log: more.log ?? silent,
      attempts: 3,
      backoffMs: 10,
      sharesCodeStoreDatabase,
      batchMax: more.batchMax,
    });
    return queue;
  };

  /** An image code stored for the request, and the issue input that spends it. */
  const request = async (mobile: string, guess = 'ABCD'): Promise<IssueCodeInput> => {
    const uuid = randomBytes(8).toString('hex');
    await codeStore.set(imageCodeKey(uuid), 'ABCD', 300);
    return {
      flagKey: sendFlagKey(mobile),
      flagTtlSeconds: 60,
      imageKey: imageCodeKey(uuid),
      guess,
      codeKey: smsCodeKey(mobile),
      code: String(100000 + (randomBytes(3).readUIntBE(0, 3) % 900000)),
      codeTtlSeconds: 300,
      attemptsKey: `meiduo-users-test:attempts:${mobile}`,
      quotas: [],
    };
  };

  /** Every job hash of the queue, by id. */
  const jobHashes = async (): Promise<Map<string, Record<string, string>>> => {
    const ids = await redis.lrange(`${prefix}:send-sms-code:wait`, 0, -1);
    const hashes = new Map<string, Record<string, string>>();
    for (const id of ids) hashes.set(id, await redis.hgetall(`${prefix}:send-sms-code:${id}`));
    return hashes;
  };

  it('is the job queue.add() writes, and the worker sends the code from it', async () => {
    const q = openQueue(true);
    const mobile = randomMobile();
    const job: SmsJob = { mobile, purpose: 'register', decisionId: 'd-1' };
    const before = Date.now();
    const step = await q.scriptedEnqueue?.(job);
    const after = Date.now();
    expect(step).toBeDefined();
    const input = await request(mobile);
    expect(await codeStore.issueCode({ ...input, enqueue: step })).toEqual({ kind: 'issued' });
    // The same job queued the usual way, for comparison.
    const other = randomMobile();
    await q.enqueue({ mobile: other, purpose: 'register', decisionId: 'd-2' });
    const hashes = [...(await jobHashes()).values()];
    expect(hashes).toHaveLength(2);
    const [scripted, added] = [
      hashes.find((h) => h.data?.includes(mobile)),
      hashes.find((h) => h.data?.includes(other)),
    ];
    expect(JSON.parse(scripted?.data ?? '')).toEqual(job);
    // Same name, options (attempts, backoff, removal) and fields: only the data and times differ.
    expect(scripted?.name).toBe(added?.name);
    const options = (hash: Record<string, string> | undefined) => {
      const { jobId, ...rest } = JSON.parse(hash?.opts ?? '{}') as Record<string, unknown>;
      expect(jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      return rest;
    };
    expect(options(scripted)).toEqual(options(added));
    expect(Object.keys(scripted ?? {}).sort()).toEqual(Object.keys(added ?? {}).sort());
    // Its own id (the hash's key and its options agree) and the time it was asked for.
    const [scriptedId] = [...(await jobHashes())].find(([, h]) => h.data === scripted?.data) ?? [];
    expect(JSON.parse(scripted?.opts ?? '{}').jobId).toBe(scriptedId);
    expect(Number(scripted?.timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(scripted?.timestamp)).toBeLessThanOrEqual(after);

    const sent: Array<{ mobile: string; code: string }> = [];
    q.startWorker(async (j) => {
      sent.push({ mobile: j.mobile, code: (await codeStore.get(smsCodeKey(j.mobile))) ?? '' });
      return { kind: 'ok', provider: 'test' };
    }, 2);
    await until(() => (sent.length === 2 ? true : undefined));
    expect(sent).toContainEqual({ mobile, code: input.code });
    // Completed jobs are removed, as with queue.add(): no job hash (its id is a uuid) is left.
    await vi.waitFor(async () => {
      expect(await redis.keys(`${prefix}:send-sms-code:*-*-*-*-*`)).toEqual([]);
    });
  });

  it('gives every job its own id and the time it was asked for (BullMQ builds its add once)', async () => {
    const q = openQueue(true, { batchMax: 1 });
    const now = Date.now();
    const asked = [now - 3_600_000, now - 60_000];
    const mobiles = [randomMobile(), randomMobile()];
    for (const [i, mobile] of mobiles.entries()) {
      const clock = vi.spyOn(Date, 'now').mockReturnValue(asked[i] as number);
      let step: ScriptedEnqueue | undefined;
      try {
        step = await q.scriptedEnqueue?.({ mobile, purpose: 'register', decisionId: `d-${i}` });
      } finally {
        clock.mockRestore();
      }
      expect(await codeStore.issueCode({ ...(await request(mobile)), enqueue: step })).toEqual({
        kind: 'issued',
      });
    }
    const hashes = await jobHashes();
    expect(hashes.size).toBe(2);
    for (const [id, hash] of hashes) {
      const i = mobiles.findIndex((m) => hash.data?.includes(m));
      expect(JSON.parse(hash.data ?? '{}')).toEqual({
        mobile: mobiles[i],
        purpose: 'register',
        decisionId: `d-${i}`,
      });
      expect(JSON.parse(hash.opts ?? '{}').jobId).toBe(id);
      expect(Number(hash.timestamp)).toBe(asked[i]);
    }
  });

  it('is not run for a refused request: a wrong image code queues nothing', async () => {
    const q = openQueue(true);
    const mobile = randomMobile();
    const step = await q.scriptedEnqueue?.({ mobile, purpose: 'register', decisionId: 'd-3' });
    const result = await codeStore.issueCode({ ...(await request(mobile, 'WXYZ')), enqueue: step });
    expect(result).toEqual({ kind: 'wrong' });
    expect((await q.counts()).waiting).toBe(0);
    expect(await codeStore.get(smsCodeKey(mobile))).toBeNull();
  });

  it.each([
    ['raises an error', "return redis.call('INCR', KEYS[1])"],
    ['gives no job id', 'return -5'],
  ])('takes the flag and the code back when the step %s', async (_, lua) => {
    openQueue(true);
    const mobile = randomMobile();
    const notANumber = `meiduo-users-test:not-a-number:${mobile}`;
    await redis.set(notANumber, 'x', 'EX', 60);
    const step: ScriptedEnqueue = { lua, keys: [notANumber], args: [] };
    const input = await request(mobile);
    const result = await codeStore.issueCode({ ...input, enqueue: step });
    expect(result.kind).toBe('unqueued');
    expect(await codeStore.get(sendFlagKey(mobile))).toBeNull();
    expect(await codeStore.get(smsCodeKey(mobile))).toBeNull();
    // The image code was spent all the same (one use).
    expect(await codeStore.get(input.imageKey)).toBeNull();
  });

  /** Issues a code for each mobile through the issue step; the codes by mobile. */
  const issueAll = async (q: JobQueue, mobiles: string[]): Promise<Map<string, string>> => {
    const codes = new Map<string, string>();
    for (const mobile of mobiles) {
      const input = await request(mobile);
      const step = await q.scriptedEnqueue?.({ mobile, purpose: 'register' });
      expect(await codeStore.issueCode({ ...input, enqueue: step })).toEqual({ kind: 'issued' });
      codes.set(mobile, input.code);
    }
    return codes;
  };

  interface Send {
    mobile: string;
    code: string;
    key: string;
    attempt: number;
  }

  const recordingHandler = (sent: Send[], outcomeOf: (s: Send) => JobOutcome = () => ok) =>
    (async (j, info) => {
      const send = {
        mobile: j.mobile,
        code: (await codeStore.get(smsCodeKey(j.mobile))) ?? '',
        key: info.id,
        attempt: info.attempt,
      };
      sent.push(send);
      return outcomeOf(send);
    }) satisfies JobHandler<SmsJob>;
  const ok: JobOutcome = { kind: 'ok', provider: 'test' };

  it('carries SMS requested while its job waits (up to batchMax): each sent once, with its code and own key', async () => {
    const q = openQueue(true, { batchMax: 3 });
    const mobiles = Array.from({ length: 7 }, () => randomMobile());
    const codes = await issueAll(q, mobiles);
    // 7 SMS in 3 jobs: 3 + 3 + 1.
    const jobs = [...(await jobHashes()).values()].map(
      (h) => JSON.parse(h.data ?? '{}') as { more?: unknown[] },
    );
    expect(jobs.map((j) => 1 + (j.more?.length ?? 0)).sort()).toEqual([1, 3, 3]);
    expect((await q.counts()).waiting).toBe(3);

    const sent: Send[] = [];
    q.startWorker(recordingHandler(sent), 4);
    await until(() => (sent.length >= 7 ? true : undefined));
    expect(sent.map((s) => s.mobile).sort()).toEqual([...mobiles].sort());
    for (const s of sent) expect(s.code).toBe(codes.get(s.mobile));
    // Each SMS has its own idempotency key for the vendor.
    expect(new Set(sent.map((s) => s.key)).size).toBe(7);
    await vi.waitFor(async () => {
      expect(await redis.keys(`${prefix}:send-sms-code:*-*-*-*-*`)).toEqual([]);
    });
    expect(sent).toHaveLength(7);
  });

  it('never adds an SMS to a job a worker already holds: the next one gets a job of its own', async () => {
    const q = openQueue(true);
    const sent: Send[] = [];
    q.startWorker(recordingHandler(sent), 2);
    const [first, second] = [randomMobile(), randomMobile()];
    await issueAll(q, [first]);
    await until(() => (sent.length === 1 ? true : undefined));
    await issueAll(q, [second]);
    await until(() => (sent.length === 2 ? true : undefined));
    expect(sent.map((s) => s.mobile)).toEqual([first, second]);
  });

  it('never adds an SMS to a job a worker has had, though it is back at the head of the wait list', async () => {
    const q = openQueue(true);
    const [first, second] = [randomMobile(), randomMobile()];
    await issueAll(q, [first]);
    // A retry (promoted from the delayed set) or a stalled run puts a job back in the wait list;
    // BullMQ's move to active stamped it with processedOn, which stays.
    const [id] = await redis.lrange(`${prefix}:send-sms-code:wait`, 0, -1);
    await redis.hset(`${prefix}:send-sms-code:${id}`, 'processedOn', String(Date.now()));
    await issueAll(q, [second]);
    const datas = [...(await jobHashes()).values()].map((h) => h.data ?? '');
    expect(datas).toHaveLength(2);
    expect(datas.filter((d) => d.includes(second) && !d.includes(first))).toHaveLength(1);
  });

  it('splits off the SMS of a job that must be retried or failed: the ones that went out are not sent again', async () => {
    const { stream, lines } = logSink<{ msg: string; jobId?: string; outcome?: string }>();
    const q = openQueue(true, { log: pino({ level: 'info' }, stream) });
    const [retried, refused, a, b] = [randomMobile(), randomMobile(), randomMobile(), randomMobile()];
    await issueAll(q, [retried, refused, a, b]);
    expect((await q.counts()).waiting).toBe(1);

    const sent: Send[] = [];
    let refuse = true;
    q.startWorker(
      recordingHandler(sent, (s): JobOutcome => {
        if (s.mobile === retried && s.attempt === 1) return { kind: 'transient', provider: 'test' };
        if (s.mobile === refused && refuse) return { kind: 'invalid_number', provider: 'test', detail: 'no' };
        return ok;
      }),
      4,
    );
    await until(() => (sent.length >= 5 ? true : undefined));
    const failed = await vi.waitFor(
      async () => {
        const list = await q.failedJobs(10, 0);
        expect(list.length).toBeGreaterThan(0);
        return list;
      },
      { timeout: 10_000 },
    );
    // a and b once; the retried SMS twice under the same key (attempts 1 and 2); the refused one once.
    const of = (mobile: string) => sent.filter((s) => s.mobile === mobile);
    expect(of(a)).toHaveLength(1);
    expect(of(b)).toHaveLength(1);
    expect(of(retried).map((s) => s.attempt)).toEqual([1, 2]);
    expect(new Set(of(retried).map((s) => s.key)).size).toBe(1);
    expect(of(refused)).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(failed[0]?.job.mobile).toBe(refused);
    expect(failed[0]?.reason).toMatch(/invalid_number/);
    // One end line per SMS, the refused one's among them.
    await until(() =>
      lines.filter((l) => l.msg.startsWith('sms job finished')).length === 4 ? true : undefined,
    );
    expect(
      lines.filter((l) => l.msg.startsWith('sms job finished') && l.outcome === 'invalid_number'),
    ).toHaveLength(1);

    // The operator's retry sends it once more, under the key it had.
    refuse = false;
    expect(await q.retryFailed(failed[0]?.id ?? '')).toBe(true);
    await until(() => (of(refused).length === 2 ? true : undefined));
    expect(of(refused)[1]?.key).toBe(of(refused)[0]?.key);
    expect(of(refused)[1]?.attempt).toBe(1);
    expect(sent).toHaveLength(6);
  });

  it('is not offered when the queue is on another database', async () => {
    const q = openQueue(false);
    expect(await q.scriptedEnqueue?.({ mobile: randomMobile(), purpose: 'register' })).toBeUndefined();
  });
});

describe.skipIf(!(await has('redis')))('GET /sms_codes/ when the job cannot be written', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp(NO_SEND_LIMITS, { backend: 'redis' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 503, leaves no code and no 60 s block, and the next request is sent', async () => {
    const queue = t.deps.queue;
    const scriptedEnqueue = queue.scriptedEnqueue?.bind(queue);
    expect(scriptedEnqueue).toBeDefined();
    queue.scriptedEnqueue = async () => ({ lua: 'return false', keys: [], args: [] });
    const c = t.client();
    const mobile = randomMobile();
    const first = await imageCode(t, c);
    const res = await c.get(`/sms_codes/${mobile}/?image_code=${first.answer}&image_code_id=${first.uuid}`);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 503, error: 'SERVICE_UNAVAILABLE' });
    expect(await t.deps.codeStore.get(sendFlagKey(mobile))).toBeNull();
    expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();

    queue.scriptedEnqueue = scriptedEnqueue;
    const second = await imageCode(t, c);
    const sent = t.nextSms(mobile);
    const again = await c.get(
      `/sms_codes/${mobile}/?image_code=${second.answer}&image_code_id=${second.uuid}`,
    );
    expect(again.statusCode).toBe(200);
    expect((await sent).code).toBe(await t.deps.codeStore.get(smsCodeKey(mobile)));
  });
});
