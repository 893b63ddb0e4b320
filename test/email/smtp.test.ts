import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSmtpEmailProvider } from '../../src/adapters/email-provider/smtp.js';
import type { EmailMessage } from '../../src/domain/ports.js';
import {
  backendMatrix,
  buildTestApp,
  randomIp,
  randomMobile,
  registration,
  smsCode,
  until,
} from '../helper.js';
import { startSmtpServer, type TestSmtpServer } from './smtp-server.js';

const address = () => `m${randomBytes(5).toString('hex')}@example.com`;

function message(to: string, overrides: Partial<EmailMessage> = {}): EmailMessage {
  return {
    to,
    subject: '美多商城邮箱验证',
    text: 'link: http://127.0.0.1:8000/success_verify_email.html?token=abc',
    html: '<p>link</p>',
    idempotencyKey: `job-${randomBytes(4).toString('hex')}`,
    ...overrides,
  };
}

describe('SMTP provider against a real SMTP server', () => {
  let plain: TestSmtpServer;
  let tls: TestSmtpServer;
  let authed: TestSmtpServer;
  beforeAll(async () => {
    plain = await startSmtpServer();
    tls = await startSmtpServer({ tls: true });
    authed = await startSmtpServer({ tls: true, auth: { user: 'mailer', pass: 's3cret' } });
  });
  afterAll(async () => {
    await Promise.all([plain.close(), tls.close(), authed.close()]);
  });

  it('delivers the message with a Message-ID stable across retries of one job', async () => {
    const provider = createSmtpEmailProvider({
      url: `smtp://127.0.0.1:${plain.port}`,
      from: '美多商城 <no-reply@meiduo.site>',
      timeoutMs: 5000,
    });
    const to = address();
    const outcome = await provider.send(message(to, { idempotencyKey: 'job-42' }));
    expect(outcome).toMatchObject({ kind: 'ok', provider: 'smtp' });
    const mail = await plain.next(to);
    expect(mail).toMatchObject({
      from: 'no-reply@meiduo.site',
      to: [to],
      subject: '美多商城邮箱验证',
      secure: false,
    });
    expect(mail.messageId).toBe('<job-42@meiduo.site>');
    expect(mail.text).toContain('success_verify_email.html?token=abc');
    await provider.close?.();
  });

  it('upgrades with STARTTLS to a server whose certificate it trusts, and refuses one it does not', async () => {
    const trusting = createSmtpEmailProvider({
      url: `smtp://localhost:${tls.port}?requireTLS=true`,
      from: 'no-reply@meiduo.site',
      timeoutMs: 5000,
      tls: { ca: tls.cert },
    });
    const to = address();
    expect(await trusting.send(message(to))).toMatchObject({ kind: 'ok' });
    expect((await tls.next(to)).secure).toBe(true);

    // The system's CAs do not know this self-signed certificate: a configuration problem,
    // not worth a retry, and nothing delivered.
    const stranger = createSmtpEmailProvider({
      url: `smtp://localhost:${tls.port}?requireTLS=true`,
      from: 'no-reply@meiduo.site',
      timeoutMs: 5000,
    });
    const refused = address();
    expect(await stranger.send(message(refused))).toMatchObject({ kind: 'config_error', provider: 'smtp' });
    expect(tls.received.some((m) => m.to.includes(refused))).toBe(false);
  });

  it('authenticates; bad credentials are a configuration error', async () => {
    const good = createSmtpEmailProvider({
      url: `smtp://mailer:s3cret@localhost:${authed.port}`,
      from: 'no-reply@meiduo.site',
      timeoutMs: 5000,
      tls: { ca: authed.cert },
    });
    const to = address();
    expect(await good.send(message(to))).toMatchObject({ kind: 'ok' });
    expect((await authed.next(to)).secure).toBe(true);
    const bad = createSmtpEmailProvider({
      url: `smtp://mailer:wrong@localhost:${authed.port}`,
      from: 'no-reply@meiduo.site',
      timeoutMs: 5000,
      tls: { ca: authed.cert },
    });
    expect(await bad.send(message(address()))).toMatchObject({ kind: 'config_error' });
  });

  it('maps refusals onto the outcome classes: 550 invalid_address, 451 transient, no server transient', async () => {
    const provider = createSmtpEmailProvider({
      url: `smtp://127.0.0.1:${plain.port}`,
      from: 'no-reply@meiduo.site',
      timeoutMs: 5000,
    });
    plain.refuseRecipients(/^gone-/, 550);
    expect(await provider.send(message(`gone-${address()}`))).toMatchObject({ kind: 'invalid_address' });
    plain.refuseRecipients(/^later-/, 451);
    expect(await provider.send(message(`later-${address()}`))).toMatchObject({ kind: 'transient' });
    plain.refuseRecipients(null);
    const closed = await startSmtpServer();
    const port = closed.port;
    await closed.close();
    const nobody = createSmtpEmailProvider({
      url: `smtp://127.0.0.1:${port}`,
      from: 'a@b.cn',
      timeoutMs: 2000,
    });
    expect(await nobody.send(message(address()))).toMatchObject({ kind: 'transient' });
  });
});

const matrix = await backendMatrix();

describe.each(matrix)('verification mail through SMTP on $name', ({ store: backend, database }) => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer({ tls: true });
  });
  afterAll(() => smtp.close());

  it('PUT /emails/ → the mail arrives over STARTTLS → its link verifies the address; a 451 is retried', async () => {
    const provider = createSmtpEmailProvider({
      url: `smtp://localhost:${smtp.port}?requireTLS=true`,
      from: '美多商城 <no-reply@meiduo.site>',
      timeoutMs: 5000,
      tls: { ca: smtp.cert },
    });
    const t = await buildTestApp(
      { EMAIL_VERIFY_URL: 'http://www.meiduo.site:8080/success_verify_email.html?token=' },
      { backend, database, email: provider },
    );
    try {
      const c = t.client({ ip: randomIp() });
      await c.fetchCsrf();
      const mobile = randomMobile();
      const res = await c.post('/register/', registration(mobile, await smsCode(t, c, mobile)));
      expect(res.statusCode, res.body).toBe(200);

      const to = address();
      // The receiving server is busy at first (451): the job is retried with backoff.
      smtp.refuseRecipients(new RegExp(`^${to}$`), 451);
      expect((await c.request('PUT', '/emails/', { body: { email: to } })).statusCode).toBe(200);
      await until(() => t.logs.find((l) => l.includes('email job will be retried')));
      smtp.refuseRecipients(null);
      const mail = await smtp.next(to);
      expect(mail.secure).toBe(true);
      expect(mail.subject).toBe('美多商城邮箱验证');
      const link = /http:\/\/www\.meiduo\.site:8080\/success_verify_email\.html\?token=([A-Za-z0-9_-]+)/.exec(
        mail.text,
      );
      expect(link?.[1]).toBeTruthy();
      expect(mail.html).toContain(link?.[0]);
      // The token never went through the queue or the log.
      expect(t.logs.some((l) => l.includes(link?.[1] as string))).toBe(false);

      const ok = await c.request('PUT', `/emails/verification/?token=${link?.[1]}`);
      expect(ok.statusCode, ok.body).toBe(200);
      expect((await c.get('/info/')).json().info_data).toMatchObject({ email: to, email_active: true });
    } finally {
      await t.close();
    }
  });
});
