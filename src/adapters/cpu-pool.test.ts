import { pbkdf2Sync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { loadImage } from '@napi-rs/canvas';
import { afterEach, describe, expect, it } from 'vitest';
import { DependencyError } from '../domain/errors.js';
import { createPasswordHasher } from '../domain/password.js';
import {
  type CpuPool,
  createCpuPool,
  createPooledCaptchaRenderer,
  createPooledHashEngine,
} from './cpu-pool.js';

/** The nice value the kernel holds for one thread of this process (/proc/<pid>/task/<tid>/stat, field 19). */
function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may hold spaces: count from the closing one (field 3 next).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19 - 3]);
}

const pools: CpuPool[] = [];
function pool(threads: number, nice = 10, maxQueue?: number, captcha = false, depth = 1): CpuPool {
  const p = createCpuPool({
    name: 'test',
    threads,
    nice,
    captcha,
    depth,
    ...(maxQueue === undefined ? {} : { maxQueue }),
  });
  pools.push(p);
  return p;
}

/** Every thread this process has now. */
const listTasks = (): number[] => readdirSync('/proc/self/task').map(Number);

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('CPU pool', () => {
  it('runs its threads at the nice value asked for, while this thread keeps its own', async () => {
    const own = niceOf(process.pid);
    expect(own).toBeLessThan(12);
    const p = pool(2, 12);
    // Two tasks at once land on two threads.
    const [a, b] = await Promise.all([p.run({ kind: 'thread' }), p.run({ kind: 'thread' })]);
    expect(a.tid).not.toBe(b.tid);
    expect(a.tid).not.toBe(process.pid);
    expect(niceOf(a.tid)).toBe(12);
    expect(niceOf(b.tid)).toBe(12);
    expect(niceOf(process.pid)).toBe(own);
  });

  it('renders captchas and derives keys on the threads, with the results of the in-process code', async () => {
    const p = pool(1, 10, undefined, true);
    const image = await createPooledCaptchaRenderer(p).render('AB12');
    expect(image.contentType).toBe('image/jpeg');
    expect(Buffer.isBuffer(image.body)).toBe(true);
    const picture = await loadImage(image.body);
    expect([picture.width, picture.height]).toEqual([200, 75]);

    const options = {
      PASSWORD_HASHER: 'pbkdf2_sha256' as const,
      PBKDF2_ITERATIONS: 1000,
      ARGON2_MEMORY_KIB: 1024,
      ARGON2_TIME_COST: 1,
      ARGON2_PARALLELISM: 1,
      HASH_CONCURRENCY: 2,
    };
    const pooled = createPasswordHasher(options, {}, createPooledHashEngine(p));
    const inProcess = createPasswordHasher(options);
    for (const PASSWORD_HASHER of ['pbkdf2_sha256', 'argon2'] as const) {
      const a = createPasswordHasher({ ...options, PASSWORD_HASHER }, {}, createPooledHashEngine(p));
      const b = createPasswordHasher({ ...options, PASSWORD_HASHER });
      const fromPool = await a.hash('pw-12345678');
      expect(await b.verify('pw-12345678', fromPool)).toEqual({ ok: true, mustUpdate: false });
      expect(await a.verify('pw-12345678', await b.hash('pw-12345678'))).toEqual({
        ok: true,
        mustUpdate: false,
      });
      expect(await a.verify('wrong-password', fromPool)).toEqual({ ok: false, mustUpdate: false });
    }
    expect(await pooled.verify('pw-12345678', await inProcess.hash('pw-12345678'))).toMatchObject({
      ok: true,
    });
  });

  it('fails the task of a thread that dies with a DependencyError and replaces the thread', async () => {
    const p = pool(1);
    const before = await p.run({ kind: 'thread' });
    const crash = p.run({ kind: 'exit' });
    const queued = p.run({ kind: 'thread' });
    await expect(crash).rejects.toBeInstanceOf(DependencyError);
    // The task waiting behind it runs on the new thread.
    const after = await queued;
    expect(after.tid).not.toBe(before.tid);
    expect(niceOf(after.tid)).toBe(10);
    expect(await p.run({ kind: 'thread' })).toEqual(after);
  });

  it('with depth 2, spreads tasks over idle threads first, then hands each thread two in order', async () => {
    const p = pool(2, 10, undefined, false, 2);
    const [a, b] = await Promise.all([p.run({ kind: 'thread' }), p.run({ kind: 'thread' })]);
    expect(a.tid).not.toBe(b.tid);
    // Four at once: two on each thread, each answer to its own caller.
    const four = await Promise.all([1, 2, 3, 4].map(() => p.run({ kind: 'thread' })));
    for (const tid of [a.tid, b.tid]) expect(four.filter((r) => r.tid === tid)).toHaveLength(2);
    const derive = (password: string) =>
      p.run({ kind: 'pbkdf2', password, salt: 's', iterations: 50_000, length: 32, digest: 'sha256' });
    const keys = await Promise.all(['one', 'two', 'three', 'four'].map(derive));
    expect(keys.map((k) => Buffer.from(k).toString('hex'))).toEqual(
      ['one', 'two', 'three', 'four'].map((pw) => pbkdf2Sync(pw, 's', 50_000, 32, 'sha256').toString('hex')),
    );
    // A thread that dies fails what it held (503s), and the work after it runs on a new thread.
    const single = pool(1, 10, undefined, false, 2);
    const first = await single.run({ kind: 'thread' });
    const crash = single.run({ kind: 'exit' });
    const behind = single.run({ kind: 'thread' });
    const queued = single.run({ kind: 'thread' });
    await expect(crash).rejects.toBeInstanceOf(DependencyError);
    await expect(behind).rejects.toBeInstanceOf(DependencyError);
    expect((await queued).tid).not.toBe(first.tid);
  });

  it('refuses work beyond its queue, and everything after close, with a DependencyError', async () => {
    const p = pool(1, 10, 1);
    const running = p.run({
      kind: 'pbkdf2',
      password: 'x',
      salt: 's',
      iterations: 200_000,
      length: 32,
      digest: 'sha256',
    });
    const waiting = p.run({ kind: 'thread' });
    await expect(p.run({ kind: 'thread' })).rejects.toBeInstanceOf(DependencyError);
    expect((await running).byteLength).toBe(32);
    await waiting;
    await p.close();
    await expect(p.run({ kind: 'thread' })).rejects.toBeInstanceOf(DependencyError);
  });

  it('warm() has every thread started and ready, so that no task waits for a thread to start', async () => {
    const before = new Set(listTasks());
    const p = pool(2, 10, undefined, true);
    await p.warm();
    const started = listTasks().filter((tid) => !before.has(tid));
    const [a, b] = await Promise.all([p.run({ kind: 'thread' }), p.run({ kind: 'thread' })]);
    expect(started).toContain(a.tid);
    expect(started).toContain(b.tid);
    expect(a.tid).not.toBe(b.tid);
    // A thread started without the renderer says so instead of drawing.
    const hashOnly = pool(1);
    await expect(
      hashOnly.run({
        kind: 'captcha',
        text: 'AB12',
        width: 200,
        height: 75,
        format: 'jpeg',
        jpegQuality: 85,
      }),
    ).rejects.toThrow(/not a captcha thread/);
  });

  it('close() ends its threads', async () => {
    const p = pool(2);
    const [a, b] = await Promise.all([p.run({ kind: 'thread' }), p.run({ kind: 'thread' })]);
    const tasks = listTasks();
    expect(tasks).toContain(a.tid);
    expect(tasks).toContain(b.tid);
    await p.close();
    const after = listTasks();
    expect(after).not.toContain(a.tid);
    expect(after).not.toContain(b.tid);
  });
});
