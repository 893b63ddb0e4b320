import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { parseRedisUrl, type RedisTarget } from '../config.js';
import { withDeadline } from '../deadline.js';
import { DependencyError } from '../domain/errors.js';
import { KEY_PREFIX } from '../domain/keys.js';

/*
 * The one place Redis connections are made: the code store, the session store and the BullMQ
 * queue take a connection from here (as fastify-rate-limit's store takes its caller's client)
 * and share its reconnect backoff, readiness wait and logging.
 */

/** How long a command waits for a connection that is not ready yet (start-up, reconnect). */
export const READY_WAIT_MS = 1000;
/** A command without an answer after this long fails (a hung or partitioned server). */
const COMMAND_TIMEOUT_MS = 1500;
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect backoff: doubles from the first delay up to the cap, with jitter; forever. */
const RETRY_FIRST_MS = 100;
const RETRY_CAP_MS = 2000;
/** While a connection stays down, one more line per this interval. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * `command`: for the request path; fails fast (see connectRedis).
 * `blocking`: for BullMQ workers; commands wait for Redis however long it takes (no request
 * limit, no command timeout: a worker's blocking pop must outlive a Redis restart).
 */
export type RedisMode = 'command' | 'blocking';

/** Delay before reconnect attempt `attempt` (1, 2, …): capped exponential, half of it random. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** Math.min(Math.max(attempt, 1) - 1, 10));
  return Math.round(base / 2 + random() * (base / 2));
}

/** Where a connection points, without its credentials, for log lines. */
function describeTarget(target: RedisTarget): { where: string; password: string | undefined } {
  if (target.kind === 'sentinel') {
    const hosts = target.sentinels.map((h) => `${h.host}:${h.port}`).join(',');
    return { where: `redis+sentinel://${hosts}/${target.name}/${target.db}`, password: target.password };
  }
  try {
    const parsed = new URL(target.url);
    const db = parsed.pathname.replace(/^\//, '') || '0';
    return {
      where: `${parsed.protocol}//${parsed.hostname}:${parsed.port || '6379'}/${db}`,
      password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    };
  } catch {
    return { where: '(unparsable url)', password: undefined };
  }
}

/**
 * Sentinel: ioredis asks the sentinels (in turn) for the current primary at every (re)connect
 * and checks that the server it reaches is one. A failover closes the clients' connections
 * (the promoted replica's and, when it comes back, the old primary's: Sentinel kills them), and
 * a write refused with READONLY reconnects too (reconnectOnError). ioredis's failoverDetector
 * stays off: a +switch-master arriving while the connection is already reconnecting ended it
 * for good (status `end`, never retried) in test/redis-failover.test.ts.
 */
function targetOptions(target: RedisTarget): RedisOptions {
  if (target.kind === 'standalone') return {};
  return {
    sentinels: target.sentinels,
    name: target.name,
    role: 'master',
    db: target.db,
    username: target.username,
    password: target.password,
    sentinelPassword: target.sentinelPassword,
    sentinelRetryStrategy: (attempt) => reconnectDelayMs(attempt),
    sentinelCommandTimeout: COMMAND_TIMEOUT_MS,
  };
}

function modeOptions(mode: RedisMode): RedisOptions {
  return mode === 'command'
    ? {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        commandTimeout: COMMAND_TIMEOUT_MS,
      }
    : { enableOfflineQueue: true, maxRetriesPerRequest: null };
}

interface Origin {
  target: RedisTarget;
  log: Logger;
}

/** What each connection was opened from, so that duplicateRedis can open another alike. */
const origins = new WeakMap<Redis, Origin>();

/**
 * Opens a Redis connection that heals itself:
 * - in `command` mode, no offline queue: a command never sits in a queue to run long after its
 *   request gave up (which would leave half-done work such as a send flag without a job);
 *   instead callers wait up to READY_WAIT_MS for readiness (see whenReady) and then fail;
 *   a command timeout for a server that stops answering, and no replay of unanswered
 *   commands after a reconnect (they were already reported as failed);
 * - reconnects forever with a capped, jittered exponential backoff;
 * - a lost connection logged once (again every ERROR_LOG_INTERVAL_MS while it stays down),
 *   its return once, never with the URL's password.
 * Construction never throws and never waits: the connection is made in the background.
 */
export function connectRedis(
  where: RedisTarget | string,
  name: string,
  log: Logger,
  mode: RedisMode = 'command',
): Redis {
  const target = typeof where === 'string' ? parseRedisUrl('Redis URL', where) : where;
  const options: RedisOptions = {
    ...targetOptions(target),
    connectionName: `${KEY_PREFIX}${name}`,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => reconnectDelayMs(attempt),
    // A replica promoted away under us: drop the connection and find the primary again.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
    ...modeOptions(mode),
  };
  const redis = target.kind === 'standalone' ? new Redis(target.url, options) : new Redis(options);
  origins.set(redis, { target, log });
  watch(redis, name, target, log);
  return redis;
}

/** Another connection to the same Redis as `redis` (a worker's next to its producer's). */
export function duplicateRedis(redis: Redis, name: string, mode: RedisMode): Redis {
  const origin = origins.get(redis);
  if (!origin) throw new Error('duplicateRedis: the connection was not opened by connectRedis');
  return connectRedis(origin.target, name, origin.log, mode);
}

function watch(redis: Redis, name: string, to: RedisTarget, log: Logger): void {
  const { where: target, password } = describeTarget(to);
  const scrub = (text: string) => (password ? text.split(password).join('***') : text);
  let lastLogMs = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  let downSinceMs: number | undefined;
  const lost = (code: string | undefined, reason: string) => {
    const now = Date.now();
    downSinceMs ??= now;
    if (now - lastLogMs < ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    log.warn(
      { redis: name, target, code, error: scrub(reason), suppressed },
      'redis connection lost; reconnecting',
    );
    lastLogMs = now;
    suppressed = 0;
  };
  // A refused connection says 'error'; a Redis that shuts down cleanly only closes the link
  // ('reconnecting' follows; a connection closed on purpose does not reconnect).
  redis.on('error', (err: NodeJS.ErrnoException) => lost(err.code, err.message));
  redis.on('reconnecting', () => {
    if (downSinceMs === undefined) lost(undefined, 'connection closed');
  });
  redis.on('ready', () => {
    if (downSinceMs !== undefined) {
      log.info({ redis: name, target, downMs: Date.now() - downSinceMs }, 'redis connection restored');
    }
    downSinceMs = undefined;
    lastLogMs = Number.NEGATIVE_INFINITY;
    suppressed = 0;
  });
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
 * How a store runs its commands: waits briefly for a connection that is coming up (whenReady),
 * and turns any failure into a DependencyError of `dependency` (a 503 for the caller) whose
 * cause carries no command arguments (redisFailure).
 */
export function guarded(redis: Redis, dependency: DependencyError['dependency']) {
  return async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      await whenReady(redis);
      writeWithThisTurn(redis);
      return await command();
    } catch (err) {
      throw new DependencyError(dependency, redisFailure(err));
    }
  };
}

/**
 * Every command of a connection that a library drives (BullMQ's worker: moving jobs to
 * finished and the next to active, extending locks) leaves with the others of its event-loop
 * turn, as the stores' commands do (writeWithThisTurn): with many jobs in hand several end in
 * one turn (10,000 queued jobs: ~5,810 against ~5,680 jobs/s in five paired runs).
 */
export function writeInTurns(redis: Redis): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    writeWithThisTurn(redis);
    return send(...args);
  }) as Redis['sendCommand'];
}

const corked = new WeakSet<object>();

/**
 * Holds the connection's writes until the event loop's next turn (setImmediate), so that the
 * commands of every request this turn handles leave in one write: at full load a turn handles
 * several requests, and a write system call per command was the largest single cost of
 * GET /sms_codes/. Replies are not delayed; a lone command waits at most for the callbacks
 * already due in this turn.
 */
function writeWithThisTurn(redis: Redis): void {
  const stream = (redis as unknown as { stream?: { cork(): void; uncork(): void } }).stream;
  if (!stream || redis.status !== 'ready' || corked.has(stream)) return;
  stream.cork();
  corked.add(stream);
  setImmediate(() => {
    corked.delete(stream);
    stream.uncork();
  });
}

/** Replicas that must acknowledge a write before it counts as done (Redis WAIT). */
export interface ReplicaAcks {
  replicas: number;
  timeoutMs: number;
}

/**
 * Waits until `acks.replicas` replicas hold every write this connection has made so far, and
 * throws when fewer acknowledged within the timeout: a write only the primary holds is lost
 * if a failover promotes a replica now (replication is asynchronous). Nothing to wait for
 * when no acknowledgement is asked.
 */
export async function awaitReplicas(redis: Redis, acks: ReplicaAcks | undefined): Promise<void> {
  if (!acks || acks.replicas === 0) return;
  const acknowledged = await redis.wait(acks.replicas, acks.timeoutMs);
  if (acknowledged < acks.replicas) {
    throw new Error(`${acknowledged} of ${acks.replicas} replicas acknowledged within ${acks.timeoutMs} ms`);
  }
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
