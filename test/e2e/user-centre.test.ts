/**
 * The user-centre pages in a real browser (Debian's Chromium through playwright-core) against
 * the real service on a loopback port, its worker sending through a real SMTP server
 * (`smtp-server`, test/email/smtp-server.ts): email binding with the link clicked from the
 * message the SMTP server received, password change, sessions, find password by SMS, mobile
 * change — and not one request to another host. SAVE_SCREENSHOTS=1 also writes
 * docs/screenshots/*.png.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSmtpEmailProvider } from '../../src/adapters/email-provider/smtp.js';
import { imageCodeKey } from '../../src/domain/verification.js';
import { has } from '../backends.js';
import { startSmtpServer, type TestSmtpServer } from '../email/smtp-server.js';
import {
  buildTestApp,
  type Client,
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
const NEW_PASSWORD = 'N3w-Passw0rd';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const POLL = { timeout: 5_000, interval: 50 };
const OTHER_AGENT =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1';

const hasChromium = await has('chromium');

/** A loopback port free now, so that the verification link can name it before the server listens. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe.skipIf(!hasChromium)('user-centre pages in a real browser', () => {
  let t: TestApp;
  let smtp: TestSmtpServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  let pagesDir: string | undefined;
  let requested: string[];
  let cspViolations: string[];
  let pageErrors: string[];

  beforeAll(async () => {
    const launching = launchChromium();
    pagesDir = await buildPages();
    smtp = await startSmtpServer();
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    t = await buildTestApp(
      {
        ...NO_SEND_LIMITS,
        SMS_RESEND_INTERVAL_SECONDS: '3',
        EMAIL_VERIFY_URL: `${origin}/success_verify_email.html?token=`,
        LOG_LEVEL: 'warn',
      },
      {
        pagesDir,
        email: createSmtpEmailProvider({
          url: `smtp://127.0.0.1:${smtp.port}`,
          from: '美多商城 <no-reply@meiduo.site>',
          timeoutMs: 5000,
        }),
      },
    );
    await t.app.listen({ port, host: '127.0.0.1' });
    browser = await launching;
    ({ context, page, requested, cspViolations, pageErrors } = await watchedPage(browser, {
      viewport: DESKTOP,
      locale: 'zh-CN',
    }));
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await smtp?.close();
    if (pagesDir) rmSync(pagesDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await context.clearCookies();
    await page.setViewportSize(DESKTOP);
  });

  const text = async (selector: string) => ((await page.textContent(selector)) ?? '').trim();
  const masked = (mobile: string) => `${mobile.slice(0, 3)}****${mobile.slice(7)}`;

  /** A user registered through the API. */
  async function newUser(): Promise<{ username: string; mobile: string }> {
    const api = t.client();
    await api.fetchCsrf();
    const mobile = randomMobile();
    const username = randomUsername();
    const res = await api.post('/register/', {
      ...registration(mobile, await smsCode(t, api, mobile)),
      username,
      password: PASSWORD,
      password2: PASSWORD,
    });
    expect(res.statusCode).toBe(200);
    return { username, mobile };
  }

  /** Logs in through the login page, then opens the user centre. */
  async function logIn(username: string, password = PASSWORD): Promise<void> {
    await page.goto(`${origin}/login.html?next=%2Fuser_center_info.html`);
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('#submit');
    await page.waitForURL(`${origin}/user_center_info.html`);
    await expect.poll(() => text('#info-username'), POLL).toBe(username);
  }

  /** Another device of the same user: an API client with a phone's user agent. */
  async function otherDevice(username: string): Promise<Client> {
    const other = t.client({ ip: '198.18.7.9', headers: { 'user-agent': OTHER_AGENT } });
    await other.fetchCsrf();
    const res = await other.post('/login/', { username, password: PASSWORD, remembered: true });
    expect(res.statusCode).toBe(200);
    return other;
  }

  async function captchaAnswer(): Promise<string> {
    const src = (await page.getAttribute('#captcha-image', 'src')) ?? '';
    const uuid = /\/image_codes\/([^/]+)\/$/.exec(src)?.[1] ?? '';
    const key = imageCodeKey(uuid);
    await expect.poll(() => t.deps.codeStore.get(key), POLL).not.toBeNull();
    return (await t.deps.codeStore.get(key)) ?? '';
  }

  it('shows the account, binds an email, and the link clicked from the received mail verifies it once', async () => {
    const { username, mobile } = await newUser();
    await logIn(username);
    expect(await text('#info-mobile')).toBe(masked(mobile));
    expect(await text('#info-email')).toBe('未设置');

    await page.fill('#email', 'not-an-email');
    await page.press('#email', 'Enter');
    await expect.poll(() => text('#email-error'), POLL).toBe('邮箱格式有误');
    expect(await page.getAttribute('#email', 'aria-invalid')).toBe('true');

    const address = `${username.replace('_', '')}@example.com`;
    await page.fill('#email', address);
    const arriving = smtp.next(address);
    await page.click('#email-submit');
    await expect.poll(() => text('#email-error'), POLL).toContain('验证邮件已发送');
    await expect.poll(() => text('#info-email-state'), POLL).toBe('待验证');
    expect(await text('#info-email')).toBe(address);

    const mail = await arriving;
    const link = /https?:\/\/\S+success_verify_email\.html\?token=[\w-]+/.exec(mail.text)?.[0];
    expect(link?.startsWith(`${origin}/`)).toBe(true);
    // Opened from a mail client: a browser that is not logged in.
    await context.clearCookies();
    await page.goto(link ?? '');
    await expect.poll(() => text('#title'), POLL).toBe('邮箱验证成功');
    expect(await text('#verify-status')).toBe(`${address} 已通过验证`);
    // The token left the address bar at once.
    expect(page.url()).toBe(`${origin}/success_verify_email.html`);
    await page.click('text=前往用户中心');
    await expect.poll(() => page.isVisible('#guest'), POLL).toBe(true);
    await logIn(username);
    await expect.poll(() => text('#info-email-state'), POLL).toBe('已验证');

    // The link works once.
    await page.goto(link ?? '');
    await expect.poll(() => text('#title'), POLL).toBe('邮箱验证失败');
    expect(await text('#verify-status')).toBe('链接无效或已过期，请在用户中心重新发送验证邮件');
  });

  it('lists the devices, ends another one, then all others', async () => {
    const { username } = await newUser();
    const phone = await otherDevice(username);
    const tablet = await otherDevice(username);
    await logIn(username);
    // Registration's own session, two phones, this browser.
    await expect.poll(() => page.locator('#sessions li').count(), POLL).toBe(4);
    const current = page.locator('#sessions li', { hasText: '本设备' });
    expect(await current.count()).toBe(1);
    expect(await current.textContent()).toContain('Chrome · Linux');
    const others = page.locator('#sessions li', { hasText: 'Safari · iOS' });
    expect(await others.count()).toBe(2);
    expect(await others.first().textContent()).toContain('IP 198.18.7.0/24');

    await others
      .first()
      .getByRole('button', { name: /退出 Safari · iOS/ })
      .click();
    await expect.poll(() => page.locator('#sessions li').count(), POLL).toBe(3);
    const stillIn = [(await phone.get('/info/')).statusCode, (await tablet.get('/info/')).statusCode].sort();
    expect(stillIn).toEqual([200, 401]);

    await page.click('#end-others');
    await expect.poll(() => page.locator('#sessions li').count(), POLL).toBe(1);
    await expect.poll(() => text('#sessions-note'), POLL).toBe('已退出2台其他设备');
    expect(await page.isVisible('#end-others')).toBe(false);
    expect((await phone.get('/info/')).statusCode).toBe(401);
    expect((await tablet.get('/info/')).statusCode).toBe(401);

    // Ending this device's own session is a logout.
    await current.getByRole('button').click();
    await page.waitForURL(`${origin}/login.html`);
    await page.goto(`${origin}/user_center_info.html`);
    await expect.poll(() => page.isVisible('#guest'), POLL).toBe(true);
  });

  it('changes the password: a wrong current one is said on its field; then every device logs in again', async () => {
    const { username } = await newUser();
    const phone = await otherDevice(username);
    await logIn(username);
    await page.fill('#old_password', 'wrong-password');
    await page.fill('#new_password', NEW_PASSWORD);
    await page.fill('#new_password2', 'different-one');
    await page.click('#password-submit');
    await expect.poll(() => text('#new_password2-error'), POLL).toBe('两次输入的密码不一致');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('new_password2');

    await page.fill('#new_password2', NEW_PASSWORD);
    await page.click('#password-submit');
    await expect.poll(() => text('#old_password-error'), POLL).toBe('原始密码错误');
    expect(await page.inputValue('#old_password')).toBe('');

    await page.fill('#old_password', PASSWORD);
    await page.click('#password-submit');
    await page.waitForURL(/\/login\.html/);
    await expect.poll(() => text('#form-note'), POLL).toBe('密码已修改，请使用新密码重新登录');
    expect((await phone.get('/info/')).statusCode).toBe(401);
    await logIn(username, NEW_PASSWORD);
  });

  it('finds a password by SMS: unknown account, masked mobile, wrong code, then the new password logs in', async () => {
    const { username, mobile } = await newUser();
    await page.goto(`${origin}/login.html`);
    await page.click('text=忘记密码？');
    await page.waitForURL(`${origin}/find_password.html`);

    await page.fill('#account', randomUsername());
    await page.fill('#image_code', await captchaAnswer());
    await page.click('#send-sms');
    await expect.poll(() => text('#account-error'), POLL).toBe('账号不存在');

    await page.fill('#account', username);
    await page.fill('#image_code', await captchaAnswer());
    const sent = t.nextSms(mobile);
    await page.click('#send-sms');
    const { code } = await sent;
    await expect
      .poll(() => text('#sms_code-error'), POLL)
      .toBe(`短信验证码已发送到 ${masked(mobile)}，请注意查收`);
    expect(await page.isDisabled('#send-sms')).toBe(true);

    await page.fill('#sms_code', code === '000000' ? '111111' : '000000');
    await page.fill('#password', NEW_PASSWORD);
    await page.fill('#password2', NEW_PASSWORD);
    await page.click('#submit');
    await expect
      .poll(() => text('#sms_code-error'), POLL)
      .toBe(`短信验证码有误，还可以尝试${t.config.SMS_CODE_MAX_ATTEMPTS - 1}次`);

    await page.fill('#sms_code', code);
    await page.press('#sms_code', 'Enter');
    await page.waitForURL(/\/login\.html/);
    await expect.poll(() => text('#form-note'), POLL).toBe('密码已重置，请使用新密码登录');
    await logIn(username, NEW_PASSWORD);
  });

  it('changes the mobile: password and captcha, a code to the new number, then the account shows it', async () => {
    const { username, mobile } = await newUser();
    await logIn(username);
    const next = randomMobile();
    await page.fill('#new_mobile', mobile);
    await page.fill('#mobile_password', PASSWORD);
    await page.fill('#image_code', await captchaAnswer());
    await page.click('#send-sms');
    await expect.poll(() => text('#new_mobile-error'), POLL).toBe('新手机号与当前手机号相同');

    await page.fill('#new_mobile', next);
    await page.fill('#image_code', await captchaAnswer());
    const sent = t.nextSms(next);
    await page.click('#send-sms');
    const { code } = await sent;
    await expect.poll(() => text('#sms_code-error'), POLL).toBe('短信验证码已发送到新手机号，请注意查收');
    await page.fill('#sms_code', code);
    await page.click('#mobile-submit');
    await expect.poll(() => text('#info-mobile'), POLL).toBe(masked(next));
    expect(await text('#new_mobile-error')).toBe('手机号修改成功');
    await expect
      .poll(async () => (await t.deps.users.findByMobile(next))?.username ?? null, POLL)
      .toBe(username);
  });

  it('lays the new pages out at 390×844 and 1280×900 without sideways scrolling, every input labelled', async () => {
    const save = process.env.SAVE_SCREENSHOTS === '1';
    if (save) mkdirSync(SCREENSHOTS, { recursive: true });
    const { username } = await newUser();
    await logIn(username);
    for (const [name, path] of [
      ['user-center', '/user_center_info.html'],
      ['find-password', '/find_password.html'],
      ['verify-email', '/success_verify_email.html?token=x'],
    ] as const) {
      for (const [size, viewport] of [
        ['390', PHONE],
        ['1280', DESKTOP],
      ] as const) {
        await page.setViewportSize(viewport);
        await page.goto(`${origin}${path}`);
        if (name !== 'verify-email') await captchaAnswer();
        else await expect.poll(() => text('#title'), POLL).toBe('邮箱验证失败');
        const layout = await page.evaluate(() => ({
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth,
          unlabelled: Array.from(document.querySelectorAll('input'))
            .filter((input) => !document.querySelector(`label[for="${input.id}"]`)?.textContent?.trim())
            .map((input) => input.id),
        }));
        expect(layout.scrollWidth, `${name}-${size}`).toBeLessThanOrEqual(layout.innerWidth);
        expect(layout.unlabelled).toEqual([]);
        if (name === 'user-center' && size === '1280') {
          // Every control is reached by keyboard, in reading order.
          await page.focus('#email');
          const order: string[] = [];
          for (let i = 0; i < 12; i++) {
            await page.keyboard.press('Tab');
            order.push(await page.evaluate(() => document.activeElement?.id ?? ''));
          }
          expect(order).toEqual([
            'email-submit',
            'old_password',
            'new_password',
            'new_password2',
            'password-submit',
            'new_mobile',
            'mobile_password',
            'image_code',
            'captcha',
            'sms_code',
            'send-sms',
            'mobile-submit',
          ]);
          expect(await page.getByRole('button', { name: /退出 Chrome · Linux（本设备）/ }).count()).toBe(1);
        }
        const shot = await page.screenshot(
          save ? { path: `${SCREENSHOTS}${name}-${size}.png`, fullPage: name === 'user-center' } : {},
        );
        expect(shot.length).toBeGreaterThan(1000);
      }
    }
  });

  it('made no request to any other host and needed no exception to the CSP', () => {
    expect(requested.length).toBeGreaterThan(20);
    expect(requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'))).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
