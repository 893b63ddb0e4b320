import Type, { type Static } from 'typebox';
import { HttpUrl, Text } from '../../config-schema.js';
import type { SendOutcome, SendOutcomeKind, SmsMessage, SmsProvider } from '../../domain/ports.js';
import { MAINLAND_MOBILE, outcome, parseJsonObject, type VendorDeps, vendorRequest } from './http.js';
import { baseUrl, setting } from './settings.js';
import { basicAuthorization } from './signing.js';

/** Twilio Programmable Messaging, Messages resource (reference §4). */
export interface TwilioSettings {
  accountSid: string;
  authToken: string;
  /** Exactly one of `from` and `messagingServiceSid`. */
  from?: string;
  messagingServiceSid?: string;
  /** `https://api.twilio.com` in production. */
  baseUrl: string;
}

/** Its settings, under their environment names (config.ts composes them). */
export const TwilioEnv = Type.Object({
  TWILIO_ACCOUNT_SID: Text('Twilio account SID'),
  TWILIO_AUTH_TOKEN: Text('Twilio auth token'),
  TWILIO_FROM: Text('Twilio sender number'),
  TWILIO_MESSAGING_SERVICE_SID: Text('Twilio messaging service SID (instead of TWILIO_FROM)'),
  TWILIO_BASE_URL: HttpUrl('https://api.twilio.com', 'Twilio API base URL'),
});

/** Checks the settings when SMS_PROVIDER names twilio; throws ConfigError naming the first bad one. */
export function twilioSettings(config: Static<typeof TwilioEnv>): TwilioSettings {
  const settings: TwilioSettings = {
    accountSid: setting(config, 'TWILIO_ACCOUNT_SID', 'twilio', {
      pattern: /^AC[0-9a-fA-F]{32}$/,
      hint: 'must be AC followed by 32 hex digits',
    }),
    authToken: setting(config, 'TWILIO_AUTH_TOKEN', 'twilio', {
      pattern: /^\S+$/,
      hint: 'must not contain spaces',
    }),
    baseUrl: baseUrl(setting(config, 'TWILIO_BASE_URL', 'twilio')),
  };
  if (config.TWILIO_MESSAGING_SERVICE_SID !== undefined) {
    settings.messagingServiceSid = setting(config, 'TWILIO_MESSAGING_SERVICE_SID', 'twilio', {
      pattern: /^MG[0-9a-fA-F]{32}$/,
      hint: 'must be MG followed by 32 hex digits',
    });
  } else if (config.TWILIO_FROM !== undefined) {
    settings.from = setting(config, 'TWILIO_FROM', 'twilio', {
      pattern: /^(\+[1-9]\d{5,14}|(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11})$/,
      hint: 'must be an E.164 number like +15005550006 or an alphanumeric sender id',
    });
  } else {
    setting(config, 'TWILIO_FROM', 'twilio'); // throws: one of the two is required
  }
  return settings;
}

/** Maps an error `code` (or, without one, the HTTP status) onto the outcome set (§4.3, §5). */
export function classifyTwilio(code: number | undefined, status: number): SendOutcomeKind {
  if (code === 21211 || code === 21614 || code === 21612) return 'invalid_number';
  if (code === 21610) return 'blocked_number';
  if (code === 60203 || code === 60202) return 'rate_limited';
  // 20429: "never processed and always safe to retry".
  if (code === 20429 || status === 429 || status >= 500) return 'transient';
  return 'config_error';
}

/**
 * The text of each purpose, filled in (Twilio has no server-side templates): registration
 * keeps Meiduo's template 1 wording; the others say what the code is for; the notice to the
 * replaced mobile carries no code.
 */
export function twilioText(message: SmsMessage): string {
  const valid = `，请于${message.ttlMinutes}分钟内正确输入`;
  switch (message.purpose) {
    case 'register':
      return `您的验证码是${message.code}${valid}`;
    case 'password_reset':
      return `您正在重置美多账号密码，验证码是${message.code}${valid}。如非本人操作，请忽略本短信`;
    case 'mobile_change':
      return `您正在将此号码绑定为美多账号的新手机号，验证码是${message.code}${valid}`;
    case 'mobile_changed':
      return '您的美多账号已更换绑定手机号，此号码不再用于登录。如非本人操作，请立即联系客服';
  }
}

export function createTwilioProvider(settings: TwilioSettings, deps: VendorDeps): SmsProvider {
  const name = 'twilio';
  const url = `${settings.baseUrl}/2010-04-01/Accounts/${settings.accountSid}/Messages.json`;
  const authorization = basicAuthorization(settings.accountSid, settings.authToken);
  return {
    name,
    // Its texts are written here, one per purpose: it sends them all.
    purposes: new Set(['register', 'password_reset', 'mobile_change', 'mobile_changed']),
    async send(message: SmsMessage): Promise<SendOutcome> {
      if (!MAINLAND_MOBILE.test(message.mobile))
        return outcome(name, 'invalid_number', 'not a mainland mobile');
      const form = new URLSearchParams({ To: `+86${message.mobile}`, Body: twilioText(message) });
      if (settings.messagingServiceSid) form.set('MessagingServiceSid', settings.messagingServiceSid);
      else if (settings.from) form.set('From', settings.from);
      const res = await vendorRequest(name, deps, url, {
        method: 'POST',
        headers: {
          Authorization: authorization,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: form.toString(),
      });
      if (!res.sent) return res.outcome;
      const json = parseJsonObject(res.body);
      if (res.status >= 200 && res.status < 300) {
        const sid = json?.sid;
        if (typeof sid === 'string') return outcome(name, 'ok', undefined, sid);
        return outcome(name, 'unknown', 'unreadable answer');
      }
      const code = typeof json?.code === 'number' ? json.code : undefined;
      return outcome(
        name,
        classifyTwilio(code, res.status),
        code === undefined ? `http ${res.status}` : String(code),
      );
    },
  };
}
