/**
 * Ports: what the domain needs from the outside world. Each adapter folder under
 * src/adapters implements one of these, and test/contract proves every implementation
 * against the same suite. Units live in the names; every method that says "atomic" is one
 * indivisible step on every backend (a Redis MULTI/Lua script, an SQLite IMMEDIATE
 * transaction), so that concurrent web processes cannot interleave inside it.
 *
 * Any method may reject with a DependencyError when its backend is unreachable.
 */

import type { ListEntry, NewListEntry, RatioCheck, RatioCredit, RatioScopeKind } from './sms-abuse.js';

/** Milliseconds since the epoch; injected so that tests can move time. */
export interface Clock {
  nowMs(): number;
}

/** A counter that the atomic issue step checks against its limit and then increments. */
export interface Quota {
  /** Full key of the counter (under the service's own prefix). */
  key: string;
  /** Sends allowed in the window; the step refuses when the counter is already at it. */
  limit: number;
  /** Lifetime given to the counter when the step creates it (window length or its rest). */
  ttlSeconds: number;
  /** Returned when this quota refuses, so the route can answer with the right error id. */
  id: string;
}

export type IssueResult =
  /** `ratioTripped`: the ratio rule would have refused (record-only mode, or not enforced). */
  | { kind: 'issued'; ratioTripped?: RatioScopeKind }
  /** Refused by the block list or the ratio rule: the flag was set and the quotas counted, no code. */
  | { kind: 'blocked'; by: 'list' | RatioScopeKind }
  /** The resend flag was set: answer as step 2 of sms_codes; the image code was not taken. */
  | { kind: 'flagged'; retryAfterSeconds: number }
  /** No image code under `imageKey` (never stored, expired or already used). */
  | { kind: 'expired' }
  /** The guess was wrong; the image code has been taken all the same (one use). */
  | { kind: 'wrong' }
  /** A quota is full: `id` is the refusing quota's id, `retryAfterSeconds` the counter's rest. */
  | { kind: 'limited'; id: string; retryAfterSeconds: number }
  /**
   * With `enqueue`: the code would have been issued, but its job could not be queued; the
   * flag and the code were taken back in the same step (nothing to send, nothing blocks).
   */
  | { kind: 'unqueued'; reason: string };

/**
 * A queue's enqueue as a step that a code store on the same Redis database runs inside its
 * issue script (JobQueue.scriptedEnqueue): the job exists exactly when the code does, and
 * GET /sms_codes/ costs one round trip instead of two.
 */
export interface ScriptedEnqueue {
  /** A Lua chunk reading its own KEYS and ARGV; returns the job id (a string) on success. */
  lua: string;
  keys: string[];
  args: Array<string | Buffer>;
}

/**
 * Steps 2–6 of GET /sms_codes/ (API.md §2) as one atomic step. A new rule that must be
 * checked or counted in the same step extends this input (as `blocked` and `ratio` do) or adds
 * a `quotas` entry, which needs no backend change: checked in order after the image code,
 * refusing with its `id`, counted when the step gets past the quotas.
 */
export interface IssueCodeInput {
  /** `send_flag_{mobile}`, value `1`. */
  flagKey: string;
  flagTtlSeconds: number;
  /** `img_{uuid}`: taken (deleted) once the flag check passes, whatever the guess. */
  imageKey: string;
  /** The person's answer; compared with the stored text ignoring ASCII case, in constant time. */
  guess: string;
  /** Also accepted in place of the stored text (test mode's TEST_CAPTCHA_ANSWER); one use still. */
  alsoAccept?: string | undefined;
  /** `sms_{mobile}`, the 6-digit code as a plain string. */
  codeKey: string;
  code: string;
  codeTtlSeconds: number;
  /** Wrong-guess counter of this mobile's code: deleted, so the new code starts at zero. */
  attemptsKey: string;
  /** Checked in order (first full one refuses), then all incremented. */
  quotas: Quota[];
  /** The block list matched: refuse once the quotas pass (kind `blocked`, by `list`). */
  blocked?: boolean;
  /**
   * The unverified-code ratio, in this same step: unless `verifiedKey` exists, each scope with
   * a floor is checked (the first over its threshold refuses when `enforce`); an issued code
   * counts one send in every scope and records the scopes under `originKey`.
   */
  ratio?: RatioCheck | null;
  /** Queue the send in the same step, when the code is issued (see ScriptedEnqueue). */
  enqueue?: ScriptedEnqueue | undefined;
}

export type AttemptResult =
  | { kind: 'counted' }
  /** A counter is at its limit: `id` of that quota, `retryAfterSeconds` its counter's rest. */
  | { kind: 'limited'; id: string; retryAfterSeconds: number };

export type CheckCodeResult =
  | { kind: 'ok' }
  | { kind: 'expired' }
  /** Wrong guess, counted; when attemptsLeft is 0 the code has been deleted. */
  | { kind: 'wrong'; attemptsLeft: number };

export interface CheckCodeInput {
  codeKey: string;
  attemptsKey: string;
  guess: string;
  maxAttempts: number;
  /**
   * On a right guess, in the same step: one verified code for each scope named under
   * `originKey` (then deleted, so a code is credited once), and `verifiedKey` set.
   */
  credit?: RatioCredit;
}

/**
 * Short-lived keys: image codes, SMS codes, resend flags, counters. Keys are used verbatim
 * (Meiduo's `img_…`, `sms_…`, `send_flag_…` have no prefix), values are plain strings, so a
 * Django deployment sharing the Redis database reads and writes the same entries.
 */
export interface CodeStore {
  /** The value, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Sets the value with a lifetime, replacing any earlier value and lifetime. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Atomic: returns the value and deletes the key; of two concurrent calls one gets null. */
  take(key: string): Promise<string | null>;
  /** Atomic: sets only when absent; true when this call set it. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Deletes the keys; absent keys are fine. */
  delete(...keys: string[]): Promise<void>;
  /**
   * Atomic: adds 1 and returns the new value; the lifetime is set only when this call
   * creates the counter (a fixed window that later increments do not extend).
   */
  increment(key: string, ttlSeconds: number): Promise<number>;
  /** Remaining lifetime in whole seconds rounded up, or null when the key is absent. */
  ttlSeconds(key: string): Promise<number | null>;
  /**
   * Atomic, steps 2–6 of GET /sms_codes/ in one round trip, checked in API.md's order:
   * 1. the flag exists → `flagged` with its remaining seconds (`flagTtlSeconds` for a flag
   *    without a lifetime); nothing taken or changed;
   * 2. take `imageKey` (deleted now, right or wrong) → `expired` when absent;
   * 3. the guess matches neither the stored text nor `alsoAccept` (ASCII case ignored,
   *    constant time, an empty answer matches nothing) → `wrong`;
   * 4. the first full quota → `limited`;
   * 5. the block list or the ratio rule → `blocked` (flag set, quotas counted, no code);
   * 6. set the flag and the code, delete the attempts counter, increment every quota →
   *    `issued`.
   * Two concurrent calls for one mobile: at most one is `issued`, the others `flagged`; two
   * for one image code: only one of them gets past step 2.
   */
  issueCode(input: IssueCodeInput): Promise<IssueResult>;
  /**
   * Atomic, steps 9–10 of POST /register/: compares the guess with the stored code in
   * constant time; a wrong guess increments the attempts counter (same lifetime as the code)
   * and deletes code and counter once maxAttempts wrong guesses are reached. Never deletes on
   * success: the caller deletes the code after the registration is written.
   */
  checkCode(input: CheckCodeInput): Promise<CheckCodeResult>;
  /**
   * Atomic, before a password is checked: refuses when any counter has reached its limit
   * (nothing counted; `id` and rest of the first full one), otherwise adds 1 to every counter
   * (a new counter gets the quota's lifetime). Of N concurrent calls on counters at c of limit
   * L, exactly max(0, L − c) are `counted`, so concurrent guesses cannot overrun the limit.
   */
  countAttempt(quotas: Quota[]): Promise<AttemptResult>;
  /** Atomic: takes 1 back from each counter that is above 0 (a refunded attempt); lifetimes kept. */
  refundAttempt(keys: string[]): Promise<void>;
  /** Resolves when the backend answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Server-side session record. */
export interface SessionRecord {
  userId: number;
  /** Absolute expiry, ms since epoch. */
  expiresAtMs: number;
  /** Whether the cookie was persistent (registration / remembered login). */
  persistent: boolean;
  createdAtMs: number;
  /** Last authenticated request (recorded at most once a minute); absent on older records. */
  lastSeenAtMs?: number;
  /** Client address cut to /24 or /48 (never the whole address); absent on older records. */
  ipPrefix?: string;
  /** The first 256 characters of the User-Agent; absent on older records. */
  userAgent?: string;
}

/** A live session of a user, by the hash of its id. */
export interface StoredSession {
  idHash: string;
  record: SessionRecord;
}

/**
 * Sessions by the hash of their id (the raw id is never stored). Each user's sessions are
 * indexed so that all of them can be ended at once.
 */
export interface SessionStore {
  create(idHash: string, record: SessionRecord): Promise<void>;
  /** The record, or null when absent or expired. */
  get(idHash: string): Promise<SessionRecord | null>;
  delete(idHash: string): Promise<void>;
  /** Ends every session of the user; returns how many there were. */
  deleteAllForUser(userId: number): Promise<number>;
  /**
   * Ends every session of the user but `keepIdHash`, in one atomic step (a session created
   * while it runs is either ended or created after it); returns how many live ones it ended.
   */
  deleteOthersForUser(userId: number, keepIdHash: string): Promise<number>;
  /** The user's live sessions, in no particular order. */
  listForUser(userId: number): Promise<StoredSession[]>;
  /** Records activity on a live session (an absent or expired one is left absent). */
  touch(idHash: string, seen: { lastSeenAtMs: number; ipPrefix: string; userAgent: string }): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---- SMS ------------------------------------------------------------------------------

/**
 * What an SMS is for; each purpose has its own code keys (a registration code never resets a
 * password), and `mobile_changed` is a notice without a code.
 */
export type SmsPurpose = 'register' | 'password_reset' | 'mobile_change' | 'mobile_changed';

/** What a send job carries: never the code (the worker reads it from the store). */
export interface SmsJob {
  mobile: string;
  purpose: SmsPurpose;
  /** The request's decision record, which the worker completes with the delivery outcome. */
  decisionId?: string;
}

/**
 * The one outcome set every provider answers with and the queue acts on:
 * - ok: accepted by the vendor;
 * - transient: nothing was delivered; retry later (with backoff);
 * - rate_limited: the vendor's per-number limit refused it; not retried (a late retry would
 *   spend the number's allowance on a code the person may have given up on);
 * - invalid_number, blocked_number, config_error: permanent; never retried;
 * - unknown: the vendor may have delivered (e.g. timeout after sending); not repeated.
 */
export type SendOutcomeKind =
  | 'ok'
  | 'rate_limited'
  | 'invalid_number'
  /** Email: the receiving server refused the address permanently (5xx). */
  | 'invalid_address'
  | 'blocked_number'
  | 'config_error'
  | 'transient'
  | 'unknown';

export interface SendOutcome {
  kind: SendOutcomeKind;
  /** Which provider answered (the last one tried, with failover). */
  provider: string;
  /** The vendor's own code or a short reason, safe to log (never the SMS code). */
  detail?: string;
  /** The vendor's message id on success. */
  messageId?: string;
}

/** Outcomes worth another attempt later (the vendors' §5 table: only transient ones). */
export const RETRYABLE_OUTCOMES: ReadonlySet<SendOutcomeKind> = new Set(['transient']);

export interface SmsMessage {
  mobile: string;
  /** The code; empty for a notice (`mobile_changed`). */
  code: string;
  /** Validity shown in the text (Meiduo's template 1 data `[code, 5]`). */
  ttlMinutes: number;
  purpose: SmsPurpose;
  /** Stable across retries of one job, for vendors that deduplicate (Ronglian reqId). */
  idempotencyKey: string;
}

export interface SmsProvider {
  readonly name: string;
  /**
   * The purposes it has a text for (absent: all). A template vendor sends a purpose only with
   * that purpose's template configured, never another purpose's text (sendsPurpose).
   */
  readonly purposes?: ReadonlySet<SmsPurpose>;
  /** Never throws: every failure is mapped onto the outcome set. */
  send(message: SmsMessage): Promise<SendOutcome>;
}

/** Whether the provider has a text (a template) for this purpose. */
export function sendsPurpose(provider: Pick<SmsProvider, 'purposes'>, purpose: SmsPurpose): boolean {
  return provider.purposes === undefined || provider.purposes.has(purpose);
}

// ---- Job queue ------------------------------------------------------------------------

export interface JobInfo {
  /** Queue-assigned id, safe to log. */
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Attempts the queue allows in total. */
  maxAttempts: number;
  /** When the job was accepted (ms since the epoch): the metrics' job latency starts here. */
  enqueuedAtMs?: number;
  /**
   * Whether this run still holds the job, asked right before an irreversible step (the send).
   * A queue that can hand a job to another run (BullMQ, after its lock lapsed) answers false
   * then; absent where no other run can exist (the in-process queue).
   */
  stillHeld?: () => Promise<boolean>;
}

/** Jobs by state, for the admin API and the queue-depth metric. */
export interface QueueCounts {
  /** Due now, waiting for a worker slot. */
  waiting: number;
  active: number;
  /** Waiting for their retry's backoff. */
  delayed: number;
  /** Ended without a send and kept for the operator (retry or discard). */
  failed: number;
}

/** A job that ended without a send, as the admin API lists it. */
export interface FailedJob<J = SmsJob> {
  id: string;
  job: J;
  /** Attempts used. */
  attempts: number;
  /** The last outcome, e.g. `invalid_number: 160 (not retried)`. */
  reason: string;
  failedAtMs: number;
}

/** What a handler reports; `skipped` = nothing to send (the code expired or was used). */
export type JobOutcome = SendOutcome | { kind: 'skipped'; provider: string; detail: string };

export type JobHandler<J> = (job: J, info: JobInfo) => Promise<JobOutcome>;
export type SmsJobHandler = JobHandler<SmsJob>;

/** A kind of job: its queue name, the fields it carries, what its log lines say about it. */
export interface JobKind<J> {
  /** BullMQ queue and job name. */
  name: string;
  /** "sms", "email": the start of its log lines. */
  label: string;
  /** Copies only the job's own fields: whatever else a caller's object holds stays out. */
  pick(job: J): J;
  /** Fields for the log line of the job's end (masked: never a whole mobile or address). */
  logFields(job: J): Record<string, unknown>;
}

export interface JobQueue<J = SmsJob> {
  /** Accepts the job durably (as durable as the backend is); rejects when it cannot. */
  enqueue(job: J): Promise<void>;
  /**
   * The enqueue of `job` as a script step for a code store on the same Redis database
   * (IssueCodeInput.enqueue); undefined when this queue cannot be written that way.
   */
  scriptedEnqueue?(job: J): Promise<ScriptedEnqueue | undefined>;
  /**
   * Starts consuming with at most `concurrency` jobs in flight. Retryable outcomes are
   * attempted again with exponential backoff and jitter; others end the job. A handler that
   * throws counts as `transient`. Every job's final outcome is logged (never the code).
   */
  startWorker(handler: JobHandler<J>, concurrency: number): void;
  /** Resolves when the queue's backend answers. */
  ping(): Promise<void>;
  // Operations (admin API). Failed jobs are kept 7 days, at most 1000 (the in-process queue:
  // in memory, until the process ends).
  counts(): Promise<QueueCounts>;
  /** Failed jobs, newest first. */
  failedJobs(limit: number, offset: number): Promise<FailedJob<J>[]>;
  /**
   * Atomic: moves a failed job back to waiting with its attempts reset (same id, so vendors
   * that deduplicate still see one message); false when no failed job has this id.
   */
  retryFailed(id: string): Promise<boolean>;
  /** Deletes a failed job; false when no failed job has this id. */
  discardFailed(id: string): Promise<boolean>;
  /** Stops taking jobs, waits for those in hand (or returns them), closes connections. */
  close(): Promise<void>;
}

// ---- Email ---------------------------------------------------------------------------

/** The job "send verification email": never the token (the worker makes it when it sends). */
export interface EmailJob {
  userId: number;
  email: string;
}

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Stable across retries of one job (the Message-ID's left part). */
  idempotencyKey: string;
}

export interface EmailProvider {
  readonly name: string;
  /** Never throws: every failure is mapped onto the outcome set. */
  send(message: EmailMessage): Promise<SendOutcome>;
  close?(): Promise<void>;
}

// ---- Users ----------------------------------------------------------------------------

/** A row of Django's `tb_users`, in the service's names. */
export interface User {
  id: number;
  username: string;
  /** Django-format hash (`argon2$…`, `pbkdf2_sha256$…`, or `!…` for unusable). */
  password: string;
  mobile: string;
  email: string;
  emailActive: boolean;
  isActive: boolean;
  isStaff: boolean;
  isSuperuser: boolean;
  lastLogin: Date | null;
  dateJoined: Date;
}

export interface NewUser {
  username: string;
  passwordHash: string;
  mobile: string;
  dateJoined: Date;
}

export type CreateUserResult = { ok: true; user: User } | { ok: false; taken: 'username' | 'mobile' };

export interface UserRepository {
  /** 0 or 1: usernames are case-sensitive, as in Django. */
  countByUsername(username: string): Promise<number>;
  countByMobile(mobile: string): Promise<number>;
  findByUsername(username: string): Promise<User | null>;
  findByMobile(mobile: string): Promise<User | null>;
  findById(id: number): Promise<User | null>;
  /**
   * Inserts with every NOT NULL column set. Uniqueness comes from the database's unique
   * constraints; on a violation reports which value is taken, username first.
   */
  create(user: NewUser): Promise<CreateUserResult>;
  updatePassword(id: number, passwordHash: string): Promise<void>;
  /** Sets `email` and `email_active` = false (Django's columns). */
  setEmail(id: number, email: string): Promise<void>;
  /** Sets `email_active` = true only while the user's email is `email`; true when it did. */
  activateEmail(id: number, email: string): Promise<boolean>;
  /** Sets `mobile`; the unique constraint decides: false when another user has it. */
  updateMobile(id: number, mobile: string): Promise<boolean>;
  updateLastLogin(id: number, at: Date): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Verifies and makes Django-format password hashes; never blocks the event loop. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** ok: the password matches; mustUpdate: the hash differs from the configured algorithm/cost. */
  verify(password: string, encoded: string): Promise<{ ok: boolean; mustUpdate: boolean }>;
  /** Costs one configured hash, for unknown accounts. */
  burn(password: string): Promise<void>;
}

// ---- Captcha --------------------------------------------------------------------------

export interface CaptchaImage {
  contentType: 'image/png' | 'image/jpeg';
  body: Buffer;
}

/** Draws the text as an image a person reads easily and off-the-shelf OCR does not. */
export interface CaptchaRenderer {
  render(text: string): Promise<CaptchaImage>;
}

// ---- SMS abuse: lists and decision records (SQL database) -------------------------------

/** Block and allow lists, shared by every instance through the database. */
export interface SmsListStore {
  /** Every entry not yet expired at `nowMs`. */
  live(nowMs: number): Promise<ListEntry[]>;
  /** Adds an entry, or replaces the note and expiry of the same (list, kind, value). */
  put(entry: NewListEntry, nowMs: number): Promise<ListEntry>;
  /** true when an entry was removed. */
  remove(id: number): Promise<boolean>;
  /** Physically removes entries expired before `nowMs`; returns how many. */
  purgeExpired(nowMs: number): Promise<number>;
}

export type SmsDecisionKind = 'sent' | 'refused' | 'failed';

/** One SMS request's decision, as written at the request (delivery columns come later). */
export interface SmsDecisionRecord {
  /** Random id; also carried by the send job so that the worker can report the delivery. */
  id: string;
  atMs: number;
  /** `1380013****` (the block), or the full number with SMS_DECISION_MOBILE=full. */
  mobile: string;
  /** Query key of the mobile: the number (full) or its HMAC (hashed); null when masked. */
  mobileKey: string | null;
  block: string;
  ipPrefix: string;
  purpose: string;
  decision: SmsDecisionKind;
  /** Which rule refused (`resend-interval`, `quota:SMS_IP_LIMIT`, `block-list:ip`, `ratio:block`…). */
  rule: string | null;
  /** Mode of the ratio rule when it fired (`record-only`, `silent`) or other context. */
  detail: string | null;
}

/** What the worker reports for a decision's job; the last report of a job wins. */
export interface SmsDeliveryRecord {
  decisionId: string;
  jobId: string;
  vendor: string;
  /** A SendOutcomeKind or `skipped`. */
  outcome: string;
  detail: string | null;
  attempt: number;
  atMs: number;
}

export interface SmsDecisionView extends SmsDecisionRecord {
  jobId: string | null;
  vendor: string | null;
  outcome: string | null;
  outcomeDetail: string | null;
  outcomeAtMs: number | null;
}

export interface SmsDecisionQuery {
  /** Already turned into the stored key (full number or HMAC). */
  mobileKey?: string;
  block?: string;
  ipPrefix?: string;
  decision?: SmsDecisionKind;
  fromMs?: number;
  /** Exclusive. */
  toMs?: number;
  /** Newest first; at most this many (1–1000). */
  limit: number;
}

export interface SmsDecisionStore {
  /** Writes many decisions in one statement. */
  insert(records: SmsDecisionRecord[]): Promise<void>;
  /** Upserts deliveries by decision id. */
  deliver(records: SmsDeliveryRecord[]): Promise<void>;
  query(query: SmsDecisionQuery): Promise<SmsDecisionView[]>;
  /** Removes decisions (and their deliveries) older than `beforeMs`; returns how many decisions. */
  purgeBefore(beforeMs: number): Promise<number>;
}
