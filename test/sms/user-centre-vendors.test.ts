/*
 * The user centre's SMS through each real vendor client and its stand-in (issue 12): a
 * password-reset code and a mobile-change code go out with their own templates, the old
 * mobile's notice with the notice template and no code, through the app and its queue; a
 * vendor without those templates refuses the flows with 503 SMS_PURPOSE_NOT_CONFIGURED.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SmsProvider } from '../../src/domain/ports.js';
import {
  buildTestApp,
  type Client,
  imageCode,
  NO_SEND_LIMITS,
  randomIp,
  randomMobile,
  registration,
  smsCode,
  type TestApp,
  until,
} from '../helper.js';
import { type Fake, VENDORS, type Vendor } from './fakes/vendors.js';

/** The recording provider first (the tests read codes from it), then the vendor client. */
const tee =
  (client: SmsProvider) =>
  (recording: SmsProvider): SmsProvider => ({
    name: client.name,
    ...(client.purposes ? { purposes: client.purposes } : {}),
    async send(message) {
      await recording.send(message);
      return client.send(message);
    },
  });

async function registered(t: TestApp) {
  const client = t.client({ ip: randomIp() });
  await client.fetchCsrf();
  const mobile = randomMobile();
  const body = registration(mobile, await smsCode(t, client, mobile));
  expect((await client.post('/register/', body)).statusCode).toBe(200);
  return { client, mobile, username: body.username, password: body.password };
}

async function resetCode(t: TestApp, c: Client, account: string) {
  const { uuid, answer } = await imageCode(t, c);
  return c.post('/password_reset/sms_codes/', { account, image_code: answer, image_code_id: uuid });
}

async function mobileCode(t: TestApp, c: Client, mobile: string, password: string) {
  const { uuid, answer } = await imageCode(t, c);
  return c.post('/mobile/sms_codes/', { mobile, password, image_code: answer, image_code_id: uuid });
}

describe.each(VENDORS)('user-centre SMS through $name', (vendor: Vendor) => {
  let fake: Fake;
  let t: TestApp;
  /** Resolves with the next message the stand-in delivers to the mobile after this call. */
  const nextAt = (mobile: string) => {
    const at = () => vendor.received(fake).filter((r) => r.to === vendor.wireMobile(mobile));
    const seen = at().length;
    return () => until(() => at()[seen]);
  };

  beforeAll(async () => {
    fake = await vendor.start();
    t = await buildTestApp(NO_SEND_LIMITS, { sms: tee(vendor.client(fake)) });
  });
  afterAll(async () => {
    await t.close();
    await fake.close();
  });
  afterEach(() => expect(fake.refusals).toEqual([]));

  it('a password-reset code goes out with the reset template', async () => {
    const { client, mobile, username } = await registered(t);
    const sent = t.nextSms(mobile);
    const delivered = nextAt(mobile);
    expect((await resetCode(t, client, username)).statusCode).toBe(200);
    const { code } = await sent;
    const reset = await delivered();
    expect(reset.variables).toEqual([code, '5']);
    if (vendor.name === 'twilio') expect(reset.template).toContain('重置美多账号密码');
    else expect(reset.template).toBe(vendor.templates.password_reset);
  });

  it('a mobile-change code uses its template; the old mobile gets the notice, without a code', async () => {
    const { client, mobile: old, password } = await registered(t);
    const fresh = randomMobile();
    const sent = t.nextSms(fresh);
    expect((await mobileCode(t, client, fresh, password)).statusCode).toBe(200);
    const { code } = await sent;
    const change = await until(() => vendor.received(fake).find((r) => r.to === vendor.wireMobile(fresh)));
    expect(change.variables).toEqual([code, '5']);
    if (vendor.name === 'twilio') expect(change.template).toContain('绑定为美多账号的新手机号');
    else expect(change.template).toBe(vendor.templates.mobile_change);

    const delivered = nextAt(old);
    expect((await client.put('/mobile/', { mobile: fresh, sms_code: code })).statusCode).toBe(200);
    const notice = await delivered();
    expect(notice.variables).toEqual([]);
    expect(notice.template).not.toContain(code);
    if (vendor.name === 'twilio') expect(notice.template).toContain('已更换绑定手机号');
    else expect(notice.template).toBe(vendor.templates.mobile_changed);
  });
});

// Twilio writes its own texts: only the template vendors can lack a purpose's template.
describe.each(VENDORS.filter((v) => v.name !== 'twilio'))(
  '$name with the registration template only',
  (vendor: Vendor) => {
    let fake: Fake;
    let t: TestApp;
    beforeAll(async () => {
      fake = await vendor.start();
      t = await buildTestApp(NO_SEND_LIMITS, { sms: tee(vendor.client(fake, { registrationOnly: true })) });
    });
    afterAll(async () => {
      await t.close();
      await fake.close();
    });

    it('registers, but refuses a reset or a mobile change with 503 before anything is sent', async () => {
      const { client, username, password } = await registered(t);
      const before = fake.requests;
      const refused = { code: 503, error: 'SMS_PURPOSE_NOT_CONFIGURED', message: '短信服务暂未开通此功能' };
      const reset = await resetCode(t, client, username);
      expect(reset.statusCode).toBe(503);
      expect(reset.json()).toMatchObject(refused);
      // An unknown account gets the same answer: the refusal says nothing about accounts.
      expect((await resetCode(t, client, 'nobody-here-1')).json()).toMatchObject(refused);
      const change = await mobileCode(t, client, randomMobile(), password);
      expect(change.statusCode).toBe(503);
      expect(change.json()).toMatchObject(refused);
      expect(fake.requests).toBe(before);
    });
  },
);
