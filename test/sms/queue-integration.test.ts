/*
 * The real in-process queue and send-SMS job handler, with the real vendor clients built by
 * createSmsProvider against the local stand-ins: what gets retried, what does not, and how
 * many SMS the phone ends up with.
 */

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteCodeStore } from '../../src/adapters/code-store/sqlite.js';
import { createInProcessQueue, type SetTimer } from '../../src/adapters/job-queue/in-process.js';
import { createSmsProvider } from '../../src/adapters/sms-provider/index.js';
import { openSqlite } from '../../src/adapters/sqlite.js';
import { loadConfig } from '../../src/config.js';
import type { JobQueue } from '../../src/domain/ports.js';
import { createSendSmsHandler } from '../../src/jobs/send-sms.js';
import { until } from '../helper.js';
import { logSink } from '../log-sink.js';
import type { Script } from './fakes/server.js';
import {
  aliyun,
  type Fake,
  HANG_TIMEOUT_MS,
  message,
  ronglian,
  TIMEOUT_MS,
  type Vendor,
} from './fakes/vendors.js';

/** Backoff delays elapse at once: the test is about what is retried, not when. */
const immediate: SetTimer = (callback) => {
  setImmediate(callback);
  return () => {};
};

interface World {
  fakes: Fake[];
  lines: Array<Record<string, unknown>>;
  /** Stores a code for a fresh mobile and enqueues its job; resolves with the job's end line. */
  sendCode(): Promise<{ mobile: string; code: string; end: Record<string, unknown> }>;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function world(vendors: Vendor[], scripts: Script[][], timeoutMs = TIMEOUT_MS): Promise<World> {
  const fakes = await Promise.all(vendors.map((v) => v.start()));
  closers.push(async () => void (await Promise.all(fakes.map((f) => f.close()))));
  fakes.forEach((f, i) => {
    f.next(...(scripts[i] ?? []));
  });
  const { stream, lines } = logSink();
  const log = pino({ level: 'debug' }, stream);
  const config = loadConfig({
    SMS_PROVIDER: vendors.map((v) => v.name).join(','),
    SMS_TIMEOUT_MS: String(timeoutMs),
    ...Object.assign({}, ...vendors.map((v, i) => v.env(fakes[i] as Fake))),
  });
  const db = openSqlite(':memory:');
  const codeStore = createSqliteCodeStore(db, { nowMs: () => Date.now() });
  const queue: JobQueue = createInProcessQueue({ log, attempts: 3, backoffMs: 1, setTimer: immediate });
  closers.push(async () => {
    await queue.close();
    db.close();
  });
  queue.startWorker(
    createSendSmsHandler({
      codeStore,
      sms: createSmsProvider(config, log),
      log,
      codeTtlSeconds: 300,
      testNumbers: new Map(),
    }),
    2,
  );
  return {
    fakes,
    lines,
    async sendCode() {
      const { mobile, code } = message();
      await codeStore.set(`sms_${mobile}`, code, 300);
      await queue.enqueue({ mobile, purpose: 'register' });
      const masked = `${mobile.slice(0, 3)}****${mobile.slice(-4)}`;
      const end = await until(() => lines.find((l) => l.msg === 'sms job finished' && l.mobile === masked));
      // Whatever happened, the code never reached a log line.
      expect(JSON.stringify(lines)).not.toContain(code);
      return { mobile, code, end };
    },
  };
}

describe('SMS jobs through the in-process queue and the real vendor clients', () => {
  it('a transient vendor answer is retried, and the retry delivers', async () => {
    const w = await world([ronglian as unknown as Vendor], [[{ error: '160000' }]]);
    const { mobile, code, end } = await w.sendCode();
    expect(end).toMatchObject({ outcome: 'ok', provider: 'ronglian', attempts: 2 });
    expect(ronglian.received(w.fakes[0] as never)).toMatchObject([{ to: mobile, variables: [code, '5'] }]);
  });

  it('a permanent answer (invalid number) is not retried', async () => {
    const w = await w1([{ error: '160042' }]);
    const { end } = await w.sendCode();
    expect(end).toMatchObject({ outcome: 'invalid_number', detail: '160042', attempts: 1 });
    expect(w.fakes[0]?.requests).toBe(1);
  });

  it('a config error (wrong credentials at the vendor) is not retried', async () => {
    const w = await w1([{ error: '111109' }]);
    const { end } = await w.sendCode();
    expect(end).toMatchObject({ outcome: 'config_error', attempts: 1 });
    expect(w.fakes[0]?.requests).toBe(1);
  });

  it('a timeout after sending is not repeated: the phone gets one SMS', async () => {
    const w = await world([ronglian as unknown as Vendor], [['hang']], HANG_TIMEOUT_MS);
    const { end } = await w.sendCode();
    expect(end).toMatchObject({ outcome: 'unknown', attempts: 1 });
    expect(w.fakes[0]?.requests).toBe(1);
    expect(ronglian.received(w.fakes[0] as never)).toHaveLength(1);
  });

  it('a send the vendor processed before answering 502 is retried with the same reqId: one SMS', async () => {
    const w = await w1([{ http: 502, deliver: true }]);
    const { end } = await w.sendCode();
    // The retry is answered "request repeated" (160054): the message had gone out.
    expect(end).toMatchObject({ outcome: 'ok', detail: '160054', attempts: 2 });
    expect(ronglian.received(w.fakes[0] as never)).toHaveLength(1);
  });

  it('failover happens inside one attempt', async () => {
    const w = await world([ronglian, aliyun] as unknown as Vendor[], [[{ error: '160001' }], []]);
    const { mobile, code, end } = await w.sendCode();
    expect(end).toMatchObject({ outcome: 'ok', provider: 'aliyun', attempts: 1 });
    expect(aliyun.received(w.fakes[1] as never)).toMatchObject([{ to: mobile, variables: [code, '5'] }]);
  });

  it('when every vendor fails transiently, the next attempt runs the chain again', async () => {
    const w = await world([ronglian, aliyun] as unknown as Vendor[], [
      [{ http: 503 }],
      [{ error: 'isp.SYSTEM_ERROR' }],
    ]);
    const { end } = await w.sendCode();
    expect(end).toMatchObject({ outcome: 'ok', provider: 'ronglian', attempts: 2 });
    expect(w.fakes.map((f) => f.requests)).toEqual([2, 1]);
  });
});

function w1(scripts: Script[]): Promise<World> {
  return world([ronglian as unknown as Vendor], [scripts]);
}
