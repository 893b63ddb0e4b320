import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { app } from './app.js';
import type { Config } from './config.js';
import type { Deps } from './deps.js';

export const BODY_LIMIT_BYTES = 16 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

type TrustProxy = boolean | string[] | ((address: string, hop: number) => boolean);

/** TRUST_PROXY: `true`, a hop count, or a comma list of proxy addresses/CIDRs. */
function trustProxy(value: string | undefined): TrustProxy {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    return (_address, hop) => hop < hops;
  }
  return value.split(',').map((s) => s.trim());
}

export interface BuildOptions {
  /** Where the built pages are (default web/dist); tests build theirs elsewhere. */
  pagesDir?: string;
}

/** Fastify with the service's options and request-id hook, before any route: also the bench's ceiling. */
export function createFastify(config: Pick<Config, 'TRUST_PROXY'>, log: Logger): FastifyInstance {
  const fastify = Fastify({
    // pino's Logger carries generics FastifyBaseLogger does not; the object is the same.
    loggerInstance: log as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: trustProxy(config.TRUST_PROXY),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    requestTimeout: 30_000,
    // A caller's own request id is kept when it is a sane token; else a fresh one.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });
  return fastify;
}

/** One Fastify options object for production and tests; the app is a plugin on top. */
export async function buildServer(
  config: Config,
  deps: Deps,
  log: Logger,
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const fastify = createFastify(config, log);
  await fastify.register(app, { config, deps, pagesDir: options.pagesDir });
  return fastify;
}
