/**
 * Counts the SMS a worker has printed (`[mobile: …] [sms_code: 123456]`, the console provider's
 * line and the course's Celery task's) in a log file that grows while it is counted: each call
 * reads only what was appended since the last one, so a large request log costs little.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const SENT = /\[sms_code: \d{6}\]/g;
/** Longer than one match: a match cut by a read boundary is completed by the next read. */
const CARRY = 32;

export interface SentCounter {
  /** Sends printed up to `limit` bytes of the file (default: all of it now). */
  count(limit?: number): number;
  /** The file's size now, to count up to this moment later. */
  size(): number;
  close(): void;
}

export function sentCounter(file: string): SentCounter {
  const fd = openSync(file, 'r');
  const buffer = Buffer.alloc(4 << 20);
  let offset = 0;
  let carry = '';
  let total = 0;
  return {
    size: () => fstatSync(fd).size,
    count(limit) {
      const end = limit ?? fstatSync(fd).size;
      while (offset < end) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, end - offset), offset);
        if (n <= 0) break;
        offset += n;
        const text = carry + buffer.toString('latin1', 0, n);
        const matches = [...text.matchAll(SENT)];
        // Matches wholly inside the carried-over tail were counted by the previous read.
        total += matches.filter((m) => (m.index ?? 0) + m[0].length > carry.length).length;
        carry = text.slice(-CARRY);
      }
      return total;
    },
    close: () => closeSync(fd),
  };
}
