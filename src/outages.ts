import type { Logger } from 'pino';
import { withDeadline } from './deadline.js';
import type { DependencyError } from './domain/errors.js';

export type Dependency = DependencyError['dependency'];

/** How often a dependency known to be down is probed, to say when it is back. */
const PROBE_INTERVAL_MS = 1000;
const PROBE_TIMEOUT_MS = 2000;

/**
 * Logs dependency failures without flooding: the first failure of an outage is logged with
 * its stack; while the dependency is known to be down each failed request gets one short line
 * (no stack); a probe then pings it every second and one line says when it is back, with how
 * many requests failed meanwhile. (An 8 s Redis pause wrote 265 stack traces before this.)
 */
export function createOutageLog(log: Logger, probes: Record<Dependency, () => Promise<void>>) {
  const down = new Map<Dependency, { sinceMs: number; failures: number; timer: NodeJS.Timeout }>();

  const watch = (dependency: Dependency) => {
    let probing = false;
    const timer = setInterval(() => {
      if (probing) return;
      probing = true;
      withDeadline(probes[dependency](), PROBE_TIMEOUT_MS, `${dependency} probe`)
        .then(() => {
          const outage = down.get(dependency);
          if (!outage) return;
          clearInterval(outage.timer);
          down.delete(dependency);
          log.info(
            { dependency, failedRequests: outage.failures, downForMs: Date.now() - outage.sinceMs },
            'dependency recovered',
          );
        })
        .catch(() => {})
        .finally(() => {
          probing = false;
        });
    }, PROBE_INTERVAL_MS);
    timer.unref();
    return timer;
  };

  return {
    /** A request failed because `dependency` did; `requestLog` carries the request id. */
    failed(dependency: Dependency, cause: unknown, requestLog: Logger): void {
      const outage = down.get(dependency);
      if (outage) {
        outage.failures++;
        const error = cause instanceof Error ? cause.message : String(cause);
        requestLog.warn({ dependency, error }, 'dependency still unavailable');
        return;
      }
      requestLog.error(
        { err: cause, dependency },
        'dependency failed; until it recovers, failures are logged in one line without a stack',
      );
      down.set(dependency, { sinceMs: Date.now(), failures: 1, timer: watch(dependency) });
    },
    close(): void {
      for (const outage of down.values()) clearInterval(outage.timer);
      down.clear();
    },
  };
}

export type OutageLog = ReturnType<typeof createOutageLog>;
