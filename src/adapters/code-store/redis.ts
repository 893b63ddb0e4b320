import type { Redis } from 'ioredis';
import type { AttemptResult, CheckCodeResult, CodeStore, IssueResult } from '../../domain/ports.js';
import { awaitReplicas, closeRedis, guarded, type ReplicaAcks } from '../redis.js';

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
 * The ratio rule's counters (src/domain/sms-abuse.ts): one hash per scope, fields `s{hour}`
 * sends, `v{hour}` verified codes, `d{day}` verified codes per China day. A hash outgrowing
 * what the rule reads (window hours × 2 + baseline days, and some slack) drops its old fields,
 * so that a scope written every hour (the global one) stays small though it never expires.
 */
const PRUNE_LUA = `
local function prune(key, hour, day, window, baseline)
  if redis.call('HLEN', key) <= 2 * window + baseline + 8 then return end
  for _, field in ipairs(redis.call('HKEYS', key)) do
    local kind = string.sub(field, 1, 1)
    local n = tonumber(string.sub(field, 2)) or 0
    if (kind == 'd' and n <= day - baseline) or (kind ~= 'd' and n <= hour - window) then
      redis.call('HDEL', key, field)
    end
  end
end
`;

/**
 * KEYS: flag, code, attempts, Q quota counters, then with the ratio rule: verified mark,
 * code origin, N scope hashes.
 * ARGV: flag ttl, code, code ttl, Q, blocked (0/1), N, for each quota: limit, ttl; then with
 * the ratio rule: hour, day, window hours, baseline days, multiplier, enforce (0/1), counters
 * ttl, and for each scope its floor.
 * Last of all: KEYS the image code; ARGV the guess and the also-accepted answer ('' = none).
 * The answers are compared upper-cased (string.upper: ASCII letters only) byte by byte over
 * the whole stored text whatever the guess, so the time does not reveal how close it was.
 * Returns {'flagged', flag pttl} | {'expired'} | {'wrong'}
 *       | {'limited', quota index (1-based), counter pttl}
 *       | {'blocked', 0 (list) or scope index} | {'issued', scope index that tripped or 0}.
 */
const ISSUE_CODE_LUA = `${PRUNE_LUA}
local flagTtl = redis.call('PTTL', KEYS[1])
if flagTtl ~= -2 then
  return {'flagged', flagTtl}
end
local stored = redis.call('GETDEL', KEYS[#KEYS])
if not stored then
  return {'expired'}
end
local guess = string.upper(ARGV[#ARGV - 1])
local function same(answer)
  answer = string.upper(answer)
  local diff = 0
  if #answer == 0 or #guess ~= #answer then diff = 1 end
  for i = 1, #answer do
    diff = bit.bor(diff, bit.bxor(string.byte(answer, i), string.byte(guess, i) or 0))
  end
  return diff == 0
end
local right = same(stored)
local test = same(ARGV[#ARGV])
if not right and not test then
  return {'wrong'}
end
local quotas = tonumber(ARGV[4])
local scopes = tonumber(ARGV[6])
for i = 1, quotas do
  local count = tonumber(redis.call('GET', KEYS[3 + i]) or '0') or 0
  if count >= tonumber(ARGV[5 + 2 * i]) then
    return {'limited', i, redis.call('PTTL', KEYS[3 + i])}
  end
end
local refused = nil
if ARGV[5] == '1' then refused = {'blocked', 0} end
local tripped = 0
local r = 6 + 2 * quotas
local hour, day, window, baseline = 0, 0, 0, 0
if scopes > 0 then
  hour = tonumber(ARGV[r + 1])
  day = tonumber(ARGV[r + 2])
  window = tonumber(ARGV[r + 3])
  baseline = tonumber(ARGV[r + 4])
end
if refused == nil and scopes > 0 and redis.call('EXISTS', KEYS[4 + quotas]) == 0 then
  local multiplier = tonumber(ARGV[r + 5])
  local fields = {}
  for h = hour - window + 1, hour do fields[#fields + 1] = 's' .. h end
  for h = hour - window + 1, hour do fields[#fields + 1] = 'v' .. h end
  for d = day - baseline + 1, day do fields[#fields + 1] = 'd' .. d end
  for i = 1, scopes do
    local floor = tonumber(ARGV[r + 7 + i])
    if floor > 0 then
      local values = redis.call('HMGET', KEYS[5 + quotas + i], unpack(fields))
      local sent, verified, best = 0, 0, 0
      for j = 1, window do sent = sent + (tonumber(values[j]) or 0) end
      for j = window + 1, 2 * window do verified = verified + (tonumber(values[j]) or 0) end
      for j = 2 * window + 1, #fields do
        local v = tonumber(values[j]) or 0
        if v > best then best = v end
      end
      if sent - verified >= math.max(floor, math.floor(multiplier * best)) then
        tripped = i
        break
      end
    end
  end
  if tripped > 0 and ARGV[r + 6] == '1' then refused = {'blocked', tripped} end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
for i = 1, quotas do
  local key = KEYS[3 + i]
  if redis.call('INCR', key) == 1 or redis.call('PTTL', key) == -1 then
    redis.call('EXPIRE', key, ARGV[6 + 2 * i])
  end
end
if refused then return refused end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[3])
if scopes > 0 then
  local origin = {}
  for i = 1, scopes do
    local key = KEYS[5 + quotas + i]
    redis.call('HINCRBY', key, 's' .. hour, 1)
    redis.call('EXPIRE', key, ARGV[r + 7])
    prune(key, hour, day, window, baseline)
    origin[i] = key
  end
  redis.call('SET', KEYS[5 + quotas], table.concat(origin, ' '), 'EX', ARGV[3])
end
return {'issued', tripped}
`;

/**
 * KEYS: code, attempts, and to credit a right guess: code origin, verified mark.
 * ARGV: guess, max attempts, and to credit: hour, day, counters ttl, verified ttl.
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
  if #KEYS > 2 then
    -- The scopes this code was counted under (written by the issue script) each gain one
    -- verified code, once: the origin goes with its first credit.
    local origin = redis.call('GET', KEYS[3])
    if origin then
      for key in string.gmatch(origin, '%S+') do
        redis.call('HINCRBY', key, 'v' .. ARGV[3], 1)
        redis.call('HINCRBY', key, 'd' .. ARGV[4], 1)
        redis.call('EXPIRE', key, ARGV[5])
      end
      redis.call('DEL', KEYS[3])
    end
    redis.call('SET', KEYS[4], '1', 'EX', ARGV[6])
  end
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

/**
 * KEYS: counters.  ARGV: for each counter: limit, ttl.
 * Returns {'limited', index (1-based), counter pttl} without counting, or {'counted'}.
 */
const COUNT_ATTEMPT_LUA = `
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if count >= tonumber(ARGV[2 * i - 1]) then
    return {'limited', i, redis.call('PTTL', KEYS[i])}
  end
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 or redis.call('PTTL', KEYS[i]) == -1 then
    redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
  end
end
return {'counted'}
`;

/** KEYS: counters. Takes 1 back from each counter above 0, keeping its lifetime. */
const REFUND_ATTEMPT_LUA = `
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if count > 0 then
    redis.call('DECR', KEYS[i])
  end
end
return 1
`;

/**
 * The issue script followed, when it issues, by a queue's enqueue step (ScriptedEnqueue) on
 * the same database. ARGV starts with the number of the issue step's keys and arguments; the
 * rest of KEYS and ARGV are the enqueue step's. An enqueue that fails (an error, or no job id)
 * takes the flag and the code back in the same step: no code waits for a send that never comes.
 */
function issueThenEnqueueLua(enqueueLua: string): string {
  return `local function issue(KEYS, ARGV)
${ISSUE_CODE_LUA}
end
local function enqueue(KEYS, ARGV)
${enqueueLua}
end
local issueKeys, issueArgs = tonumber(ARGV[1]), tonumber(ARGV[2])
local ik, ia, ek, ea = {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= issueKeys then ik[#ik + 1] = KEYS[i] else ek[#ek + 1] = KEYS[i] end
end
for i = 3, #ARGV do
  if i - 2 <= issueArgs then ia[#ia + 1] = ARGV[i] else ea[#ea + 1] = ARGV[i] end
end
local reply = issue(ik, ia)
if reply[1] ~= 'issued' then return reply end
local ok, id = pcall(enqueue, ek, ea)
if ok and type(id) == 'string' then return reply end
redis.call('DEL', ik[1], ik[2])
if type(id) == 'table' then id = id.err or id.ok end
return {'unqueued', tostring(id)}
`;
}

type ScriptCommand = (
  numberOfKeys: number,
  ...keysThenArgs: Array<string | number | Buffer>
) => Promise<unknown[]>;

interface CodeScripts {
  meiduoUsersCountAttempt(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown[]>;
  meiduoUsersRefundAttempt(numberOfKeys: number, ...keys: string[]): Promise<number>;
  meiduoUsersIncrement(key: string, ttlSeconds: number): Promise<number>;
  meiduoUsersIssueCode(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown[]>;
  meiduoUsersCheckCode(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown[]>;
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
 *
 * With `acks`, an issued code (and its flag) also waits for that many replicas before
 * issueCode answers; without them it is taken back and the call fails, so that a failover
 * cannot forget a code whose SMS goes out (and let a second one be issued in its window).
 */
export function createRedisCodeStore(redis: Redis, options: { acks?: ReplicaAcks } = {}): CodeStore {
  redis.defineCommand('meiduoUsersIncrement', { numberOfKeys: 1, lua: INCREMENT_LUA });
  redis.defineCommand('meiduoUsersIssueCode', { lua: ISSUE_CODE_LUA });
  redis.defineCommand('meiduoUsersCheckCode', { lua: CHECK_CODE_LUA });
  redis.defineCommand('meiduoUsersCountAttempt', { lua: COUNT_ATTEMPT_LUA });
  redis.defineCommand('meiduoUsersRefundAttempt', { lua: REFUND_ATTEMPT_LUA });
  const scripts = redis as unknown as CodeScripts;

  const run = guarded(redis, 'code-store');

  /** One command per enqueue script seen (a process has one), defined and bound once. */
  const combined = new Map<string, ScriptCommand>();
  const issueThenEnqueue = (enqueueLua: string): ScriptCommand => {
    let command = combined.get(enqueueLua);
    if (command === undefined) {
      const name = `meiduoUsersIssueThenEnqueue${combined.size + 1}`;
      redis.defineCommand(name, { lua: issueThenEnqueueLua(enqueueLua) });
      const defined = (redis as unknown as Record<string, ScriptCommand>)[name];
      if (!defined) throw new Error(`script ${name} was not defined`);
      command = defined.bind(redis);
      combined.set(enqueueLua, command);
    }
    return command;
  };

  return {
    get: (key) => run(() => redis.get(key)),

    set: async (key, value, ttlSeconds) => {
      assertTtlSeconds(ttlSeconds, 'ttlSeconds');
      return run(async () => void (await redis.set(key, value, 'EX', ttlSeconds)));
    },

    take: (key) => run(() => redis.getdel(key)),

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
      const ratio = input.ratio ?? null;
      const scopes = ratio?.scopes ?? [];
      const keys = [input.flagKey, input.codeKey, input.attemptsKey, ...input.quotas.map((q) => q.key)];
      const args: Array<string | number> = [
        input.flagTtlSeconds,
        input.code,
        input.codeTtlSeconds,
        input.quotas.length,
        input.blocked ? 1 : 0,
        scopes.length,
        ...input.quotas.flatMap((q) => [q.limit, q.ttlSeconds]),
      ];
      if (ratio) {
        keys.push(ratio.verifiedKey, ratio.originKey, ...scopes.map((s) => s.key));
        args.push(
          ratio.hour,
          ratio.day,
          ratio.windowHours,
          ratio.baselineDays,
          String(ratio.multiplier),
          ratio.enforce ? 1 : 0,
          ratio.countersTtlSeconds,
          ...scopes.map((s) => s.floor),
        );
      }
      keys.push(input.imageKey);
      args.push(input.guess, input.alsoAccept ?? '');
      return run(async (): Promise<IssueResult> => {
        const step = input.enqueue;
        const reply = step
          ? await issueThenEnqueue(step.lua)(
              keys.length + step.keys.length,
              ...keys,
              ...step.keys,
              keys.length,
              args.length,
              ...args,
              ...step.args,
            )
          : await scripts.meiduoUsersIssueCode(keys.length, ...keys, ...args);
        switch (reply[0]) {
          case 'issued': {
            await awaitReplicas(redis, options.acks).catch(async (err: unknown) => {
              await redis.del(input.flagKey, input.codeKey).catch(() => {});
              throw err;
            });
            const tripped = scopes[Number(reply[1]) - 1];
            return tripped ? { kind: 'issued', ratioTripped: tripped.kind } : { kind: 'issued' };
          }
          case 'expired':
            return { kind: 'expired' };
          case 'wrong':
            return { kind: 'wrong' };
          case 'unqueued':
            return { kind: 'unqueued', reason: String(reply[1]).slice(0, 200) };
          case 'blocked': {
            const scope = scopes[Number(reply[1]) - 1];
            return { kind: 'blocked', by: scope ? scope.kind : 'list' };
          }
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
        const keys = [input.codeKey, input.attemptsKey];
        const args: Array<string | number> = [input.guess, input.maxAttempts];
        const credit = input.credit;
        if (credit) {
          keys.push(credit.originKey, credit.verifiedKey);
          args.push(credit.hour, credit.day, credit.countersTtlSeconds, credit.verifiedTtlSeconds);
        }
        const reply = await scripts.meiduoUsersCheckCode(keys.length, ...keys, ...args);
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

    countAttempt: async (quotas) => {
      for (const quota of quotas) assertTtlSeconds(quota.ttlSeconds, `quota ${quota.id} ttlSeconds`);
      if (quotas.length === 0) return { kind: 'counted' };
      const keys = quotas.map((q) => q.key);
      const args = quotas.flatMap((q) => [q.limit, q.ttlSeconds]);
      return run(async (): Promise<AttemptResult> => {
        const reply = await scripts.meiduoUsersCountAttempt(keys.length, ...keys, ...args);
        if (reply[0] === 'counted') return { kind: 'counted' };
        const quota = quotas[Number(reply[1]) - 1];
        if (reply[0] !== 'limited' || !quota) throw new Error('unexpected reply from the attempt script');
        return {
          kind: 'limited',
          id: quota.id,
          retryAfterSeconds: pttlToSeconds(Number(reply[2]), quota.ttlSeconds),
        };
      });
    },

    refundAttempt: (keys) =>
      keys.length === 0
        ? Promise.resolve()
        : run(async () => void (await scripts.meiduoUsersRefundAttempt(keys.length, ...keys))),

    ping: () => run(async () => void (await redis.ping())),

    close: () => closeRedis(redis),
  };
}
