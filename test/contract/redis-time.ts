/**
 * What the Redis halves of the store contracts share: their database (DB 3 of the test server),
 * an admin connection beside the store's own, and the passing of time, which for Redis keys
 * means nothing but their lifetimes running down.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { BACKEND_URLS } from '../backends.js';

/** The test server's DB 3, where the contract suites keep their (randomly named) keys. */
export const CONTRACT_REDIS_URL = (() => {
  const url = new URL(BACKEND_URLS.redis);
  url.pathname = '/3';
  return url.toString();
})();

/** Shortens each key's lifetime by ms (deleting keys whose lifetime runs out), in one step. */
const ELAPSE_LUA = `
local ms = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local left = redis.call('PTTL', key)
  if left > 0 then
    if left <= ms then redis.call('DEL', key) else redis.call('PEXPIRE', key, left - ms) end
  end
end
return 0
`;

/**
 * Opens an admin connection to CONTRACT_REDIS_URL before the enclosing describe block's tests
 * and quits it after them; call inside that block. Returns a getter, as the connection exists
 * only once the block runs.
 */
export function useAdminRedis(): () => Redis {
  let admin: Redis | undefined;
  beforeAll(() => {
    admin = new Redis(CONTRACT_REDIS_URL);
  });
  afterAll(async () => {
    await admin?.quit();
  });
  return () => {
    if (admin === undefined)
      throw new Error('useAdminRedis: the admin connection is used outside its describe block');
    return admin;
  };
}

/** Lets `ms` of time pass for the given keys, as it would for Redis itself. */
export async function elapseKeys(admin: Redis, keys: Iterable<string>, ms: number): Promise<void> {
  const list = [...keys];
  if (list.length > 0) await admin.eval(ELAPSE_LUA, list.length, ...list, ms);
}
