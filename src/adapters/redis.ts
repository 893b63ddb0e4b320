import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { withDeadline } from '../deadline.js';
import { KEY_PREFIX } from '../domain/keys.js';

/** How long a command waits for a connection that is not ready yet (start-up, reconnect). */
export const READY_WAIT_MS = 1000;
/** A command without an answer after this long fails (a hung or partitioned server). */
const COMMAND_TIMEOUT_MS = 1500;
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect backoff: doubles from the first delay up to the cap, with jitter; forever. */
const RETRY_FIRST_MS = 100;
const RETRY_CAP_MS = 2000;
/** At most one connection-error line per this interval per connection. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * Where a URL points, without its credentials, for log lines.
 */
function describeTarget(url: string): { target: string; password: string | undefined } {
  try {
    const parsed = new URL(url);
    const db = parsed.pathname.replace(/^\//, '') || '0';
    return {
      target: `${parsed.protocol}//${parsed.hostname}:${parsed.port || '6379'}/${db}`,
      password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    };
  } catch {
    return { target: '(unparsable url)', password: undefined };
  }
}

/**
 * Opens a Redis connection that fails fast and heals itself:
 * - no offline queue: a command never sits in a queue to run long after its request gave up
 *   (which would leave half-done work such as a send flag without a job); instead the stores
 *   wait up to READY_WAIT_MS for readiness (see whenReady) and then fail with a DependencyError;
 * - a command timeout for a server that stops answering, and no replay of unanswered
 *   commands after a reconnect (they were already reported as failed);
 * - reconnects forever with a capped, jittered exponential backoff;
 * - connection errors logged at most once per interval, without the URL's password.
 * Construction never throws and never waits: the connection is made in the background.
 */
export function connectRedis(url: string, name: string, log: Logger): Redis {
  const { target, password } = describeTarget(url);
  const redis = new Redis(url, {
    connectionName: `${KEY_PREFIX}${name}`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => {
      const base = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** Math.min(attempt - 1, 10));
      return Math.round(base / 2 + Math.random() * (base / 2));
    },
    // A replica promoted away under us: drop the connection and find the primary again.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
  });

  const scrub = (text: string) => (password ? text.split(password).join('***') : text);
  let lastLogMs = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  let failing = false;
  redis.on('error', (err: NodeJS.ErrnoException) => {
    failing = true;
    const now = Date.now();
    if (now - lastLogMs < ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    log.warn(
      { redis: name, target, code: err.code, error: scrub(err.message), suppressed },
      'redis connection error; reconnecting',
    );
    lastLogMs = now;
    suppressed = 0;
  });
  redis.on('ready', () => {
    if (failing) log.info({ redis: name, target }, 'redis connection restored');
    failing = false;
  });
  return redis;
}

const nextReady = new WeakMap<Redis, Promise<void>>();

function readyPromise(redis: Redis): Promise<void> {
  let promise = nextReady.get(redis);
  if (!promise) {
    promise = new Promise<void>((resolve, reject) => {
      const onReady = () => {
        redis.off('end', onEnd);
        resolve();
      };
      const onEnd = () => {
        redis.off('ready', onReady);
        reject(new Error('redis connection closed'));
      };
      redis.once('ready', onReady);
      redis.once('end', onEnd);
    });
    const settled = () => nextReady.delete(redis);
    promise.then(settled, settled);
    nextReady.set(redis, promise);
  }
  return promise;
}

/**
 * Resolves at once when the connection is ready; otherwise waits for it at most timeoutMs
 * and rejects. Lets the first commands after start-up (or a reconnect) through without an
 * offline queue, and bounds how long a request waits when Redis is down. One shared
 * listener per connection, however many requests wait.
 */
export function whenReady(redis: Redis, timeoutMs: number = READY_WAIT_MS): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  if (redis.status === 'end') return Promise.reject(new Error('redis connection closed'));
  if (redis.status === 'wait') redis.connect().catch(() => {});
  return withDeadline(readyPromise(redis), timeoutMs, `redis readiness (${redis.status})`);
}

/**
 * A copy of a Redis failure that keeps its kind and text but drops what ioredis attaches to
 * reply errors (the command and its arguments, which may hold a code), so that logging the
 * cause of a DependencyError never prints a secret.
 */
export function redisFailure(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const copy = new Error(err.message);
  copy.name = err.name;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined) (copy as NodeJS.ErrnoException).code = code;
  return copy;
}

/** Closes a connection politely when it is up, at once otherwise. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  redis.disconnect();
}
