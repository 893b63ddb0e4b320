import type { SendOutcome, SmsMessage, SmsProvider } from '../../domain/ports.js';
import { writeLine } from '../../stdout.js';

/**
 * The embedded default's provider: prints each message as the course's Celery worker did,
 * `[mobile: 13155667788] [sms_code: 939466]`. The only place a code is ever written out.
 */
export function createConsoleProvider(write: (line: string) => void = writeLine): SmsProvider {
  return {
    name: 'console',
    async send(message: SmsMessage): Promise<SendOutcome> {
      // Registration keeps the course's line; other purposes say what the message is for.
      if (message.purpose === 'register') write(`[mobile: ${message.mobile}] [sms_code: ${message.code}]`);
      else if (message.purpose === 'mobile_changed')
        write(`[mobile: ${message.mobile}] [notice: 您的美多账号已更换绑定手机号]`);
      else write(`[mobile: ${message.mobile}] [${message.purpose}] [sms_code: ${message.code}]`);
      return { kind: 'ok', provider: 'console' };
    },
  };
}
