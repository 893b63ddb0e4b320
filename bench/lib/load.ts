/** autocannon runs, summarised as the report needs them. */
import autocannon, { type RequestSpec, type Result } from 'autocannon';

export interface LoadSummary {
  /** Completed requests per second over the measured time (all statuses). */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Non-2xx answers, connection errors and timeouts together: should be 0. */
  errors: number;
  non2xx: number;
  seconds: number;
}

export interface LoadOptions {
  url: string;
  requests: RequestSpec[];
  connections: number;
  durationSeconds: number;
  /** Fixed request rate (requests/s over all connections); none = as fast as answered. */
  overallRate?: number;
}

export function summarise(result: Result): LoadSummary {
  const requests = result.requests.total;
  return {
    requestsPerSecond: requests / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests,
    errors: result.non2xx + result.errors + result.timeouts,
    non2xx: result.non2xx,
    seconds: result.duration,
  };
}

export async function load(options: LoadOptions): Promise<LoadSummary> {
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    pipelining: 1,
    timeout: 30,
    requests: options.requests,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
  });
  return summarise(await instance);
}
