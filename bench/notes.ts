/**
 * Why a target is missed, as found by profiling (README "Benchmarks"). Keyed by target id
 * without the backend suffix; shown only for targets the run did not meet.
 */
export const NOTES: Record<string, string> = {
  'vs-sms':
    'Two Redis round trips per request now (one atomic Lua step for the flag, the image code, the ' +
    'quotas and the abuse counters; then BullMQ’s add), one log line, two web processes. The run of ' +
    '4 Dec 22:08 was made before the CPU pool landed and beside two other busy processes on this ' +
    '2-core machine; Django’s gunicorn workers share the same cores. What would close it: enqueueing ' +
    'inside the issue script (BullMQ’s job format written by hand), so that a send is one round trip.',
  'vs-register':
    'Both sides are bound by PBKDF2 260,000 on 2 cores; ours hashes on HASH_CONCURRENCY threads per ' +
    'process. The run was made before hashing moved to the lower-priority CPU pool (7a01d39): measure ' +
    'again.',
  'vs-endToEnd':
    'Sends per second are bound by the SMS workers’ CPU beside the web processes on the same 2 cores ' +
    '(the queue row below gives the CPU per job); Celery’s 2 workers kept up with Django’s much lower ' +
    'request rate.',
  sms:
    'Two round trips and one log line per request; the hello-world baseline swung from 15,563 to ' +
    '22,455 req/s across this run (shared machine), so the ratio says little here.',
  image:
    'The renderer alone ran at 1,924 and 1,432 /s around this run (its own figure swings with the load ' +
    'of the minute); the run was made before rendering moved to the CPU pool.',
  register: 'Hash-bound: the route adds the code check, the insert and the session to each hash.',
  login: 'Hash-bound, as /register/.',
  'captcha-p99':
    'Measured before the CPU pool (captcha at nice 5 and hashes at nice 10 on threads of their own) ' +
    'landed, with two other busy processes on the machine; measure again.',
  'queue-throughput':
    'The burst is bound by the CPU of the whole machine, not by a setting: BullMQ runs two Lua ' +
    'scripts per job (add; move-to-finished, which also fetches the next job), removes completed ' +
    'jobs, and the worker reads the code and writes one log line per job. The results list the CPU ' +
    'per job of the Redis server, the worker processes and the producer; 5,000 jobs/s on 2 cores ' +
    'needs at most 400 µs in all. Batching the producer’s adds would raise the figure but not what ' +
    'the service does (one add per /sms_codes/), so the bench does not.',
  'queue-latency': 'Enqueue-to-send waits behind the jobs in hand: see the throughput row.',
  'peak-rss':
    'The highest process is a web process under the Django comparison’s captcha load (PBKDF2, Redis + ' +
    'SQLite); with the CPU pool each process also holds its worker threads’ heaps (about +30 MB).',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
