import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { SmsProvider } from '../../domain/ports.js';
import { createConsoleProvider } from './console.js';

/**
 * Builds the provider chain SMS_PROVIDER names. Throws ConfigError naming the first missing
 * or malformed vendor setting, so a bad configuration stops the start.
 */
export function createSmsProvider(config: Config, _log: Logger): SmsProvider {
  const [first] = config.providers;
  switch (first) {
    case 'console':
    case undefined:
      return createConsoleProvider();
    default:
      throw new Error(`SMS provider ${first} is not implemented yet`);
  }
}
