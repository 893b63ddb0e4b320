import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchingSink } from './stdout.js';

function target() {
  const writes: string[] = [];
  let synced = 0;
  return {
    writes,
    synced: () => synced,
    write: (chunk: string) => writes.push(chunk),
    flushSync: () => {
      synced += 1;
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('BatchingSink', () => {
  it('passes the lines of a moment on in one write, in order', () => {
    vi.useFakeTimers();
    const out = target();
    const sink = new BatchingSink(out, 20);
    sink.write('a\n');
    sink.write('b\n');
    sink.write('c\n');
    expect(out.writes).toEqual([]);
    vi.advanceTimersByTime(20);
    expect(out.writes).toEqual(['a\nb\nc\n']);
    // The next line starts a new batch.
    sink.write('d\n');
    vi.advanceTimersByTime(20);
    expect(out.writes).toEqual(['a\nb\nc\n', 'd\n']);
  });

  it('writes at once when a batch reaches 16 KB, and everything on flushSync', () => {
    vi.useFakeTimers();
    const out = target();
    const sink = new BatchingSink(out, 20);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 16; i++) sink.write(line);
    expect(out.writes).toEqual([line.repeat(16)]);
    sink.write('tail\n');
    sink.flushSync();
    expect(out.writes).toEqual([line.repeat(16), 'tail\n']);
    expect(out.synced()).toBe(1);
    // Nothing left for the timer.
    vi.advanceTimersByTime(20);
    expect(out.writes).toHaveLength(2);
  });
});
