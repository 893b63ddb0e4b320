/**
 * Why a target is missed, as found by profiling (README "Benchmarks"). Keyed by target id
 * without the backend suffix; shown only for targets the run did not meet.
 */
export const NOTES: Record<string, string> = {
  'vs-sms':
    'Two Redis round trips per request (one atomic Lua step for the flag, the image code, the quotas ' +
    'and the abuse counters; then BullMQ’s add), one log line, two web processes. What would close it: ' +
    'enqueueing inside the issue script (BullMQ’s job format written by hand), one round trip per send.',
  'vs-register':
    'Both sides are bound by PBKDF2 260,000 on 2 cores. Ours hashes on one nice-10 thread per web ' +
    'process (2 here), beside the load generator, Redis and the SMS worker; not profiled further yet.',
  'vs-endToEnd':
    'Sends per second are bound by the SMS workers’ CPU beside the web processes on the same 2 cores ' +
    '(the queue row below gives the CPU per job); Celery’s 2 workers kept up with Django’s much lower ' +
    'request rate.',
  sms:
    'Two round trips and one log line per request; the hello-world baseline swung from 15,563 to ' +
    '22,455 req/s across this run (shared machine), so the ratio says little here.',
  image:
    'The renderer baseline is one thread with nothing beside it; the route renders on one nice-5 pool ' +
    'thread per web process, so the load generator and the event loops take CPU from it.',
  register: 'Hash-bound: the route adds the code check, the insert and the session to each hash.',
  login: 'Hash-bound, as /register/.',
  'vs-login': 'Hash-bound on both sides, as /register/ against Django.',
  'captcha-p99':
    'Regressed this session (37 / 62 ms before): with two web processes, each with a nice-5 captcha ' +
    'thread and a nice-10 hash thread, the probe’s p99 is 198–219 ms while its p50 stays 6 ms. Not ' +
    'profiled yet; the next thing to measure is WEB_CONCURRENCY=1 against 2 and the pool’s queueing.',
  'queue-throughput':
    'The burst is bound by the CPU of the whole machine, not by a setting: BullMQ runs two Lua ' +
    'scripts per job (add; move-to-finished, which also fetches the next job), removes completed ' +
    'jobs, and the worker reads the code and writes one log line per job. The results list the CPU ' +
    'per job of the Redis server, the worker processes and the producer; 5,000 jobs/s on 2 cores ' +
    'needs at most 400 µs in all. Batching the producer’s adds would raise the figure but not what ' +
    'the service does (one add per /sms_codes/), so the bench does not.',
  'queue-latency': 'Enqueue-to-send waits behind the jobs in hand: see the throughput row.',
  'peak-rss':
    'Each web process now also holds its pool threads’ heaps (about +30 MB); the highest is a web ' +
    'process under the Django comparison’s captcha load. Loading the captcha code only in captcha ' +
    'threads would trim it.',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
