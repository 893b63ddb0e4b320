/**
 * The embedded default keeps users, sessions and codes in its SQLite file: a restart of the
 * service loses none of them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTestApp, randomMobile, registration, smsCode } from '../helper.js';

const dataDir = mkdtempSync(join(tmpdir(), 'meiduo-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('a restart of the embedded default', () => {
  it('keeps the logged-in session, the user and a pending SMS code', async () => {
    const first = await buildTestApp({}, { dataDir });
    const c = first.client();
    await c.fetchCsrf();
    const mobile = randomMobile();
    const body = registration(mobile, await smsCode(first, c, mobile));
    expect((await c.post('/register/', body)).json().code).toBe(0);
    const pending = randomMobile();
    const code = await smsCode(first, c, pending);
    await first.close();

    const second = await buildTestApp({}, { dataDir });
    try {
      const again = second.client();
      for (const [name, value] of c.cookies) again.cookies.set(name, value);
      again.csrfToken = c.csrfToken;
      const info = await again.get('/info/');
      expect(info.json().info_data).toMatchObject({ username: body.username, mobile });
      const other = registration(pending, code);
      const res = await again.post('/register/', other);
      expect(res.json()).toMatchObject({ code: 0, message: '注册成功' });
    } finally {
      await second.close();
    }
  });
});
