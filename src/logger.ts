import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.js';
import { stdoutSink } from './stdout.js';

/** Query values that are secrets: the captcha answer. Redacted before a URL is logged. */
const SECRET_QUERY = /([?&](?:image_code)=)[^&]*/g;

export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]');
}

/**
 * A person at a terminal reads colored one-line logs (pino-pretty, loaded only then, written
 * synchronously); anything else (systemd, a container, a pipe to a collector) gets the JSON
 * lines through the shared standard output (stdout.ts).
 */
function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  // Typed here rather than through its .d.ts: the module is loaded only in a terminal.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => DestinationStream;
  return pretty({
    colorize: destination === undefined,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    sync: true,
    ...(destination ? { destination } : {}),
  });
}

/**
 * Structured JSON logs (readable ones when stdout is a terminal, or with `pretty`). Cookies,
 * CSRF tokens and the captcha answer never reach a line; SMS codes are never passed to the
 * logger at all (only the console provider prints them).
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'>,
  destination?: DestinationStream,
  { pretty = destination === undefined && process.stdout.isTTY === true }: { pretty?: boolean } = {},
): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      // pid: which of the web processes (WEB_CONCURRENCY) wrote the line.
      base: { service: 'meiduo-users', pid: process.pid },
      redact: {
        paths: [
          'req.headers.cookie',
          'req.headers["x-csrftoken"]',
          'req.headers.authorization',
          'res.headers["set-cookie"]',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
          method: req.method,
          url: redactUrl(req.url),
          ip: req.ip,
        }),
        err: pino.stdSerializers.err,
      },
    },
    pretty ? prettyStream(destination) : (destination ?? (stdoutSink() as DestinationStream)),
  );
}
