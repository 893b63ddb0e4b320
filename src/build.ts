import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { app } from './app.js';
import type { Config } from './config.js';
import type { Deps } from './deps.js';
import type { ErrorId } from './domain/errors.js';
import { errorAnswer } from './plugins/envelope.js';

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

/**
 * One access line per request at `info`, when the response is done, instead of Fastify's two
 * (incoming + completed): request id (the child logger's reqId), method, url with the captcha
 * answer redacted and client ip (the req serializer), status, milliseconds to the last byte.
 */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: Parameters<LogController['requestCompleted']>[1],
    reply: Parameters<LogController['requestCompleted']>[2],
  ): void {
    const line = { req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

export interface BuildOptions {
  /** Where the built pages are (default web/dist); tests build theirs elsewhere. */
  pagesDir?: string;
}

/** How often Node looks for requests past their timeout: the most a 408 can come late. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;

/** The connection-level failures Node's parser reports (API.md §5), as their error ids. */
function clientErrorId(err: NodeJS.ErrnoException): ErrorId {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'REQUEST_TIMEOUT';
    case 'HPE_HEADER_OVERFLOW':
      return 'HEADERS_TOO_LARGE';
    default:
      return 'BAD_REQUEST';
  }
}

/**
 * Answers what Node's HTTP parser refuses before there is a request (malformed request line
 * or headers, headers over 16 KiB, a request slower than REQUEST_TIMEOUT_MS) with the
 * envelope, written on the socket, which is then closed. These answers keep their status in
 * both error modes: there is no request to fold them into.
 */
function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const id = clientErrorId(err);
  this.log.debug({ code: err.code, error: err.message }, 'client error');
  const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !started?.headersSent) {
    const { status, body } = errorAnswer(id, 'http');
    const json = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(json)}\r\n` +
        'Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n' +
        json,
    );
  }
  socket.destroy();
}

/** Fastify with the service's options and request-id hook, before any route: also the bench's ceiling. */
export function createFastify(
  config: Pick<Config, 'TRUST_PROXY' | 'ERROR_STATUS_MODE' | 'REQUEST_TIMEOUT_MS'>,
  log: Logger,
): FastifyInstance {
  const fastify = Fastify({
    // pino's Logger carries generics FastifyBaseLogger does not; the object is the same.
    loggerInstance: log as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: trustProxy(config.TRUST_PROXY),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    http: {
      // Headers count against the same budget; Node checks every second, not every 30 s.
      headersTimeout: Math.min(config.REQUEST_TIMEOUT_MS, 60_000),
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    clientErrorHandler: answerClientError,
    // A path value over maxParamLength or a malformed %-escape, found by the router before
    // any route or hook: the envelope, like every other answer.
    frameworkErrors: (error, request, reply) => {
      const id: ErrorId = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URI_TOO_LONG' : 'BAD_REQUEST';
      const { status, body } = errorAnswer(id, config.ERROR_STATUS_MODE);
      return (reply as FastifyReply).code(status).header('X-Request-Id', request.id).send(body);
    },
    logController: new AccessLog(),
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
