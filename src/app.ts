import { randomInt } from 'node:crypto';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Deps } from './deps.js';
import { type Accounts, createAccounts } from './domain/accounts.js';
import { createAdminAuth } from './domain/admin.js';
import { createEmailBinding, createEmailTokens } from './domain/email-binding.js';
import { createLimiter } from './domain/limits.js';
import { createMobileChange } from './domain/mobile-change.js';
import { createPasswordChange } from './domain/password-change.js';
import { createPasswordReset } from './domain/password-reset.js';
import { sendsPurpose } from './domain/ports.js';
import { createRegistration } from './domain/registration.js';
import { createSessions } from './domain/sessions-list.js';
import { createPurposeCodes } from './domain/sms-purposes.js';
import { createVerification } from './domain/verification.js';
import { createOutageLog } from './outages.js';
import { admin } from './plugins/admin.js';
import { csrf } from './plugins/csrf.js';
import { envelope } from './plugins/envelope.js';
import { metricsPlugin } from './plugins/metrics.js';
import { notFound } from './plugins/not-found.js';
import { openapi } from './plugins/openapi.js';
import { securityHeaders } from './plugins/security-headers.js';
import { staticPages } from './plugins/static-pages.js';
import { OPERATIONS_ADMIN_ROUTES } from './routes/admin.js';
import { adminSmsRoutes } from './routes/admin-sms.js';
import { csrfRoutes } from './routes/csrf.js';
import { healthRoutes } from './routes/health.js';
import { userCentreRoutes } from './routes/user-centre.js';
import { userRoutes } from './routes/users.js';
import { verificationRoutes } from './routes/verifications.js';

/** Headers a cross-origin front end may send (django-cors-headers' defaults). */
const CORS_HEADERS = [
  'accept',
  'authorization',
  'content-type',
  'user-agent',
  'x-csrftoken',
  'x-requested-with',
];

/** The root plugin: plugins in explicit order, then routes, then the 404/405 handler. */
export async function app(
  fastify: FastifyInstance,
  opts: { config: Config; deps: Deps; pagesDir?: string | undefined },
) {
  const { config, deps } = opts;
  const { codeStore, clock } = deps;

  const outages = createOutageLog(fastify.log as unknown as Logger, {
    database: () => deps.users.ping(),
    'code-store': () => deps.codeStore.ping(),
    'session-store': () => deps.sessionStore.ping(),
    queue: () => deps.queue.ping(),
    // A dead pool thread is replaced at once; the next task shows whether that helped.
    'cpu-pool': async () => {},
  });
  fastify.addHook('onClose', async () => outages.close());
  await fastify.register(envelope, { mode: config.ERROR_STATUS_MODE, outages });
  // Before every route: the OpenAPI document collects routes as they are registered.
  await fastify.register(openapi, { mode: config.ERROR_STATUS_MODE });
  if (deps.metrics)
    await fastify.register(metricsPlugin, { metrics: deps.metrics, token: config.METRICS_TOKEN });
  // Bodies are application/json only (API.md §1). Fastify also parses text/plain, the type a
  // cross-site form sends without a preflight: without its parser such a body is refused by
  // its type (415) before it is read.
  fastify.removeContentTypeParser('text/plain');
  await fastify.register(securityHeaders);

  await fastify.register(cookie);
  if (config.corsOrigins.length > 0) {
    await fastify.register(cors, {
      origin: config.corsOrigins,
      credentials: true,
      methods: ['DELETE', 'GET', 'OPTIONS', 'PATCH', 'POST', 'PUT'],
      allowedHeaders: CORS_HEADERS,
      exposedHeaders: ['Retry-After', 'X-Request-Id'],
      maxAge: 86_400,
    });
  }
  await fastify.register(csrf, {
    enabled: config.CSRF_ENABLED,
    cookieSecure: config.COOKIE_SECURE,
    publicOrigin: config.PUBLIC_ORIGIN,
    trustedOrigins: config.csrfTrustedOrigins,
  });
  await fastify.register(notFound);

  const limiter = createLimiter({ codeStore, clock, enabled: config.RATE_LIMITS === 'on' });
  // A database without the lists (migration 002 not run yet) logs and serves with none.
  await deps.smsLists.reload();
  const verification = createVerification({
    codeStore,
    clock,
    lists: deps.smsLists,
    decisions: deps.decisions,
    log: fastify.log,
    queue: deps.queue,
    captcha: deps.captcha,
    settings: config,
  });
  const registration = createRegistration({
    codeStore,
    clock,
    users: deps.users,
    hasher: deps.hasher,
    settings: config,
  });
  const accounts = createAccounts({
    codeStore,
    clock,
    users: deps.users,
    hasher: deps.hasher,
    sessionStore: deps.sessionStore,
    settings: config,
  });

  const sessions = createSessions({ accounts, sessionStore: deps.sessionStore, clock });

  await fastify.register(staticPages, { dir: opts.pagesDir });
  await fastify.register(healthRoutes, { deps, testMode: config.testMode });
  await fastify.register(csrfRoutes);
  await fastify.register(verificationRoutes, { verification });
  await fastify.register(userRoutes, {
    registration,
    accounts,
    users: deps.users,
    limiter,
    sessions,
    countLimitPerMinute: config.COUNT_LOOKUPS_PER_IP_PER_MINUTE,
    cookieSecure: config.COOKIE_SECURE,
  });
  // The admin API exists only with a token (docs/api.md §10); its limit holds under RATE_LIMITS=off too.
  if (config.adminTokens.length > 0) {
    await fastify.register(admin, {
      prefix: '/admin',
      deps,
      config,
      auth: createAdminAuth(config.adminTokens),
      audit: deps.audit,
      limiter: createLimiter({ codeStore, clock, enabled: true }),
      perIpPerMinute: config.ADMIN_REQUESTS_PER_IP_PER_MINUTE,
      routes: [...OPERATIONS_ADMIN_ROUTES, adminSmsRoutes],
    });
  }
  await fastify.register(userCentreRoutes, {
    ...userCentre(config, deps, accounts, fastify.log),
    sessions,
    limiter,
    perIpPerMinute: config.USER_ACTIONS_PER_IP_PER_MINUTE,
    perUserPerMinute: config.USER_ACTIONS_PER_USER_PER_MINUTE,
    cookieSecure: config.COOKIE_SECURE,
  });
}

/** The user centre's domain modules (issue 12), built from the same deps as the rest. */
function userCentre(config: Config, deps: Deps, accounts: Accounts, log: FastifyBaseLogger) {
  const { codeStore, clock, users, hasher, sessionStore } = deps;
  const codes = createPurposeCodes({
    codeStore,
    clock,
    queue: deps.queue,
    settings: config,
    newSmsCode: () => String(randomInt(0, 1_000_000)).padStart(6, '0'),
    lists: deps.smsLists,
    decisions: deps.decisions,
    log,
    canSend: (purpose) => sendsPurpose(deps.sms, purpose),
  });
  const tokens = createEmailTokens({ codeStore, ttlSeconds: config.EMAIL_TOKEN_TTL_SECONDS });
  return {
    emailBinding: createEmailBinding({
      users,
      codeStore,
      clock,
      tokens,
      emailQueue: deps.emailQueue,
      settings: config,
    }),
    passwordChange: createPasswordChange({ accounts, users, hasher, sessionStore }),
    passwordReset: createPasswordReset({ users, hasher, sessionStore, codes, settings: config }),
    mobileChange: createMobileChange({ accounts, users, queue: deps.queue, codes, log, settings: config }),
  };
}
