/**
 * A real SMTP server (the `smtp-server` package) on a loopback port, for the SMTP provider's
 * tests and the pages' e2e: it keeps every message it accepted, parsed by mailparser, and can
 * be told to refuse recipients or the message as a real server would (5xx / 4xx replies).
 */
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import selfsigned from 'selfsigned';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  messageId: string;
  /** Whether the session ran over TLS (STARTTLS or implicit). */
  secure: boolean;
}

export interface TestSmtpServer {
  port: number;
  /** PEM of the server's self-signed certificate (empty without TLS). */
  cert: string;
  received: ReceivedMail[];
  /** Resolves with the next mail to `to` (or one already received and not yet taken). */
  next(to: string): Promise<ReceivedMail>;
  /** Refuses recipients matching with this reply code until cleared (e.g. 550, 451). */
  refuseRecipients(pattern: RegExp | null, code?: number): void;
  close(): Promise<void>;
}

/** Starts a server; `tls: true` offers STARTTLS with a certificate for localhost/127.0.0.1. */
export async function startSmtpServer(
  options: { tls?: boolean; auth?: { user: string; pass: string } } = {},
): Promise<TestSmtpServer> {
  const received: ReceivedMail[] = [];
  const waiters: Array<{ to: string; resolve: (m: ReceivedMail) => void }> = [];
  let refuse: { pattern: RegExp; code: number } | null = null;
  let cert = '';
  let key = '';
  if (options.tls) {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      extensions: [
        { name: 'basicConstraints', cA: false },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    cert = pems.cert;
    key = pems.private;
  }
  const settings: SMTPServerOptions = {
    secure: false,
    disabledCommands: options.tls ? [] : ['STARTTLS'],
    ...(options.tls ? { key, cert } : {}),
    authOptional: !options.auth,
    ...(options.auth ? {} : { disabledCommands: [...(options.tls ? [] : ['STARTTLS']), 'AUTH'] }),
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) {
        callback(null, { user: auth.username });
      } else {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      }
    },
    onRcptTo(address, _session, callback) {
      if (refuse?.pattern.test(address.address)) {
        callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: refuse.code }));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (parsed) => {
          const mail: ReceivedMail = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            messageId: parsed.messageId ?? '',
            secure: session.secure,
          };
          received.push(mail);
          for (const w of [...waiters]) {
            if (mail.to.includes(w.to)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(mail);
            }
          }
          callback();
        },
        (err: Error) => callback(err),
      );
    },
    logger: false,
  };
  const server = new SMTPServer(settings);
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    cert,
    received,
    next(to) {
      const already = received.find((m) => m.to.includes(to));
      if (already) return Promise.resolve(already);
      return new Promise((resolve) => waiters.push({ to, resolve }));
    },
    refuseRecipients(pattern, code = 550) {
      refuse = pattern ? { pattern, code } : null;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
