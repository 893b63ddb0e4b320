import type { Redis } from 'ioredis';
import { DependencyError } from '../../domain/errors.js';
import type { CheckCodeResult, CodeStore, IssueResult, TakeUnlessFlaggedResult } from '../../domain/ports.js';
import { closeRedis, redisFailure, whenReady } from '../redis.js';

/**
 * Adds 1; the lifetime is set only when the counter is created (a fixed window). A counter
 * found without a lifetime (left by a crash between commands of another writer) gets one, so
 * that it cannot block forever.
 */
const INCREMENT_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
`;

/**
 * KEYS: flag, code, attempts, quota counters…
 * ARGV: flag ttl, code, code ttl, then for each quota: limit, ttl.
 * Returns {'flagged', flag pttl} | {'limited', quota index (1-based), counter pttl} | {'issued'}.
 */
const ISSUE_CODE_LUA = `
local flagTtl = redis.call('PTTL', KEYS[1])
if flagTtl ~= -2 then
  return {'flagged', flagTtl}
end
local quotas = #KEYS - 3
for i = 1, quotas do
  local count = tonumber(redis.call('GET', KEYS[3 + i]) or '0') or 0
  if count >= tonumber(ARGV[2 + 2 * i]) then
    return {'limited', i, redis.call('PTTL', KEYS[3 + i])}
  end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[3])
for i = 1, quotas do
  local key = KEYS[3 + i]
  if redis.call('INCR', key) == 1 or redis.call('PTTL', key) == -1 then
    redis.call('EXPIRE', key, ARGV[3 + 2 * i])
  end
end
return {'issued'}
`;

/**
 * KEYS: code, attempts.  ARGV: guess, max attempts.
 * The comparison visits every byte of the stored code whatever the guess, so its time does
 * not reveal how much of a guess was right; a guess of another length is wrong.
 * Returns {'expired'} | {'ok'} | {'wrong', attempts left}.
 */
const CHECK_CODE_LUA = `
local code = redis.call('GET', KEYS[1])
if not code then
  return {'expired'}
end
local guess = ARGV[1]
local diff = 0
if #guess ~= #code then diff = 1 end
for i = 1, #code do
  diff = bit.bor(diff, bit.bxor(string.byte(code, i), string.byte(guess, i) or 0))
end
if diff == 0 then
  return {'ok'}
end
local attempts = redis.call('INCR', KEYS[2])
local max = tonumber(ARGV[2])
if attempts >= max then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'wrong', 0}
end
local codeTtl = redis.call('PTTL', KEYS[1])
if codeTtl > 0 then
  redis.call('PEXPIRE', KEYS[2], codeTtl)
end
return {'wrong', max - attempts}
`;

/** KEYS[1] the flag, KEYS[2] the key to take: the flag's PTTL, or the taken value. */
const TAKE_UNLESS_FLAGGED_LUA = `
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then
  return {'flagged', pttl}
end
local value = redis.call('GET', KEYS[2])
if value then
  redis.call('DEL', KEYS[2])
end
return {'taken', value}
`;

interface CodeScripts {
  meiduoUsersTakeUnlessFlagged(flagKey: string, key: string): Promise<unknown[]>;
  meiduoUsersIncrement(key: string, ttlSeconds: number): Promise<number>;
  meiduoUsersIssueCode(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown[]>;
  meiduoUsersCheckCode(
    codeKey: string,
    attemptsKey: string,
    guess: string,
    maxAttempts: number,
  ): Promise<unknown[]>;
}

function assertTtlSeconds(ttlSeconds: number, what: string): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new RangeError(`${what} must be a whole number of seconds >= 1, got ${ttlSeconds}`);
  }
}

/** PTTL in ms → whole seconds rounded up; a key without a lifetime reports the fallback. */
function pttlToSeconds(pttlMs: number, fallbackSeconds: number): number {
  return pttlMs > 0 ? Math.ceil(pttlMs / 1000) : fallbackSeconds;
}

/**
 * The code store on Redis. Keys are used verbatim and values are plain strings written with
 * SET … EX, exactly as django-redis writes Meiduo's `img_…`, `sms_…` and `send_flag_…`, so a
 * Django deployment on the same database sees the same entries. Every method is one round
 * trip: a single command or a Lua script (EVALSHA), which Redis runs without interleaving.
 * Requires Redis 6.2 or later (GETDEL).
 */
export function createRedisCodeStore(redis: Redis): CodeStore {
  redis.defineCommand('meiduoUsersIncrement', { numberOfKeys: 1, lua: INCREMENT_LUA });
  redis.defineCommand('meiduoUsersTakeUnlessFlagged', { numberOfKeys: 2, lua: TAKE_UNLESS_FLAGGED_LUA });
  redis.defineCommand('meiduoUsersIssueCode', { lua: ISSUE_CODE_LUA });
  redis.defineCommand('meiduoUsersCheckCode', { numberOfKeys: 2, lua: CHECK_CODE_LUA });
  const scripts = redis as unknown as CodeScripts;

  /** Waits briefly for a connection that is coming up; any failure is a 503 for the caller. */
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      await whenReady(redis);
      return await command();
    } catch (err) {
      throw new DependencyError('code-store', redisFailure(err));
    }
  };

  return {
    get: (key) => run(() => redis.get(key)),

    set: async (key, value, ttlSeconds) => {
      assertTtlSeconds(ttlSeconds, 'ttlSeconds');
      return run(async () => void (await redis.set(key, value, 'EX', ttlSeconds)));
    },

    take: (key) => run(() => redis.getdel(key)),

    takeUnlessFlagged: (flagKey, key, flagTtlSeconds) =>
      run(async (): Promise<TakeUnlessFlaggedResult> => {
        const reply = await scripts.meiduoUsersTakeUnlessFlagged(flagKey, key);
        if (reply[0] === 'flagged') {
          return { kind: 'flagged', retryAfterSeconds: pttlToSeconds(Number(reply[1]), flagTtlSeconds) };
        }
        return { kind: 'taken', value: typeof reply[1] === 'string' ? reply[1] : null };
      }),

    setIfAbsent: async (key, value, ttlSeconds) => {
      assertTtlSeconds(ttlSeconds, 'ttlSeconds');
      return run(async () => (await redis.set(key, value, 'EX', ttlSeconds, 'NX')) === 'OK');
    },

    delete: (...keys) =>
      keys.length === 0 ? Promise.resolve() : run(async () => void (await redis.del(...keys))),

    increment: async (key, ttlSeconds) => {
      assertTtlSeconds(ttlSeconds, 'ttlSeconds');
      return run(() => scripts.meiduoUsersIncrement(key, ttlSeconds));
    },

    ttlSeconds: (key) =>
      run(async () => {
        const pttl = await redis.pttl(key);
        // -2: absent. -1 (a key without lifetime, which neither Django nor we write): no rest to report.
        return pttl > 0 ? Math.ceil(pttl / 1000) : null;
      }),

    issueCode: async (input) => {
      assertTtlSeconds(input.flagTtlSeconds, 'flagTtlSeconds');
      assertTtlSeconds(input.codeTtlSeconds, 'codeTtlSeconds');
      for (const quota of input.quotas) assertTtlSeconds(quota.ttlSeconds, `quota ${quota.id} ttlSeconds`);
      const keys = [input.flagKey, input.codeKey, input.attemptsKey, ...input.quotas.map((q) => q.key)];
      const args = [
        input.flagTtlSeconds,
        input.code,
        input.codeTtlSeconds,
        ...input.quotas.flatMap((q) => [q.limit, q.ttlSeconds]),
      ];
      return run(async (): Promise<IssueResult> => {
        const reply = await scripts.meiduoUsersIssueCode(keys.length, ...keys, ...args);
        switch (reply[0]) {
          case 'issued':
            return { kind: 'issued' };
          case 'flagged':
            return {
              kind: 'flagged',
              retryAfterSeconds: pttlToSeconds(Number(reply[1]), input.flagTtlSeconds),
            };
          case 'limited': {
            const quota = input.quotas[Number(reply[1]) - 1];
            if (!quota) throw new Error('issue script named an unknown quota');
            return {
              kind: 'limited',
              id: quota.id,
              retryAfterSeconds: pttlToSeconds(Number(reply[2]), quota.ttlSeconds),
            };
          }
          default:
            throw new Error('unexpected reply from the issue script');
        }
      });
    },

    checkCode: (input) =>
      run(async (): Promise<CheckCodeResult> => {
        const reply = await scripts.meiduoUsersCheckCode(
          input.codeKey,
          input.attemptsKey,
          input.guess,
          input.maxAttempts,
        );
        switch (reply[0]) {
          case 'ok':
            return { kind: 'ok' };
          case 'expired':
            return { kind: 'expired' };
          case 'wrong':
            return { kind: 'wrong', attemptsLeft: Number(reply[1]) };
          default:
            throw new Error('unexpected reply from the check script');
        }
      }),

    ping: () => run(async () => void (await redis.ping())),

    close: () => closeRedis(redis),
  };
}
