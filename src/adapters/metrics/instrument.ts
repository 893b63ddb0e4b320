/**
 * Decorators that feed the metrics from the ports' edges, so the domain and the adapters stay
 * free of metric calls: each wraps a port and returns the same port.
 */
import type { Config } from '../../config.js';
import type { Deps } from '../../deps.js';
import type { DecisionRecorder } from '../../domain/decision-records.js';
import type { CaptchaRenderer, JobQueue, PasswordHasher, SmsProvider } from '../../domain/ports.js';
import { createMetrics, type Metrics } from './prometheus.js';

const seconds = (startNs: bigint) => Number(process.hrtime.bigint() - startNs) / 1e9;

async function timed<T>(observe: (s: number) => void, step: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    return await step();
  } finally {
    observe(seconds(start));
  }
}

export function instrumentHasher(inner: PasswordHasher, m: Metrics): PasswordHasher {
  const op = (name: string) => (s: number) => m.hashSeconds.observe({ op: name }, s);
  return {
    hash: (password) => timed(op('hash'), () => inner.hash(password)),
    verify: (password, encoded) => timed(op('verify'), () => inner.verify(password, encoded)),
    burn: (password) => timed(op('burn'), () => inner.burn(password)),
  };
}

export function instrumentCaptcha(inner: CaptchaRenderer, m: Metrics): CaptchaRenderer {
  return {
    render: (text) =>
      timed(
        (s) => m.captchaSeconds.observe(s),
        () => inner.render(text),
      ),
  };
}

/** Per vendor attempt; with failover the outcome names the last vendor tried. */
export function instrumentSms(inner: SmsProvider, m: Metrics): SmsProvider {
  return {
    name: inner.name,
    async send(message) {
      const start = process.hrtime.bigint();
      const outcome = await inner.send(message);
      m.vendorSeconds.observe({ vendor: outcome.provider }, seconds(start));
      m.smsSends.inc({ vendor: outcome.provider, outcome: outcome.kind });
      return outcome;
    },
  };
}

/** The worker's handler, timed from the job's enqueue to the end of each attempt. */
export function instrumentQueue(inner: JobQueue, m: Metrics, nowMs: () => number): JobQueue {
  return {
    ...inner,
    startWorker(handler, concurrency) {
      inner.startWorker(async (job, info) => {
        let outcome = 'transient';
        try {
          const result = await handler(job, info);
          outcome = result.kind;
          return result;
        } finally {
          if (info.enqueuedAtMs !== undefined) {
            m.jobs.observe({ outcome }, Math.max(0, nowMs() - info.enqueuedAtMs) / 1000);
          }
        }
      }, concurrency);
    },
  };
}

/** Each SMS request's decision, whether or not records are kept (SMS_DECISION_RETENTION_DAYS=0). */
export function instrumentDecisions(inner: DecisionRecorder, m: Metrics): DecisionRecorder {
  return {
    ...inner,
    decide(input) {
      m.smsDecisions.inc({ decision: input.decision, rule: input.rule ?? '' });
      return inner.decide(input);
    },
  };
}

/** The same dependencies, measured; `metrics` holds the registry the endpoints serve. */
export function instrumentDeps(deps: Deps, config: Pick<Config, 'redis'>): Deps {
  const metrics = createMetrics({
    queueCounts: () => deps.queue.counts(),
    sharedQueue: config.redis.queue !== undefined,
  });
  return {
    ...deps,
    metrics,
    hasher: instrumentHasher(deps.hasher, metrics),
    captcha: instrumentCaptcha(deps.captcha, metrics),
    sms: instrumentSms(deps.sms, metrics),
    // Date.now: the queues stamp enqueue times with the real clock, whatever the app's clock.
    queue: instrumentQueue(deps.queue, metrics, Date.now),
    decisions: instrumentDecisions(deps.decisions, metrics),
  };
}
