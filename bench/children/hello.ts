/**
 * The ceiling of one HTTP request here: Fastify with the same options as src/build.ts (the
 * service's pino logger at the same level, writing every request to stdout, request ids,
 * the X-Request-Id hook, body limit, router options) and one route answering a small JSON.
 */
import { createFastify } from '../../src/build.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

const config = loadConfig(process.env);
const fastify = createFastify(config, createLogger(config));
fastify.get('/hello/', async () => ({ code: 0, message: 'OK', hello: 'world' }));
await fastify.listen({ host: config.HOST, port: config.PORT });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => void fastify.close().then(() => process.exit(0)));
}
