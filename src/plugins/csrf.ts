import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { csrfSecretOf, csrfTokenMatches, maskCsrfSecret, newCsrfSecret } from '../domain/csrf.js';

export const CSRF_COOKIE = 'csrftoken';
const CSRF_COOKIE_MAX_AGE = 31_449_600; // 52 weeks, as Django
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export interface CsrfOptions {
  enabled: boolean;
  cookieSecure: boolean;
  publicOrigin: string | undefined;
  trustedOrigins: string[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: the route authenticates by a header alone and is exempt from the CSRF check. */
    csrf?: boolean;
  }
  interface FastifyReply {
    /** Sets the csrftoken cookie to `secret` and returns a freshly masked token of it. */
    issueCsrfToken(secret: string): string;
  }
  interface FastifyRequest {
    /** The secret of the request's csrftoken cookie, or null. */
    csrfSecret(): string | null;
  }
}

/** The origin this request was addressed to, as a browser would write it in `Origin`. */
function ownOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

/** Django's CSRF check with the Origin check of Django 4+ (API.md §2 GET /csrf_token/). */
export const csrf = fp(
  async (app: FastifyInstance, opts: CsrfOptions) => {
    app.decorateRequest('csrfSecret', function (this: FastifyRequest) {
      return csrfSecretOf(this.cookies[CSRF_COOKIE]);
    });
    app.decorateReply('issueCsrfToken', function (this: FastifyReply, secret: string) {
      this.setCookie(CSRF_COOKIE, secret, {
        path: '/',
        maxAge: CSRF_COOKIE_MAX_AGE,
        sameSite: 'lax',
        secure: opts.cookieSecure,
        httpOnly: false,
      });
      this.header('Vary', 'Cookie');
      return maskCsrfSecret(secret);
    });

    if (!opts.enabled) return;
    const trusted = new Set(opts.trustedOrigins);
    app.addHook('onRequest', async (request, reply) => {
      // Unknown paths and methods answer 404/405 whatever the token, as Django does.
      if (SAFE_METHODS.has(request.method) || request.is404) return;
      // Routes that read no cookie (the bearer-token admin API) opt out: nothing ambient to forge.
      if (request.routeOptions.config.csrf === false) return;
      const origin = request.headers.origin;
      if (origin !== undefined) {
        const expected = opts.publicOrigin ?? ownOrigin(request);
        if (origin !== expected && !trusted.has(origin)) {
          request.log.info({ origin }, 'csrf: origin refused');
          return reply.sendError('CSRF_FAILED');
        }
      }
      const header = request.headers['x-csrftoken'];
      if (!csrfTokenMatches(typeof header === 'string' ? header : undefined, request.cookies[CSRF_COOKIE])) {
        request.log.info('csrf: token missing or incorrect');
        return reply.sendError('CSRF_FAILED');
      }
    });
  },
  { name: 'csrf', dependencies: ['envelope'] },
);

/** A new secret for login/registration (Django's rotate_token). */
export function rotateCsrf(reply: FastifyReply): string {
  return reply.issueCsrfToken(newCsrfSecret());
}
