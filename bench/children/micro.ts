/**
 * Baselines measured alone in a process of their own, for the same time and concurrency as
 * the HTTP runs: `micro.ts captcha|hasher|redis <seconds> <concurrency> [warmupSeconds]`.
 * Prints one JSON line: {ops, seconds, perSecond}.
 */
import { Redis } from 'ioredis';
import { createCaptchaRenderer } from '../../src/adapters/captcha-image.js';
import { loadConfig } from '../../src/config.js';
import { generateCaptchaText } from '../../src/domain/captcha.js';
import { createPasswordHasher } from '../../src/domain/password.js';
import { REDIS_URL, SERVICE_ENV } from '../config.js';

const [kind, secondsArg, concurrencyArg, warmupArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const concurrency = Number(concurrencyArg);
const warmup = Number(warmupArg ?? 0);

/**
 * Keeps `concurrency` operations in flight for `forSeconds`; returns how many completed
 * within that time (those still in hand at the end finish uncounted, as autocannon does).
 */
async function saturate(op: () => Promise<unknown>, forSeconds: number): Promise<number> {
  const end = performance.now() + forSeconds * 1000;
  let done = 0;
  const loop = async () => {
    while (performance.now() < end) {
      await op();
      if (performance.now() <= end) done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done;
}

async function measure(op: () => Promise<unknown>): Promise<void> {
  if (warmup > 0) await saturate(op, warmup);
  const ops = await saturate(op, seconds);
  process.stdout.write(`${JSON.stringify({ ops, seconds, perSecond: ops / seconds })}\n`);
}

switch (kind) {
  case 'captcha': {
    // The service's renderer with its defaults, on the text the service would draw.
    const renderer = createCaptchaRenderer();
    await measure(() => renderer.render(generateCaptchaText()));
    break;
  }
  case 'hasher': {
    // The same settings as the web process; its semaphore caps hashes at HASH_CONCURRENCY.
    const hasher = createPasswordHasher(loadConfig({ ...SERVICE_ENV }));
    await measure(() => hasher.hash('Passw0rd!x'));
    break;
  }
  case 'redis': {
    const redis = new Redis(REDIS_URL);
    await measure(() => redis.ping());
    redis.disconnect();
    break;
  }
  default:
    throw new Error(`unknown baseline ${kind}`);
}
