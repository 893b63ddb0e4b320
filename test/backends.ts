/**
 * Which real backends this run can reach. A suite that needs one that is absent is skipped
 * with a line saying why, unless REQUIRE_BACKENDS names it (CI sets REQUIRE_BACKENDS=all):
 * then the absence fails the run instead of hiding the suite.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { fastJpegAvailable, fastJpegStatus } from '../src/adapters/fast-jpeg.js';
import { fastPbkdf2Available, fastPbkdf2Status } from '../src/adapters/fast-pbkdf2.js';

export type Backend =
  | 'redis'
  | 'postgres'
  | 'mysql'
  | 'chromium'
  | 'tesseract'
  | 'django'
  | 'systemd'
  | 'pbkdf2-addon'
  | 'jpeg-addon';

export const BACKEND_URLS = {
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
} as const;

/** Debian's Python, which sees python3-django and python3-argon2. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function required(backend: Backend): boolean {
  const list = (process.env.REQUIRE_BACKENDS ?? '').split(',').map((s) => s.trim());
  return list.includes('all') || list.includes(backend);
}

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port), hostname, () => done(true));
  });
}

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

async function present(backend: Backend): Promise<boolean> {
  switch (backend) {
    case 'redis':
    case 'postgres':
    case 'mysql':
      return reachable(BACKEND_URLS[backend]);
    case 'chromium':
      return existsSync(CHROMIUM);
    case 'tesseract':
      return commandWorks('tesseract', ['--version']);
    case 'django':
      return commandWorks(DEBIAN_PYTHON, ['-c', 'import django, argon2']);
    case 'systemd':
      return existsSync('/usr/bin/systemd-analyze');
    case 'pbkdf2-addon':
      // native/pbkdf2, built by npm install (scripts/build-native.mjs).
      return fastPbkdf2Available;
    case 'jpeg-addon':
      // native/jpeg, built by npm install when Debian's libturbojpeg0-dev is there.
      return fastJpegAvailable;
  }
}

/**
 * Resolves true when the backend is there. When it is not: throws if required, else prints
 * why the suite is skipped and resolves false. Use with `describe.skipIf(!(await has(...)))`.
 */
export async function has(backend: Backend): Promise<boolean> {
  if (await present(backend)) return true;
  const why =
    backend === 'pbkdf2-addon'
      ? `the native PBKDF2 addon is ${fastPbkdf2Status}`
      : backend === 'jpeg-addon'
        ? `the native JPEG addon is ${fastJpegStatus}`
        : `${backend} is not available on this machine`;
  if (required(backend)) {
    throw new Error(`REQUIRE_BACKENDS asks for ${backend}, but ${why}`);
  }
  console.warn(
    `SKIPPED: tests that need ${backend}: ${why} (set REQUIRE_BACKENDS=all to make this an error)`,
  );
  return false;
}
