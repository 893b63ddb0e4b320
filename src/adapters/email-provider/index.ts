import type { Config } from '../../config.js';
import type { EmailProvider } from '../../domain/ports.js';
import { createConsoleEmailProvider } from './console.js';
import { createSmtpEmailProvider } from './smtp.js';

/** The provider EMAIL_PROVIDER names (config.ts has checked that SMTP_URL is there for smtp). */
export function createEmailProvider(config: Config): EmailProvider {
  switch (config.EMAIL_PROVIDER) {
    case 'console':
      return createConsoleEmailProvider();
    case 'smtp':
      return createSmtpEmailProvider({
        url: config.SMTP_URL as string,
        from: config.EMAIL_FROM,
        timeoutMs: config.SMTP_TIMEOUT_MS,
      });
    default: {
      const never: never = config.EMAIL_PROVIDER;
      throw new Error(`unknown email provider ${String(never)}`);
    }
  }
}
