/**
 * The log format a person sees: readable lines when the process writes to a terminal (as
 * `npm start` in one does), JSON lines otherwise (systemd, containers, a pipe to a collector).
 * The terminal is a real pseudo-terminal (util-linux `script`).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
/** One info line through the service's own logger, the way the entry points create it. */
const PROGRAM = `
import { createLogger } from './src/logger.ts';
createLogger({ LOG_LEVEL: 'info' }).info({ port: 8000 }, 'server listening');
`;
const NODE_ARGS = ['--import', 'tsx', '--input-type=module', '-e', PROGRAM];

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

describe('log format', () => {
  it('writes JSON lines when stdout is not a terminal', () => {
    const out = execFileSync(process.execPath, NODE_ARGS, { cwd: ROOT, encoding: 'utf8' });
    const line = JSON.parse(out.trim());
    expect(line).toMatchObject({ level: 30, msg: 'server listening', port: 8000, service: 'meiduo-users' });
  });

  it('gets a line of a running process out within moments, without waiting for its exit', async () => {
    const program = `${PROGRAM}\nsetInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
          if (out.includes('\n')) resolve(out);
        });
      });
      expect(JSON.parse(line.trim())).toMatchObject({ msg: 'server listening' });
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('loses no line logged just before an uncaught exception ends the process', () => {
    const program = `
import { createLogger } from './src/logger.ts';
const log = createLogger({ LOG_LEVEL: 'info' });
for (let i = 0; i < 500; i++) log.info({ i }, 'line');
throw new Error('boom');
`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.status).not.toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { i: number });
    expect(lines.map((l) => l.i)).toEqual([...Array(500).keys()]);
  });

  it.skipIf(!hasScript)('writes readable lines when stdout is a terminal', () => {
    const command = [process.execPath, ...NODE_ARGS].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    // script runs the command under a pseudo-terminal and copies what it printed.
    const out = execFileSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, encoding: 'utf8' });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the colors' escape sequences
    const plain = out.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: server listening\r?\n\s+port: 8000/m);
    expect(plain).not.toContain('{"level"');
  });
});
