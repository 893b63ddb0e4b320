import { pbkdf2Sync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type Algorithm, hashRawSync, type Version } from '@node-rs/argon2';
import type { CaptchaImage } from '../domain/ports.js';
import { pbkdf2Sha256 } from './fast-pbkdf2.js';

/*
 * A thread of the CPU pool (cpu-pool.ts). Everything runs synchronously on this thread, so the
 * nice value it sets below applies to the work (the async argon2/pbkdf2/encode functions would
 * run on libuv's threads, at the process's priority).
 */

export interface CpuWorkerData {
  nice: number;
  /** A captcha thread loads the renderer (canvas, fonts) and draws one before it says ready. */
  captcha: boolean;
}

export type CpuTask =
  | {
      kind: 'captcha';
      text: string;
      width: number;
      height: number;
      format: 'png' | 'jpeg';
      jpegQuality: number;
    }
  | {
      kind: 'argon2';
      password: string;
      algorithm: number;
      version: number;
      memoryCost: number;
      timeCost: number;
      parallelism: number;
      outputLen: number;
      salt: Uint8Array;
    }
  | { kind: 'pbkdf2'; password: string; salt: string; iterations: number; length: number; digest: string }
  /** This thread's kernel id, so a test can read its nice value from /proc. */
  | { kind: 'thread' }
  /** Ends this thread as a crash would (tests: a dead thread is replaced). */
  | { kind: 'exit' };

export type CpuTaskResult<K extends CpuTask['kind']> = K extends 'captcha'
  ? CaptchaImage
  : K extends 'argon2' | 'pbkdf2'
    ? Uint8Array
    : K extends 'thread'
      ? { tid: number }
      : never;

const data = workerData as CpuWorkerData;
// Only captcha threads hold the renderer: a hash thread saves canvas's code and fonts (~20 MB).
const renderCaptchaSync = data.captcha ? (await import('./captcha-image.js')).renderCaptchaSync : undefined;

function run(task: CpuTask): unknown {
  switch (task.kind) {
    case 'captcha':
      if (!renderCaptchaSync) throw new Error('not a captcha thread');
      return renderCaptchaSync(task.text, task);
    case 'argon2':
      return hashRawSync(Buffer.from(task.password, 'utf8'), {
        algorithm: task.algorithm as Algorithm,
        version: task.version as Version,
        memoryCost: task.memoryCost,
        timeCost: task.timeCost,
        parallelism: task.parallelism,
        outputLen: task.outputLen,
        salt: Buffer.from(task.salt),
      });
    case 'pbkdf2':
      // Django's pbkdf2_sha256 through the native addon when built (about 2× node:crypto);
      // pbkdf2_sha1, only ever verified, stays on node:crypto.
      if (task.digest === 'sha256') {
        return pbkdf2Sha256(
          Buffer.from(task.password, 'utf8'),
          Buffer.from(task.salt, 'utf8'),
          task.iterations,
          task.length,
        );
      }
      return pbkdf2Sync(
        Buffer.from(task.password, 'utf8'),
        Buffer.from(task.salt, 'utf8'),
        task.iterations,
        task.length,
        task.digest,
      );
    case 'thread':
      // /proc/thread-self/stat: field 1 is this thread's id.
      return { tid: Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]) };
    case 'exit':
      process.exit(1);
  }
}

try {
  // 0 = the calling thread on Linux. Never lower a nice value the process already has.
  setPriority(0, Math.max(data.nice, getPriority(0)));
} catch {
  // Not permitted or not supported: the work still runs, at the process's priority.
}
// The first drawings load the fonts and get the hot code compiled (~50 ms for the first few):
// done here, before the process listens, not on the first requests.
for (let i = 0; renderCaptchaSync && i < 16; i++)
  renderCaptchaSync(i % 2 ? 'W4RM' : 'ZQ7X', { format: 'jpeg' });
parentPort?.postMessage({ ready: true });

parentPort?.on('message', (task: CpuTask) => {
  try {
    // Copied, not transferred: a small Buffer may share its memory with others.
    parentPort?.postMessage({ ok: true, value: run(task) });
  } catch (err) {
    parentPort?.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
