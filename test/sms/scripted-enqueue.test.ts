/**
 * A BullMQ queue on the code store's own Redis database: the SMS job is written by the issue
 * script itself (one round trip). What a user notices: the code is sent exactly as a job queued
 * by queue.add() would send it (same options: retries, cleanup), a refused request queues
 * nothing, and a job that cannot be written leaves no code and no 60 s block behind (503, and
 * asking again works at once).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisCodeStore } from '../../src/adapters/code-store/redis.js';
import { createBullmqQueue } from '../../src/adapters/job-queue/bullmq.js';
import { connectRedis } from '../../src/adapters/redis.js';
import type { CodeStore, IssueCodeInput, JobQueue, ScriptedEnqueue, SmsJob } from '../../src/domain/ports.js';
import { imageCodeKey, sendFlagKey, smsCodeKey } from '../../src/domain/verification.js';
import { BACKEND_URLS, has } from '../backends.js';
import { buildTestApp, imageCode, NO_SEND_LIMITS, randomMobile, type TestApp, until } from '../helper.js';

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

  const openQueue = (sharesCodeStoreDatabase: boolean) => {
    prefix = `meiduo-users-test:${randomBytes(4).toString('hex')}`;
    queue = createBullmqQueue({
      connection: connectRedis({ kind: 'standalone', url: URL_6 }, 'queue', silent),
      prefix,
      log: silent,
      attempts: 3,
      backoffMs: 10,
      sharesCodeStoreDatabase,
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
    const step = await q.scriptedEnqueue?.(job);
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
