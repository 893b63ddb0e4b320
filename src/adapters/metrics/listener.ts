/**
 * METRICS_PORT: GET /metrics on a listener of its own (node:http, no Fastify), for the web and
 * the worker processes alike, so a scraper reaches it on an address the public never sees
 * (METRICS_HOST, default 127.0.0.1). With METRICS_TOKEN set it asks for that token too.
 *
 * Under node:cluster, call joinClusterMetrics() in each worker and startMetricsListener() with
 * `cluster: true` in the primary only: the primary then answers with every worker's metrics
 * merged (prom-client's AggregatorRegistry: counters and histograms summed, the shared queue's
 * depth by max). Without cluster each process is scraped on its own port.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { bearerToken, secretEquals } from '../../domain/admin.js';
import type { Metrics } from './prometheus.js';

export interface MetricsListenerOptions {
  host: string;
  port: number;
  token: string | undefined;
  log: Logger;
  /** This process's metrics; absent in a cluster primary, which aggregates its workers'. */
  metrics?: Metrics;
  cluster?: boolean;
}

/** In a cluster worker: answer the primary's requests for this process's metrics. */
export function joinClusterMetrics(metrics: Metrics): void {
  // prom-client adds the worker's IPC listener when an AggregatorRegistry is made, not on
  // setRegistries: without this the primary's requests time out.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics.registry]);
}

export async function startMetricsListener(options: MetricsListenerOptions): Promise<Server> {
  const { token, log } = options;
  const aggregator = options.cluster ? new AggregatorRegistry() : undefined;
  const render = async (): Promise<[string, string]> => {
    if (aggregator) return [aggregator.contentType, await aggregator.clusterMetrics()];
    if (!options.metrics) throw new Error('no metrics to serve');
    return [options.metrics.registry.contentType, await options.metrics.registry.metrics()];
  };
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (token !== undefined) {
      const given = bearerToken(request.headers.authorization);
      if (given === null || !secretEquals(given, token)) {
        response
          .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="metrics"' })
          .end('unauthorized\n');
        return;
      }
    }
    render().then(
      ([type, body]) => {
        response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
      },
      (err: unknown) => {
        log.error({ err }, 'metrics: collecting failed');
        response.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  log.info({ host: options.host, port: options.port }, 'metrics listener ready');
  return server;
}
