import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envExample, settings } from '../scripts/config-docs.js';

describe('configuration documents', () => {
  it('.env.example lists every setting with its default (regenerate: npx tsx scripts/config-docs.ts)', () => {
    expect(readFileSync(new URL('../.env.example', import.meta.url), 'utf8')).toBe(envExample());
  });

  it('the README documents every setting', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const s of settings()) expect(readme, s.name).toContain(`\`${s.name}\``);
  });
});
