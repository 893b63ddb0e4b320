import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mobileChangeCodeKey } from '../../src/domain/sms-purposes.js';
import { imageCodeKey, smsCodeKey } from '../../src/domain/verification.js';
import {
  backendMatrix,
  buildTestApp,
  type Client,
  imageCode,
  NO_SEND_LIMITS,
  randomIp,
  randomMobile,
  registration,
  smsCode,
  type TestApp,
} from '../helper.js';

const matrix = await backendMatrix();

/** The token at the end of the link in a mail's text. */
function tokenOf(text: string): string {
  const match = /success_verify_email\.html\?token=([A-Za-z0-9_-]+)/.exec(text);
  if (!match?.[1]) throw new Error(`no link in ${text}`);
  return match[1];
}

async function browser(t: TestApp, ip?: string): Promise<Client> {
  const c = t.client({ ip: ip ?? randomIp(), headers: { 'user-agent': 'Mozilla/5.0 (test) Chromium' } });
  await c.fetchCsrf();
  return c;
}

/** A registered, logged-in user. */
async function registered(t: TestApp) {
  const ip = randomIp();
  const client = await browser(t, ip);
  const mobile = randomMobile();
  const code = await smsCode(t, client, mobile);
  const body = registration(mobile, code);
  const res = await client.post('/register/', body);
  expect(res.statusCode, res.body).toBe(200);
  return { client, ip, username: body.username, password: body.password, mobile };
}

async function login(t: TestApp, account: string, password: string, ip?: string) {
  const c = await browser(t, ip);
  const res = await c.post('/login/', { username: account, password, remembered: true });
  return { client: c, res };
}

describe.each(matrix)('user centre on $name', ({ store: backend, database }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp(
      { ...NO_SEND_LIMITS, LOGIN_FAILURES_PER_ACCOUNT_IP: '3', LOGIN_FAILURES_PER_IP: '50' },
      { backend, database },
    );
  });
  afterAll(() => t.close());

  describe('PUT /emails/ and PUT /emails/verification/', () => {
    it('saves the email unverified, mails a one-use link, and the link verifies it', async () => {
      const { client } = await registered(t);
      const email = `a${Date.now()}@example.com`;
      const mail = t.nextMail(email);
      const res = await client.put('/emails/', { email });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ code: 0, message: '邮件保存成功', errmsg: '邮件保存成功', email });
      expect((await client.get('/info/')).json().info_data).toMatchObject({ email, email_active: false });

      const message = await mail;
      expect(message.subject).toBe('美多商城邮箱验证');
      const token = tokenOf(message.text);
      expect(message.html).toContain(token);
      // The token is stored only as a hash: no key of the store holds it.
      expect(await t.deps.codeStore.get(`meiduo-users:email-token:${token}`)).toBeNull();

      const stranger = await browser(t);
      const ok = await stranger.put(`/emails/verification/?token=${token}`);
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ code: 0, message: '邮箱验证成功', email });
      expect((await client.get('/info/')).json().info_data).toMatchObject({ email, email_active: true });

      const again = await stranger.put(`/emails/verification/?token=${token}`);
      expect(again.statusCode).toBe(400);
      expect(again.json()).toMatchObject({
        code: 400,
        error: 'EMAIL_TOKEN_INVALID',
        message: '邮箱验证链接无效或已过期',
      });
    });

    it('a newer binding makes the older link useless', async () => {
      const { client } = await registered(t);
      const first = `f${Date.now()}@example.com`;
      const second = `s${Date.now()}@example.com`;
      const firstMail = t.nextMail(first);
      expect((await client.put('/emails/', { email: first })).statusCode).toBe(200);
      const oldToken = tokenOf((await firstMail).text);
      const secondMail = t.nextMail(second);
      expect((await client.put('/emails/', { email: second })).statusCode).toBe(200);
      const newToken = tokenOf((await secondMail).text);

      const stale = await client.put(`/emails/verification/?token=${oldToken}`);
      expect(stale.json()).toMatchObject({ error: 'EMAIL_TOKEN_INVALID' });
      expect((await client.get('/info/')).json().info_data).toMatchObject({
        email: second,
        email_active: false,
      });
      expect((await client.put(`/emails/verification/?token=${newToken}`)).statusCode).toBe(200);
      expect((await client.get('/info/')).json().info_data).toMatchObject({
        email: second,
        email_active: true,
      });
    });

    it('refuses a bad address, a missing or wrong token, and a visitor without a session', async () => {
      const { client } = await registered(t);
      for (const email of ['not-an-email', 'Upper@Example.com', `${'a'.repeat(250)}@x.com`]) {
        const res = await client.put('/emails/', { email });
        expect(res.json(), email).toMatchObject({
          code: 400,
          error: 'EMAIL_INVALID',
          message: '邮箱格式有误',
        });
      }
      expect((await client.put('/emails/', {})).json()).toMatchObject({ error: 'MISSING_PARAMS' });
      expect((await client.put('/emails/', { email: 5 })).json()).toMatchObject({ error: 'BAD_REQUEST' });
      expect((await client.get('/info/')).json().info_data.email).toBe('');
      expect((await client.put('/emails/verification/')).json()).toMatchObject({ error: 'MISSING_PARAMS' });
      expect((await client.put('/emails/verification/?token=nope')).json()).toMatchObject({
        error: 'EMAIL_TOKEN_INVALID',
      });
      const visitor = await browser(t);
      const res = await visitor.put('/emails/', { email: 'x@example.com' });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'NOT_LOGGED_IN' });
    });
  });

  describe('PUT /password/', () => {
    it('changes the password and ends every session of the user, this one included', async () => {
      const { client, username, password } = await registered(t);
      const other = await login(t, username, password);
      expect(other.res.statusCode).toBe(200);
      const res = await client.put('/password/', {
        old_password: password,
        new_password: 'N3w-passw0rd',
        new_password2: 'N3w-passw0rd',
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ code: 0, message: '修改密码成功' });
      expect(client.cookies.has('sessionid')).toBe(false);
      expect(client.cookies.has('username')).toBe(false);
      expect((await other.client.get('/info/')).statusCode).toBe(401);
      expect((await login(t, username, password)).res.json()).toMatchObject({ error: 'LOGIN_FAILED' });
      expect((await login(t, username, 'N3w-passw0rd')).res.statusCode).toBe(200);
      const user = await t.deps.users.findByUsername(username);
      expect(user?.password).toMatch(/^argon2\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    });

    it('checks the new password first, then the old one like a login, counting failures', async () => {
      const { client, ip, username, password } = await registered(t);
      const body = (old: string, p = 'N3w-passw0rd', p2 = p) => ({
        old_password: old,
        new_password: p,
        new_password2: p2,
      });
      expect((await client.put('/password/', body(password, 'short'))).json()).toMatchObject({
        error: 'PASSWORD_INVALID',
      });
      expect(
        (await client.put('/password/', body(password, 'N3w-passw0rd', 'other-passw0rd'))).json(),
      ).toMatchObject({ error: 'PASSWORD_MISMATCH' });
      expect((await client.put('/password/', { old_password: password })).json()).toMatchObject({
        error: 'MISSING_PARAMS',
      });
      for (let i = 0; i < 3; i++) {
        const wrong = await client.put('/password/', body('wrong-passw0rd'));
        expect(wrong.statusCode).toBe(400);
        expect(wrong.json()).toMatchObject({ error: 'OLD_PASSWORD_WRONG', message: '原始密码错误' });
      }
      // The login limit (3 per account and address here) now refuses, with its rest.
      const limited = await client.put('/password/', body(password));
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ error: 'LOGIN_LIMIT' });
      expect(limited.json().retry_after).toBeGreaterThan(0);
      expect(limited.headers['retry-after']).toBe(String(limited.json().retry_after));
      // It is the login's own counter: logging in from this address is refused too.
      expect((await login(t, username, password, ip)).res.json()).toMatchObject({ error: 'LOGIN_LIMIT' });
      expect((await client.get('/info/')).statusCode).toBe(200);
    });
  });

  describe('password reset by SMS', () => {
    async function resetCode(c: Client, account: string, mobile: string) {
      const { uuid, answer } = await imageCode(t, c);
      const sent = t.nextSms(mobile);
      const res = await c.post('/password_reset/sms_codes/', {
        account,
        image_code: answer,
        image_code_id: uuid,
      });
      expect(res.statusCode, res.body).toBe(200);
      return { res, message: await sent };
    }

    it('sends a code to the account mobile, masked; code + new password sets it and ends every session', async () => {
      const { client: session, username, mobile, password } = await registered(t);
      const c = await browser(t);
      const { res, message } = await resetCode(c, username, mobile);
      expect(res.json()).toMatchObject({
        code: 0,
        message: '发送短信成功',
        mobile: `${mobile.slice(0, 3)}****${mobile.slice(-4)}`,
        resend_after: 60,
      });
      expect(message.purpose).toBe('password_reset');
      expect(message.code).toMatch(/^\d{6}$/);
      // Its own key: not the registration's sms_{mobile}.
      expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();

      const wrong = await c.post('/password_reset/', {
        account: mobile,
        sms_code: message.code === '000000' ? '111111' : '000000',
        password: 'Res3t-passw0rd',
        password2: 'Res3t-passw0rd',
      });
      expect(wrong.json()).toMatchObject({ error: 'SMS_CODE_WRONG', attempts_left: 4 });
      const done = await c.post('/password_reset/', {
        account: mobile,
        sms_code: message.code,
        password: 'Res3t-passw0rd',
        password2: 'Res3t-passw0rd',
      });
      expect(done.statusCode, done.body).toBe(200);
      expect(done.json()).toMatchObject({ code: 0, message: '密码重置成功' });
      expect((await session.get('/info/')).statusCode).toBe(401);
      expect((await login(t, username, password)).res.json()).toMatchObject({ error: 'LOGIN_FAILED' });
      expect((await login(t, username, 'Res3t-passw0rd')).res.statusCode).toBe(200);
      // One use.
      const reuse = await c.post('/password_reset/', {
        account: username,
        sms_code: message.code,
        password: 'Other-passw0rd',
        password2: 'Other-passw0rd',
      });
      expect(reuse.json()).toMatchObject({ error: 'SMS_CODE_EXPIRED' });
    });

    it('a registration code does not reset a password, and a reset code does not register', async () => {
      const { username, mobile } = await registered(t);
      const c = await browser(t);
      // A registration code for the account's mobile, as /sms_codes/ stores it.
      const registrationCode = '246810';
      await t.deps.codeStore.set(smsCodeKey(mobile), registrationCode, 300);
      const res = await c.post('/password_reset/', {
        account: username,
        sms_code: registrationCode,
        password: 'Res3t-passw0rd',
        password2: 'Res3t-passw0rd',
      });
      expect(res.json()).toMatchObject({ error: 'SMS_CODE_EXPIRED' });

      const fresh = randomMobile();
      const other = await registered(t);
      // A reset code for `other` cannot register `fresh`, nor `other.mobile` again.
      const { message } = await resetCode(await browser(t), other.username, other.mobile);
      const reg = await c.post('/register/', registration(fresh, message.code));
      expect(reg.json()).toMatchObject({ error: 'SMS_CODE_EXPIRED' });
    });

    it('refuses an unknown account after the image code, a resend within the interval, bad image codes', async () => {
      const c = await browser(t);
      const { uuid, answer } = await imageCode(t, c);
      const unknown = await c.post('/password_reset/sms_codes/', {
        account: 'nobody_here_x',
        image_code: answer,
        image_code_id: uuid,
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json()).toMatchObject({ error: 'ACCOUNT_NOT_FOUND', message: '账号不存在' });
      // The image code was spent.
      expect(await t.deps.codeStore.get(imageCodeKey(uuid))).toBeNull();

      const { username, mobile } = await registered(t);
      await resetCode(c, username, mobile);
      const second = await imageCode(t, c);
      const again = await c.post('/password_reset/sms_codes/', {
        account: username,
        image_code: second.answer,
        image_code_id: second.uuid,
      });
      expect(again.statusCode).toBe(429);
      expect(again.json()).toMatchObject({ error: 'SMS_TOO_FREQUENT' });
      expect(again.json().retry_after).toBeGreaterThan(0);
      // Refused before the image code was spent, as for registration codes.
      expect(await t.deps.codeStore.get(imageCodeKey(second.uuid))).toBe(second.answer);

      const other = await registered(t);
      const third = await imageCode(t, c);
      const wrong = await c.post('/password_reset/sms_codes/', {
        account: other.username,
        image_code: third.answer === 'AAAA' ? 'BBBB' : 'AAAA',
        image_code_id: third.uuid,
      });
      expect(wrong.json()).toMatchObject({ error: 'IMAGE_CODE_WRONG' });
      const expired = await c.post('/password_reset/sms_codes/', {
        account: other.username,
        image_code: third.answer,
        image_code_id: third.uuid,
      });
      expect(expired.json()).toMatchObject({ error: 'IMAGE_CODE_EXPIRED' });
      expect((await c.post('/password_reset/sms_codes/', { account: username })).json()).toMatchObject({
        error: 'MISSING_PARAMS',
      });
      expect((await c.post('/password_reset/sms_codes/', [1])).json()).toMatchObject({ error: 'BAD_JSON' });
    });
  });

  describe('mobile change', () => {
    async function mobileCode(c: Client, mobile: string, password: string) {
      const { uuid, answer } = await imageCode(t, c);
      return c.post('/mobile/sms_codes/', { mobile, password, image_code: answer, image_code_id: uuid });
    }

    it('sends a code to the new number, changes it, and tells the old number', async () => {
      const { client, mobile: old, password } = await registered(t);
      const fresh = randomMobile();
      const sent = t.nextSms(fresh);
      const res = await mobileCode(client, fresh, password);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ code: 0, message: '发送短信成功', resend_after: 60 });
      const message = await sent;
      expect(message.purpose).toBe('mobile_change');
      expect(message.code).toMatch(/^\d{6}$/);

      // Another logged-in user holding the code cannot take the number with it.
      const intruder = await registered(t);
      const stolen = await intruder.client.put('/mobile/', { mobile: fresh, sms_code: message.code });
      expect(stolen.json()).toMatchObject({ error: 'SMS_CODE_WRONG' });

      const notice = t.nextSms(old);
      const changed = await client.put('/mobile/', { mobile: fresh, sms_code: message.code });
      expect(changed.statusCode, changed.body).toBe(200);
      expect(changed.json()).toMatchObject({ code: 0, message: '手机号修改成功', mobile: fresh });
      expect((await client.get('/info/')).json().info_data.mobile).toBe(fresh);
      const told = await notice;
      expect(told).toMatchObject({ mobile: old, purpose: 'mobile_changed', code: '' });
    });

    it('refuses the same number, a wrong password, a taken number', async () => {
      const { client, mobile, password } = await registered(t);
      expect((await mobileCode(client, mobile, password)).json()).toMatchObject({
        error: 'MOBILE_UNCHANGED',
      });
      expect((await mobileCode(client, '123', password)).json()).toMatchObject({ error: 'MOBILE_INVALID' });
      const wrong = await mobileCode(client, randomMobile(), 'wrong-passw0rd');
      expect(wrong.json()).toMatchObject({ code: 400, error: 'PASSWORD_WRONG', message: '密码错误' });
      const other = await registered(t);
      const taken = await mobileCode(client, other.mobile, password);
      expect(taken.statusCode).toBe(409);
      expect(taken.json()).toMatchObject({ error: 'MOBILE_EXISTS' });
      expect(
        (await client.put('/mobile/', { mobile: randomMobile(), sms_code: '123456' })).json(),
      ).toMatchObject({
        error: 'SMS_CODE_EXPIRED',
      });
    });
  });

  describe('SMS code guess limit', () => {
    const wrongOf = (code: string) => (code === '000000' ? '111111' : '000000');

    it('counts per (purpose, mobile), ends the code at the limit, and a resend cannot reset it early', async () => {
      const { mobile, username } = await registered(t);
      const c = await browser(t);
      const first = await imageCode(t, c);
      const sent = t.nextSms(mobile);
      const body = { account: username, image_code: first.answer, image_code_id: first.uuid };
      expect((await c.post('/password_reset/sms_codes/', body)).statusCode).toBe(200);
      const code = (await sent).code;
      // A mobile-change code pending for the same number (another user's), under its own keys.
      await t.deps.codeStore.set(mobileChangeCodeKey(mobile), '0:654321', 300);
      const reset = (sms: string) =>
        c.post('/password_reset/', {
          account: username,
          sms_code: sms,
          password: 'Res3t-passw0rd',
          password2: 'Res3t-passw0rd',
        });
      for (const left of [4, 3, 2]) {
        expect((await reset(wrongOf(code))).json()).toMatchObject({
          error: 'SMS_CODE_WRONG',
          attempts_left: left,
        });
      }
      // A new code asked for now is refused by the resend block: the counter is not reset.
      const second = await imageCode(t, c);
      const resend = await c.post('/password_reset/sms_codes/', {
        ...body,
        image_code: second.answer,
        image_code_id: second.uuid,
      });
      expect(resend.json()).toMatchObject({ error: 'SMS_TOO_FREQUENT' });
      expect((await reset(wrongOf(code))).json()).toMatchObject({ attempts_left: 1 });
      expect((await reset(wrongOf(code))).json()).toMatchObject({ attempts_left: 0 });
      // At the limit the code is gone: the right one no longer works.
      expect((await reset(code)).json()).toMatchObject({ error: 'SMS_CODE_EXPIRED' });

      // The mobile-change counter of the same number was not touched by those guesses.
      const other = await registered(t);
      const guess = await other.client.put('/mobile/', { mobile, sms_code: '123456' });
      expect(guess.json()).toMatchObject({ error: 'SMS_CODE_WRONG', attempts_left: 4 });
    });
  });

  describe('sessions', () => {
    it('lists mine with handles, ends one, ends all others', async () => {
      const { client, username, password } = await registered(t);
      const second = await login(t, username, password, '203.0.113.77');
      const third = await login(t, username, password, '2001:db8:1:2::5');
      expect((await second.client.get('/info/')).statusCode).toBe(200);

      const res = await client.get('/sessions/');
      expect(res.statusCode, res.body).toBe(200);
      const sessions = res.json().sessions as Array<Record<string, unknown>>;
      expect(sessions).toHaveLength(3);
      expect(sessions.filter((s) => s.current)).toHaveLength(1);
      for (const s of sessions) {
        expect(s.handle).toMatch(/^[A-Za-z0-9_-]{22}$/);
        expect(s.user_agent).toBe('Mozilla/5.0 (test) Chromium');
        expect(Date.parse(String(s.created_at))).not.toBeNaN();
        expect(Date.parse(String(s.last_seen_at))).not.toBeNaN();
      }
      const prefixes = sessions.map((s) => s.ip_prefix);
      expect(prefixes).toContain('203.0.113.0/24');
      expect(prefixes).toContain('2001:db8:1::/48');
      // No session id or id hash is shown anywhere.
      const sid = second.client.cookies.get('sessionid') as string;
      expect(res.body).not.toContain(sid);

      const secondView = sessions.find((s) => s.ip_prefix === '203.0.113.0/24');
      const ended = await client.delete(`/sessions/${secondView?.handle}/`);
      expect(ended.json()).toMatchObject({ code: 0, current: false });
      expect((await second.client.get('/info/')).statusCode).toBe(401);
      expect((await client.delete(`/sessions/${secondView?.handle}/`)).statusCode).toBe(404);
      expect((await client.delete('/sessions/not-a-handle/')).json()).toMatchObject({
        error: 'SESSION_NOT_FOUND',
      });

      const others = await client.delete('/sessions/');
      expect(others.json()).toMatchObject({ code: 0, ended: 1 });
      expect((await third.client.get('/info/')).statusCode).toBe(401);
      expect((await client.get('/info/')).statusCode).toBe(200);
      expect((await client.get('/sessions/')).json().sessions).toHaveLength(1);

      // Another user's handle is not found for me.
      const stranger = await registered(t);
      const theirs = (await stranger.client.get('/sessions/')).json().sessions[0].handle;
      expect((await client.delete(`/sessions/${theirs}/`)).statusCode).toBe(404);
      expect((await stranger.client.get('/info/')).statusCode).toBe(200);

      // Ending my current one logs me out here.
      const mine = (await client.get('/sessions/')).json().sessions[0].handle;
      const self = await client.delete(`/sessions/${mine}/`);
      expect(self.json()).toMatchObject({ current: true });
      expect(client.cookies.has('sessionid')).toBe(false);
      expect((await client.get('/sessions/')).statusCode).toBe(401);
    });
  });
});

describe('user centre: CSRF, error modes and limits (embedded default)', () => {
  let t: TestApp;
  let meiduo: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({
      ...NO_SEND_LIMITS,
      USER_ACTIONS_PER_USER_PER_MINUTE: '3',
      EMAIL_SENDS_PER_USER_PER_HOUR: '2',
    });
    meiduo = await buildTestApp({ ...NO_SEND_LIMITS, ERROR_STATUS_MODE: 'meiduo' });
  });
  afterAll(async () => {
    await t.close();
    await meiduo.close();
  });

  it("an expired link no longer verifies (the store's lifetimes are proven on Redis by its contract suite)", async () => {
    const { client } = await registered(t);
    const email = `e${Date.now()}@example.com`;
    const mail = t.nextMail(email);
    await client.put('/emails/', { email });
    const token = tokenOf((await mail).text);
    t.clock.advance(24 * 3600 * 1000 + 1000);
    const res = await client.put(`/emails/verification/?token=${token}`);
    expect(res.json()).toMatchObject({ error: 'EMAIL_TOKEN_INVALID' });
  });

  it('every unsafe endpoint needs the CSRF token', async () => {
    const { client } = await registered(t);
    const calls: Array<['PUT' | 'POST' | 'DELETE', string]> = [
      ['PUT', '/emails/'],
      ['PUT', '/emails/verification/?token=x'],
      ['PUT', '/password/'],
      ['POST', '/password_reset/sms_codes/'],
      ['POST', '/password_reset/'],
      ['POST', '/mobile/sms_codes/'],
      ['PUT', '/mobile/'],
      ['DELETE', '/sessions/'],
      ['DELETE', '/sessions/AAAAAAAAAAAAAAAAAAAAAA/'],
    ];
    for (const [method, url] of calls) {
      const res = await client.request(method, url, { body: {}, csrf: false });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json()).toMatchObject({ error: 'CSRF_FAILED' });
    }
    expect((await client.get('/info/')).statusCode).toBe(200);
  });

  it('per-user and per-email limits answer 429 with retry_after', async () => {
    const { client } = await registered(t);
    for (let i = 0; i < 2; i++)
      expect((await client.put('/emails/', { email: `l${i}@example.com` })).statusCode).toBe(200);
    const mails = await client.put('/emails/', { email: 'l3@example.com' });
    expect(mails.statusCode).toBe(429);
    expect(mails.json()).toMatchObject({ error: 'EMAIL_LIMIT', message: '邮件发送过于频繁，请稍后再试' });
    expect(mails.json().retry_after).toBeGreaterThan(0);
    // The third call hit the per-email limit; the fourth is over the per-user limit of 3.
    const busy = await client.put('/emails/', { email: 'l4@example.com' });
    expect(busy.statusCode).toBe(429);
    expect(busy.json()).toMatchObject({ error: 'ACTION_LIMIT' });
    expect(Number(busy.headers['retry-after'])).toBe(busy.json().retry_after);
    // Another endpoint has its own counter.
    expect((await client.get('/sessions/')).statusCode).toBe(200);
  });

  it('meiduo mode folds client errors into HTTP 200 with code 400; 404 and 403 keep theirs', async () => {
    const { client, password } = await registered(meiduo);
    const wrong = await client.put('/password/', {
      old_password: 'wrong-passw0rd',
      new_password: 'N3w-passw0rd',
      new_password2: 'N3w-passw0rd',
    });
    expect(wrong.statusCode).toBe(200);
    expect(wrong.json()).toMatchObject({ code: 400, error: 'OLD_PASSWORD_WRONG', errmsg: '原始密码错误' });
    const visitor = await browser(meiduo);
    const anon = await visitor.put('/emails/', { email: 'a@example.com' });
    expect(anon.statusCode).toBe(200);
    expect(anon.json()).toMatchObject({ code: 400, error: 'NOT_LOGGED_IN' });
    const missing = await client.delete('/sessions/AAAAAAAAAAAAAAAAAAAAAA/');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 404, error: 'SESSION_NOT_FOUND' });
    const ok = await client.put('/password/', {
      old_password: password,
      new_password: 'N3w-passw0rd',
      new_password2: 'N3w-passw0rd',
    });
    expect(ok.json()).toMatchObject({ code: 0, errmsg: '修改密码成功' });
  });
});
