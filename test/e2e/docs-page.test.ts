/**
 * The /docs page in Debian's Chromium: it renders every operation of the OpenAPI document
 * under its strict CSP, with no CSP report, no script error and no request to another host.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { has } from '../backends.js';
import { buildTestApp, type TestApp } from '../helper.js';
import { launchChromium, watchedPage } from './browser.js';

const hasChromium = await has('chromium');

describe.skipIf(!hasChromium)('the /docs page in a real browser', () => {
  let t: TestApp;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    t = await buildTestApp({ ADMIN_TOKEN: 'd'.repeat(40), LOG_LEVEL: 'warn' });
    origin = await t.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('lists every operation of the document, needing no CSP exception', async () => {
    const { context, page, requested, cspViolations, pageErrors } = await watchedPage(browser);

    await page.goto(`${origin}/docs`);
    await page.waitForSelector('body[data-rendered="yes"]', { timeout: 10_000 });

    const doc = (await t.client().get('/docs/openapi.json')).json();
    const operations = Object.values(doc.paths as Record<string, object>).reduce(
      (n, item) => n + Object.keys(item).length,
      0,
    );
    expect(await page.locator('main details').count()).toBe(operations);
    const heads = await page.locator('main details > summary').allTextContents();
    expect(heads.some((h) => h.includes('POST') && h.includes('/register/'))).toBe(true);
    expect(heads.some((h) => h.includes('/admin/queue/failed/{id}/retry/'))).toBe(true);

    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(requested.every((url) => url.startsWith(origin))).toBe(true);
    await context.close();
  });
});
