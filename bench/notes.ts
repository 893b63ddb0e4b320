/**
 * Why a target is missed, as found by profiling (README "Benchmarks"). Keyed by target id
 * without the backend suffix; shown only for targets the run did not meet.
 */
export const NOTES: Record<string, string> = {
  sms:
    'CPU profile (`node --cpu-prof`, 6 s of load): a third of the web process is native socket writes ' +
    '(writeUtf8String, writev, writeBuffer): every Redis command of the request (PTTL, GETDEL, the ' +
    'issue script, BullMQ’s add) is its own write and round trip, against one write for hello-world. ' +
    'Would fix: `enableAutoPipelining` on the verify connection (src/adapters/redis.ts), which batches ' +
    'the commands of concurrent requests into one write; not changed here.',
  image:
    'The renderer is the bound: the route adds the store write and the HTTP reply to each render; on a ' +
    'busy machine the ratio swings with the load of the minute.',
  register:
    'Hash-bound: the route adds the code check, the insert and the session to each argon2 hash; on a ' +
    'busy machine the ratio swings with the load of the minute.',
  login:
    'Hash-bound, as /register/ (one argon2 verify plus the user lookup, last_login update and session); ' +
    'in the last run the hasher baseline itself fell from 105 to 70/s across this run (shared machine), ' +
    'and the same run on SQLite reached 84 %. Not a cause found in the code.',
  'captcha-p99':
    'With HASH_CONCURRENCY = cores (2 here), argon2 keeps both cores busy, and the captcha’s drawing on ' +
    'the event loop waits for CPU. HASH_CONCURRENCY=1 on a 2-core machine leaves a core to the event ' +
    'loop at the price of half the registrations/s.',
  'queue-throughput':
    'Each job costs BullMQ’s move-to-active and move-to-finished scripts plus the adapter’s own ' +
    'start counter (HINCRBY), the code read (GET) and a log line, with 2 × 16 jobs in flight (the ' +
    'service default WORKER_CONCURRENCY) on 2 shared cores. More jobs in flight per worker, or dropping ' +
    'the HINCRBY for BullMQ’s own attemptsStarted, would raise it; not profiled further here.',
  'queue-latency': 'Enqueue-to-send waits behind the jobs in hand: see the throughput row.',
  'peak-rss':
    'The idle web process is already about 155 MB: loading the modules alone takes 137 MB (measured ' +
    'import by import: @napi-rs/canvas +26 MB, ioredis + bullmq +18 MB, pg + mysql2 +10 MB, loaded even ' +
    'when unused), and V8’s heap grows by 50–100 MB under load. Would fix: import the database driver ' +
    'and BullMQ only when configured, and cap the young generation (`--max-semi-space-size`).',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
