import type { ConnectionOptions } from 'node:tls';
import nodemailer from 'nodemailer';
import type { EmailMessage, EmailProvider, SendOutcome, SendOutcomeKind } from '../../domain/ports.js';

export interface SmtpSettings {
  /** smtp://user:pass@host:587 (STARTTLS when offered; ?requireTLS=true insists) or smtps://host:465. */
  url: string;
  from: string;
  timeoutMs: number;
  /** Extra TLS options (a private CA in tests); production trusts the system's CAs. */
  tls?: ConnectionOptions;
}

interface SmtpError {
  code?: string;
  responseCode?: number;
  command?: string;
  message?: string;
}

/** SMTP commands sent before the message data: a failure there delivered nothing. */
const BEFORE_DATA = /^(CONN|EHLO|HELO|LHLO|STARTTLS|AUTH|MAIL|RCPT)/i;

/**
 * Maps a send failure onto the SMS outcome classes (API.md §9 "Email jobs"): 4xx replies and
 * failures before the data are transient; a 5xx for the recipient is invalid_address;
 * authentication, TLS and other 5xx refusals are config_error; a failure once the data may
 * have been accepted is unknown (not repeated: the person may already have the mail).
 */
export function classifySmtpError(err: SmtpError): { kind: SendOutcomeKind; detail: string } {
  const code = err.code ?? 'unknown';
  const reply = err.responseCode;
  const detail = `${code}${reply ? ` ${reply}` : ''}${err.command ? ` at ${err.command}` : ''}`;
  if (reply !== undefined && reply >= 400 && reply < 500) return { kind: 'transient', detail };
  if (code === 'EAUTH' || code === 'ENOAUTH' || code === 'ETLS' || code === 'EREQUIRETLS')
    return { kind: 'config_error', detail };
  if (code === 'ESOCKET' && /certificate|self[- ]signed|SSL|TLS/i.test(err.message ?? ''))
    return { kind: 'config_error', detail };
  if (reply !== undefined && reply >= 500) {
    return {
      kind: /^RCPT/i.test(err.command ?? '') || code === 'EENVELOPE' ? 'invalid_address' : 'config_error',
      detail,
    };
  }
  if (code === 'ECONNECTION' || code === 'ETIMEDOUT' || code === 'ESOCKET' || code === 'EDNS') {
    return {
      kind: err.command === undefined || BEFORE_DATA.test(err.command) ? 'transient' : 'unknown',
      detail,
    };
  }
  return { kind: 'unknown', detail };
}

/** Sends through an SMTP server with nodemailer: one connection per message, bounded in time. */
export function createSmtpEmailProvider(settings: SmtpSettings): EmailProvider {
  const transport = nodemailer.createTransport({
    url: settings.url,
    connectionTimeout: settings.timeoutMs,
    greetingTimeout: settings.timeoutMs,
    socketTimeout: settings.timeoutMs,
    ...(settings.tls ? { tls: settings.tls } : {}),
  } as Parameters<typeof nodemailer.createTransport>[0]);
  const domain = /@([^>\s]+)/.exec(settings.from)?.[1] ?? 'localhost';
  return {
    name: 'smtp',
    async send(message: EmailMessage): Promise<SendOutcome> {
      try {
        const info = (await transport.sendMail({
          from: settings.from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          // Stable across retries of one job, so a receiving server can drop a duplicate.
          messageId: `<${message.idempotencyKey}@${domain}>`,
        })) as { messageId?: string; rejected?: unknown[] };
        if (Array.isArray(info.rejected) && info.rejected.length > 0)
          return { kind: 'invalid_address', provider: 'smtp', detail: 'recipient rejected' };
        return { kind: 'ok', provider: 'smtp', ...(info.messageId ? { messageId: info.messageId } : {}) };
      } catch (err) {
        const { kind, detail } = classifySmtpError(err as SmtpError);
        return { kind, provider: 'smtp', detail };
      }
    },
    async close() {
      transport.close();
    },
  };
}
