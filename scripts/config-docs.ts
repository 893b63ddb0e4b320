/**
 * Writes .env.example and prints the README's configuration table, both from the one
 * TypeBox schema in src/config.ts, so the documentation cannot drift from the code.
 * `tsx scripts/config-docs.ts` (test/config-docs.test.ts checks .env.example is current).
 */
import { writeFileSync } from 'node:fs';
import { ConfigSchema } from '../src/config.js';

interface Setting {
  name: string;
  default: string;
  description: string;
}

/** Defaults computed from the machine (its cores): documented in words, not as this machine's number. */
const MACHINE_DEFAULTS = new Set(['HASH_CONCURRENCY', 'WEB_CONCURRENCY']);

export function settings(): Setting[] {
  return Object.entries(ConfigSchema.properties).map(([name, schema]) => {
    const s = schema as { default?: unknown; description?: string };
    const def = MACHINE_DEFAULTS.has(name) ? '' : s.default === undefined ? '' : String(s.default);
    return { name, default: def, description: s.description ?? '' };
  });
}

export function envExample(): string {
  const lines = [
    '# Every setting of meiduo-users with its default (README "Configuration").',
    '# Copy to .env and uncomment what you change; the environment wins over this file.',
    '',
  ];
  for (const s of settings()) {
    lines.push(`# ${s.description}`);
    lines.push(`# ${s.name}=${s.default}`);
  }
  return `${lines.join('\n')}\n`;
}

export function markdownTable(): string {
  const rows = settings().map(
    (s) => `| \`${s.name}\` | ${s.default === '' ? '—' : `\`${s.default}\``} | ${s.description} |`,
  );
  return ['| setting | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

if (process.argv[1]?.endsWith('config-docs.ts')) {
  writeFileSync(new URL('../.env.example', import.meta.url), envExample());
  process.stdout.write(`${markdownTable()}\n`);
}
