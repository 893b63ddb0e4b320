/**
 * Why a target is missed, as found by profiling (README "Benchmarks"). Keyed by target id
 * without the backend suffix; shown only for targets the run did not meet.
 */
export const NOTES: Record<string, string> = {
  'vs-sms':
    'Profiled (--cpu-prof, Redis commandstats, bench/diag/sms.ts): each request costs ~180 µs of ' +
    'web-process CPU including its share of the in-process SMS worker, ~85 µs of Redis (our issue ' +
    'script ~24 µs, BullMQ’s add ~33 µs, its move-to-finished with the next fetch 60–120 µs) and ' +
    '~40 µs of the load generator, all on the same 2 cores. Without the worker (RUN_WORKER=false) ' +
    'one web process answers 7,300–7,800 req/s: the BullMQ job lifecycle is ~40 % of the cost. ' +
    'This session took out synchronous stdout writes (17 % of the CPU) and the SQLite writes that ' +
    'blocked event loops; what is left is BullMQ’s per-job work and the system calls of three ' +
    'sockets per request on this VM. Two web processes answer less than one here (4,000–4,400 vs ' +
    '5,000–5,500 req/s): the load generator and Redis share the cores.',
  'vs-register':
    'Both sides are bound by PBKDF2 260,000 on 2 cores; ours runs it through native/pbkdf2 (two ' +
    'SHA-256 compressions per iteration, 24 ms against node:crypto’s 50 ms and Python’s 58 ms).',
  'vs-endToEnd':
    'Bound by the same per-job cost as /sms_codes/ (see that row): the web processes run their ' +
    'SMS workers beside the request path on the same 2 cores as Redis and the load generator, so ' +
    'jobs accepted in the window are sent about 1.6 s after it ends; Celery’s 2 workers kept up ' +
    'with Django’s much lower request rate.',
  sms:
    'One Redis round trip (the issue script also writes the job, BullMQ’s add script included), ' +
    'a decision record and one log line per request, against a hello-world ' +
    'that does none of them; see the /sms_codes/ row against Django for where the time goes.',
  'vs-image':
    'The route draws on one nice-5 captcha thread per web process (2 here) beside the event loops, ' +
    'Redis and the load generator on 2 cores; the ratio moves with the machine (2.55× in a quiet ' +
    'run of the same code path, 2.22× beside other work).',
  image:
    'The renderer baseline is one thread with nothing beside it; the route renders on one nice-5 ' +
    'pool thread per web process, so the load generator and the event loops take CPU from it.',
  register: 'Hash-bound: the route adds the code check, the insert and the session to each hash.',
  login: 'Hash-bound, as /register/.',
  'vs-login': 'Hash-bound on both sides, as /register/ against Django.',
  'captcha-p99':
    'The cold start is gone (threads started, and 16 images drawn in each captcha thread, before ' +
    'the process listens; the route warmed before the probe). What is left are a few 30–90 ms ' +
    'stalls in 160 probes when the machine is busy: on the embedded default the image code write ' +
    'waits for another web process’s SQLite write lock (SQLite’s busy handler sleeps 1, 2, 5, 10 ' +
    '… ms), and the captcha threads (nice 5) share 2 cores with the hash threads, two event ' +
    'loops, the load generator and the databases. bench/diag/probe.ts lists every latency.',
  'queue-throughput':
    'The burst is bound by the CPU of the whole machine, not by a setting: BullMQ runs two Lua ' +
    'scripts per job (add; move-to-finished, which also fetches the next job), removes completed ' +
    'jobs, and the worker reads the code and writes one log line per job. The results list the CPU ' +
    'per job of the Redis server, the worker processes and the producer; 5,000 jobs/s on 2 cores ' +
    'needs at most 400 µs in all. Batching the producer’s adds would raise the figure but not what ' +
    'the service does (one add per /sms_codes/), so the bench does not.',
  'queue-latency': 'Enqueue-to-send waits behind the jobs in hand: see the throughput row.',
  'peak-rss':
    'The highest is a web process of the Django comparison, which lives through all of its runs ' +
    '(captcha, SMS, register, login, 30 s end to end). Hash threads no longer load the captcha ' +
    'renderer and pool threads run with small V8 heaps (−8 to −10 MB each); under captcha load ' +
    'alone a web process peaks at 170–175 MB.',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
