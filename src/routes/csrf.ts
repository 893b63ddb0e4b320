import type { FastifyInstance } from 'fastify';
import { newCsrfSecret } from '../domain/csrf.js';
import { ok } from '../plugins/envelope.js';

/** GET /csrf_token/: a freshly masked token of the cookie's secret (a new secret if none). */
export async function csrfRoutes(app: FastifyInstance) {
  app.get('/csrf_token/', async (request, reply) => {
    const secret = request.csrfSecret() ?? newCsrfSecret();
    return ok('OK', { csrf_token: reply.issueCsrfToken(secret) });
  });
}
