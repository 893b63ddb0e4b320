/**
 * What the browser suites share: Debian's Chromium launched as this machine needs it, the
 * pages built into a folder of the run's own, and a page watched for what a person would not
 * see (requests, CSP reports, script errors).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { CHROMIUM } from '../backends.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Headless, no sandbox (root), and none of the background traffic this closed network refuses. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * The pages built by the same `vite build` as `npm run build`, into a new folder (web/dist may
 * be serving a running service), so that a fresh clone tests the pages of its own sources.
 */
export async function buildPages(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-pages-'));
  await build({
    configFile: `${ROOT}vite.config.ts`,
    logLevel: 'warn',
    build: { outDir: dir, emptyOutDir: true },
  });
  return dir;
}

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Every URL the context asked for, to prove no request leaves the origin. */
  requested: string[];
  /** Console lines about the Content-Security-Policy: the pages must need no exception. */
  cspViolations: string[];
  pageErrors: string[];
}

export async function watchedPage(
  browser: Browser,
  options: Parameters<Browser['newContext']>[0] = {},
): Promise<WatchedPage> {
  const context = await browser.newContext(options);
  const watched: WatchedPage = {
    context,
    page: await context.newPage(),
    requested: [],
    cspViolations: [],
    pageErrors: [],
  };
  context.on('request', (request) => watched.requested.push(request.url()));
  watched.page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) watched.cspViolations.push(message.text());
  });
  watched.page.on('pageerror', (error) => watched.pageErrors.push(error.message));
  return watched;
}
