import pino from 'pino';

/*
 * Standard output of the process for the log. Not a terminal: lines are gathered for up to
 * BATCH_MS (or BATCH_BYTES) and written as one string by one write(2) (pino's sonic-boom, in its
 * synchronous mode). A write per line was a syscall plus a hand-over to libuv's thread pool:
 * ~80 µs of the event loop here (a CPU profile of GET /image_codes/ at full load: 12% of the
 * web process's main thread, one line per request); a batch costs one syscall per BATCH_MS.
 * Synchronous, because an asynchronous write still in flight when the process ends is lost in
 * part when the pipe takes only part of it (seen: three lines missing from the middle of 500
 * logged before an uncaught exception, on a loaded machine). On exit (exit, signals, uncaught
 * exceptions) the batch is flushed, so only a SIGKILL loses the lines of the last BATCH_MS.
 */

export interface LineSink {
  write(chunk: string): boolean | undefined;
}

const BATCH_MS = 20;
const BATCH_BYTES = 16 * 1024;

/** Gathers lines and passes them on in batches (see above). Exported for its test. */
export class BatchingSink implements LineSink {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly target: { write(chunk: string): unknown; flushSync?(): void },
    private readonly batchMs = BATCH_MS,
  ) {}

  write(chunk: string): boolean {
    this.lines.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= BATCH_BYTES) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(this.flush, this.batchMs);
      // A pending batch must not keep a finished process alive; exit flushes it.
      this.timer.unref();
    }
    return true;
  }

  readonly flush = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const batch = this.lines.length === 1 ? (this.lines[0] as string) : this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    this.target.write(batch);
  };

  /** Everything out now, synchronously: for the process's exit. */
  flushSync(): void {
    this.flush();
    this.target.flushSync?.();
  }
}

let shared: LineSink | undefined;

/** The process's standard output for log lines; a terminal keeps node's own (synchronous) one. */
export function stdoutSink(): LineSink {
  if (process.stdout.isTTY) return process.stdout;
  if (shared === undefined) {
    const sink = new BatchingSink(pino.destination({ dest: 1, sync: true }));
    process.on('exit', () => sink.flushSync());
    shared = sink;
  }
  return shared;
}

/**
 * Writes one line of a console provider (an SMS or email 'sent' by printing it) synchronously,
 * as node writes standard output to files and pipes: the print is the delivery, so it must be
 * out before the job is acknowledged — a worker killed with SIGKILL must not lose it. It may
 * come out ahead of log lines still in flight.
 */
export function writeLine(line: string): void {
  process.stdout.write(`${line}\n`);
}
