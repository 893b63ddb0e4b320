/**
 * `npx tsx bench/render.ts`: writes docs/bench again from bench/results/latest.json (e.g.
 * after bench/notes.ts has been given the reasons of missed targets), without measuring.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TARGETS } from './config.js';
import { RESULTS_DIR, ROOT } from './lib/process.js';
import { type BenchResults, evaluateTargets, writeDocs } from './report.js';

const results = JSON.parse(readFileSync(join(RESULTS_DIR, 'latest.json'), 'utf8')) as BenchResults;
writeDocs(
  { ...results, targets: evaluateTargets(results, TARGETS) },
  join(ROOT, 'docs/bench'),
  join(ROOT, 'README.md'),
);
process.stderr.write(
  'wrote docs/bench/{results.md,bench.svg,README-section.md} and the README’s Benchmarks section\n',
);
