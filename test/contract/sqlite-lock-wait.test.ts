/**
 * Several web processes share the embedded default's SQLite file, and SQLite lets one of them
 * write at a time. A store that meets another process's write lock waits on a timer, so that
 * the rest of its process goes on; SQLite's own busy handler would sleep in the event loop.
 * Another connection holding `BEGIN IMMEDIATE` stands for the other process here.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteCodeStore } from '../../src/adapters/code-store/sqlite.js';
import { createSqliteSessionStore } from '../../src/adapters/session-store/sqlite.js';
import { openSqlite, type SqliteDatabase } from '../../src/adapters/sqlite.js';
import { DependencyError } from '../../src/domain/errors.js';
import { buildTestApp, type TestApp } from '../helper.js';

const clock = { nowMs: () => Date.UTC(2025, 0, 1, 8) };
const opened: SqliteDatabase[] = [];
const dirs: string[] = [];
const apps: TestApp[] = [];

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  for (const db of opened.splice(0)) db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-lock-'));
  dirs.push(dir);
  return join(dir, 'meiduo.sqlite3');
}

/** A connection as the service opens the stores' one: it never waits in SQLite's busy handler. */
function connect(path: string, busyTimeoutMs = 0): SqliteDatabase {
  const db = openSqlite(path, { busyTimeoutMs });
  opened.push(db);
  return db;
}

/** Resolves after `count` timer callbacks have run: proof that the event loop was free. */
function timerTicks(count: number): Promise<void> {
  return new Promise((resolve) => {
    let ticks = 0;
    const timer = setInterval(() => {
      if (++ticks === count) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
}

function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  // Observed here so that a rejection is not reported as unhandled before the test awaits it.
  tracked.catch(() => {});
  return { promise: tracked, settled: () => done };
}

describe('SQLite stores beside another process that holds the write lock', () => {
  it('the code store waits with the event loop free, then writes once the lock is released', async () => {
    const path = freshFile();
    const store = createSqliteCodeStore(connect(path), clock);
    const other = connect(path, 5000);
    other.exec('BEGIN IMMEDIATE');
    const write = track(store.set('img_lock', 'ABCD', 300));
    await timerTicks(10);
    expect(write.settled()).toBe(false);
    other.exec('COMMIT');
    await write.promise;
    expect(await store.get('img_lock')).toBe('ABCD');
  });

  it('the code store gives up after its wait with a 503 error and changes nothing', async () => {
    const path = freshFile();
    const store = createSqliteCodeStore(connect(path), clock, { lockWaitMs: 50 });
    await store.set('img_once', 'ABCD', 300);
    const other = connect(path, 5000);
    other.exec('BEGIN IMMEDIATE');
    try {
      await expect(store.take('img_once')).rejects.toBeInstanceOf(DependencyError);
    } finally {
      other.exec('COMMIT');
    }
    // The image code was not used up by the failed take: the person's next try finds it.
    expect(await store.take('img_once')).toBe('ABCD');
  });

  it('the session store waits with the event loop free, then writes once the lock is released', async () => {
    const path = freshFile();
    const store = createSqliteSessionStore(connect(path), clock);
    const other = connect(path, 5000);
    other.exec('BEGIN IMMEDIATE');
    const record = {
      userId: 7,
      expiresAtMs: clock.nowMs() + 60_000,
      persistent: false,
      createdAtMs: clock.nowMs(),
    };
    const write = track(store.create('session-hash', record));
    await timerTicks(10);
    expect(write.settled()).toBe(false);
    other.exec('COMMIT');
    await write.promise;
    expect(await store.get('session-hash')).toMatchObject({ userId: 7 });
  });

  it('the service answers other requests while an image code waits for the lock, then serves the image', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-lock-app-'));
    dirs.push(dataDir);
    const t = await buildTestApp({}, { dataDir });
    apps.push(t);
    // Tells when the route has drawn the captcha and asked the store to keep its answer.
    const store = t.deps.codeStore as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    let reached!: () => void;
    const storing = new Promise<void>((resolve) => {
      reached = resolve;
    });
    for (const [name, method] of Object.entries(store)) {
      if (typeof method !== 'function') continue;
      store[name] = (...args: unknown[]) => {
        reached();
        return method(...args);
      };
    }
    const c = t.client();
    const other = connect(join(dataDir, 'meiduo.sqlite3'), 5000);
    other.exec('BEGIN IMMEDIATE');
    let image: ReturnType<typeof track<Awaited<ReturnType<typeof c.get>>>>;
    try {
      image = track(c.get(`/image_codes/lock-${randomBytes(6).toString('hex')}/`));
      await storing;
      const health = await c.get('/healthz');
      expect(health.statusCode).toBe(200);
      expect(image.settled()).toBe(false);
    } finally {
      other.exec('COMMIT');
    }
    const res = await image.promise;
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
  });
});
