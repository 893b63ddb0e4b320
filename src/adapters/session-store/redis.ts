import type { Redis } from 'ioredis';
import type { SessionRecord, SessionStore, StoredSession } from '../../domain/ports.js';
import { closeRedis, guarded } from '../redis.js';

/**
 * KEYS: session, user index.  ARGV: id hash, user id, expires at (ms), persistent, created at,
 * last seen ('' when unknown), ip prefix, user agent.
 * Replaces any record under the id, indexes it by expiry, prunes the user's index of expired
 * entries and lets the index itself expire with the user's last session. A record already
 * expired is not stored.
 */
const CREATE_LUA = `
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('DEL', KEYS[1])
if tonumber(ARGV[3]) <= nowMs then
  return 0
end
redis.call('HSET', KEYS[1], 'userId', ARGV[2], 'expiresAtMs', ARGV[3], 'persistent', ARGV[4], 'createdAtMs', ARGV[5])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'lastSeenAtMs', ARGV[6], 'ipPrefix', ARGV[7], 'userAgent', ARGV[8])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowMs)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
`;

/**
 * KEYS: session.  ARGV: index key prefix, id hash.
 * The index key is derived from the record's user id, which only the record knows.
 */
const DELETE_LUA = `
local userId = redis.call('HGET', KEYS[1], 'userId')
if not userId then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. userId, ARGV[2])
return 1
`;

/**
 * KEYS: user index.  ARGV: session key prefix, user id.
 * Deletes every indexed session that still exists and still belongs to the user, then the
 * index; returns how many sessions were deleted (expired ones are already gone and not counted).
 */
const DELETE_ALL_LUA = `
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local deleted = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'userId') == ARGV[2] then
    deleted = deleted + redis.call('DEL', key)
  end
end
redis.call('DEL', KEYS[1])
return deleted
`;

/**
 * KEYS: user index.  ARGV: session key prefix, user id, id hash to keep.
 * Deletes every other indexed session that still exists and belongs to the user, and drops
 * the other ids from the index; returns how many sessions were deleted.
 */
const DELETE_OTHERS_LUA = `
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local deleted = 0
for _, id in ipairs(ids) do
  if id ~= ARGV[3] then
    local key = ARGV[1] .. id
    if redis.call('HGET', key, 'userId') == ARGV[2] then
      deleted = deleted + redis.call('DEL', key)
    end
    redis.call('ZREM', KEYS[1], id)
  end
end
return deleted
`;

/** KEYS: session.  ARGV: last seen, ip prefix, user agent. Only a session that exists is touched. */
const TOUCH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'lastSeenAtMs', ARGV[1], 'ipPrefix', ARGV[2], 'userAgent', ARGV[3])
return 1
`;

function toRecord(fields: Record<string, string>): SessionRecord | null {
  if (fields.userId === undefined || fields.expiresAtMs === undefined) return null;
  const record: SessionRecord = {
    userId: Number(fields.userId),
    expiresAtMs: Number(fields.expiresAtMs),
    persistent: fields.persistent === '1',
    createdAtMs: Number(fields.createdAtMs),
  };
  if (fields.lastSeenAtMs !== undefined) record.lastSeenAtMs = Number(fields.lastSeenAtMs);
  if (fields.ipPrefix !== undefined) record.ipPrefix = fields.ipPrefix;
  if (fields.userAgent !== undefined) record.userAgent = fields.userAgent;
  // Redis expires the key itself; this also covers a key that lost its lifetime.
  return record.expiresAtMs > Date.now() ? record : null;
}

interface SessionScripts {
  meiduoUsersSessionTouch(
    sessionKey: string,
    lastSeenAtMs: string,
    ipPrefix: string,
    userAgent: string,
  ): Promise<number>;
  meiduoUsersSessionCreate(
    sessionKey: string,
    indexKey: string,
    idHash: string,
    userId: string,
    expiresAtMs: string,
    persistent: string,
    createdAtMs: string,
    lastSeenAtMs: string,
    ipPrefix: string,
    userAgent: string,
  ): Promise<number>;
  meiduoUsersSessionDelete(sessionKey: string, indexPrefix: string, idHash: string): Promise<number>;
  meiduoUsersSessionDeleteAll(indexKey: string, sessionPrefix: string, userId: string): Promise<number>;
  meiduoUsersSessionDeleteOthers(
    indexKey: string,
    sessionPrefix: string,
    userId: string,
    keepIdHash: string,
  ): Promise<number>;
}

/**
 * Sessions on Redis, all under `keyPrefix`: `{prefix}session:{idHash}` is a hash that expires
 * at the session's absolute expiry (PEXPIREAT), and `{prefix}user-sessions:{userId}` a sorted
 * set of the user's id hashes scored by expiry, pruned as sessions are created and removed with
 * the last one. Every method is one round trip; those touching both keys are Lua scripts.
 */
export function createRedisSessionStore(redis: Redis, options: { keyPrefix: string }): SessionStore {
  const sessionPrefix = `${options.keyPrefix}session:`;
  const indexPrefix = `${options.keyPrefix}user-sessions:`;
  redis.defineCommand('meiduoUsersSessionCreate', { numberOfKeys: 2, lua: CREATE_LUA });
  redis.defineCommand('meiduoUsersSessionDelete', { numberOfKeys: 1, lua: DELETE_LUA });
  redis.defineCommand('meiduoUsersSessionDeleteAll', { numberOfKeys: 1, lua: DELETE_ALL_LUA });
  redis.defineCommand('meiduoUsersSessionDeleteOthers', { numberOfKeys: 1, lua: DELETE_OTHERS_LUA });
  redis.defineCommand('meiduoUsersSessionTouch', { numberOfKeys: 1, lua: TOUCH_LUA });
  const scripts = redis as unknown as SessionScripts;

  const run = guarded(redis, 'session-store');

  return {
    create: (idHash, record) =>
      run(async () => {
        await scripts.meiduoUsersSessionCreate(
          sessionPrefix + idHash,
          indexPrefix + record.userId,
          idHash,
          String(record.userId),
          String(record.expiresAtMs),
          record.persistent ? '1' : '0',
          String(record.createdAtMs),
          record.lastSeenAtMs === undefined ? '' : String(record.lastSeenAtMs),
          record.ipPrefix ?? '',
          record.userAgent ?? '',
        );
      }),

    get: (idHash) =>
      run(async (): Promise<SessionRecord | null> => toRecord(await redis.hgetall(sessionPrefix + idHash))),

    listForUser: (userId) =>
      run(async () => {
        const ids = await redis.zrangebyscore(indexPrefix + userId, Date.now(), '+inf');
        if (ids.length === 0) return [];
        const pipeline = redis.pipeline();
        for (const id of ids) pipeline.hgetall(sessionPrefix + id);
        const replies = (await pipeline.exec()) ?? [];
        const sessions: StoredSession[] = [];
        ids.forEach((idHash, i) => {
          const [err, fields] = replies[i] ?? [];
          if (err) throw err;
          const record = toRecord((fields ?? {}) as Record<string, string>);
          // An id left in the index whose record now belongs elsewhere is not this user's.
          if (record && record.userId === userId) sessions.push({ idHash, record });
        });
        return sessions;
      }),

    touch: (idHash, seen) =>
      run(async () => {
        await scripts.meiduoUsersSessionTouch(
          sessionPrefix + idHash,
          String(seen.lastSeenAtMs),
          seen.ipPrefix,
          seen.userAgent,
        );
      }),

    delete: (idHash) =>
      run(async () => {
        await scripts.meiduoUsersSessionDelete(sessionPrefix + idHash, indexPrefix, idHash);
      }),

    deleteAllForUser: (userId) =>
      run(() => scripts.meiduoUsersSessionDeleteAll(indexPrefix + userId, sessionPrefix, String(userId))),

    deleteOthersForUser: (userId, keepIdHash) =>
      run(() =>
        scripts.meiduoUsersSessionDeleteOthers(
          indexPrefix + userId,
          sessionPrefix,
          String(userId),
          keepIdHash,
        ),
      ),

    ping: () => run(async () => void (await redis.ping())),

    close: () => closeRedis(redis),
  };
}
