import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Headers every answer carries; pages get their CSP from the static plugin. */
export const securityHeaders = fp(
  async (app: FastifyInstance) => {
    app.addHook('onSend', async (_request, reply) => {
      reply.header('X-Content-Type-Options', 'nosniff');
      reply.header('X-Frame-Options', 'DENY');
      reply.header('Referrer-Policy', 'same-origin');
      reply.header('Cross-Origin-Opener-Policy', 'same-origin');
      if (!reply.hasHeader('Cache-Control') && !reply.raw.hasHeader('Cache-Control')) {
        reply.header('Cache-Control', 'no-store');
      }
    });
  },
  { name: 'security-headers' },
);
