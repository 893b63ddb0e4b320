/**
 * WEB_CONCURRENCY > 1: the primary process of `dist/server.js` forks that many web processes
 * (node:cluster, one port: the primary accepts and hands connections round-robin) and
 * supervises them. It serves nothing itself.
 *
 * - A web process that dies is started again after a backoff (250 ms, doubling to 30 s; back
 *   to 250 ms once a process has lived a minute), so a crash loop does not spin a core.
 * - A web process that dies before any of them ever listened ends the start (exit 1): a port
 *   in use or an unreachable database is reported once, not retried forever.
 * - SIGTERM/SIGINT: passed to every web process, which drains its requests and SMS jobs in
 *   hand (server.ts); the primary exits 0 once all have exited, 1 past the deadline (then it
 *   SIGKILLs the rest). A web process whose primary vanishes exits too (node:cluster ends a
 *   worker whose IPC channel closes).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;

export interface SuperviseOptions {
  processes: number;
  log: Logger;
  /** Longest wait for the web processes to drain after a signal. */
  shutdownDeadlineMs: number;
}

export function superviseWebProcesses({ processes, log, shutdownDeadlineMs }: SuperviseOptions): void {
  let stopping = false;
  let everListened = false;
  const live = new Set<Worker>();
  const restarts = new Set<NodeJS.Timeout>();
  const backoffMs = new Map<number, number>();

  const fork = (slot: number) => {
    const startedAt = Date.now();
    const worker = cluster.fork({ MEIDUO_WEB_SLOT: String(slot) });
    live.add(worker);
    worker.once('listening', () => {
      if (!everListened) log.info({ processes }, 'web processes listening');
      everListened = true;
    });
    worker.once('exit', (code, signal) => {
      live.delete(worker);
      if (stopping) {
        if (live.size === 0) {
          log.info('stopped');
          process.exit(0);
        }
        return;
      }
      if (!everListened) {
        log.error({ slot, code, signal }, 'a web process failed to start; stopping');
        stopping = true;
        for (const other of live) other.process.kill('SIGTERM');
        process.exit(1);
      }
      const lived = Date.now() - startedAt;
      const delay = lived >= HEALTHY_AFTER_MS ? FIRST_BACKOFF_MS : (backoffMs.get(slot) ?? FIRST_BACKOFF_MS);
      backoffMs.set(slot, Math.min(delay * 2, MAX_BACKOFF_MS));
      log.error({ slot, code, signal, restartInMs: delay }, 'web process exited; starting it again');
      const timer = setTimeout(() => {
        restarts.delete(timer);
        fork(slot);
      }, delay);
      restarts.add(timer);
    });
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, processes: live.size }, 'shutting down: web processes drain their requests');
    for (const timer of restarts) clearTimeout(timer);
    if (live.size === 0) process.exit(0);
    for (const worker of live) worker.process.kill('SIGTERM');
    setTimeout(() => {
      log.error('shutdown deadline passed, killing the web processes left');
      for (const worker of live) worker.process.kill('SIGKILL');
      process.exit(1);
    }, shutdownDeadlineMs).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  for (let slot = 0; slot < processes; slot++) fork(slot);
}
