/**
 * One SMS worker process of the queue run: the service's BullMQ queue and send-sms handler
 * (it reads each code from the Redis code store, as in production) with a provider that
 * sends nothing and reports when each message would have gone out. Send times go to the
 * parent over IPC in batches: [mobile, epoch ms with sub-ms precision].
 */
import { createRedisCodeStore } from '../../src/adapters/code-store/redis.js';
import { createBullmqQueue } from '../../src/adapters/job-queue/bullmq.js';
import { connectRedis } from '../../src/adapters/redis.js';
import type { SendOutcome, SmsProvider } from '../../src/domain/ports.js';
import { createSendSmsHandler } from '../../src/jobs/send-sms.js';
import { createLogger } from '../../src/logger.js';

const url = process.env.QUEUE_URL as string;
const prefix = process.env.QUEUE_PREFIX as string;
const concurrency = Number(process.env.QUEUE_CONCURRENCY);
// As src/worker.ts: the service's logger (lines batched to stdout) at info; the parent sends
// stdout to /dev/null.
const settings = { LOG_LEVEL: 'info' } as Parameters<typeof createLogger>[0];
const log = createLogger(settings, undefined, { pretty: false }).child({ process: 'worker' });

let sent: Array<[string, number]> = [];
const flush = () => {
  if (sent.length === 0) return;
  process.send?.(sent);
  sent = [];
};
const flusher = setInterval(flush, 20);

const noop: SmsProvider = {
  name: 'noop',
  async send(message): Promise<SendOutcome> {
    sent.push([message.mobile, performance.timeOrigin + performance.now()]);
    return { kind: 'ok', provider: 'noop' };
  },
};

const codeStore = createRedisCodeStore(connectRedis(url, 'verify', log));
const queue = createBullmqQueue({
  connection: connectRedis(url, 'queue', log),
  prefix,
  log,
  attempts: 6,
  backoffMs: 2000,
});
queue.startWorker(
  createSendSmsHandler({ codeStore, sms: noop, log, codeTtlSeconds: 300, testNumbers: new Map() }),
  concurrency,
);
await codeStore.ping();
await queue.ping();
process.send?.('ready');

process.on('message', async (message) => {
  if (message !== 'stop') return;
  await queue.close();
  await codeStore.close();
  clearInterval(flusher);
  flush();
  process.disconnect?.();
});
