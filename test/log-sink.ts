/** A stream a pino logger writes into, keeping every line raw and parsed, for tests to read. */
import { Writable } from 'node:stream';

export function logSink<Line = Record<string, unknown>>() {
  const raw: string[] = [];
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Line);
      }
      done();
    },
  });
  return { stream, raw, lines };
}
