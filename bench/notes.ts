/**
 * Why a target is missed, as found by profiling (README "Benchmarks"). Keyed by target id
 * without the backend suffix; shown only for targets the run did not meet.
 */
export const NOTES: Record<string, string> = {
  'vs-sms':
    'Profiled (--cpu-prof, Redis commandstats, bench/diag/sms.ts with CPU per request): one ' +
    'request costs ~270 µs of web-process CPU without its share of the worker (the EVALSHA that ' +
    'now also writes the job, the HTTP answer and the log line are three loopback writes; on ' +
    'this VM each wakes its peer and costs tens of µs), the in-process worker ~125 µs more per ' +
    'job (BullMQ’s move-to-finished, which fetches the next job, and the read of the code), ' +
    'Redis ~130 µs and the load generator ~60 µs, all on the same 2 cores. Without the worker ' +
    '(RUN_WORKER=false) a pair of web processes answers ~4,400 req/s here. With ' +
    'WORKER_CONCURRENCY=32 the worker keeps up with what the web processes accept (the ' +
    'end-to-end row); a worker held back to favour requests would meet this row and fail that ' +
    'one. Django’s figure moves with the machine (389–548 req/s in this session’s runs).',
  'vs-register':
    'Both sides are bound by PBKDF2 260,000 on 2 cores; ours runs it through native/pbkdf2 (two ' +
    'SHA-256 compressions per iteration, 24 ms against node:crypto’s 50 ms and Python’s 58 ms).',
  'vs-endToEnd':
    'Bound by the CPU per SMS (see the /sms_codes/ row): requested and sent now keep pace (a ' +
    'backlog of a few hundred at the end of 30 s, sent within 0.5 s), where with 16 jobs in ' +
    'flight per worker the backlog grew by ~1,000 a second. Celery’s 2 workers keep up with ' +
    'gunicorn’s much lower request rate.',
  sms:
    'One Redis round trip (the issue script also writes the job, BullMQ’s add script included), ' +
    'a decision record and one log line per request, against a hello-world ' +
    'that does none of them; see the /sms_codes/ row against Django for where the time goes.',
  'vs-image':
    'The renderer is 28 % faster than at the start of this session (drawing ~280 → ~120 µs; ' +
    'Skia’s JPEG encoder, without SIMD in @napi-rs/canvas, is now ~60 % of an image). Per image ' +
    'the route also costs ~480 µs on the event loops (the Redis write, the answer, the log line, ' +
    'the hand-over to the captcha thread and back, each a wake-up of another thread or process ' +
    'on this VM) and ~250 µs of the load generator, beside the captcha threads on the same 2 ' +
    'cores; the ratio moved from 1.8× to 2.3× on this machine this session.',
  image:
    'The renderer baseline is one thread with nothing beside it (now ~3,300 images/s); the route ' +
    'renders on one nice-5 pool thread per web process, sharing 2 cores with the event loops, ' +
    'Redis or SQLite and the load generator: see the row against Django for the cost per image.',
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
    'V8 sized the old generation from the machine’s memory and let it grow to ~100 MB with ~35 MB ' +
    'live; `npm start` now runs node with --max-old-space-size=256 (220–260 → 165–170 MB under ' +
    'SMS load). Hash threads do not load the captcha renderer and pool threads run with small ' +
    'V8 heaps.',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
