import type { SendOutcome, SmsMessage, SmsProvider } from '../../domain/ports.js';

/**
 * The embedded default's provider: prints each message as the course's Celery worker did,
 * `[mobile: 13155667788] [sms_code: 939466]`. The only place a code is ever written out.
 */
export function createConsoleProvider(
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): SmsProvider {
  return {
    name: 'console',
    async send(message: SmsMessage): Promise<SendOutcome> {
      write(`[mobile: ${message.mobile}] [sms_code: ${message.code}]`);
      return { kind: 'ok', provider: 'console' };
    },
  };
}
