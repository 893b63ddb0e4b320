/**
 * Why a target is missed, as found by profiling (README "Benchmarks"), shown only for targets
 * the run did not meet; and where the time goes in a run against its own baseline, always
 * shown. Keyed by id without the backend suffix.
 */
export const NOTES: Record<string, string> = {
  'vs-sms':
    'Profiled (--cpu-prof, Redis commandstats and slowlog, bench/diag/sms.ts with the CPU and ' +
    'write system calls of every process). Done: an SMS requested while the last job waits ' +
    'joins it (up to 25 a job), the commands of an event-loop turn leave in one write, BullMQ’s ' +
    'add is built once and stamped per job, SQLite statements are prepared once, V8’s young ' +
    'generation is 8 MB and its GC runs on each process’s own thread. Per SMS ~270–300 µs of ' +
    'web processes (worker included), ~70 µs of Redis (the issue script ~40 µs of it) and ~60 ' +
    'µs of the load generator, all on 2 cores; what is left is spread thin (HTTP and Fastify, ' +
    'the worker’s BullMQ moves, GC, the decision record, the log line). Rounds of the same ' +
    'code differ by up to 25 % on this VM, and this row sits within that of its goal.',
  'vs-register':
    'Both sides are bound by PBKDF2 260,000 on 2 cores; ours runs it through native/pbkdf2 (two ' +
    'SHA-256 compressions per iteration, 24 ms against node:crypto’s 50 ms and Python’s 58 ms).',
  'vs-endToEnd':
    'Bound by the CPU per SMS (see the /sms_codes/ row): requested and sent keep pace, the ' +
    'in-process workers sending what the web processes accept (a job carries the SMS requested ' +
    'while it waited). Celery’s 2 workers keep up with gunicorn’s much lower request rate. The ' +
    'two rounds of this row differ by up to 25 % on this VM.',
  sms:
    'One Redis round trip (the issue script also queues the SMS: it joins the job still waiting ' +
    'or BullMQ’s add writes a new one), a decision record and one log line per request, against ' +
    'a hello-world that does none of them; see the /sms_codes/ row against Django for where the ' +
    'time goes.',
  'vs-image':
    'Per image the route costs the drawing and the JPEG (~290 µs on a captcha thread, libjpeg-' +
    'turbo through native/jpeg; Skia’s encoder took ~530 µs), and on the event loop the Redis ' +
    'write, the answer and the hand-over to the captcha thread and back, each a syscall that ' +
    'wakes another thread or process on this VM.',
  image:
    'The renderer baseline is one thread with nothing beside it (~4,800 images/s with ' +
    'libjpeg-turbo); the route renders on nice-5 pool threads sharing 2 cores with the event ' +
    'loops, Redis or SQLite and the load generator, and each image adds an HTTP answer, a store ' +
    'write and a thread hand-over that the baseline does not pay.',
  register:
    'The baseline is one process hashing on its share of the hash threads (HASH_CONCURRENCY: one ' +
    'here); the route’s two web processes hash on one thread each, hence above 100 %. Each request ' +
    'adds the code check, the insert and the session to its hash.',
  login: 'As /register/: one hash per request, two web processes against the baseline’s one.',
  'vs-login': 'Hash-bound on both sides, as /register/ against Django.',
  'captcha-p99':
    'The median probe takes 3 ms; the p99 of ~160 probes is the second-slowest, a stall of a few ' +
    'tens of ms when every core is busy: the captcha threads (nice 5) share 2 cores with the hash ' +
    'threads (nice 10), two event loops, the load generator and the database (PostgreSQL ' +
    'backends, or the SQLite file whose write lock the stores now wait for on a timer instead ' +
    'of in the event loop). The same code measured 41 ms on Redis + PostgreSQL in an earlier ' +
    'run; bench/diag/probe.ts lists every latency.',
  'queue-throughput':
    'Bound by the CPU of the whole machine, not by a setting: per job ~115 µs of Redis (BullMQ’s ' +
    'add and move-to-finished scripts), ~210 µs of the worker processes and ~90 µs of the ' +
    'producer on 2 cores (the results list the split). Worker concurrency 4, 8 and 32 measured ' +
    'the same. The worker’s connection now sends the job moves of an event-loop turn in one ' +
    'write (~5,810 against ~5,680 jobs/s in five paired runs), and its processes run with ' +
    '`npm run worker`’s node flags. Quick runs of this part alone give 4,600–5,900 jobs/s; a ' +
    'full run measured 4,292 on a loaded machine and 5,741 on the next. The bench adds one job ' +
    'per SMS with queue.add, as the service does when its queue is on another Redis database; ' +
    'on the code store’s database /sms_codes/ lets an SMS join the job still waiting, which the ' +
    '/sms_codes/ rows measure.',
  'queue-latency': 'Enqueue-to-send waits behind the jobs in hand: see the throughput row.',
  'peak-rss':
    'V8 sized the old generation from the machine’s memory and let it grow to ~100 MB with ~35 MB ' +
    'live; `npm start` runs node with --max-old-space-size=256. Hash threads do not load the ' +
    'captcha renderer and pool threads run with small V8 heaps.',
  'rss-repeat': 'The two mixed runs differ in what the machine was doing; each is a fresh process.',
};
