/**
 * The log format a person sees: readable lines when the process writes to a terminal (as
 * `npm start` in one does), JSON lines otherwise (systemd, containers, a pipe to a collector).
 * The terminal is a real pseudo-terminal (util-linux `script`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
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
