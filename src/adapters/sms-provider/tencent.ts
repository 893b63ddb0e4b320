import Type, { type Static } from 'typebox';
import { HttpUrl, Text } from '../../config-schema.js';
import type { SendOutcome, SendOutcomeKind, SmsMessage, SmsProvider } from '../../domain/ports.js';
import { MAINLAND_MOBILE, outcome, parseJsonObject, type VendorDeps, vendorRequest } from './http.js';
import { baseUrl, setting } from './settings.js';
import { signTc3 } from './signing.js';
import { type PurposeTemplates, purposesOf, purposeTemplates, templateFor } from './templates.js';

/** Tencent Cloud SMS, API 3.0 SendSms version 2021-01-11 (reference §3). */
export interface TencentSettings {
  secretId: string;
  secretKey: string;
  sdkAppId: string;
  signName: string;
  /** Registration's template. */
  templateId: string;
  /** The user centre's; a purpose without one is not sent (docs/sms-vendors.md). */
  templates?: PurposeTemplates;
  region: string;
  /** `https://sms.tencentcloudapi.com` in production. */
  endpoint: string;
}

/** Its settings, under their environment names (config.ts composes them). */
export const TencentEnv = Type.Object({
  TENCENT_SECRET_ID: Text('Tencent Cloud SecretId'),
  TENCENT_SECRET_KEY: Text('Tencent Cloud SecretKey'),
  TENCENT_SMS_SDK_APP_ID: Text('Tencent SMS SdkAppId'),
  TENCENT_SMS_SIGN_NAME: Text('Tencent SMS signature name'),
  TENCENT_SMS_TEMPLATE_ID: Text('Tencent SMS template id'),
  TENCENT_SMS_TEMPLATE_ID_PASSWORD_RESET: Text(
    'Tencent SMS template id of password reset codes ({1} code, {2} minutes)',
  ),
  TENCENT_SMS_TEMPLATE_ID_MOBILE_CHANGE: Text(
    'Tencent SMS template id of mobile change codes ({1} code, {2} minutes)',
  ),
  TENCENT_SMS_TEMPLATE_ID_MOBILE_CHANGED: Text(
    'Tencent SMS template id of the notice to the replaced mobile (no variables)',
  ),
  TENCENT_SMS_REGION: Type.String({ minLength: 1, default: 'ap-guangzhou', description: 'Tencent region' }),
  TENCENT_SMS_ENDPOINT: HttpUrl('https://sms.tencentcloudapi.com', 'Tencent SMS endpoint'),
});

/** Checks the settings when SMS_PROVIDER names tencent; throws ConfigError naming the first bad one. */
export function tencentSettings(config: Static<typeof TencentEnv>): TencentSettings {
  const noSpace = { pattern: /^\S+$/, hint: 'must not contain spaces' };
  const numeric = { pattern: /^\d+$/, hint: 'must be the numeric template id' };
  return {
    secretId: setting(config, 'TENCENT_SECRET_ID', 'tencent', noSpace),
    secretKey: setting(config, 'TENCENT_SECRET_KEY', 'tencent', noSpace),
    sdkAppId: setting(config, 'TENCENT_SMS_SDK_APP_ID', 'tencent', {
      pattern: /^\d+$/,
      hint: 'must be the numeric SdkAppId (like 1400006666)',
    }),
    signName: setting(config, 'TENCENT_SMS_SIGN_NAME', 'tencent'),
    templateId: setting(config, 'TENCENT_SMS_TEMPLATE_ID', 'tencent', numeric),
    templates: purposeTemplates(config, 'TENCENT_SMS_TEMPLATE_ID', 'tencent', numeric),
    region: setting(config, 'TENCENT_SMS_REGION', 'tencent', {
      pattern: /^[a-z]+(-[a-z]+)+(-\d+)?$/,
      hint: 'must be a region like ap-guangzhou',
    }),
    endpoint: baseUrl(setting(config, 'TENCENT_SMS_ENDPOINT', 'tencent')),
  };
}

const TRANSIENT = new Set([
  'InternalError',
  'InternalError.Timeout',
  'InternalError.SendAndRecvFail',
  'InternalError.OtherError',
  'InternalError.UnknownError',
]);

/** Maps an `Error.Code` or a `SendStatusSet[].Code` onto the outcome set (§3.5 and §5). */
export function classifyTencent(code: string): SendOutcomeKind {
  if (code === 'Ok') return 'ok';
  if (code.startsWith('LimitExceeded.PhoneNumber') && code !== 'LimitExceeded.PhoneNumberCountLimit') {
    return 'rate_limited';
  }
  if (code === 'LimitExceeded.DeliveryFrequencyLimit') return 'rate_limited';
  if (code === 'InvalidParameterValue.IncorrectPhoneNumber') return 'invalid_number';
  if (
    code === 'FailedOperation.PhoneNumberInBlacklist' ||
    code === 'FailedOperation.PhoneNumberOnBlacklist'
  ) {
    return 'blocked_number';
  }
  if (TRANSIENT.has(code) || code === 'RequestLimitExceeded' || code.startsWith('RequestLimitExceeded.')) {
    return 'transient';
  }
  // AuthFailure.*, unapproved sign/template, balance, app/account daily caps, clock, bugs.
  return 'config_error';
}

export function createTencentProvider(settings: TencentSettings, deps: VendorDeps): SmsProvider {
  const name = 'tencent';
  const now = deps.now ?? (() => new Date());
  const url = `${settings.endpoint}/`;
  const host = new URL(url).host;
  return {
    name,
    purposes: purposesOf(settings.templates),
    async send(message: SmsMessage): Promise<SendOutcome> {
      if (!MAINLAND_MOBILE.test(message.mobile))
        return outcome(name, 'invalid_number', 'not a mainland mobile');
      const templateId = templateFor(name, settings.templateId, settings.templates, message.purpose);
      if (typeof templateId !== 'string') return templateId;
      const body = JSON.stringify({
        PhoneNumberSet: [`+86${message.mobile}`],
        SmsSdkAppId: settings.sdkAppId,
        TemplateId: templateId,
        SignName: settings.signName,
        // The notice's template has no variables: an empty set (never a code).
        TemplateParamSet:
          message.purpose === 'mobile_changed' ? [] : [message.code, String(message.ttlMinutes)],
      });
      const timestamp = Math.floor(now().getTime() / 1000);
      // The documented minimum, content-type and host, is signed; the signed content-type must
      // equal the sent one byte for byte, and host is the one fetch derives from the URL.
      const contentType = 'application/json; charset=utf-8';
      const { authorization } = signTc3({
        method: 'POST',
        canonicalQuery: '',
        headers: { 'content-type': contentType, host },
        body,
        service: 'sms',
        timestamp,
        secretId: settings.secretId,
        secretKey: settings.secretKey,
      });
      const res = await vendorRequest(name, deps, url, {
        method: 'POST',
        headers: {
          'Content-Type': contentType,
          'X-TC-Action': 'SendSms',
          'X-TC-Version': '2021-01-11',
          'X-TC-Timestamp': String(timestamp),
          'X-TC-Region': settings.region,
          Authorization: authorization,
        },
        body,
      });
      if (!res.sent) return res.outcome;
      const response = parseJsonObject(res.body)?.Response as
        | { Error?: { Code?: unknown }; SendStatusSet?: Array<{ Code?: unknown; SerialNo?: unknown }> }
        | undefined;
      // A request-level Error means nothing was sent; otherwise each number has its own Code.
      const code = response?.Error ? response.Error.Code : response?.SendStatusSet?.[0]?.Code;
      if (typeof code !== 'string') {
        if (res.status >= 500) return outcome(name, 'transient', `http ${res.status}`);
        // A redirect or a 4xx without a Response: not the API (wrong endpoint); nothing sent.
        if (res.status < 200 || res.status >= 300) return outcome(name, 'config_error', `http ${res.status}`);
        return outcome(name, 'unknown', 'unreadable answer');
      }
      const kind = classifyTencent(code);
      if (kind === 'ok') {
        const serial = response?.SendStatusSet?.[0]?.SerialNo;
        return outcome(name, 'ok', undefined, typeof serial === 'string' ? serial : undefined);
      }
      return outcome(name, kind, code);
    },
  };
}
