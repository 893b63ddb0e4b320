import { createHash } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { HttpUrl, Text } from '../../config-schema.js';
import type { SendOutcome, SendOutcomeKind, SmsMessage, SmsProvider } from '../../domain/ports.js';
import { MAINLAND_MOBILE, outcome, parseJsonObject, type VendorDeps, vendorRequest } from './http.js';
import { baseUrl, setting } from './settings.js';
import { chinaTimestamp, signRonglian } from './signing.js';
import { type PurposeTemplates, purposesOf, purposeTemplates, templateFor } from './templates.js';

/** 容联云 (cloopen) template SMS, REST API 2013-12-26 (reference §1). */
export interface RonglianSettings {
  accountSid: string;
  authToken: string;
  appId: string;
  /** Registration's template (Meiduo's template 1). */
  templateId: string;
  /** The user centre's; a purpose without one is not sent (docs/sms-vendors.md). */
  templates?: PurposeTemplates;
  /** `https://app.cloopen.com:8883` in production. */
  baseUrl: string;
}

const ID32 = {
  pattern: /^[0-9A-Za-z]{32}$/,
  hint: 'must be the 32-character id shown in the 容联云 console',
};

/** Its settings, under their environment names (config.ts composes them). */
export const RonglianEnv = Type.Object({
  RONGLIAN_ACCOUNT_SID: Text('容联云 account SID'),
  RONGLIAN_AUTH_TOKEN: Text('容联云 auth token'),
  RONGLIAN_APP_ID: Text('容联云 app id'),
  RONGLIAN_TEMPLATE_ID: Type.String({ minLength: 1, default: '1', description: '容联云 template id' }),
  RONGLIAN_TEMPLATE_ID_PASSWORD_RESET: Text(
    '容联云 template id of password reset codes ({1} code, {2} minutes)',
  ),
  RONGLIAN_TEMPLATE_ID_MOBILE_CHANGE: Text(
    '容联云 template id of mobile change codes ({1} code, {2} minutes)',
  ),
  RONGLIAN_TEMPLATE_ID_MOBILE_CHANGED: Text(
    '容联云 template id of the notice to the replaced mobile (no variables)',
  ),
  RONGLIAN_BASE_URL: HttpUrl('https://app.cloopen.com:8883', '容联云 REST base URL'),
});

/** Checks the settings when SMS_PROVIDER names ronglian; throws ConfigError naming the first bad one. */
export function ronglianSettings(config: Static<typeof RonglianEnv>): RonglianSettings {
  const numeric = { pattern: /^\d+$/, hint: 'must be a number (160057: 短信模板ID要求为数字)' };
  return {
    accountSid: setting(config, 'RONGLIAN_ACCOUNT_SID', 'ronglian', ID32),
    authToken: setting(config, 'RONGLIAN_AUTH_TOKEN', 'ronglian', {
      pattern: /^\S+$/,
      hint: 'must not contain spaces',
    }),
    appId: setting(config, 'RONGLIAN_APP_ID', 'ronglian', ID32),
    templateId: setting(config, 'RONGLIAN_TEMPLATE_ID', 'ronglian', numeric),
    templates: purposeTemplates(config, 'RONGLIAN_TEMPLATE_ID', 'ronglian', numeric),
    baseUrl: baseUrl(setting(config, 'RONGLIAN_BASE_URL', 'ronglian')),
  };
}

const inRange = (n: number, lo: number, hi: number) => n >= lo && n <= hi;

/** Maps a `statusCode` onto the outcome set (reference §1.7 and §5). */
export function classifyRonglian(statusCode: string): SendOutcomeKind {
  // 160054: this reqId was already accepted today, so the message went out then.
  if (statusCode === '000000' || statusCode === '160054') return 'ok';
  const n = Number(statusCode);
  if ([160021, 160022, 160038, 160039, 160040, 160041, 160056, 112314].includes(n)) return 'rate_limited';
  if (n === 160042 || n === 112316) return 'invalid_number';
  if ([160034, 112317, 160068].includes(n) || inRange(n, 160072, 160074)) return 'blocked_number';
  if (
    n === 111000 ||
    inRange(n, 111001, 111099) ||
    n === 111111 ||
    inRange(n, 160000, 160010) ||
    n === 160050
  ) {
    return 'transient';
  }
  // Auth (1111xx), account, app, template, trial restrictions, IP allow-list, and every other
  // documented refusal: nothing was sent and another try would get the same answer.
  return 'config_error';
}

/** Ronglian's reqId allows up to 32 letters and digits; longer keys are hashed to 32 hex. */
export function ronglianReqId(idempotencyKey: string): string {
  return /^[0-9A-Za-z]{1,32}$/.test(idempotencyKey)
    ? idempotencyKey
    : createHash('md5').update(idempotencyKey, 'utf8').digest('hex');
}

export function createRonglianProvider(settings: RonglianSettings, deps: VendorDeps): SmsProvider {
  const name = 'ronglian';
  const now = deps.now ?? (() => new Date());
  return {
    name,
    purposes: purposesOf(settings.templates),
    async send(message: SmsMessage): Promise<SendOutcome> {
      if (!MAINLAND_MOBILE.test(message.mobile))
        return outcome(name, 'invalid_number', 'not a mainland mobile');
      const templateId = templateFor(name, settings.templateId, settings.templates, message.purpose);
      if (typeof templateId !== 'string') return templateId;
      const timestamp = chinaTimestamp(now());
      const { sig, authorization } = signRonglian(settings.accountSid, settings.authToken, timestamp);
      const url = `${settings.baseUrl}/2013-12-26/Accounts/${settings.accountSid}/SMS/TemplateSMS?sig=${sig}`;
      const body = JSON.stringify({
        to: message.mobile,
        appId: settings.appId,
        templateId,
        // Strings, as the Java and Go SDKs send them (Meiduo's `(code, 5)`); the notice's
        // template has no variables, so it carries nothing (and never a code).
        datas: message.purpose === 'mobile_changed' ? [] : [message.code, String(message.ttlMinutes)],
        reqId: ronglianReqId(message.idempotencyKey),
      });
      const res = await vendorRequest(name, deps, url, {
        method: 'POST',
        headers: {
          Accept: 'application/json',
          'Content-Type': 'application/json;charset=utf-8',
          'Accept-Charset': 'UTF-8',
          Authorization: authorization,
        },
        body,
      });
      if (!res.sent) return res.outcome;
      // Business answers come with HTTP 200; anything else is the gateway failing.
      if (res.status !== 200) return outcome(name, 'transient', `http ${res.status}`);
      const json = parseJsonObject(res.body);
      const statusCode = json?.statusCode;
      if (typeof statusCode !== 'string') return outcome(name, 'unknown', 'unreadable answer');
      const kind = classifyRonglian(statusCode);
      if (kind === 'ok') {
        const sms = json?.templateSMS as { smsMessageSid?: unknown } | undefined;
        const sid = typeof sms?.smsMessageSid === 'string' ? sms.smsMessageSid : undefined;
        return outcome(name, 'ok', statusCode === '000000' ? undefined : statusCode, sid);
      }
      return outcome(name, kind, statusCode);
    },
  };
}
