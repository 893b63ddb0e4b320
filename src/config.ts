import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import {
  missingTemplateWarnings,
  VENDOR_ENV,
  type VendorSettings,
  vendorSettings,
} from './adapters/sms-provider/index.js';
import { Bool, ConfigError, Limit, Seconds, Text } from './config-schema.js';

export { ConfigError };

/*
 * Every setting of API.md §6 (and §4, §8, the vendor settings) in one TypeBox schema. The
 * keys are the environment variable names, so the schema, the README table and .env.example
 * all speak the same names. loadConfig() validates once at start-up.
 */

const OnOff = Type.Union([Type.Literal('on'), Type.Literal('off')], {
  default: 'on',
  description: '`off` switches every per-IP, per-day and global limit off (load tests)',
});

const PROVIDERS = ['console', 'ronglian', 'aliyun', 'tencent', 'twilio'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export const ConfigSchema = Type.Object({
  HOST: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    description: 'address the web process listens on',
  }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: 'port of the web process' }),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 30_000,
    description: 'longest a request may take to arrive (headers and body); a slower one gets 408',
  }),
  WEB_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 256,
    default: availableParallelism(),
    description: 'web processes of `npm start` on one port (default: the number of cores; 1: one process)',
  }),
  DATA_DIR: Type.String({ minLength: 1, default: './data', description: "embedded default's files" }),
  DATABASE_URL: Text(
    '`sqlite:<path>`, `postgres://…` or `mysql://…` (default `sqlite:<DATA_DIR>/meiduo.sqlite3`)',
  ),
  DATABASE_POOL_SIZE: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 10,
    description: 'connections per process (server databases)',
  }),
  DATABASE_STATEMENT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 5000,
    description: 'longest a query may run',
  }),
  REDIS_URL: Text('set: codes, limits, sessions and the queue use Redis (or `redis+sentinel://…`)'),
  VERIFY_REDIS_URL: Text('Redis for codes, flags and counters (default REDIS_URL; Meiduo: db 2)'),
  SESSION_REDIS_URL: Text('Redis for sessions (default REDIS_URL)'),
  QUEUE_REDIS_URL: Text('Redis for the BullMQ queue (default REDIS_URL)'),
  REDIS_WAIT_REPLICAS: Type.Integer({
    minimum: 0,
    maximum: 10,
    default: 0,
    description: 'replicas that must hold a new SMS code and its job before the 200 (Sentinel: 1)',
  }),
  REDIS_WAIT_TIMEOUT_MS: Type.Integer({
    minimum: 10,
    maximum: 1000,
    default: 500,
    description: 'longest wait for those replicas; then the request answers 503',
  }),
  RUN_WORKER: Bool(true, 'the web process also runs an SMS worker'),
  WORKER_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 32,
    description:
      'SMS jobs in hand and SMS sends in flight per worker (a job carries up to SMS_JOB_BATCH_MAX SMS requested while it waited; 32: a worker inside a web process keeps up with what that process accepts at full load; for a slow vendor, in flight ≈ sends/s × its latency)',
  }),
  SMS_JOB_BATCH_MAX: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 25,
    description:
      'most SMS one BullMQ job carries: an SMS requested while the last job written still waits joins it, so a worker pays the per-job cost once for many (1: a job per SMS; only where the queue shares the code store’s Redis database)',
  }),
  JOB_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 50,
    default: 6,
    description: 'attempts of an SMS job with retryable outcomes',
  }),
  JOB_BACKOFF_MS: Type.Integer({
    minimum: 1,
    maximum: 3_600_000,
    default: 2000,
    description: 'first retry delay; doubles each attempt, with jitter',
  }),
  SMS_PROVIDER: Type.String({
    pattern: `^(${PROVIDERS.join('|')})(,(${PROVIDERS.join('|')}))*$`,
    default: 'console',
    description: 'provider, or a comma list for failover (first one first)',
  }),
  SMS_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 120_000,
    default: 5000,
    description: 'timeout of one vendor request',
  }),
  PASSWORD_HASHER: Type.Union([Type.Literal('argon2'), Type.Literal('pbkdf2_sha256')], {
    default: 'argon2',
    description: 'hasher for new and replaced passwords',
  }),
  ARGON2_MEMORY_KIB: Type.Integer({
    minimum: 1024,
    maximum: 4_194_304,
    default: 19456,
    description: 'argon2id memory cost',
  }),
  ARGON2_TIME_COST: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 2,
    description: 'argon2id iterations',
  }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'argon2id lanes' }),
  ARGON2_HASH_BYTES: Type.Integer({
    minimum: 16,
    maximum: 64,
    default: 32,
    description: 'argon2 hash length (Django with argon2-cffi 21.1, as on Debian 12: 16)',
  }),
  PBKDF2_ITERATIONS: Type.Integer({
    minimum: 1000,
    maximum: 100_000_000,
    default: 1_000_000,
    description: 'PBKDF2 iterations',
  }),
  // Hashes run on lowered-priority pool threads (src/adapters/cpu-pool.ts), so they may take
  // every core without delaying requests; the default splits the cores among the web processes
  // (cpuThreadsPerProcess) so that WEB_CONCURRENCY × threads does not oversubscribe them.
  HASH_CONCURRENCY: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 256,
      description: 'hashes computed at once per web process (default: cores ÷ WEB_CONCURRENCY, rounded up)',
    }),
  ),
  ERROR_STATUS_MODE: Type.Union([Type.Literal('http'), Type.Literal('meiduo')], {
    default: 'http',
    description: '`meiduo`: client errors as HTTP 200 with code 400, like the Django original',
  }),
  CSRF_ENABLED: Bool(true, 'check the CSRF token on unsafe methods'),
  CSRF_TRUSTED_ORIGINS: Type.String({
    default: '',
    description: 'comma list of extra origins allowed to send unsafe requests',
  }),
  PUBLIC_ORIGIN: Text(
    "the service's public origin, e.g. https://www.meiduo.site (default: the request's own)",
  ),
  CORS_ORIGINS: Type.String({
    default: '',
    description: 'comma list of front-end origins allowed cross-origin with credentials',
  }),
  COOKIE_SECURE: Bool(false, 'mark cookies Secure (behind HTTPS)'),
  TRUST_PROXY: Text(
    '`true`, a hop count, or a comma list of proxy addresses/CIDRs whose X-Forwarded-For is trusted',
  ),
  RATE_LIMITS: OnOff,
  IMAGE_CODE_TTL_SECONDS: Seconds(300, 'lifetime of an image code'),
  SMS_CODE_TTL_SECONDS: Seconds(300, 'lifetime of an SMS code'),
  SMS_RESEND_INTERVAL_SECONDS: Seconds(60, 'one SMS per mobile per this many seconds'),
  SMS_CODE_MAX_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 5,
    description: 'wrong guesses before the SMS code is deleted',
  }),
  SMS_PER_MOBILE_PER_DAY: Limit(10, 'SMS per mobile per calendar day (UTC+8)'),
  SMS_PER_IP_PER_HOUR: Limit(20, 'SMS per client IP per hour'),
  SMS_GLOBAL_PER_HOUR: Limit(1000, 'SMS for the whole service per hour'),
  IMAGE_CODES_PER_IP_PER_MINUTE: Limit(60, 'image codes per client IP per minute'),
  SMS_RATIO_MODE: Type.Union(
    [Type.Literal('off'), Type.Literal('record-only'), Type.Literal('refuse'), Type.Literal('silent')],
    {
      default: 'record-only',
      description:
        'unverified-code ratio rule: `record-only` logs and records, `refuse` answers SMS_BLOCKED, `silent` answers success and sends nothing',
    },
  ),
  SMS_RATIO_WINDOW_HOURS: Type.Integer({
    minimum: 1,
    maximum: 168,
    default: 24,
    description: 'rolling window (hours) of sends and verifications the ratio rule compares',
  }),
  SMS_RATIO_BASELINE_DAYS: Type.Integer({
    minimum: 1,
    maximum: 60,
    default: 14,
    description: 'days whose largest daily count of verified codes is the baseline',
  }),
  SMS_RATIO_MULTIPLIER: Type.Number({
    minimum: 0,
    maximum: 1000,
    default: 2,
    description: 'k in max(floor, k × baseline): unverified sends allowed per verified code of the best day',
  }),
  SMS_RATIO_FLOOR_PER_BLOCK: Limit(
    20,
    'unverified sends per number block (first 7 digits) always allowed; 0 = not checked',
  ),
  SMS_RATIO_FLOOR_PER_IP: Limit(10, 'unverified sends per client IP prefix always allowed; 0 = not checked'),
  SMS_RATIO_FLOOR_GLOBAL: Limit(500, 'unverified sends service-wide always allowed; 0 = not checked'),
  SMS_RATIO_IPV4_PREFIX_BITS: Type.Integer({
    minimum: 8,
    maximum: 32,
    default: 24,
    description: 'IPv4 prefix length of the ratio rule and decision records',
  }),
  SMS_RATIO_IPV6_PREFIX_BITS: Type.Integer({
    minimum: 16,
    maximum: 128,
    default: 48,
    description: 'IPv6 prefix length of the ratio rule and decision records',
  }),
  SMS_VERIFIED_MEMORY_DAYS: Type.Integer({
    minimum: 1,
    maximum: 3650,
    default: 365,
    description: 'days a mobile that verified a code stays exempt from the ratio rule',
  }),
  SMS_LISTS_REFRESH_MS: Type.Integer({
    minimum: 100,
    maximum: 3_600_000,
    default: 5000,
    description: 'longest time another instance takes to see a block/allow list change',
  }),
  SMS_DECISION_RETENTION_DAYS: Type.Integer({
    minimum: 0,
    maximum: 3650,
    default: 30,
    description: 'days SMS decision records are kept; 0 = none written',
  }),
  SMS_DECISION_MOBILE: Type.Union([Type.Literal('masked'), Type.Literal('hashed'), Type.Literal('full')], {
    default: 'masked',
    description:
      'mobile in decision records: `masked` (block only), `hashed` (HMAC with SMS_DECISION_HASH_KEY, queryable), `full`',
  }),
  SMS_DECISION_HASH_KEY: Type.Optional(
    Type.String({
      minLength: 16,
      description: 'secret key of `hashed` decision-record mobiles (16+ characters)',
    }),
  ),
  SMS_DECISION_FLUSH_MS: Type.Integer({
    minimum: 10,
    maximum: 60_000,
    default: 1000,
    description: 'decision records are written in batches at most this long after the request',
  }),
  COUNT_LOOKUPS_PER_IP_PER_MINUTE: Limit(30, 'count lookups per client IP per minute'),
  LOGIN_FAILURES_PER_ACCOUNT_IP: Limit(10, 'failed logins per (account, client IP) per 15 min'),
  LOGIN_FAILURES_PER_IP: Limit(50, 'failed logins per client IP per 15 min'),
  // Operations (docs/operations.md): both APIs are off until a token or port is set.
  ADMIN_TOKEN: Type.Optional(
    Type.String({
      minLength: 32,
      description: 'bearer token of the admin API (32+ characters); unset: /admin/ is 404',
    }),
  ),
  ADMIN_TOKENS: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_.-]{1,32}:[^,:\\s]{32,}(,[A-Za-z0-9_.-]{1,32}:[^,:\\s]{32,})*$',
      description:
        'named admin tokens `alice:token,ci:token` (32+ characters each); the name is the audit actor',
    }),
  ),
  ADMIN_REQUESTS_PER_IP_PER_MINUTE: Limit(
    60,
    'admin API requests per client IP per minute (also under RATE_LIMITS=off)',
  ),
  METRICS_TOKEN: Type.Optional(
    Type.String({
      minLength: 32,
      description: 'bearer token of GET /metrics on the web port (32+ characters)',
    }),
  ),
  METRICS_PORT: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 65535,
      description:
        'serve /metrics on a listener of its own at METRICS_HOST:METRICS_PORT (web and worker processes)',
    }),
  ),
  METRICS_HOST: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    description: 'address of the metrics listener',
  }),
  USER_ACTIONS_PER_IP_PER_MINUTE: Limit(30, 'user-centre requests per client IP per minute, per endpoint'),
  USER_ACTIONS_PER_USER_PER_MINUTE: Limit(20, 'user-centre requests per user per minute, per endpoint'),
  EMAIL_SENDS_PER_USER_PER_HOUR: Limit(5, 'verification emails per user per hour'),
  EMAIL_TOKEN_TTL_SECONDS: Seconds(86_400, 'life of an email verification link'),
  EMAIL_PROVIDER: Type.Union([Type.Literal('console'), Type.Literal('smtp')], {
    default: 'console',
    description: '`console` prints each verification link; `smtp` sends through SMTP_URL',
  }),
  SMTP_URL: Type.Optional(
    Type.String({
      pattern: '^smtps?://[^\\s]+$',
      description: '`smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465` (TLS)',
    }),
  ),
  EMAIL_FROM: Type.String({
    minLength: 3,
    default: '美多商城 <no-reply@localhost>',
    description: 'the From of every mail',
  }),
  SMTP_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 120_000,
    default: 10_000,
    description: 'connection, greeting and socket timeout of one SMTP send',
  }),
  EMAIL_VERIFY_URL: Type.Optional(
    Type.String({
      pattern: '^https?://[^\\s]+$',
      description:
        'verification link base (default `<PUBLIC_ORIGIN or http://HOST:PORT>/success_verify_email.html?token=`)',
    }),
  ),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' },
  ),
  TEST_CAPTCHA_ANSWER: Text('test mode: every image code also accepts this answer'),
  TEST_SMS_NUMBERS: Type.Optional(
    Type.String({
      pattern: '^1[3-9]\\d{9}:\\d{6}(,1[3-9]\\d{9}:\\d{6})*$',
      description: 'test mode: `13800000000:123456,…` fixed codes, no SMS sent',
    }),
  ),
  ALLOW_TEST_MODE: Bool(false, 'required for either test-mode setting'),
  // Each SMS vendor declares its own settings (src/adapters/sms-provider/<vendor>.ts).
  ...VENDOR_ENV,
});

type Settings = Static<typeof ConfigSchema>;

/** DATABASE_URL, parsed once: the embedded SQLite file or a server database's URL. */
export type DatabaseTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres' | 'mysql'; url: string };

/**
 * A Redis setting, parsed once: one server's URL, or the Sentinel deployment whose current
 * primary for `name` is asked for (at start and after every lost connection).
 */
export type RedisTarget =
  | { kind: 'standalone'; url: string }
  | {
      kind: 'sentinel';
      sentinels: Array<{ host: string; port: number }>;
      /** The master group name the sentinels monitor. */
      name: string;
      db: number;
      username?: string;
      password?: string;
      sentinelPassword?: string;
    };

type RedisSetting = 'REDIS_URL' | 'VERIFY_REDIS_URL' | 'SESSION_REDIS_URL' | 'QUEUE_REDIS_URL';

/** Validated settings with the derived defaults filled in. */
export type Config = Omit<Settings, 'DATABASE_URL' | 'HASH_CONCURRENCY' | RedisSetting> & {
  /** Hashes at once per web process (the setting, or cpuThreadsPerProcess()). */
  HASH_CONCURRENCY: number;
  /** Where the users live (DATABASE_URL, or the embedded default under DATA_DIR). */
  database: DatabaseTarget;
  /** Where codes, sessions and the queue live (each defaults to REDIS_URL); absent: SQLite, in-process. */
  redis: { verify?: RedisTarget; session?: RedisTarget; queue?: RedisTarget };
  providers: ProviderName[];
  /** The settings of each vendor SMS_PROVIDER names, checked at start. */
  sms: VendorSettings;
  csrfTrustedOrigins: string[];
  corsOrigins: string[];
  testSmsNumbers: Map<string, string>;
  testMode: boolean;
  /** ADMIN_TOKEN (named by its fingerprint) and ADMIN_TOKENS; empty: the admin API is off. */
  adminTokens: AdminToken[];
  /** Whether metrics are collected and served (METRICS_TOKEN or METRICS_PORT). */
  metricsEnabled: boolean;
  /** EMAIL_VERIFY_URL, or the default built from PUBLIC_ORIGIN / HOST / PORT. */
  emailVerifyUrl: string;
  /** Warnings to log at start-up (combinations that work but are rarely meant). */
  warnings: string[];
};

const SECRET = /SECRET|TOKEN|PASSWORD|KEY_ID|_KEY$|SMTP_URL/;
const ORIGIN = /^https?:\/\/[^/\s]+$/;

/** Reads a DATABASE_URL; throws ConfigError for a scheme the service does not speak. */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith('sqlite:')) return { kind: 'sqlite', path: url.slice('sqlite:'.length) };
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (/^(mysql|mariadb):\/\//.test(url)) return { kind: 'mysql', url };
  throw new ConfigError('Invalid setting DATABASE_URL: must start with sqlite:, postgres://, or mysql://');
}

const SENTINEL_URL =
  /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)\/([^/?#]+)(?:\/(\d+))?\/?(?:\?([^#]*))?$/;
const SENTINEL_HOST = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;
const REDIS_URL_FORMS =
  'must be redis://…, rediss://… or redis+sentinel://[[user]:password@]host:port[,host:port…]/master[/db]';

/**
 * Reads a Redis setting: `redis://` / `rediss://` for one server, or
 * `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db][?sentinel_password=…]`
 * (sentinel port 26379 by default; the password is the data nodes', sentinels have their own).
 */
export function parseRedisUrl(name: string, value: string): RedisTarget {
  const bad = (why = REDIS_URL_FORMS) => new ConfigError(`Invalid setting ${name}: ${why}`);
  if (/^rediss?:\/\/\S+$/.test(value)) return { kind: 'standalone', url: value };
  const m = SENTINEL_URL.exec(value);
  if (!m) throw bad();
  const [, user, password, hosts = '', master = '', db, query] = m;
  const sentinels = hosts.split(',').map((hostPort) => {
    const h = SENTINEL_HOST.exec(hostPort.trim());
    const port = Number(h?.[2] ?? 26379);
    if (!h?.[1] || port < 1 || port > 65535) throw bad(`"${hostPort}" is not a sentinel host:port`);
    return { host: h[1].replace(/^\[(.*)\]$/, '$1'), port };
  });
  const params = new URLSearchParams(query ?? '');
  for (const key of params.keys()) {
    if (key !== 'sentinel_password') throw bad(`unknown option "${key}" (known: sentinel_password)`);
  }
  const decode = (text: string | undefined) => (text ? decodeURIComponent(text) : undefined);
  return {
    kind: 'sentinel',
    sentinels,
    name: decodeURIComponent(master),
    db: db === undefined ? 0 : Number(db),
    username: decode(user),
    password: decode(password),
    sentinelPassword: params.get('sentinel_password') ?? undefined,
  };
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export interface AdminToken {
  /** Who the audit log names: the ADMIN_TOKENS name, or `token-` + a fingerprint of ADMIN_TOKEN. */
  id: string;
  token: string;
}

function adminTokens(single: string | undefined, named: string | undefined): AdminToken[] {
  const tokens: AdminToken[] = [];
  if (single !== undefined) {
    // A fingerprint names the token in the audit log without letting the log reveal it.
    const fingerprint = createHash('sha256').update(single).digest('hex').slice(0, 12);
    tokens.push({ id: `token-${fingerprint}`, token: single });
  }
  for (const pair of list(named ?? '')) {
    const at = pair.indexOf(':');
    tokens.push({ id: pair.slice(0, at), token: pair.slice(at + 1) });
  }
  if (new Set(tokens.map((t) => t.id)).size !== tokens.length) {
    throw new ConfigError('Invalid setting ADMIN_TOKENS: a name is listed twice');
  }
  if (new Set(tokens.map((t) => t.token)).size !== tokens.length) {
    throw new ConfigError('Invalid setting ADMIN_TOKENS: two names share one token');
  }
  return tokens;
}

/**
 * Threads of CPU work (captchas, hashes) per web process by default: the cores shared out among
 * the WEB_CONCURRENCY processes, rounded up, so the machine's cores are all used and not
 * grossly oversubscribed.
 */
export function cpuThreadsPerProcess(webConcurrency: number, cores = availableParallelism()): number {
  return Math.max(1, Math.ceil(cores / webConcurrency));
}

/** Validates the environment once; throws ConfigError naming the first bad setting. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(ConfigSchema.properties);
  const raw: Record<string, unknown> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value.trim();
  }
  const withDefaults = Value.Default(ConfigSchema, raw);
  const converted = Value.Convert(ConfigSchema, withDefaults) as Record<string, unknown>;
  const first = Value.Errors(ConfigSchema, converted)[0];
  if (first) {
    const name = first.instancePath.replace(/^\//, '') || '(settings)';
    const given = raw[name];
    const shown = given === undefined || SECRET.test(name) ? '' : ` (got ${JSON.stringify(given)})`;
    throw new ConfigError(`Invalid setting ${name}: ${first.message}${shown}`);
  }
  const s = converted as Settings;

  const database: DatabaseTarget =
    s.DATABASE_URL === undefined
      ? { kind: 'sqlite', path: join(s.DATA_DIR, 'meiduo.sqlite3') }
      : parseDatabaseUrl(s.DATABASE_URL);
  const redisTarget = (name: RedisSetting): RedisTarget | undefined => {
    const value = s[name] ?? (name === 'REDIS_URL' ? undefined : s.REDIS_URL);
    // A default taken from REDIS_URL is reported under REDIS_URL.
    return value === undefined ? undefined : parseRedisUrl(s[name] ? name : 'REDIS_URL', value);
  };
  redisTarget('REDIS_URL');
  const redis = {
    verify: redisTarget('VERIFY_REDIS_URL'),
    session: redisTarget('SESSION_REDIS_URL'),
    queue: redisTarget('QUEUE_REDIS_URL'),
  };
  const origins = (name: 'CSRF_TRUSTED_ORIGINS' | 'CORS_ORIGINS'): string[] => {
    const values = list(s[name]);
    for (const o of values) {
      if (o === '*' || !ORIGIN.test(o)) {
        throw new ConfigError(`Invalid setting ${name}: "${o}" is not an origin like http://host:port`);
      }
    }
    return values;
  };
  if (s.PUBLIC_ORIGIN !== undefined && !ORIGIN.test(s.PUBLIC_ORIGIN)) {
    throw new ConfigError('Invalid setting PUBLIC_ORIGIN: must be an origin like https://host:port');
  }
  const testSmsNumbers = new Map(
    list(s.TEST_SMS_NUMBERS ?? '').map((pair) => pair.split(':') as [string, string]),
  );
  const testMode = s.TEST_CAPTCHA_ANSWER !== undefined || testSmsNumbers.size > 0;
  if (testMode && !s.ALLOW_TEST_MODE) {
    const name = s.TEST_CAPTCHA_ANSWER !== undefined ? 'TEST_CAPTCHA_ANSWER' : 'TEST_SMS_NUMBERS';
    throw new ConfigError(`Invalid setting ${name}: test mode needs ALLOW_TEST_MODE=true`);
  }
  const providers = list(s.SMS_PROVIDER) as ProviderName[];
  if (new Set(providers).size !== providers.length) {
    throw new ConfigError('Invalid setting SMS_PROVIDER: a provider is listed twice');
  }

  if (s.SMS_DECISION_MOBILE === 'hashed' && s.SMS_DECISION_HASH_KEY === undefined) {
    throw new ConfigError('Invalid setting SMS_DECISION_HASH_KEY: required when SMS_DECISION_MOBILE=hashed');
  }
  if (!s.RUN_WORKER && !redis.queue) {
    throw new ConfigError(
      'Invalid setting RUN_WORKER: false needs the queue in Redis (REDIS_URL or QUEUE_REDIS_URL)',
    );
  }
  if (s.EMAIL_PROVIDER === 'smtp' && s.SMTP_URL === undefined) {
    throw new ConfigError('Invalid setting SMTP_URL: required when EMAIL_PROVIDER=smtp');
  }
  // Never from a request's Host header: a forged Host would make the mail a phishing link.
  const ownHost = s.HOST === '0.0.0.0' || s.HOST === '::' ? '127.0.0.1' : s.HOST;
  const emailVerifyUrl =
    s.EMAIL_VERIFY_URL ??
    `${s.PUBLIC_ORIGIN ?? `http://${ownHost.includes(':') ? `[${ownHost}]` : ownHost}:${s.PORT}`}/success_verify_email.html?token=`;
  const config: Config = {
    ...s,
    HASH_CONCURRENCY: s.HASH_CONCURRENCY ?? cpuThreadsPerProcess(s.WEB_CONCURRENCY),
    database,
    redis,
    providers,
    sms: vendorSettings(providers, s),
    csrfTrustedOrigins: origins('CSRF_TRUSTED_ORIGINS'),
    corsOrigins: origins('CORS_ORIGINS'),
    testSmsNumbers,
    testMode,
    adminTokens: adminTokens(s.ADMIN_TOKEN, s.ADMIN_TOKENS),
    metricsEnabled: s.METRICS_TOKEN !== undefined || s.METRICS_PORT !== undefined,
    emailVerifyUrl,
    warnings: [],
  };
  const targets = [redis.verify, redis.session, redis.queue];
  const anyRedis = targets.some((t) => t !== undefined);
  if (targets.some((t) => t?.kind === 'sentinel') && s.REDIS_WAIT_REPLICAS === 0) {
    config.warnings.push(
      'Redis Sentinel with REDIS_WAIT_REPLICAS=0: a failover may lose the codes and SMS jobs of the last moments (docs/production.md)',
    );
  }
  if (anyRedis && database.kind === 'sqlite') {
    config.warnings.push('Redis is configured but users are in SQLite: users stay on this one machine');
  }
  if (anyRedis && providers.includes('console')) {
    config.warnings.push('the console SMS provider is used with Redis: SMS codes are printed to the log');
  }
  if (testMode) {
    config.warnings.push('TEST MODE is on (TEST_CAPTCHA_ANSWER / TEST_SMS_NUMBERS): never in production');
  }
  if (s.RATE_LIMITS === 'off') {
    config.warnings.push('RATE_LIMITS=off: per-IP, per-day and global limits are switched off');
  }
  config.warnings.push(...missingTemplateWarnings(providers, config.sms));
  return config;
}
