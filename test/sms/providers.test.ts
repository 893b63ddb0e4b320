/*
 * The real vendor clients against their local stand-ins (test/sms/fakes): each stand-in checks
 * requests as the vendor does (signature recomputed, timestamps, nonces, fields, formats) and
 * answers with the vendor's documented bodies. Then the failover chain and the start-up checks
 * of createSmsProvider.
 */

import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAliyunProvider } from '../../src/adapters/sms-provider/aliyun.js';
import { createFailoverProvider } from '../../src/adapters/sms-provider/failover.js';
import { createSmsProvider } from '../../src/adapters/sms-provider/index.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { SendOutcomeKind } from '../../src/domain/ports.js';
import { logSink } from '../log-sink.js';
import { startFakeServer } from './fakes/server.js';
import {
  aliyun,
  type Fake,
  HANG_TIMEOUT_MS,
  message,
  ronglian,
  TIMEOUT_MS,
  tencent,
  twilio,
  VENDORS,
  type Vendor,
} from './fakes/vendors.js';

const silent = pino({ level: 'silent' });

/** A port that refuses connections: a server was there a moment ago. */
async function refusedUrl(): Promise<string> {
  const server = await startFakeServer(() => ({ status: 200, body: '' }));
  await server.close();
  return server.url;
}

describe.each(VENDORS)('$name client against its stand-in', (vendor: Vendor) => {
  let fake: Fake;
  beforeEach(async () => {
    fake = await vendor.start();
  });
  afterEach(() => fake.close());

  const receivedBy = (mobile: string) =>
    vendor.received(fake).filter((r) => r.to === vendor.wireMobile(mobile));

  it('sends the code and the minutes to the number: ok with the vendor message id', async () => {
    const m = message();
    const outcome = await vendor.client(fake).send(m);
    expect(outcome).toMatchObject({ kind: 'ok', provider: vendor.name });
    expect(outcome.messageId).toEqual(expect.any(String));
    expect(receivedBy(m.mobile)).toMatchObject([
      { to: vendor.wireMobile(m.mobile), variables: [m.code, '5'] },
    ]);
    expect(fake.refusals).toEqual([]);
  });

  it.each(['password_reset', 'mobile_change'] as const)(
    "a %s code uses that purpose's template",
    async (purpose) => {
      const m = message({ purpose });
      expect(await vendor.client(fake).send(m)).toMatchObject({ kind: 'ok', provider: vendor.name });
      const [got] = receivedBy(m.mobile);
      expect(got?.variables).toEqual([m.code, '5']);
      const wording = { password_reset: '重置美多账号密码', mobile_change: '新手机号' }[purpose];
      if (vendor.name === 'twilio') expect(got?.template).toContain(wording);
      else expect(got?.template).toBe(vendor.templates[purpose]);
    },
  );

  it('the notice to a replaced mobile uses the notice template and carries no code', async () => {
    // Even a message that (wrongly) holds a code never puts it in a notice.
    const m = message({ purpose: 'mobile_changed', code: '987654' });
    expect(await vendor.client(fake).send(m)).toMatchObject({ kind: 'ok' });
    const [got] = receivedBy(m.mobile);
    expect(got?.variables).toEqual([]);
    expect(got?.template).not.toContain('987654');
    if (vendor.name !== 'twilio') expect(got?.template).toBe(vendor.templates.mobile_changed);
  });

  it("without the user centre's templates, only registration is sent (never under its template)", async () => {
    const client = vendor.client(fake, { registrationOnly: true });
    // Twilio's texts are built in: it sends every purpose.
    const expected = vendor.name === 'twilio' ? 4 : 1;
    expect(client.purposes?.size).toBe(expected);
    if (vendor.name === 'twilio') return;
    for (const purpose of ['password_reset', 'mobile_change', 'mobile_changed'] as const) {
      expect(await client.send(message({ purpose }))).toEqual({
        kind: 'config_error',
        provider: vendor.name,
        detail: `no template for ${purpose}`,
      });
    }
    expect(fake.requests).toBe(0);
  });

  const classes = Object.entries(vendor.answers) as Array<[SendOutcomeKind, { error: string }]>;
  it.each(classes)('maps the documented answer for %s (%o)', async (kind, script) => {
    fake.next(script);
    const m = message();
    const outcome = await vendor.client(fake).send(m);
    expect(outcome).toEqual({ kind, provider: vendor.name, detail: script.error });
    expect(receivedBy(m.mobile)).toEqual([]);
  });

  it('a wrong secret is refused by the signature check: config_error, nothing sent', async () => {
    const m = message();
    const outcome = await vendor.client(fake, { wrongSecret: true }).send(m);
    expect(outcome).toEqual({ kind: 'config_error', provider: vendor.name, detail: vendor.signatureError });
    expect(fake.refusals).toEqual([vendor.signatureError]);
    expect(receivedBy(m.mobile)).toEqual([]);
  });

  it('a gateway 503 is transient', async () => {
    fake.next({ http: 503 });
    const outcome = await vendor.client(fake).send(message());
    expect(outcome).toEqual({ kind: 'transient', provider: vendor.name, detail: 'http 503' });
  });

  it('no answer within the timeout after sending is unknown (the SMS did go out)', async () => {
    fake.next('hang');
    const m = message();
    const outcome = await vendor.client(fake, { timeoutMs: HANG_TIMEOUT_MS }).send(m);
    expect(outcome).toEqual({
      kind: 'unknown',
      provider: vendor.name,
      detail: `timeout after ${HANG_TIMEOUT_MS} ms`,
    });
    expect(receivedBy(m.mobile)).toHaveLength(1);
  });

  it("a 200 answer that is not the vendor's format is unknown (it may have been sent)", async () => {
    fake.next({ http: 200, deliver: true });
    const outcome = await vendor.client(fake).send(message());
    expect(outcome).toEqual({ kind: 'unknown', provider: vendor.name, detail: 'unreadable answer' });
  });

  it('a connection dropped after sending is unknown', async () => {
    fake.next('close');
    const outcome = await vendor.client(fake).send(message());
    expect(outcome).toMatchObject({ kind: 'unknown', provider: vendor.name });
  });

  it('a refused connection (nothing sent) is transient', async () => {
    const url = await refusedUrl();
    const outcome = await vendor.client({ ...fake, url }).send(message());
    expect(outcome).toEqual({ kind: 'transient', provider: vendor.name, detail: 'network ECONNREFUSED' });
  });

  it('a mobile that is not a mainland number is refused before any request', async () => {
    const outcome = await vendor.client(fake).send(message({ mobile: '12345' }));
    expect(outcome).toMatchObject({ kind: 'invalid_number', provider: vendor.name });
    expect(fake.requests).toBe(0);
  });

  // Twilio signs nothing with a time, so it has no such check to prove.
  if (vendor.clockError) {
    it('a clock 20 minutes off is refused by the timestamp check', async () => {
      const skewed = () => new Date(Date.now() - 20 * 60_000);
      const outcome = await vendor.client(fake, { now: skewed }).send(message());
      // Ronglian allows 24 h, so only the others refuse 20 minutes.
      if (vendor.name === 'ronglian') {
        expect(outcome.kind).toBe('ok');
        const dayOff = () => new Date(Date.now() - 25 * 3600_000);
        const late = await vendor.client(fake, { now: dayOff }).send(message());
        expect(late).toEqual({ kind: 'config_error', provider: vendor.name, detail: vendor.clockError });
      } else {
        expect(outcome).toEqual({ kind: 'config_error', provider: vendor.name, detail: vendor.clockError });
      }
    });
  }
});

describe('Ronglian specifics', () => {
  let fake: Awaited<ReturnType<typeof ronglian.start>>;
  beforeEach(async () => {
    fake = await ronglian.start();
  });
  afterEach(() => fake.close());

  it('stamps the request in China time (UTC+8)', async () => {
    const chinaHour = () => {
      const parts = new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Asia/Shanghai',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        hourCycle: 'h23',
      }).formatToParts(new Date());
      const part = (t: string) => parts.find((p) => p.type === t)?.value;
      return `${part('year')}${part('month')}${part('day')}${part('hour')}`;
    };
    const before = chinaHour();
    await ronglian.client(fake).send(message());
    const after = chinaHour();
    // yyyyMMddHH of the Authorization timestamp; the hour may tick over during the send.
    expect([before, after]).toContain(fake.delivered[0]?.timestamp.slice(0, 10));
  });

  it('a send processed before a 5xx is not sent twice: the retry with the same reqId is ok', async () => {
    fake.next({ http: 502, deliver: true });
    const client = ronglian.client(fake);
    const m = message();
    expect(await client.send(m)).toEqual({ kind: 'transient', provider: 'ronglian', detail: 'http 502' });
    expect(await client.send(m)).toEqual({ kind: 'ok', provider: 'ronglian', detail: '160054' });
    expect(fake.delivered).toHaveLength(1);
    // A new job (another key) for the same number is a new message.
    expect(await client.send({ ...m, idempotencyKey: 'another-job' })).toMatchObject({ kind: 'ok' });
    expect(fake.delivered).toHaveLength(2);
  });
});

describe('Aliyun specifics', () => {
  let fake: Awaited<ReturnType<typeof aliyun.start>>;
  beforeEach(async () => {
    fake = await aliyun.start();
  });
  afterEach(() => fake.close());

  it('a reused SignatureNonce is refused (transient: the next attempt draws a new one)', async () => {
    const client = aliyun.client(fake, { nonce: () => 'the-same-nonce' });
    expect(await client.send(message())).toMatchObject({ kind: 'ok' });
    expect(await client.send(message())).toEqual({
      kind: 'transient',
      provider: 'aliyun',
      detail: 'SignatureNonceUsed',
    });
    expect(fake.delivered).toHaveLength(1);
  });

  it('each request has its own nonce by default', async () => {
    const client = aliyun.client(fake);
    expect((await client.send(message())).kind).toBe('ok');
    expect((await client.send(message())).kind).toBe('ok');
    expect(fake.refusals).toEqual([]);
  });

  it('the V3 (ACS3-HMAC-SHA256) signer is accepted too, and a wrong secret refused', async () => {
    const settings = {
      accessKeyId: 'LTAI5tTestKeyId',
      accessKeySecret: 'testSecret/+=!*',
      signName: '美多商城',
      templateCode: 'SMS_71390007',
      endpoint: fake.url,
      signatureVersion: 'v3' as const,
    };
    const m = message();
    const ok = await createAliyunProvider(settings, { timeoutMs: TIMEOUT_MS }).send(m);
    expect(ok).toMatchObject({ kind: 'ok', provider: 'aliyun' });
    expect(fake.delivered).toEqual([
      {
        phoneNumbers: m.mobile,
        templateCode: 'SMS_71390007',
        templateParam: { code: m.code, minutes: '5' },
        signatureVersion: 'v3',
      },
    ]);
    const bad = await createAliyunProvider(
      { ...settings, accessKeySecret: 'wrong' },
      { timeoutMs: TIMEOUT_MS },
    ).send(message());
    expect(bad).toEqual({ kind: 'config_error', provider: 'aliyun', detail: 'SignatureDoesNotMatch' });
  });
});

describe('Tencent specifics', () => {
  it('scopes the signature with the UTC date when it is already tomorrow in China', async () => {
    // 2024-01-01 16:30 UTC is 2024-01-02 00:30 in UTC+8.
    const at = Date.parse('2024-01-01T16:30:00Z');
    const { startTencentFake } = await import('./fakes/tencent.js');
    const fake = await startTencentFake({
      keys: { AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE' },
      sdkAppId: '1400006666',
      templateId: '1110',
      signName: '美多商城',
      now: () => at,
    });
    try {
      const outcome = await tencent.client(fake, { now: () => new Date(at) }).send(message());
      expect(outcome).toMatchObject({ kind: 'ok', provider: 'tencent' });
    } finally {
      await fake.close();
    }
  });

  it('a per-number failure in SendStatusSet and a request-level Error are both read', async () => {
    const fake = await tencent.start();
    try {
      fake.next(
        { error: 'LimitExceeded.PhoneNumberDailyLimit', in: 'status' },
        { error: 'RequestLimitExceeded', in: 'error' },
      );
      const client = tencent.client(fake);
      expect(await client.send(message())).toMatchObject({ kind: 'rate_limited' });
      expect(await client.send(message())).toMatchObject({
        kind: 'transient',
        detail: 'RequestLimitExceeded',
      });
    } finally {
      await fake.close();
    }
  });
});

describe('Twilio specifics', () => {
  it('sends the template text in E.164 from the configured sender', async () => {
    const fake = await twilio.start();
    try {
      const m = message();
      await twilio.client(fake).send(m);
      expect(fake.delivered).toEqual([
        { to: `+86${m.mobile}`, from: '+15005550006', body: `您的验证码是${m.code}，请于5分钟内正确输入` },
      ]);
    } finally {
      await fake.close();
    }
  });
});

// ---- failover, through createSmsProvider as the app builds it --------------------------

interface Chain {
  fakes: Fake[];
  send: (m?: ReturnType<typeof message>) => Promise<{ kind: string; provider: string; detail?: string }>;
  lines: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function chain(vendors: Vendor[], env: Record<string, string> = {}): Promise<Chain> {
  const fakes = await Promise.all(vendors.map((v) => v.start()));
  const { stream: sink, lines } = logSink();
  const config = loadConfig({
    SMS_PROVIDER: vendors.map((v) => v.name).join(','),
    SMS_TIMEOUT_MS: String(TIMEOUT_MS),
    ...Object.assign({}, ...vendors.map((v, i) => v.env(fakes[i] as Fake))),
    ...env,
  });
  const provider = createSmsProvider(config, pino({ level: 'debug' }, sink));
  return {
    fakes,
    lines,
    send: (m = message()) => provider.send(m),
    close: async () => {
      await Promise.all(fakes.map((f) => f.close()));
    },
  };
}

describe('failover (SMS_PROVIDER=a,b,…)', () => {
  const both = [ronglian, aliyun] as unknown as Vendor[];

  it.each([
    ['transient', { error: '160000' }],
    ['config_error', { error: '111142' }],
  ] as const)('after a %s answer the next vendor sends', async (_kind, script) => {
    const c = await chain(both);
    try {
      c.fakes[0]?.next(script);
      const m = message();
      expect(await c.send(m)).toMatchObject({ kind: 'ok', provider: 'aliyun' });
      expect(aliyun.received(c.fakes[1] as never)).toMatchObject([
        { to: m.mobile, variables: [m.code, '5'] },
      ]);
      expect(ronglian.received(c.fakes[0] as never)).toEqual([]);
      // The failed hop is debug-logged with the vendor's code, never with the SMS code.
      const hop = c.lines.find((l) => l.msg === 'sms vendor failed, trying the next one');
      expect(hop).toMatchObject({ provider: 'ronglian', detail: script.error });
      expect(JSON.stringify(c.lines)).not.toContain(m.code);
    } finally {
      await c.close();
    }
  });

  it('the first vendor that answers ok ends the chain', async () => {
    const c = await chain(both);
    try {
      expect(await c.send()).toMatchObject({ kind: 'ok', provider: 'ronglian' });
      expect(c.fakes[1]?.requests).toBe(0);
    } finally {
      await c.close();
    }
  });

  it.each([
    ['unknown (may have been delivered)', 'hang' as const, 'unknown'],
    ['invalid_number', { error: '160042' }, 'invalid_number'],
    ['blocked_number', { error: '160034' }, 'blocked_number'],
    ['rate_limited (per number: no second vendor around it)', { error: '160038' }, 'rate_limited'],
  ])('%s stops the chain', async (_title, script, kind) => {
    const c = await chain(both, script === 'hang' ? { SMS_TIMEOUT_MS: String(HANG_TIMEOUT_MS) } : {});
    try {
      c.fakes[0]?.next(script);
      expect(await c.send()).toMatchObject({ kind, provider: 'ronglian' });
      expect(c.fakes[1]?.requests).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('when all fail, a transient outcome is returned so that the queue retries the chain', async () => {
    const c = await chain(both);
    try {
      c.fakes[0]?.next({ error: '160000' });
      c.fakes[1]?.next({ error: 'isv.AMOUNT_NOT_ENOUGH' });
      expect(await c.send()).toEqual({ kind: 'transient', provider: 'ronglian', detail: '160000' });
    } finally {
      await c.close();
    }
  });

  it('a purpose goes only to the vendors with its template', async () => {
    const fakes = [await ronglian.start(), await aliyun.start()];
    try {
      const chained = createFailoverProvider([
        ronglian.client(fakes[0] as never, { registrationOnly: true }),
        aliyun.client(fakes[1] as never),
      ]);
      expect([...(chained.purposes ?? [])].sort()).toEqual([
        'mobile_change',
        'mobile_changed',
        'password_reset',
        'register',
      ]);
      const reset = message({ purpose: 'password_reset' });
      expect(await chained.send(reset)).toMatchObject({ kind: 'ok', provider: 'aliyun' });
      expect(aliyun.received(fakes[1] as never)).toMatchObject([
        { template: aliyun.templates.password_reset },
      ]);
      expect(await chained.send(message())).toMatchObject({ kind: 'ok', provider: 'ronglian' });
      expect(fakes.map((f) => f.requests)).toEqual([1, 1]);
      const alone = createFailoverProvider([ronglian.client(fakes[0] as never, { registrationOnly: true })]);
      expect(await alone.send(message({ purpose: 'mobile_changed' }))).toEqual({
        kind: 'config_error',
        provider: 'ronglian',
        detail: 'no template for mobile_changed',
      });
    } finally {
      await Promise.all(fakes.map((f) => f.close()));
    }
  });

  it('when all fail with config errors, the last one is returned', async () => {
    const c = await chain([ronglian, aliyun, tencent] as unknown as Vendor[]);
    try {
      c.fakes[0]?.next({ error: '111142' });
      c.fakes[1]?.next({ error: 'isv.AMOUNT_NOT_ENOUGH' });
      c.fakes[2]?.next({ error: 'AuthFailure.SecretIdNotFound', in: 'error' });
      expect(await c.send()).toEqual({
        kind: 'config_error',
        provider: 'tencent',
        detail: 'AuthFailure.SecretIdNotFound',
      });
      expect(c.fakes.map((f) => f.requests)).toEqual([1, 1, 1]);
    } finally {
      await c.close();
    }
  });
});

// ---- start-up checks -------------------------------------------------------------------

describe('createSmsProvider settings checks', () => {
  const build = (env: Record<string, string>) => () => createSmsProvider(loadConfig(env), silent);

  it.each([
    ['ronglian', 'RONGLIAN_ACCOUNT_SID'],
    ['aliyun', 'ALIYUN_ACCESS_KEY_ID'],
    ['tencent', 'TENCENT_SECRET_ID'],
    ['twilio', 'TWILIO_ACCOUNT_SID'],
  ])('SMS_PROVIDER=%s without settings names %s', (name, setting) => {
    expect(build({ SMS_PROVIDER: name })).toThrow(
      new ConfigError(`Invalid setting ${setting}: required when SMS_PROVIDER includes ${name}`),
    );
  });

  it('checks every vendor of a failover list, not only the first', () => {
    expect(build({ SMS_PROVIDER: 'console,tencent' })).toThrow(
      /^Invalid setting TENCENT_SECRET_ID: required/,
    );
  });

  it('names the first missing setting of a partly configured vendor', () => {
    expect(
      build({
        SMS_PROVIDER: 'ronglian',
        RONGLIAN_ACCOUNT_SID: '8a216da8000000000000000000000001',
        RONGLIAN_AUTH_TOKEN: 'token',
      }),
    ).toThrow(
      new ConfigError('Invalid setting RONGLIAN_APP_ID: required when SMS_PROVIDER includes ronglian'),
    );
  });

  it('Twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID', () => {
    expect(
      build({ SMS_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: `AC${'a'.repeat(32)}`, TWILIO_AUTH_TOKEN: 't' }),
    ).toThrow(new ConfigError('Invalid setting TWILIO_FROM: required when SMS_PROVIDER includes twilio'));
    expect(() =>
      build({
        SMS_PROVIDER: 'twilio',
        TWILIO_ACCOUNT_SID: `AC${'a'.repeat(32)}`,
        TWILIO_AUTH_TOKEN: 't',
        TWILIO_MESSAGING_SERVICE_SID: `MG${'b'.repeat(32)}`,
      })(),
    ).not.toThrow();
  });

  it.each([
    [{ RONGLIAN_ACCOUNT_SID: 'short' }, 'ronglian', /^Invalid setting RONGLIAN_ACCOUNT_SID: must be/],
    [
      { ALIYUN_SMS_TEMPLATE_CODE: '71390007' },
      'aliyun',
      /^Invalid setting ALIYUN_SMS_TEMPLATE_CODE: must be/,
    ],
    [{ TENCENT_SMS_SDK_APP_ID: 'app' }, 'tencent', /^Invalid setting TENCENT_SMS_SDK_APP_ID: must be/],
    [{ TWILIO_FROM: '15005550006' }, 'twilio', /^Invalid setting TWILIO_FROM: must be/],
  ])('a malformed setting %o stops the start', async (bad, name, pattern) => {
    const vendor = VENDORS.find((v) => v.name === name) as Vendor;
    const fake = await vendor.start();
    try {
      expect(build({ SMS_PROVIDER: name, ...vendor.env(fake), ...bad })).toThrow(pattern);
    } finally {
      await fake.close();
    }
  });

  it('never repeats a secret in the message', () => {
    const secret = 'my secret value';
    let message = '';
    try {
      build({
        SMS_PROVIDER: 'aliyun',
        ALIYUN_ACCESS_KEY_ID: 'LTAI5t',
        ALIYUN_ACCESS_KEY_SECRET: secret,
      })();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('Invalid setting ALIYUN_ACCESS_KEY_SECRET: must not contain spaces');
  });

  it.each(VENDORS.filter((v) => v.name !== 'twilio'))(
    '$name: the purpose templates are read and checked; without them the start warns',
    async (vendor: Vendor) => {
      const fake = await vendor.start();
      try {
        const env = { SMS_PROVIDER: vendor.name, ...vendor.env(fake) };
        const full = createSmsProvider(loadConfig({ ...env, ...vendor.purposeEnv }), silent);
        expect(full.purposes?.size).toBe(4);
        const [name] = Object.keys(vendor.purposeEnv) as [string];
        expect(build({ ...env, ...vendor.purposeEnv, [name]: 'x y' })).toThrow(
          new RegExp(`^Invalid setting ${name}: must be`),
        );
        // A registration-only deployment starts, and says what it will refuse.
        const config = loadConfig(env);
        expect([...(createSmsProvider(config, silent).purposes ?? [])]).toEqual(['register']);
        expect(config.warnings).toEqual([
          expect.stringMatching(/^no SMS template for password_reset .*503 SMS_PURPOSE_NOT_CONFIGURED$/),
          expect.stringMatching(/^no SMS template for mobile_change /),
          expect.stringMatching(/^no SMS template for mobile_changed /),
        ]);
      } finally {
        await fake.close();
      }
    },
  );

  it('the default is the console provider', () => {
    expect(createSmsProvider(loadConfig({}), silent).name).toBe('console');
  });
});
