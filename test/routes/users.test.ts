import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUserDatabase } from '../../src/adapters/user-repository/database.js';
import { sessionIdHash } from '../../src/domain/accounts.js';
import { csrfSecretOf } from '../../src/domain/csrf.js';
import type { PasswordHasher } from '../../src/domain/ports.js';
import { smsAttemptsKey, smsCodeKey } from '../../src/domain/verification.js';
import {
  backendMatrix,
  buildTestApp,
  type Client,
  NO_SEND_LIMITS,
  randomIp,
  randomMobile,
  randomUsername,
  registration,
  smsCode,
  type TestApp,
} from '../helper.js';

const matrix = await backendMatrix();

/** Counts hasher calls, to show an unknown account costs a hash without timing anything. */
function countingHasher(inner: PasswordHasher) {
  const counts = { hash: 0, verify: 0, burn: 0 };
  const hasher: PasswordHasher = {
    hash: (p) => {
      counts.hash++;
      return inner.hash(p);
    },
    verify: (p, e) => {
      counts.verify++;
      return inner.verify(p, e);
    },
    burn: (p) => {
      counts.burn++;
      return inner.burn(p);
    },
  };
  return { hasher, counts };
}

describe.each(matrix)('users on $name', ({ store: backend, database }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp(
      { ...NO_SEND_LIMITS, LOGIN_FAILURES_PER_ACCOUNT_IP: '3', LOGIN_FAILURES_PER_IP: '6' },
      { backend, database },
    );
  });
  afterAll(() => t.close());

  async function browser(ip?: string): Promise<Client> {
    const c = t.client(ip ? { ip } : {});
    await c.fetchCsrf();
    return c;
  }

  async function registered(c?: Client) {
    const client = c ?? (await browser());
    const mobile = randomMobile();
    const code = await smsCode(t, client, mobile);
    const body = registration(mobile, code);
    const res = await client.post('/register/', body);
    expect(res.statusCode, res.body).toBe(200);
    return { client, body, mobile };
  }

  describe('POST /register/', () => {
    it('creates the user, logs them in, rotates the CSRF secret and spends the code', async () => {
      const c = await browser();
      const before = c.cookies.get('csrftoken');
      const mobile = randomMobile();
      const code = await smsCode(t, c, mobile);
      const body = registration(mobile, code, { allow: 'true' });
      const res = await c.post('/register/', body);
      expect(res.statusCode).toBe(200);
      const json = res.json();
      expect(json).toMatchObject({ code: 0, message: '注册成功', errmsg: '注册成功' });
      expect(json.csrf_token).toMatch(/^[a-zA-Z0-9]{64}$/);
      expect(c.cookies.get('csrftoken')).not.toBe(before);
      expect(csrfSecretOf(json.csrf_token)).toBe(c.cookies.get('csrftoken'));
      const session = res.cookies.find((k) => k.name === 'sessionid');
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', maxAge: 14 * 24 * 3600 });
      expect(session?.value).toMatch(/^[a-z0-9]{32}$/);
      const username = res.cookies.find((k) => k.name === 'username');
      expect(username).toMatchObject({ value: body.username, maxAge: 15 * 24 * 3600 });
      expect(username?.httpOnly).toBeFalsy();
      const info = await c.get('/info/');
      expect(info.json()).toEqual({
        code: 0,
        message: 'OK',
        errmsg: 'OK',
        info_data: { username: body.username, mobile, email: '', email_active: false },
      });
      expect(await t.deps.codeStore.get(smsCodeKey(mobile))).toBeNull();
      const user = await t.deps.users.findByUsername(body.username);
      expect(user?.password).toMatch(/^argon2\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
      expect(user?.isActive).toBe(true);
      // the rotated token works for the next unsafe request
      expect((await c.delete('/logout/')).statusCode).toBe(200);
    });

    it('checks the body in the documented order', async () => {
      const c = await browser();
      const mobile = randomMobile();
      const code = await smsCode(t, c, mobile);
      const good = registration(mobile, code);
      const post = async (body: unknown) => (await c.post('/register/', body)).json();
      expect(await post([good])).toMatchObject({ error: 'BAD_JSON', message: '请求数据格式有误' });
      expect(await post('text')).toMatchObject({ error: 'BAD_JSON' });
      for (const field of ['username', 'password', 'password2', 'mobile', 'sms_code', 'allow']) {
        expect(await post({ ...good, [field]: '' }), field).toMatchObject({ error: 'MISSING_PARAMS' });
        const { [field]: _, ...rest } = good as Record<string, unknown>;
        expect(await post(rest), field).toMatchObject({ error: 'MISSING_PARAMS' });
      }
      // a wrong type comes after missing fields, before every format rule
      expect(await post({ ...good, username: 12345678, password: 'x' })).toMatchObject({
        error: 'BAD_REQUEST',
      });
      expect(await post({ ...good, allow: 1 })).toMatchObject({ error: 'BAD_REQUEST' });
      expect(await post({ ...good, username: 'abcd', password: 'short' })).toMatchObject({
        error: 'USERNAME_INVALID',
        message: '请输入5-20个字符的用户名且不能为纯数字',
      });
      expect(await post({ ...good, username: '1234567' })).toMatchObject({ error: 'USERNAME_INVALID' });
      expect(await post({ ...good, username: 'a'.repeat(21) })).toMatchObject({ error: 'USERNAME_INVALID' });
      expect(await post({ ...good, username: 'name with space' })).toMatchObject({
        error: 'USERNAME_INVALID',
      });
      expect(await post({ ...good, password: 'short', password2: 'other' })).toMatchObject({
        error: 'PASSWORD_INVALID',
        message: '请输入8-20位的密码',
      });
      expect(await post({ ...good, password: 'has space 123', password2: 'has space 123' })).toMatchObject({
        error: 'PASSWORD_INVALID',
      });
      expect(
        await post({ ...good, password: '密码密码密码密码', password2: '密码密码密码密码' }),
      ).toMatchObject({
        error: 'PASSWORD_INVALID',
      });
      expect(await post({ ...good, password2: 'different1', mobile: '123' })).toMatchObject({
        error: 'PASSWORD_MISMATCH',
        message: '两次输入的密码不一致',
      });
      expect(await post({ ...good, mobile: '12345678901', allow: false })).toMatchObject({
        error: 'MOBILE_INVALID',
      });
      expect(await post({ ...good, allow: false })).toMatchObject({
        error: 'ALLOW_REQUIRED',
        message: '请勾选用户协议',
      });
      expect(await post({ ...good, allow: 'yes' })).toMatchObject({ error: 'ALLOW_REQUIRED' });
      expect(await post({ ...good, mobile: randomMobile() })).toMatchObject({
        error: 'SMS_CODE_EXPIRED',
        message: '短信验证码失效',
      });
      // unknown fields are ignored
      const ok = await c.post('/register/', { ...good, extra: { nested: true } });
      expect(ok.json()).toMatchObject({ code: 0 });
    });

    it('counts wrong SMS codes and deletes the code after 5 wrong guesses', async () => {
      const c = await browser();
      const mobile = randomMobile();
      const code = await smsCode(t, c, mobile);
      const wrong = code === '000000' ? '111111' : '000000';
      for (let left = 4; left >= 0; left--) {
        const res = await c.post('/register/', registration(mobile, wrong));
        expect(res.json()).toMatchObject({
          error: 'SMS_CODE_WRONG',
          message: '短信验证码有误',
          attempts_left: left,
        });
      }
      const res = await c.post('/register/', registration(mobile, code));
      expect(res.json().error).toBe('SMS_CODE_EXPIRED');
      expect(await t.deps.codeStore.get(smsAttemptsKey(mobile))).toBeNull();
    });

    it('counts 40 concurrent wrong guesses one by one: 5 are checked, then the code is gone', async () => {
      const c = await browser();
      const mobile = randomMobile();
      const code = await smsCode(t, c, mobile);
      const wrong = code === '000000' ? '111111' : '000000';
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => c.post('/register/', registration(mobile, wrong))),
      );
      const wrongs = answers.filter((r) => r.json().error === 'SMS_CODE_WRONG');
      expect(wrongs.map((r) => r.json().attempts_left).sort()).toEqual([0, 1, 2, 3, 4]);
      expect(answers.filter((r) => r.json().error === 'SMS_CODE_EXPIRED')).toHaveLength(35);
      expect((await c.post('/register/', registration(mobile, code))).json().error).toBe('SMS_CODE_EXPIRED');
    });

    it('refuses a taken username or mobile, username first, and keeps the code for another try', async () => {
      const { body: taken } = await registered();
      const c = await browser();
      const mobile = randomMobile();
      const code = await smsCode(t, c, mobile);
      const dupName = await c.post('/register/', registration(mobile, code, { username: taken.username }));
      expect(dupName.statusCode).toBe(409);
      expect(dupName.json()).toMatchObject({ code: 409, error: 'USERNAME_EXISTS', message: '用户名已存在' });
      const dupMobile = await c.post('/register/', registration(taken.mobile, code));
      expect(dupMobile.json().error).toBe('SMS_CODE_EXPIRED');
      // the code was not spent by the refused registration
      expect((await c.post('/register/', registration(mobile, code))).json().code).toBe(0);
      const c2 = await browser();
      const code2 = await smsCode(t, c2, randomMobile());
      expect(code2).toMatch(/^\d{6}$/);
      // usernames are case-sensitive, as in Django
      const m3 = randomMobile();
      const code3 = await smsCode(t, c2, m3);
      const upper = await c2.post(
        '/register/',
        registration(m3, code3, { username: taken.username.toUpperCase() }),
      );
      expect(upper.json().code).toBe(0);
    });

    it('gives MOBILE_EXISTS when only the mobile is taken', async () => {
      const first = await registered();
      // a second code for the same mobile, once the resend block has passed
      t.clock.advance(61_000);
      if (backend === 'redis') await t.deps.codeStore.delete(`send_flag_${first.mobile}`);
      const c = await browser();
      const code = await smsCode(t, c, first.mobile);
      const res = await c.post('/register/', registration(first.mobile, code));
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ error: 'MOBILE_EXISTS', message: '手机号已存在' });
    });

    it('creates exactly one user from 50 concurrent registrations of one username', async () => {
      const c = await browser();
      const username = randomUsername();
      const mobiles = Array.from({ length: 50 }, () => randomMobile());
      const codes = await Promise.all(mobiles.map((m) => smsCode(t, c, m)));
      const answers = await Promise.all(
        mobiles.map((m, i) => c.post('/register/', registration(m, codes[i] as string, { username }))),
      );
      expect(answers.filter((r) => r.statusCode === 200)).toHaveLength(1);
      expect(answers.filter((r) => r.json().error === 'USERNAME_EXISTS')).toHaveLength(49);
      expect(await t.deps.users.countByUsername(username)).toBe(1);
    });
  });

  describe('counts', () => {
    it('answers 0 or 1 for usernames and mobiles, and refuses malformed ones', async () => {
      const { body, client } = await registered();
      expect((await client.get(`/usernames/${body.username}/count/`)).json()).toEqual({
        code: 0,
        message: 'OK',
        errmsg: 'OK',
        count: 1,
      });
      expect((await client.get(`/usernames/${randomUsername()}/count/`)).json().count).toBe(0);
      expect((await client.get(`/mobiles/${body.mobile}/count/`)).json().count).toBe(1);
      expect((await client.get(`/mobiles/${randomMobile()}/count/`)).json().count).toBe(0);
      expect((await client.get('/usernames/abc/count/')).json().error).toBe('USERNAME_INVALID');
      expect((await client.get('/usernames/123456789/count/')).json().error).toBe('USERNAME_INVALID');
      expect((await client.get('/mobiles/1234/count/')).json().error).toBe('MOBILE_INVALID');
    });
  });

  describe('POST /login/', () => {
    it('logs in by username or by mobile, with browser-session or remembered cookies', async () => {
      const { body } = await registered();
      const c = await browser();
      const byName = await c.post('/login/', {
        username: body.username,
        password: body.password,
        remembered: false,
      });
      expect(byName.statusCode).toBe(200);
      expect(byName.json()).toMatchObject({ code: 0, message: '登录成功' });
      expect(byName.json().csrf_token).toMatch(/^[a-zA-Z0-9]{64}$/);
      const session = byName.cookies.find((k) => k.name === 'sessionid');
      expect(session?.maxAge).toBeUndefined();
      expect(session?.httpOnly).toBe(true);
      expect(byName.cookies.find((k) => k.name === 'username')?.maxAge).toBeUndefined();
      expect((await c.get('/info/')).json().info_data.username).toBe(body.username);

      const m = await browser();
      const byMobile = await m.post('/login/', {
        username: body.mobile,
        password: body.password,
        remembered: true,
      });
      expect(byMobile.json().code).toBe(0);
      expect(byMobile.cookies.find((k) => k.name === 'sessionid')?.maxAge).toBe(14 * 24 * 3600);
      expect(byMobile.cookies.find((k) => k.name === 'username')).toMatchObject({
        value: body.username,
        maxAge: 15 * 24 * 3600,
      });
      const user = await t.deps.users.findByUsername(body.username);
      expect(user?.lastLogin).toBeInstanceOf(Date);
    });

    it('keeps sessions only under the hash of their id', async () => {
      const { client } = await registered();
      const id = client.cookies.get('sessionid') as string;
      expect(await t.deps.sessionStore.get(sessionIdHash(id))).not.toBeNull();
      expect(await t.deps.sessionStore.get(id)).toBeNull();
    });

    it('gives a new session id on every login and ends the one the browser had', async () => {
      const { body, client } = await registered();
      const first = client.cookies.get('sessionid');
      await client.post('/login/', { username: body.username, password: body.password });
      const second = client.cookies.get('sessionid');
      expect(second).not.toBe(first);
      const stale = t.client();
      stale.cookies.set('sessionid', first as string);
      expect((await stale.get('/info/')).statusCode).toBe(401);
    });

    it('fails alike for a wrong password, an unknown account and an inactive user, one hash each', async () => {
      const { body } = await registered();
      const original = { ...t.deps.hasher };
      const counting = countingHasher(original);
      Object.assign(t.deps.hasher, counting.hasher);
      try {
        const c = await browser(randomIp());
        const wrong = await c.post('/login/', { username: body.username, password: 'wrongpass1' });
        expect(wrong.statusCode).toBe(400);
        expect(wrong.json()).toMatchObject({ code: 400, error: 'LOGIN_FAILED', message: '用户名或密码错误' });
        const unknown = await c.post('/login/', { username: randomUsername(), password: 'whatever1' });
        expect(unknown.json()).toEqual(wrong.json());
        const unknownMobile = await c.post('/login/', { username: randomMobile(), password: 'whatever1' });
        expect(unknownMobile.json()).toEqual(wrong.json());
        expect(counting.counts.verify + counting.counts.burn).toBe(3);
        expect(counting.counts.burn).toBe(2);
      } finally {
        Object.assign(t.deps.hasher, original);
      }
    });

    it('refuses missing and wrongly typed fields', async () => {
      const c = await browser();
      expect((await c.post('/login/', [])).json().error).toBe('BAD_JSON');
      expect((await c.post('/login/', { username: 'someone' })).json().error).toBe('MISSING_PARAMS');
      expect((await c.post('/login/', { username: 'someone', password: 5 })).json().error).toBe(
        'BAD_REQUEST',
      );
      expect(
        (await c.post('/login/', { username: 'someone', password: 'p', remembered: {} })).json().error,
      ).toBe('BAD_REQUEST');
    });

    it('limits failures per account and IP, then per IP, the same for unknown accounts', async () => {
      const { body } = await registered();
      const c = await browser(randomIp());
      for (let i = 0; i < 3; i++) {
        expect(
          (await c.post('/login/', { username: body.username, password: 'wrongpass1' })).json().error,
        ).toBe('LOGIN_FAILED');
      }
      const limited = await c.post('/login/', { username: body.username, password: body.password });
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ error: 'LOGIN_LIMIT', message: '登录失败次数过多，请稍后再试' });
      expect(limited.json().retry_after).toBeGreaterThan(0);
      expect(limited.json().retry_after).toBeLessThanOrEqual(900);
      // the account still works from another address
      const elsewhere = await browser(randomIp());
      expect(
        (await elsewhere.post('/login/', { username: body.username, password: body.password })).json().code,
      ).toBe(0);
      // unknown accounts count the same way, and the per-IP limit catches many accounts
      for (let i = 0; i < 3; i++)
        await c.post('/login/', { username: randomUsername(), password: 'x1234567' });
      const perIp = await c.post('/login/', { username: randomUsername(), password: 'x1234567' });
      expect(perIp.json().error).toBe('LOGIN_LIMIT');
      if (backend === 'sqlite') {
        t.clock.advance(15 * 60_000);
        expect(
          (await c.post('/login/', { username: body.username, password: body.password })).json().code,
        ).toBe(0);
      }
    });

    it('counts 100 concurrent guesses before checking them: only the limit is checked, the rest 429', async () => {
      const { body } = await registered();
      const original = { ...t.deps.hasher };
      const counting = countingHasher(original);
      Object.assign(t.deps.hasher, counting.hasher);
      try {
        const c = await browser(randomIp());
        const guesses = Array.from({ length: 99 }, (_, i) => `wrongpass${i}`);
        const answers = await Promise.all(
          [...guesses, body.password].map((password) =>
            c.post('/login/', { username: body.username, password }),
          ),
        );
        const statuses = answers.map((r) => r.statusCode);
        // LOGIN_FAILURES_PER_ACCOUNT_IP is 3 here: three passwords are checked, no more
        expect(counting.counts.verify + counting.counts.burn).toBe(3);
        expect(statuses.filter((s) => s === 400)).toHaveLength(3);
        expect(statuses.filter((s) => s === 429)).toHaveLength(97);
        for (const r of answers.filter((a) => a.statusCode === 429))
          expect(r.json()).toMatchObject({ error: 'LOGIN_LIMIT' });
        // the right password, sent among them once the limit was reached, did not log in
        expect(answers[99]?.statusCode).toBe(429);
        expect(c.cookies.has('sessionid')).toBe(false);
        expect(
          (await c.post('/login/', { username: body.username, password: body.password })).statusCode,
        ).toBe(429);
      } finally {
        Object.assign(t.deps.hasher, original);
      }
    });

    it('counts failures per account: the username and the mobile of one user share one counter', async () => {
      const { body } = await registered();
      const c = await browser(randomIp());
      for (let i = 0; i < 3; i++) {
        expect(
          (await c.post('/login/', { username: body.username, password: 'wrongpass1' })).json().error,
        ).toBe('LOGIN_FAILED');
      }
      for (const password of ['wrongpass1', body.password]) {
        const byMobile = await c.post('/login/', { username: body.mobile, password });
        expect(byMobile.statusCode).toBe(429);
        expect(byMobile.json().error).toBe('LOGIN_LIMIT');
      }
      // an unknown name keeps its own counter (the address has 3 of its 6 failures)
      expect(
        (await c.post('/login/', { username: randomUsername(), password: 'x1234567' })).json().error,
      ).toBe('LOGIN_FAILED');
      // and a success clears the account's counter (from another address, which has its own)
      const other = await browser(randomIp());
      await other.post('/login/', { username: body.mobile, password: 'wrongpass1' });
      await other.post('/login/', { username: body.username, password: 'wrongpass1' });
      expect(
        (await other.post('/login/', { username: body.mobile, password: body.password })).json().code,
      ).toBe(0);
      for (let i = 0; i < 2; i++)
        await other.post('/login/', { username: body.username, password: 'wrongpass1' });
      expect(
        (await other.post('/login/', { username: body.username, password: body.password })).json().code,
      ).toBe(0);
    });

    it('replaces a hash whose algorithm or cost differs from the configured one', async () => {
      const { body } = await registered();
      const user = await t.deps.users.findByUsername(body.username);
      if (!user) throw new Error('no user');
      // A Django 2.2-era PBKDF2 hash of the same password.
      const { createPasswordHasher } = await import('../../src/domain/password.js');
      const django = createPasswordHasher({
        PASSWORD_HASHER: 'pbkdf2_sha256',
        PBKDF2_ITERATIONS: 1000,
        ARGON2_MEMORY_KIB: 1024,
        ARGON2_TIME_COST: 1,
        ARGON2_PARALLELISM: 1,
        HASH_CONCURRENCY: 1,
      });
      await t.deps.users.updatePassword(user.id, await django.hash(body.password));
      const c = await browser();
      expect(
        (await c.post('/login/', { username: body.username, password: body.password })).json().code,
      ).toBe(0);
      const after = await t.deps.users.findByUsername(body.username);
      expect(after?.password).toMatch(/^argon2\$argon2id\$/);
    });
  });

  describe('logout and info', () => {
    it('ends the session server-side and clears the cookies', async () => {
      const { client } = await registered();
      const sessionId = client.cookies.get('sessionid') as string;
      const res = await client.delete('/logout/');
      expect(res.json()).toEqual({ code: 0, message: '退出成功', errmsg: '退出成功' });
      for (const name of ['sessionid', 'username']) {
        const cleared = res.cookies.find((k) => k.name === name);
        expect(cleared?.value, name).toBe('');
      }
      const replay = t.client();
      replay.cookies.set('sessionid', sessionId);
      const info = await replay.get('/info/');
      expect(info.statusCode).toBe(401);
      expect(info.json()).toMatchObject({ code: 401, error: 'NOT_LOGGED_IN', message: '用户未登录' });
    });

    it('refuses info without a session, with a made-up one, and ends sessions of deactivated users', async () => {
      expect((await t.client().get('/info/')).statusCode).toBe(401);
      const forged = t.client();
      forged.cookies.set('sessionid', 'a'.repeat(32));
      expect((await forged.get('/info/')).statusCode).toBe(401);
      const { client, body } = await registered();
      expect((await client.get('/info/')).statusCode).toBe(200);
      // Deactivated the way Django's admin does it: is_active = false in tb_users.
      const admin = await openUserDatabase(t.config.database, { poolSize: 1, statementTimeoutMs: 5000 });
      await admin.db
        .updateTable('tb_users')
        .set({ is_active: 0 })
        .where('username', '=', body.username)
        .execute();
      await admin.close();
      expect((await client.get('/info/')).statusCode).toBe(401);
      // from an address of its own: failures of earlier runs in a shared Redis must not count
      const again = await browser(randomIp());
      const login = await again.post('/login/', { username: body.username, password: body.password });
      expect(login.json().error).toBe('LOGIN_FAILED');
    });

    it('ends a browser-session login after 24 h and a remembered one after 14 days', async () => {
      if (backend !== 'sqlite') return;
      const { body } = await registered();
      const c = await browser();
      await c.post('/login/', { username: body.username, password: body.password, remembered: false });
      const r = await browser();
      await r.post('/login/', { username: body.username, password: body.password, remembered: true });
      t.clock.advance(24 * 3600_000);
      expect((await c.get('/info/')).statusCode).toBe(401);
      expect((await r.get('/info/')).statusCode).toBe(200);
      t.clock.advance(13 * 24 * 3600_000);
      expect((await r.get('/info/')).statusCode).toBe(401);
    });
  });
});
