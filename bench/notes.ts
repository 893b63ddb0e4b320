/**
 * Why a target is missed, as found by profiling (README "Benchmarks"). Keyed by target id
 * without the backend suffix; shown only for targets the run did not meet.
 */
export const NOTES: Record<string, string> = {
  sms:
    'Profiled (`node --cpu-prof`): about a third of the web process is socket writes, one per Redis ' +
    'round trip, against one write per request for hello-world. Steps 2–3 are now one Lua script ' +
    '(the flag check and the image code taken in one round trip), leaving three round trips per ' +
    'request: that step, the atomic issue script and BullMQ’s add on its own connection. Auto-' +
    'pipelining the connection was tried and gave nothing measurable (A/B 19–21 % either way). What ' +
    'would: enqueueing with the issue script itself (one Lua script writing the BullMQ job), which ' +
    'means writing BullMQ’s job format by hand; not done. Runs of this target range 24–33 % here.',
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
    'HASH_CONCURRENCY now defaults to cores − 1, which met it on the embedded default (37 ms, was ' +
    '53 ms); on Redis + PostgreSQL (62 ms) the web process shares 2 cores with PostgreSQL, ' +
    'Redis, the hashing thread and both load generators, and the p99 of 20 probes/s is the odd ' +
    'scheduling delay of the event loop (p50 5 ms). Rendering off the event loop would not add ' +
    'CPU; a machine with a core more would.',
  'queue-throughput':
    'The burst is bound by the CPU of the whole machine, not by a setting: BullMQ runs two Lua ' +
    'scripts per job (add; move-to-finished, which also fetches the next job), removes completed ' +
    'jobs, and the worker reads the code and writes one log line per job. The results list the CPU ' +
    'per job of the Redis server, the worker processes and the producer; 5,000 jobs/s on 2 cores ' +
    'needs at most 400 µs in all, and the noisy-machine runs of 4 Dec measured about 480 µs (Redis ' +
    '134, workers 232, producer 113). Batching the producer’s adds would raise the figure but not ' +
    'what the service does (one add per /sms_codes/), so the bench does not.',
  'queue-latency': 'Enqueue-to-send waits behind the jobs in hand: see the throughput row.',
  'peak-rss':
    'Met since the drivers of unused backends (Redis/BullMQ, pg, mysql2) are imported only when ' +
    'configured and the service runs with --max-semi-space-size=4 (V8’s young generation): ' +
    'peak RSS under /image_codes/ load went from about 205 MB to 155 MB at the same throughput.',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
