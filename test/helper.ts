/**
 * Builds the real app (buildServer + createDeps, as production does) on a throw-away data
 * directory, with a fake clock, a recording SMS provider and the log captured, and gives
 * tests a cookie-keeping client that talks to it through `inject`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { openUserDatabase } from '../src/adapters/user-repository/database.js';
import { buildServer } from '../src/build.js';
import { type Config, loadConfig } from '../src/config.js';
import { createDeps, type Deps } from '../src/deps.js';
import type {
  EmailMessage,
  EmailProvider,
  SendOutcome,
  SmsMessage,
  SmsProvider,
} from '../src/domain/ports.js';
import { imageCodeKey } from '../src/domain/verification.js';
import { createLogger } from '../src/logger.js';
import { startSmsWorker } from '../src/startup.js';
import { BACKEND_URLS, has } from './backends.js';
import { type DatabaseKind, freshDatabase } from './databases.js';
import { logSink } from './log-sink.js';

export type StoreBackend = 'sqlite' | 'redis';

/** Where codes/sessions/queue live and where users live. */
export interface Backends {
  name: string;
  store: StoreBackend;
  database: DatabaseKind;
}

/**
 * The combinations the route tests run on: the embedded default, and Redis (store, sessions,
 * BullMQ) with each server database. Absent servers are skipped with a message (or fail the
 * run under REQUIRE_BACKENDS).
 */
export async function backendMatrix(): Promise<Backends[]> {
  const matrix: Backends[] = [
    { name: 'embedded default (SQLite, in-process queue)', store: 'sqlite', database: 'sqlite' },
  ];
  if (await has('redis')) {
    if (await has('postgres'))
      matrix.push({ name: 'Redis + BullMQ + PostgreSQL', store: 'redis', database: 'postgres' });
    if (await has('mysql'))
      matrix.push({ name: 'Redis + BullMQ + MariaDB', store: 'redis', database: 'mysql' });
    if (matrix.length === 1)
      matrix.push({ name: 'Redis + BullMQ + SQLite', store: 'redis', database: 'sqlite' });
  }
  return matrix;
}

/** For suites that send many codes from one address: the limits have their own tests. */
export const NO_SEND_LIMITS = {
  SMS_PER_IP_PER_HOUR: '0',
  SMS_GLOBAL_PER_HOUR: '0',
  SMS_PER_MOBILE_PER_DAY: '0',
  IMAGE_CODES_PER_IP_PER_MINUTE: '0',
  COUNT_LOOKUPS_PER_IP_PER_MINUTE: '0',
};

export interface FakeClock {
  nowMs(): number;
  advance(ms: number): void;
}

export function fakeClock(start = Date.now()): FakeClock {
  let now = start;
  return {
    nowMs: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

/** Records sends (and when: `sentAtMs[i]` for `sent[i]`); `next(mobile)` resolves when that mobile's message is sent. */
export function recordingProvider() {
  const sent: SmsMessage[] = [];
  const sentAtMs: number[] = [];
  const waiters = new Map<string, Array<(m: SmsMessage) => void>>();
  const provider: SmsProvider = {
    name: 'recording',
    async send(message): Promise<SendOutcome> {
      sent.push(message);
      sentAtMs.push(Date.now());
      for (const resolve of waiters.get(message.mobile) ?? []) resolve(message);
      waiters.delete(message.mobile);
      return { kind: 'ok', provider: 'recording' };
    },
  };
  const next = (mobile: string) =>
    new Promise<SmsMessage>((resolve) => {
      waiters.set(mobile, [...(waiters.get(mobile) ?? []), resolve]);
    });
  return { provider, sent, sentAtMs, next };
}

/** Records mails; `next(address)` resolves when a mail to that address is sent. */
export function recordingEmail() {
  const sent: EmailMessage[] = [];
  const waiters = new Map<string, Array<(m: EmailMessage) => void>>();
  const provider: EmailProvider = {
    name: 'recording',
    async send(message): Promise<SendOutcome> {
      sent.push(message);
      for (const resolve of waiters.get(message.to) ?? []) resolve(message);
      waiters.delete(message.to);
      return { kind: 'ok', provider: 'recording' };
    },
  };
  const next = (to: string) =>
    new Promise<EmailMessage>((resolve) => {
      waiters.set(to, [...(waiters.get(to) ?? []), resolve]);
    });
  return { provider, sent, next };
}

/** A random valid mainland mobile, so tests sharing a Redis never meet. */
export function randomMobile(): string {
  return `1${randomInt(3, 10)}${String(randomInt(0, 1e9)).padStart(9, '0')}`;
}

/** A random documentation-range address, so login and send counters in a shared Redis never meet. */
export function randomIp(): string {
  return `198.18.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

export function randomUsername(): string {
  return `u_${randomBytes(6).toString('hex')}`;
}

export interface TestApp {
  app: FastifyInstance;
  deps: Deps;
  config: Config;
  clock: FakeClock;
  sent: SmsMessage[];
  /** Wall-clock time of each send, index by index with `sent`. */
  sentAtMs: number[];
  nextSms(mobile: string): Promise<SmsMessage>;
  /** Mails the recording email provider was asked to send (unless `email` was given). */
  mails: EmailMessage[];
  nextMail(to: string): Promise<EmailMessage>;
  /** Every log line written so far. */
  logs: string[];
  /** A new browser: its own cookie jar. */
  client(options?: { ip?: string; headers?: Record<string, string> }): Client;
  close(): Promise<void>;
}

/**
 * Fresh server databases all start their ids at 1, while the Redis they share keeps sessions,
 * tokens and counters by user id: ids from a random point keep test files, runs and backends
 * apart.
 */
async function randomizeUserIds(config: Config): Promise<void> {
  if (config.database.kind === 'sqlite') return;
  const admin = await openUserDatabase(config.database, { poolSize: 1, statementTimeoutMs: 5000 });
  try {
    const start = randomInt(1_000_000, 1_000_000_000);
    if (admin.dialect === 'postgres')
      await sql`select setval(pg_get_serial_sequence('tb_users', 'id'), ${start})`.execute(admin.db);
    else await sql.raw(`alter table tb_users auto_increment = ${start}`).execute(admin.db);
  } finally {
    await admin.close();
  }
}

export async function buildTestApp(
  env: Record<string, string> = {},
  options: {
    backend?: StoreBackend;
    database?: DatabaseKind;
    startWorker?: boolean;
    /** false: leave a server database as `npm run migrate` would find it (default true). */
    migrate?: boolean;
    dataDir?: string;
    pagesDir?: string;
    /** Another email provider (an SMTP one, in the SMTP tests). */
    email?: EmailProvider;
    /** Wraps the recording SMS provider (a real vendor client behind it, in the vendor tests). */
    sms?: (recording: SmsProvider) => SmsProvider;
  } = {},
): Promise<TestApp> {
  // A given data directory belongs to the caller (restart tests) and is left in place.
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'meiduo-test-'));
  const redis = options.backend === 'redis' ? { REDIS_URL: `${BACKEND_URLS.redis}/5` } : {};
  const database =
    options.database && options.database !== 'sqlite' ? await freshDatabase(options.database) : undefined;
  const databaseUrl = database ? { DATABASE_URL: database.url } : {};
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    PASSWORD_HASHER: 'argon2',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1',
    HASH_CONCURRENCY: '2',
    JOB_BACKOFF_MS: '10',
    ...redis,
    ...databaseUrl,
    ...env,
  });
  const { stream, raw: logs } = logSink();
  const log = createLogger(config, stream);
  const clock = fakeClock();
  const recorder = recordingProvider();
  const mailRecorder = recordingEmail();
  const deps = await createDeps(config, log, {
    migrate: options.migrate ?? true,
    clock,
    sms: options.sms ? options.sms(recorder.provider) : recorder.provider,
    email: options.email ?? mailRecorder.provider,
    queuePrefix: `meiduo-users-test:${randomBytes(4).toString('hex')}`,
  });
  if (database && options.migrate !== false) await randomizeUserIds(config);
  if (options.startWorker !== false) startSmsWorker(deps, config, log);
  const app = await buildServer(config, deps, log, { pagesDir: options.pagesDir });
  await app.ready();
  return {
    app,
    deps,
    config,
    clock,
    sent: recorder.sent,
    sentAtMs: recorder.sentAtMs,
    nextSms: recorder.next,
    mails: mailRecorder.sent,
    nextMail: mailRecorder.next,
    logs,
    client: (o = {}) => new Client(app, o.ip ?? '127.0.0.1', o.headers ?? {}),
    async close() {
      await app.close();
      await deps.close();
      await database?.drop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'OPTIONS' | 'HEAD';

/** A browser-like client: keeps cookies, sends the CSRF token it was given. */
export class Client {
  readonly cookies = new Map<string, string>();
  csrfToken: string | undefined;

  constructor(
    private readonly app: FastifyInstance,
    private readonly ip: string,
    private readonly headers: Record<string, string>,
  ) {}

  async request(
    method: Method,
    url: string,
    options: { body?: unknown; headers?: Record<string, string>; csrf?: boolean; raw?: string } = {},
  ): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    if (this.cookies.size > 0) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    if (options.csrf !== false && this.csrfToken && method !== 'GET')
      headers['x-csrftoken'] ??= this.csrfToken;
    let payload: string | undefined = options.raw;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await this.app.inject({ method, url, headers, payload, remoteAddress: this.ip });
    for (const c of response.cookies as Array<{ name: string; value: string; maxAge?: number }>) {
      if (c.value === '' || c.maxAge === 0) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    const body = String(response.headers['content-type'] ?? '').includes('json')
      ? response.json()
      : undefined;
    if (body && typeof body.csrf_token === 'string') this.csrfToken = body.csrf_token;
    return response;
  }

  get(url: string, options?: { headers?: Record<string, string> }) {
    return this.request('GET', url, options);
  }
  post(url: string, body?: unknown, options: { headers?: Record<string, string>; csrf?: boolean } = {}) {
    return this.request('POST', url, { ...options, body });
  }
  delete(url: string, options: { headers?: Record<string, string>; csrf?: boolean } = {}) {
    return this.request('DELETE', url, options);
  }
  put(url: string, body?: unknown, options: { headers?: Record<string, string>; csrf?: boolean } = {}) {
    return this.request('PUT', url, { ...options, body });
  }

  /** GET /csrf_token/ and keep the token for unsafe requests. */
  async fetchCsrf(): Promise<string> {
    const res = await this.get('/csrf_token/');
    return res.json().csrf_token;
  }
}

/** Loads a captcha for a fresh uuid and reads its answer from the store, as a person would read the image. */
export async function imageCode(t: TestApp, client: Client): Promise<{ uuid: string; answer: string }> {
  const uuid = `t-${randomBytes(8).toString('hex')}`;
  const res = await client.get(`/image_codes/${uuid}/`);
  if (res.statusCode !== 200) throw new Error(`image code: ${res.statusCode} ${res.body}`);
  const answer = await t.deps.codeStore.get(imageCodeKey(uuid));
  if (!answer) throw new Error('image code not stored');
  return { uuid, answer };
}

/** Requests an SMS code for the mobile and returns the code the provider was asked to send. */
export async function smsCode(t: TestApp, client: Client, mobile: string): Promise<string> {
  const { uuid, answer } = await imageCode(t, client);
  const sent = t.nextSms(mobile);
  const res = await client.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
  if (res.statusCode !== 200) throw new Error(`sms code: ${res.statusCode} ${res.body}`);
  return (await sent).code;
}

export function registration(mobile: string, code: string, overrides: Record<string, unknown> = {}) {
  const password = 'Passw0rd!x';
  return {
    username: randomUsername(),
    password,
    password2: password,
    mobile,
    sms_code: code,
    allow: true,
    ...overrides,
  };
}

/** Polls until the probe answers (anything but undefined); throws after the deadline. */
export async function until<T>(probe: () => T | undefined, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error('state not reached before the deadline');
    await new Promise((r) => setTimeout(r, 5));
  }
}
