/**
 * Child processes of the bench: the built web service and the baseline servers, started on a
 * free port of 127.0.0.1, watched for their memory, stopped politely.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BENCH, CPU_PROFILE } from '../config.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const RESULTS_DIR = join(ROOT, 'bench/results');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

/** VmHWM (peak) and VmRSS (now) of a process in MiB, from /proc; null once it has gone. */
export function memoryOf(pid: number): { peakMb: number; rssMb: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { peakMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

export interface Served {
  url: string;
  pid: number;
  /** Highest VmRSS seen by the sampler and the kernel's VmHWM (of any process of its tree), MiB. */
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** Polls until the URL answers 200, or fails at the deadline with what the child wrote. */
async function waitForReady(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}): ${stderr()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after 30 s: ${stderr()}`);
}

/**
 * Starts `node <args>` with the given environment (and nothing of the bench's own), stdout
 * to /dev/null or a file (the request log is written as in production, and costs what it costs),
 * stderr kept for failures.
 */
export async function startNode(
  args: string[],
  env: Record<string, string>,
  options: { readyPath: string; cwd: string; name: string; stdoutFile?: string },
): Promise<Served> {
  const port = await freePort();
  const nodeArgs: string[] = [];
  if (CPU_PROFILE) {
    const dir = join(RESULTS_DIR, 'profiles');
    mkdirSync(dir, { recursive: true });
    // No --cpu-prof-name: the web processes a primary forks inherit the flags, and node's
    // default name carries each one's pid.
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(dir, options.name)}`);
  }
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, PORT: String(port) },
    stdio: ['ignore', openSync(options.stdoutFile ?? '/dev/null', 'w'), 'pipe'],
    // A group of its own, so that a kill reaches the web processes a primary forked.
    detached: true,
  });
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), signal);
    } catch {
      // gone already
    }
  };
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForReady(`${url}${options.readyPath}`, child, () => stderr);
  } catch (err) {
    killGroup('SIGKILL');
    throw err;
  }
  const pid = child.pid as number;
  let sampledPeak = 0;
  const sampler = setInterval(() => {
    const m = memoryOf(pid);
    if (m) sampledPeak = Math.max(sampledPeak, m.rssMb, m.peakMb);
  }, BENCH.rssSampleMs);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    pid,
    peakRssMb() {
      // The largest of the process and its children (web processes of a cluster): VmHWM is
      // each one's peak, so reading it once now is enough.
      for (const p of processTree(pid)) {
        const m = memoryOf(p);
        if (m) sampledPeak = Math.max(sampledPeak, p === pid ? m.rssMb : 0, m.peakMb);
      }
      return sampledPeak;
    },
    async stop() {
      clearInterval(sampler);
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a TypeScript child (through tsx) that prints one JSON line as its result. */
export function runTsChild<T>(script: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-4000);
    });
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${script} exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script} printed no JSON result: ${out.slice(-500)} ${err}`));
      }
    });
  });
}

/** A process and all its descendants, by `pgrep -P`. */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    // no children: pgrep exits 1
  }
  return [pid, ...children.flatMap(processTree)];
}
