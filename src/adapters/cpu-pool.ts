import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DependencyError } from '../domain/errors.js';
import { argon2Options, type HashEngine, pbkdf2Options } from '../domain/password.js';
import type { CaptchaRenderer } from '../domain/ports.js';
import type { CpuTask, CpuTaskResult, CpuWorkerData } from './cpu-worker.js';

/*
 * A small pool of worker threads for CPU-heavy work (captcha drawing, password hashing), so the
 * event loop only hands work over. Each thread raises its own nice value (setpriority on its
 * thread id, Linux): the request path keeps its priority and the pool gets the spare CPU. One
 * task in flight per thread, a bounded FIFO queue before them; a thread that dies fails only its
 * own task (as a 503) and is replaced. Hand-written rather than piscina/tinypool: ~150 lines, and
 * the parts that matter here (nice per thread, starting the .ts entry under tsx) are ours anyway.
 */

export interface CpuPoolOptions {
  threads: number;
  /** Nice value each thread sets for itself (0–19; higher is lower priority). */
  nice: number;
  /** Tasks waiting beyond the running ones; more are refused with a DependencyError (503). */
  maxQueue?: number;
  /** Names the threads in errors and the log. */
  name: string;
  /** Its threads draw captchas (they load the renderer); others only derive keys. */
  captcha?: boolean;
  /**
   * Tasks handed to a thread at once (default 1). With 2, a thread that finishes one finds the
   * next already in its port and goes on without sleeping and being woken (a futex round trip
   * per task); only for short tasks, since a task waits behind the one before it.
   */
  depth?: number;
}

export interface CpuPool {
  run<K extends CpuTask['kind']>(task: Extract<CpuTask, { kind: K }>): Promise<CpuTaskResult<K>>;
  /**
   * Starts every thread and resolves once each has loaded what it needs, so that the first
   * requests do not pay for a thread's start (~100–200 ms). Without it threads start on need.
   */
  warm(): Promise<void>;
  readonly threads: number;
  close(): Promise<void>;
}

interface Job {
  task: CpuTask;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

interface Slot {
  worker: Worker;
  /** In flight on the thread, in the order it answers them. */
  jobs: Job[];
  /** Settles when the thread has said it is ready, or has gone. */
  ready: Promise<void>;
}

interface TsxPackage {
  exports: { './esm/api': { import: { default: string } } };
}

/** Compiled (dist/*.js) the entry is the .js beside this file; from source it runs under tsx. */
function startWorker(name: string, workerData: CpuWorkerData): Worker {
  const here = import.meta.url;
  // Small heaps: a thread's JS holds a task at a time (pixels, argon2 memory and keys are native);
  // unbounded, each thread's V8 heap grew with the process's defaults (~8-10 MB more RSS each).
  const options = {
    name,
    workerData,
    resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
  };
  if (/\.js$/.test(new URL(here).pathname)) return new Worker(new URL('./cpu-worker.js', here), options);
  const entry = new URL('./cpu-worker.ts', here).href;
  // tsx's ESM API (its `import` export; require.resolve would give the CommonJS one).
  const tsxPackage = createRequire(here).resolve('tsx/package.json');
  const tsxApi = (JSON.parse(readFileSync(tsxPackage, 'utf8')) as TsxPackage).exports['./esm/api'].import
    .default;
  const tsx = new URL(tsxApi, pathToFileURL(tsxPackage)).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => api.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}))`;
  return new Worker(boot, { ...options, eval: true });
}

export function createCpuPool(options: CpuPoolOptions): CpuPool {
  const { threads, nice, name } = options;
  const depth = options.depth ?? 1;
  const workerData: CpuWorkerData = { nice, captcha: options.captcha ?? false };
  const maxQueue = options.maxQueue ?? 1000;
  const queue: Job[] = [];
  const slots: Slot[] = [];
  let closed = false;

  const unavailable = (cause: unknown) => new DependencyError('cpu-pool', cause);

  function spawn(): Slot {
    const worker = startWorker(name, workerData);
    let readied = () => {};
    const slot: Slot = { worker, jobs: [], ready: new Promise((resolve) => (readied = resolve)) };
    worker.on('message', (message: { ready?: true; ok?: boolean; value?: unknown; error?: string }) => {
      if (message.ready) return readied();
      const job = slot.jobs.shift();
      if (job) {
        if (message.ok) job.resolve(message.value);
        else job.reject(new Error(message.error ?? 'task failed'));
      }
      next(slot);
    });
    // A thread that throws outside a task, or exits, is gone: fail its task, start another.
    let crash: unknown;
    worker.on('error', (err) => {
      crash = err;
    });
    worker.on('exit', (code) => {
      readied();
      const index = slots.indexOf(slot);
      if (index >= 0) slots.splice(index, 1);
      const gone = unavailable(crash ?? new Error(`${name} thread exited with code ${code}`));
      for (const job of slot.jobs.splice(0)) job.reject(gone);
      // Replaced only when work waits; otherwise the next run() starts one.
      if (!closed && queue.length > 0) next(spawnInto());
    });
    return slot;
  }

  function spawnInto(): Slot {
    const slot = spawn();
    slots.push(slot);
    return slot;
  }

  function next(slot: Slot): void {
    if (closed || !slots.includes(slot)) return;
    while (slot.jobs.length < depth) {
      const job = queue.shift();
      if (!job) return;
      slot.jobs.push(job);
      slot.worker.postMessage(job.task);
    }
  }

  return {
    threads,
    run(task) {
      if (closed) return Promise.reject(unavailable(new Error(`${name} pool closed`)));
      return new Promise((resolve, reject) => {
        // Threads start on first need: a process that never hashes starts no hash threads.
        // The least busy thread with room; an idle one first.
        let idle: Slot | undefined;
        for (const s of slots)
          if (s.jobs.length < depth && (!idle || s.jobs.length < idle.jobs.length)) idle = s;
        if (idle && idle.jobs.length > 0 && slots.length < threads) idle = spawnInto();
        idle ??= slots.length < threads ? spawnInto() : undefined;
        if (!idle && queue.length >= maxQueue) {
          reject(unavailable(new Error(`${name} queue full (${maxQueue})`)));
          return;
        }
        queue.push({ task, resolve: resolve as (value: unknown) => void, reject });
        if (idle) next(idle);
      });
    },
    async warm() {
      while (!closed && slots.length < threads) spawnInto();
      await Promise.all(slots.map((s) => s.ready));
    },
    async close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(unavailable(new Error(`${name} pool closed`)));
      await Promise.all(slots.splice(0).map((s) => s.worker.terminate()));
    },
  };
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Password key derivations on the pool's threads (the hasher keeps its HASH_CONCURRENCY bound). */
export function createPooledHashEngine(pool: CpuPool): HashEngine {
  return {
    async argon2(password, h, length) {
      const o = argon2Options(h, length);
      return asBuffer(await pool.run({ kind: 'argon2', password, ...o, salt: o.salt }));
    },
    async pbkdf2(password, kind, iterations, salt) {
      return asBuffer(await pool.run({ kind: 'pbkdf2', password, salt, iterations, ...pbkdf2Options(kind) }));
    },
  };
}

/** The CaptchaRenderer port, drawn and encoded on the pool's threads. */
export function createPooledCaptchaRenderer(
  pool: CpuPool,
  options: { width?: number; height?: number; format?: 'png' | 'jpeg'; jpegQuality?: number } = {},
): CaptchaRenderer {
  const { width = 200, height = 75, format = 'jpeg', jpegQuality = 85 } = options;
  return {
    async render(text) {
      const image = await pool.run({ kind: 'captcha', text, width, height, format, jpegQuality });
      return { contentType: image.contentType, body: asBuffer(image.body) };
    },
  };
}
