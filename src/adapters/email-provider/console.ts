import type { EmailMessage, EmailProvider, SendOutcome } from '../../domain/ports.js';
import { writeLine } from '../../stdout.js';

/**
 * The embedded default's provider: prints the mail's address and its link, as the console SMS
 * provider prints codes. With the SMS console provider, the only place a secret is written out.
 */
export function createConsoleEmailProvider(write: (line: string) => void = writeLine): EmailProvider {
  return {
    name: 'console',
    async send(message: EmailMessage): Promise<SendOutcome> {
      const link = /https?:\/\/\S+/.exec(message.text)?.[0] ?? '';
      write(`[email: ${message.to}] [verify_url: ${link}]`);
      return { kind: 'ok', provider: 'console' };
    },
  };
}
