/**
 * The Django original (bench/django/) as the course deployed it: gunicorn with sync workers
 * and Celery's prefork worker, both with as many processes as cores, on the bench's Redis
 * (databases of their own) and a SQLite file. Started and stopped here, each in its own
 * process group that is killed on the way out whatever happens.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DJANGO, REDIS_SERVER } from './config.js';
import { freePort, processTree, ROOT } from './lib/process.js';
import { sentCounter } from './lib/sent-counter.js';

export const DJANGO_DIR = join(ROOT, 'bench/django');
const PYTHON = '/usr/bin/python3';
const GUNICORN = '/usr/bin/gunicorn';

/** Null when the Debian packages are there, else why the Django runs are skipped. */
export function djangoMissing(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  if (!existsSync(GUNICORN)) return `${GUNICORN} is not installed (Debian: gunicorn)`;
  try {
    execFileSync(
      PYTHON,
      ['-c', 'import django, celery, redis, PIL; assert django.VERSION[:2] == (3, 2), django.get_version()'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').pop() ?? String(err);
    return `Debian's python3-django 3.2, python3-celery, python3-redis and python3-pil are needed (${why})`;
  }
  return null;
}

export const djangoRedisUrl = (db: number) => `${REDIS_SERVER}/${db}`;

/** Process groups started here and not yet stopped: killed if the bench exits early. */
const groups = new Set<number>();
const killGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
};
process.once('exit', () => {
  for (const pid of groups) killGroup(pid, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

function startGroup(command: string, args: string[], env: Record<string, string>, out: number): ChildProcess {
  const child = spawn(command, args, {
    cwd: DJANGO_DIR,
    env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  if (child.pid) groups.add(child.pid);
  return child;
}

async function stopGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (!pid) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  // Whatever the leader left behind (forked workers) goes with the group.
  killGroup(pid, 'SIGKILL');
  groups.delete(pid);
}

export interface DjangoStack {
  url: string;
  /** Lines the Celery worker has printed for sent SMS so far (read from its log). */
  sent(): number;
  /** Byte offset of the Celery log now, to count only what was sent before a moment. */
  logSize(): number;
  sentBefore(offset: number): number;
  /** gunicorn's and Celery's processes (arbiter, workers, main process and pool). */
  pids(): number[];
  stop(): Promise<void>;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Django stack: ${what} not ready after ${seconds} s`);
}

export async function startDjango(): Promise<DjangoStack> {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-bench-django-'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PYTHONDONTWRITEBYTECODE: '1',
    DJANGO_SETTINGS_MODULE: 'meiduo.settings',
    DJANGO_DB_PATH: join(dir, 'db.sqlite3'),
    DJANGO_REDIS: REDIS_SERVER,
    DJANGO_REDIS_DBS: [DJANGO.verifyDb, DJANGO.sessionDb, DJANGO.brokerDb].join(','),
    CAPTCHA_FONT: join(ROOT, 'node_modules/dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'),
  };
  execFileSync(PYTHON, ['manage.py', 'migrate', '--noinput', '-v', '0'], {
    cwd: DJANGO_DIR,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const port = await freePort();
  const webLog = join(dir, 'gunicorn.log');
  const celeryLog = join(dir, 'celery.log');
  const web = startGroup(
    GUNICORN,
    ['--workers', String(DJANGO.processes), '--bind', `127.0.0.1:${port}`, 'meiduo.wsgi'],
    env,
    openSync(webLog, 'w'),
  );
  const celery = startGroup(
    PYTHON,
    ['-m', 'celery', '-A', 'celery_tasks.main', 'worker', '-l', 'info', '-c', String(DJANGO.processes)],
    env,
    openSync(celeryLog, 'w'),
  );
  const url = `http://127.0.0.1:${port}`;
  const counter = sentCounter(celeryLog);
  const stack: DjangoStack = {
    url,
    sent: () => counter.count(),
    logSize: () => counter.size(),
    sentBefore: (offset) => counter.count(offset),
    pids: () => [web, celery].flatMap((child) => (child.pid ? processTree(child.pid) : [])),
    async stop() {
      await Promise.all([stopGroup(web), stopGroup(celery)]);
      counter.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const failed = () => {
      for (const [child, log] of [
        [web, webLog],
        [celery, celeryLog],
      ] as const) {
        if (child.exitCode !== null)
          throw new Error(`exited ${child.exitCode}: ${readFileSync(log, 'utf8').slice(-2000)}`);
      }
    };
    await until('gunicorn', async () => {
      failed();
      try {
        return (await fetch(`${url}/csrf_token/`)).ok;
      } catch {
        return false;
      }
    });
    await until('celery', () => {
      failed();
      return readFileSync(celeryLog, 'utf8').includes(' ready.');
    });
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

/** Deletes what the Django stack and the bench wrote in its Redis databases (never FLUSHDB). */
export async function cleanDjangoRedis(): Promise<void> {
  const patterns: Array<[number, string[]]> = [
    [DJANGO.verifyDb, ['img_*', 'sms_*', 'send_flag_*']],
    [DJANGO.sessionDb, [':1:django.contrib.sessions.cache*']],
    [DJANGO.brokerDb, ['celery', '_kombu.*', 'unacked*', 'celery-task-meta-*']],
  ];
  for (const [db, matches] of patterns) {
    const redis = new Redis(djangoRedisUrl(db));
    try {
      for (const match of matches) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 5000);
          cursor = next;
          if (keys.length > 0) await redis.unlink(...keys);
        } while (cursor !== '0');
      }
    } finally {
      redis.disconnect();
    }
  }
}
