/**
 * The ceiling of one HTTP request here: Fastify with the same options as src/build.ts (the
 * service's pino logger at the same level, writing every request to stdout, request ids,
 * the X-Request-Id hook, body limit, router options) and one route answering a small JSON.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { BODY_LIMIT_BYTES } from '../../src/build.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const config = loadConfig(process.env);
const log = createLogger(config);
const fastify = Fastify({
  loggerInstance: log as unknown as FastifyBaseLogger,
  bodyLimit: BODY_LIMIT_BYTES,
  trustProxy: false,
  routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
  requestTimeout: 30_000,
  requestIdHeader: false,
  genReqId: (req) => {
    const given = req.headers['x-request-id'];
    return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  },
});
fastify.addHook('onRequest', async (request, reply) => {
  reply.header('X-Request-Id', request.id);
});
fastify.get('/hello/', async () => ({ code: 0, message: 'OK', hello: 'world' }));
await fastify.listen({ host: config.HOST, port: config.PORT });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => void fastify.close().then(() => process.exit(0)));
}
