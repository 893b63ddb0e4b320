import pino from 'pino';

/*
 * Standard output of the process for the log. Not a terminal: one asynchronous writer (pino's
 * sonic-boom) that writes a line at once when idle and, while a write(2) is in flight, gathers
 * what comes next into the following one. Written line by line, each write(2) to a file cost
 * ~25 µs here: a sixth of a web process's CPU under SMS load. pino flushes it synchronously when the process
 * exits (exit, signals, uncaught exceptions), so only a SIGKILL loses the lines in flight.
 */

export interface LineSink {
  write(chunk: string): boolean | undefined;
}

let shared: LineSink | undefined;

/** The process's standard output for log lines; a terminal keeps node's own (synchronous) one. */
export function stdoutSink(): LineSink {
  if (process.stdout.isTTY) return process.stdout;
  shared ??= pino.destination({ dest: 1, sync: false });
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
