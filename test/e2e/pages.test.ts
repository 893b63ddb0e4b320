/**
 * The pages in a real browser (Debian's Chromium through playwright-core) against the real
 * service listening on a loopback port: registration with the captcha read from the store and
 * the SMS code from the recording provider, every kind of refusal as a person sees it, login,
 * 记住登录, logout, and not one request to another host.
 *
 * The pages are built first (the same `vite build` as `npm run build`), so a fresh clone's
 * `npm test` tests the pages of its own sources. SAVE_SCREENSHOTS=1 also writes
 * docs/screenshots/*.png.
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { imageCodeKey } from '../../src/domain/verification.js';
import { has } from '../backends.js';
import {
  buildTestApp,
  NO_SEND_LIMITS,
  randomMobile,
  randomUsername,
  registration,
  smsCode,
  type TestApp,
} from '../helper.js';
import { buildPages, launchChromium, ROOT, watchedPage } from './browser.js';

const SCREENSHOTS = `${ROOT}docs/screenshots/`;
const PASSWORD = 'Passw0rd!x';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const LOGIN_FAILURES_ALLOWED = 3;
const RESEND_SECONDS = 3;
const POLL = { timeout: 5_000, interval: 50 };

const hasChromium = await has('chromium');

describe.skipIf(!hasChromium)('pages in a real browser', () => {
  let t: TestApp;
  let browser: Browser;
  let origin: string;
  let requested: string[];
  let cspViolations: string[];
  let pageErrors: string[];
  let context: BrowserContext;
  let page: Page;
  let pagesDir: string | undefined;
  /** A user registered through the API, for duplicate checks and login. */
  const existing = { username: randomUsername(), mobile: randomMobile(), password: PASSWORD };

  beforeAll(async () => {
    const launching = launchChromium();
    pagesDir = await buildPages();
    t = await buildTestApp(
      {
        ...NO_SEND_LIMITS,
        LOGIN_FAILURES_PER_ACCOUNT_IP: String(LOGIN_FAILURES_ALLOWED),
        // Short, so that a test sees the whole countdown; the service's own flag follows the fake
        // clock, so a resend stays refused until a test moves it.
        SMS_RESEND_INTERVAL_SECONDS: String(RESEND_SECONDS),
        LOG_LEVEL: 'warn',
      },
      { pagesDir },
    );
    origin = await t.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launching;
    ({ context, page, requested, cspViolations, pageErrors } = await watchedPage(browser, {
      viewport: DESKTOP,
      locale: 'zh-CN',
    }));

    const api = t.client();
    await api.fetchCsrf();
    const code = await smsCode(t, api, existing.mobile);
    const res = await api.post('/register/', {
      ...registration(existing.mobile, code),
      username: existing.username,
      password: existing.password,
      password2: existing.password,
    });
    expect(res.statusCode).toBe(200);
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (pagesDir) rmSync(pagesDir, { recursive: true, force: true });
  });

  // One page for the whole suite (a browser context costs about a second on a busy machine);
  // each test starts as a new visitor: no cookies, desktop size.
  beforeEach(async () => {
    await context.clearCookies();
    await page.setViewportSize(DESKTOP);
  });

  /** Opens a path of the service in the suite's page. */
  async function openPage(path: string, viewport?: { width: number; height: number }): Promise<Page> {
    if (viewport) await page.setViewportSize(viewport);
    await page.goto(`${origin}${path}`);
    return page;
  }

  const text = async (page: Page, selector: string) => ((await page.textContent(selector)) ?? '').trim();

  /** The uuid of the captcha the page shows now. */
  async function captchaId(page: Page): Promise<string> {
    const src = (await page.getAttribute('#captcha-image', 'src')) ?? '';
    const uuid = /\/image_codes\/([^/]+)\/$/.exec(src)?.[1];
    if (!uuid) throw new Error(`no captcha image: src=${src}`);
    return uuid;
  }

  /** Reads the shown captcha's text from the store, as a person reads the image. */
  async function captchaAnswer(page: Page): Promise<string> {
    const key = imageCodeKey(await captchaId(page));
    await expect.poll(() => t.deps.codeStore.get(key), POLL).not.toBeNull();
    return (await t.deps.codeStore.get(key)) ?? '';
  }

  /** A wrong answer for the shown captcha: the right one with its first character changed. */
  async function wrongCaptcha(page: Page): Promise<string> {
    const right = await captchaAnswer(page);
    return (right[0] === 'A' ? 'B' : 'A') + right.slice(1);
  }

  /** Fills the form as a person would, up to the SMS code; returns what was typed. */
  async function fillRegistration(page: Page, overrides: { username?: string; mobile?: string } = {}) {
    const values = { username: randomUsername(), mobile: randomMobile(), ...overrides };
    await page.fill('#username', values.username);
    await page.fill('#password', PASSWORD);
    await page.fill('#password2', PASSWORD);
    await page.fill('#mobile', values.mobile);
    return values;
  }

  /** Types the captcha and presses the SMS button; resolves with the code the provider sent. */
  async function requestSms(page: Page, mobile: string): Promise<string> {
    await page.fill('#image_code', await captchaAnswer(page));
    const sent = t.nextSms(mobile);
    await page.click('#send-sms');
    return (await sent).code;
  }

  const secondsOn = (label: string) => Number(/^(\d+)秒后重新获取$/.exec(label)?.[1] ?? Number.NaN);

  it('registers a person end to end: captcha, SMS countdown, Enter submits, home greets, logout', async () => {
    await openPage('/register.html');
    const { username, mobile } = await fillRegistration(page);
    const code = await requestSms(page, mobile);

    // The button counts down from the interval the service gave, disabled, then comes back.
    await expect.poll(async () => secondsOn(await text(page, '#send-sms')), POLL).not.toBeNaN();
    const first = secondsOn(await text(page, '#send-sms'));
    expect(first).toBeLessThanOrEqual(RESEND_SECONDS);
    expect(first).toBeGreaterThanOrEqual(RESEND_SECONDS - 1);
    expect(await page.isDisabled('#send-sms')).toBe(true);
    expect(await text(page, '#sms_code-error')).toContain('短信验证码已发送');
    await expect
      .poll(async () => secondsOn(await text(page, '#send-sms')), { timeout: 3_000, interval: 100 })
      .toBe(first - 1);
    expect(await page.isDisabled('#send-sms')).toBe(true);
    await expect
      .poll(() => text(page, '#send-sms'), { timeout: 5_000, interval: 100 })
      .toBe('获取短信验证码');
    expect(await page.isEnabled('#send-sms')).toBe(true);

    await page.fill('#sms_code', code);
    await page.check('#allow');
    await page.press('#sms_code', 'Enter');
    await page.waitForURL(`${origin}/`);
    await expect.poll(() => text(page, '#greeting'), POLL).toBe(`欢迎您：${username}`);
    await expect
      .poll(() => text(page, '#account-mobile'), POLL)
      .toBe(`${mobile.slice(0, 3)}****${mobile.slice(7)}`);
    expect(await t.deps.users.countByUsername(username)).toBe(1);

    await page.click('#logout');
    await page.waitForURL(`${origin}/login.html`);
    const names = (await page.context().cookies()).map((c) => c.name);
    expect(names).not.toContain('sessionid');
    expect(names).not.toContain('username');
    // Home now offers login and registration instead of a greeting.
    await page.goto(`${origin}/`);
    await expect.poll(() => page.isVisible('#guest'), POLL).toBe(true);
    expect(await page.isVisible('#member')).toBe(false);
    await page.click('#guest >> text=免费注册');
    await page.waitForURL(`${origin}/register.html`);
  });

  it('checks each field as the person leaves it, with the service messages, and lifts the error once fixed', async () => {
    await openPage('/register.html');
    const cases: Array<[string, string, string]> = [
      ['#username', '12345678', '请输入5-20个字符的用户名且不能为纯数字'],
      ['#password', 'short', '请输入8-20位的密码'],
      ['#password2', 'something-else', '两次输入的密码不一致'],
      ['#mobile', '12345678901', '手机号格式有误'],
      ['#username', existing.username, '用户名已存在'],
      ['#mobile', existing.mobile, '手机号已存在'],
    ];
    for (const [selector, value, message] of cases) {
      await page.fill(selector, value);
      await page.press(selector, 'Tab');
      await expect.poll(() => text(page, `${selector}-error`), POLL).toBe(message);
      expect(await page.getAttribute(selector, 'aria-invalid')).toBe('true');
    }
    // Fixing a field lifts its error while typing (format) or on leaving (duplicates).
    await page.fill('#password', PASSWORD);
    await expect.poll(() => text(page, '#password-error'), POLL).toBe('');
    expect(await page.getAttribute('#password', 'aria-invalid')).toBeNull();
    await page.fill('#username', randomUsername());
    await page.press('#username', 'Tab');
    await expect.poll(() => text(page, '#username-error'), POLL).toBe('');
    // Submitting with the rest wrong names every remaining problem and moves focus to the first.
    await page.click('#submit');
    await expect.poll(() => text(page, '#allow-error'), POLL).toBe('请勾选用户协议');
    expect(await text(page, '#sms_code-error')).toBe('请输入6位短信验证码');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('password2');
  });

  it('refuses a wrong captcha with its message, shows a new image, and sends nothing', async () => {
    await openPage('/register.html');
    const { mobile } = await fillRegistration(page);
    const before = await captchaId(page);
    await page.fill('#image_code', await wrongCaptcha(page));
    await page.click('#send-sms');
    await expect.poll(() => text(page, '#image_code-error'), POLL).toBe('图形验证码有误');
    expect(await page.getAttribute('#image_code', 'aria-invalid')).toBe('true');
    expect(await captchaId(page)).not.toBe(before);
    expect(await page.inputValue('#image_code')).toBe('');
    expect(await text(page, '#send-sms')).toBe('获取短信验证码');
    expect(await page.isEnabled('#send-sms')).toBe(true);
    expect(t.sent.some((m) => m.mobile === mobile)).toBe(false);
  });

  it('lets a corrected number have its code at once; says how long to wait when the service refuses a resend (429)', async () => {
    await openPage('/register.html');
    const { mobile } = await fillRegistration(page);
    await requestSms(page, mobile);
    expect(await page.isDisabled('#send-sms')).toBe(true);
    // Another number may have a code at once: the countdown was for the first one.
    await page.fill('#mobile', randomMobile());
    expect(await text(page, '#send-sms')).toBe('获取短信验证码');
    expect(await page.isEnabled('#send-sms')).toBe(true);
    // Back to the first number before its interval is over: the service refuses and says how long.
    await page.fill('#mobile', mobile);
    await page.fill('#image_code', await captchaAnswer(page));
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().includes(`/sms_codes/${mobile}/`)),
      page.click('#send-sms'),
    ]);
    expect(response.status()).toBe(429);
    const { retry_after } = (await response.json()) as { retry_after: number };
    await expect
      .poll(() => text(page, '#sms_code-error'), POLL)
      .toBe(`发送短信过于频繁（${retry_after}秒后可重试）`);
    expect(await text(page, '#send-sms')).toBe('获取短信验证码');
    expect(await page.isEnabled('#send-sms')).toBe(true);
  });

  it('shows a wrong SMS code with the attempts left, then registers with the right one', async () => {
    await openPage('/register.html');
    const { mobile, username } = await fillRegistration(page);
    const code = await requestSms(page, mobile);
    await page.fill('#sms_code', code === '000000' ? '111111' : '000000');
    await page.check('#allow');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/register/')),
      page.click('#submit'),
    ]);
    const { attempts_left } = (await response.json()) as { attempts_left: number };
    expect(attempts_left).toBe(t.config.SMS_CODE_MAX_ATTEMPTS - 1);
    await expect
      .poll(() => text(page, '#sms_code-error'), POLL)
      .toBe(`短信验证码有误，还可以尝试${attempts_left}次`);
    expect(await page.getAttribute('#sms_code', 'aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sms_code');

    await page.fill('#sms_code', code);
    await page.click('#submit');
    await page.waitForURL(`${origin}/`);
    await expect.poll(() => text(page, '#greeting'), POLL).toBe(`欢迎您：${username}`);
  });

  it('places refusals found only at submit next to their field: a username taken meanwhile', async () => {
    await openPage('/register.html');
    const { username, mobile } = await fillRegistration(page);
    await page.press('#mobile', 'Tab');
    await expect.poll(() => page.getAttribute('#username', 'aria-invalid'), POLL).toBeNull();
    const code = await requestSms(page, mobile);
    await page.fill('#sms_code', code);
    await page.check('#allow');
    // Someone else takes the name between the check on leaving the field and the submit.
    const other = t.client();
    await other.fetchCsrf();
    const otherMobile = randomMobile();
    const res = await other.post('/register/', {
      ...registration(otherMobile, await smsCode(t, other, otherMobile)),
      username,
    });
    expect(res.statusCode).toBe(200);

    await page.click('#submit');
    await expect.poll(() => text(page, '#username-error'), POLL).toBe('用户名已存在');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('username');
    expect(page.url()).toBe(`${origin}/register.html`);
    expect(await text(page, '#form-error')).toBe('');
  });

  it('says an SMS code expired, and keeps working after its CSRF cookie was lost', async () => {
    await openPage('/register.html');
    const { mobile, username } = await fillRegistration(page);
    const code = await requestSms(page, mobile);
    await page.fill('#sms_code', code);
    await page.check('#allow');
    t.clock.advance((t.config.SMS_CODE_TTL_SECONDS + 1) * 1000);
    await page.click('#submit');
    await expect.poll(() => text(page, '#sms_code-error'), POLL).toBe('短信验证码失效，请重新获取短信验证码');

    // A new code after the resend interval; the csrftoken cookie is gone meanwhile (cleared by
    // the person, or rotated by a login in another tab): the page fetches a new token and goes on.
    await page.reload();
    await fillRegistration(page, { username, mobile });
    const fresh = await requestSms(page, mobile);
    await page.fill('#sms_code', fresh);
    await page.check('#allow');
    await page.context().clearCookies({ name: 'csrftoken' });
    await page.click('#submit');
    await page.waitForURL(`${origin}/`);
  });

  it('logs in by username with 记住登录 (a lasting session) and by mobile without (a browser session)', async () => {
    const byName = await openPage('/login.html');
    await byName.fill('#username', existing.username);
    await byName.fill('#password', existing.password);
    await byName.check('#remembered');
    await byName.press('#password', 'Enter');
    await byName.waitForURL(`${origin}/`);
    await expect.poll(() => text(byName, '#greeting'), POLL).toBe(`欢迎您：${existing.username}`);
    const lasting = (await byName.context().cookies()).find((c) => c.name === 'sessionid');
    expect(lasting?.expires).toBeGreaterThan(Date.now() / 1000 + 13 * 24 * 3600);

    await context.clearCookies();
    const byMobile = await openPage('/login.html');
    await byMobile.fill('#username', existing.mobile);
    await byMobile.fill('#password', existing.password);
    await byMobile.click('#submit');
    await byMobile.waitForURL(`${origin}/`);
    await expect.poll(() => text(byMobile, '#greeting'), POLL).toBe(`欢迎您：${existing.username}`);
    const browserSession = (await byMobile.context().cookies()).find((c) => c.name === 'sessionid');
    expect(browserSession?.expires).toBe(-1);
  });

  it('goes to a same-origin ?next= after login, and never to another host', async () => {
    for (const [next, lands] of [
      ['/index.html?from=login', '/index.html?from=login'],
      ['https://elsewhere.example/', '/'],
      ['//elsewhere.example/x', '/'],
      // Normalises to //elsewhere.example/: still a path of this origin, not another host.
      ['/.//elsewhere.example/', '//elsewhere.example/'],
    ]) {
      await openPage(`/login.html?next=${encodeURIComponent(next ?? '')}`);
      await page.fill('#username', existing.username);
      await page.fill('#password', existing.password);
      await page.click('#submit');
      await page.waitForURL(`${origin}${lands}`);
    }
  });

  it('shows a failed login, then the lockout with its wait', async () => {
    await openPage('/login.html');
    await page.click('#submit');
    await expect.poll(() => text(page, '#username-error'), POLL).toBe('请输入用户名或手机号');
    expect(await text(page, '#password-error')).toBe('请输入密码');

    const account = randomUsername();
    let last = { status: 0, body: {} as { retry_after?: number } };
    for (let i = 0; i <= LOGIN_FAILURES_ALLOWED; i++) {
      await page.fill('#username', account);
      await page.fill('#password', 'not-the-password');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/login/')),
        page.click('#submit'),
      ]);
      last = { status: response.status(), body: await response.json() };
      if (i < LOGIN_FAILURES_ALLOWED) {
        await expect.poll(() => text(page, '#form-error'), POLL).toBe('用户名或密码错误');
        expect(await page.getAttribute('#password', 'aria-invalid')).toBe('true');
        expect(await page.inputValue('#password')).toBe('');
      }
    }
    expect(last.status).toBe(429);
    // The wait is the rest of the 15-minute window: seconds under two minutes, else minutes.
    const seconds = last.body.retry_after ?? 0;
    const wait = seconds < 120 ? `${seconds}秒` : `${Math.ceil(seconds / 60)}分钟`;
    await expect
      .poll(() => text(page, '#form-error'), POLL)
      .toBe(`登录失败次数过多，请稍后再试（${wait}后可重试）`);
    expect(await page.getAttribute('#form-error', 'role')).toBe('alert');
  });

  it('is usable by keyboard: labelled fields, tab order, a captcha button with a name', async () => {
    await openPage('/register.html', PHONE);
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input'))
        .filter((input) => !document.querySelector(`label[for="${input.id}"]`)?.textContent?.trim())
        .map((input) => input.id || input.name),
    );
    expect(unlabelled).toEqual([]);
    const captcha = page.getByRole('button', { name: /换一张/ });
    expect(await captcha.count()).toBe(1);

    await page.focus('#username');
    const order: string[] = [];
    for (let i = 0; i < 9; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement?.id ?? ''));
    }
    expect(order).toEqual([
      'password',
      'password2',
      'mobile',
      'image_code',
      'captcha',
      'sms_code',
      'send-sms',
      'allow',
      'submit',
    ]);
    const before = await captchaId(page);
    await page.focus('#captcha');
    await page.keyboard.press('Enter');
    await expect.poll(() => captchaId(page), POLL).not.toBe(before);

    // The pages link to each other.
    await page.click('.lead >> text=直接登录');
    await page.waitForURL(`${origin}/login.html`);
    await page.click('.switch >> text=免费注册');
    await page.waitForURL(`${origin}/register.html`);
  });

  it('lays the registration page out at 390×844 and 1280×900 without sideways scrolling', async () => {
    // SAVE_SCREENSHOTS=1 also writes them to docs/screenshots/ for the README.
    const save = process.env.SAVE_SCREENSHOTS === '1';
    if (save) mkdirSync(SCREENSHOTS, { recursive: true });
    for (const [name, viewport] of [
      ['register-390', PHONE],
      ['register-1280', DESKTOP],
    ] as const) {
      await openPage('/register.html', viewport);
      await captchaAnswer(page);
      await page.waitForFunction(() => {
        const img = document.querySelector<HTMLImageElement>('#captcha-image');
        return img?.complete && img.naturalWidth > 0;
      });
      const layout = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        narrowest: Math.min(
          ...Array.from(document.querySelectorAll<HTMLInputElement>('input:not([type=checkbox])')).map(
            (i) => i.getBoundingClientRect().width,
          ),
        ),
      }));
      expect(layout.scrollWidth, name).toBeLessThanOrEqual(layout.innerWidth);
      expect(layout.narrowest, name).toBeGreaterThan(120);
      const shot = await page.screenshot(save ? { path: `${SCREENSHOTS}${name}.png` } : {});
      expect(shot.length).toBeGreaterThan(1000);
    }
  });

  it('serves the built pages itself: / is home, HTML revalidated under the CSP, hashed assets immutable', async () => {
    // Asked outside the page's cache, which would revalidate to a bare 304.
    const home = await page.request.get(`${origin}/`);
    expect(home.status()).toBe(200);
    expect(home.headers()['content-type']).toContain('text/html');
    expect(home.headers()['cache-control']).toBe('no-cache');
    expect(home.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(await home.text()).toContain('id="greeting"');
    await page.goto(`${origin}/`);
    const assets = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLScriptElement | HTMLLinkElement>('script[src], link[href]'))
        .map((e) => (e instanceof HTMLScriptElement ? e.src : e.href))
        .filter((url) => url.includes('/assets/')),
    );
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const url of assets) {
      expect(url).toMatch(/\/assets\/[\w-]+-[\w-]{8}\.(js|css)$/);
      const res = await page.request.get(url);
      expect(res.status()).toBe(200);
      expect(res.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
    }
  });

  it('made no request to any other host and needed no exception to the CSP', () => {
    expect(requested.length).toBeGreaterThan(50);
    expect(requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'))).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
