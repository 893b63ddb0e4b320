/**
 * Prometheus metrics (docs/operations.md "Metrics"). Nothing here is imported by the domain:
 * the counters are fed by decorators around the ports (hasher, captcha renderer, SMS provider,
 * queue worker, decision recorder; see instrument.ts) and by the HTTP plugin's hooks
 * (plugins/metrics.ts). Each process has its own registry; with node:cluster the primary
 * answers for all of its workers through prom-client's AggregatorRegistry (listener.ts).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { QueueCounts } from '../../domain/ports.js';

/** Seconds: from a fast captcha (~ms) to a slow vendor (SMS_TIMEOUT_MS is 5 s by default). */
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Job latency runs to minutes when retries back off. */
const JOB_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

export interface MetricsOptions {
  /** Where the queue depth comes from (read at scrape time). */
  queueCounts?: () => Promise<QueueCounts>;
  /**
   * The queue is shared by every process (BullMQ): each reports the same depth, so a cluster
   * aggregates it with `max`; an in-process queue per process sums.
   */
  sharedQueue: boolean;
}

export function createMetrics(options: MetricsOptions) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const register = [registry];

  const http = new Histogram({
    name: 'meiduo_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status, with their duration',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: SECONDS,
    registers: register,
  });
  const errors = new Counter({
    name: 'meiduo_http_errors_total',
    help: 'Error answers by route pattern and error id (both ERROR_STATUS_MODEs)',
    labelNames: ['route', 'error'] as const,
    registers: register,
  });
  const refusals = new Counter({
    name: 'meiduo_limit_refusals_total',
    help: 'Requests refused by a limit or quota (the 429 error ids)',
    labelNames: ['error'] as const,
    registers: register,
  });
  const smsDecisions = new Counter({
    name: 'meiduo_sms_requests_total',
    help: 'SMS requests past the captcha by decision (sent, refused, failed) and rule',
    labelNames: ['decision', 'rule'] as const,
    registers: register,
  });
  const smsSends = new Counter({
    name: 'meiduo_sms_sends_total',
    help: 'Vendor send attempts by vendor and outcome (ok, transient, invalid_number, …)',
    labelNames: ['vendor', 'outcome'] as const,
    registers: register,
  });
  const vendorSeconds = new Histogram({
    name: 'meiduo_sms_vendor_duration_seconds',
    help: 'Duration of one vendor send attempt',
    labelNames: ['vendor'] as const,
    buckets: SECONDS,
    registers: register,
  });
  const jobs = new Histogram({
    name: 'meiduo_sms_job_latency_seconds',
    help: 'From enqueue to the end of each attempt, by the attempt outcome',
    labelNames: ['outcome'] as const,
    buckets: JOB_SECONDS,
    registers: register,
  });
  const hashSeconds = new Histogram({
    name: 'meiduo_password_hash_duration_seconds',
    help: 'Password hashing by operation (hash, verify, burn), queueing for a hash slot included',
    labelNames: ['op'] as const,
    buckets: SECONDS,
    registers: register,
  });
  const captchaSeconds = new Histogram({
    name: 'meiduo_captcha_render_duration_seconds',
    help: 'Rendering one captcha image',
    buckets: SECONDS,
    registers: register,
  });
  const queueUp = new Gauge({
    name: 'meiduo_queue_up',
    help: '1 when the queue answered the depth query of this scrape, else 0',
    aggregator: 'min',
    registers: register,
  });
  const queueCounts = options.queueCounts;
  new Gauge({
    name: 'meiduo_queue_jobs',
    help: 'SMS jobs by state (waiting, active, delayed, failed), read at scrape time',
    labelNames: ['state'] as const,
    aggregator: options.sharedQueue ? 'max' : 'sum',
    registers: register,
    async collect() {
      this.reset();
      if (!queueCounts) return;
      try {
        const counts = await queueCounts();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        queueUp.set(1);
      } catch {
        queueUp.set(0);
      }
    },
  });

  return {
    registry,
    http,
    errors,
    refusals,
    smsDecisions,
    smsSends,
    vendorSeconds,
    jobs,
    hashSeconds,
    captchaSeconds,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
