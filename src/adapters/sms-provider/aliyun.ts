import { randomUUID } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { HttpUrl, Text } from '../../config-schema.js';
import type { SendOutcome, SendOutcomeKind, SmsMessage, SmsProvider } from '../../domain/ports.js';
import { MAINLAND_MOBILE, outcome, parseJsonObject, type VendorDeps, vendorRequest } from './http.js';
import { baseUrl, setting } from './settings.js';
import {
  aliyunCanonicalQuery,
  aliyunPercentEncode,
  aliyunTimestamp,
  signAliyunV1,
  signAliyunV3,
} from './signing.js';
import { type PurposeTemplates, purposesOf, purposeTemplates, templateFor } from './templates.js';

/** Alibaba Cloud SMS (dysmsapi 2017-05-25) SendSms (reference §2). */
export interface AliyunSettings {
  accessKeyId: string;
  accessKeySecret: string;
  signName: string;
  /** Registration's template. */
  templateCode: string;
  /** The user centre's; a purpose without one is not sent (docs/sms-vendors.md). */
  templates?: PurposeTemplates;
  /** `https://dysmsapi.aliyuncs.com` in production. */
  endpoint: string;
  /**
   * `v1` (default): RPC `SignatureVersion=1.0` HMAC-SHA1, the scheme of the SMS product's own
   * signing page and of its official SendSms worked example. `v3`: `ACS3-HMAC-SHA256`.
   */
  signatureVersion?: 'v1' | 'v3';
}

/** Its settings, under their environment names (config.ts composes them). */
export const AliyunEnv = Type.Object({
  ALIYUN_ACCESS_KEY_ID: Text('Aliyun AccessKey id'),
  ALIYUN_ACCESS_KEY_SECRET: Text('Aliyun AccessKey secret'),
  ALIYUN_SMS_SIGN_NAME: Text('Aliyun SMS signature name'),
  ALIYUN_SMS_TEMPLATE_CODE: Text('Aliyun SMS template code'),
  ALIYUN_SMS_TEMPLATE_CODE_PASSWORD_RESET: Text(
    'Aliyun SMS template code of password reset codes (variables code, minutes)',
  ),
  ALIYUN_SMS_TEMPLATE_CODE_MOBILE_CHANGE: Text(
    'Aliyun SMS template code of mobile change codes (variables code, minutes)',
  ),
  ALIYUN_SMS_TEMPLATE_CODE_MOBILE_CHANGED: Text(
    'Aliyun SMS template code of the notice to the replaced mobile (no variables)',
  ),
  ALIYUN_SMS_ENDPOINT: HttpUrl('https://dysmsapi.aliyuncs.com', 'Aliyun SMS endpoint'),
});

/** Checks the settings when SMS_PROVIDER names aliyun; throws ConfigError naming the first bad one. */
export function aliyunSettings(config: Static<typeof AliyunEnv>): AliyunSettings {
  const code = { pattern: /^SMS_\d+$/, hint: 'must be a template code like SMS_123456789' };
  return {
    accessKeyId: setting(config, 'ALIYUN_ACCESS_KEY_ID', 'aliyun', {
      pattern: /^[0-9A-Za-z]+$/,
      hint: 'must be an AccessKey id (letters and digits)',
    }),
    accessKeySecret: setting(config, 'ALIYUN_ACCESS_KEY_SECRET', 'aliyun', {
      pattern: /^\S+$/,
      hint: 'must not contain spaces',
    }),
    signName: setting(config, 'ALIYUN_SMS_SIGN_NAME', 'aliyun'),
    templateCode: setting(config, 'ALIYUN_SMS_TEMPLATE_CODE', 'aliyun', code),
    templates: purposeTemplates(config, 'ALIYUN_SMS_TEMPLATE_CODE', 'aliyun', code),
    endpoint: baseUrl(setting(config, 'ALIYUN_SMS_ENDPOINT', 'aliyun')),
  };
}

const TRANSIENT = new Set(['isp.SYSTEM_ERROR', 'InternalError', 'ServiceUnavailable', 'SignatureNonceUsed']);

/** Maps a body `Code` onto the outcome set (reference §2.6 and §5). */
export function classifyAliyun(code: string): SendOutcomeKind {
  if (code === 'OK') return 'ok';
  if (code === 'isv.BUSINESS_LIMIT_CONTROL') return 'rate_limited';
  if (code === 'isv.MOBILE_NUMBER_ILLEGAL') return 'invalid_number';
  if (code === 'isv.BLACK_KEY_CONTROL_LIMIT') return 'blocked_number';
  if (TRANSIENT.has(code) || code === 'Throttling' || code.startsWith('Throttling.')) return 'transient';
  // Signature, key, template, sign name, balance, account caps, clock skew, parameters.
  return 'config_error';
}

export function createAliyunProvider(settings: AliyunSettings, deps: VendorDeps): SmsProvider {
  const name = 'aliyun';
  const now = deps.now ?? (() => new Date());
  const nonce = deps.nonce ?? randomUUID;
  const url = `${settings.endpoint}/`;
  const host = new URL(url).host;

  function request(
    message: SmsMessage,
    templateCode: string,
  ): { headers: Record<string, string>; body: string } {
    const business: Record<string, string> = {
      PhoneNumbers: message.mobile,
      SignName: settings.signName,
      TemplateCode: templateCode,
    };
    // Values must be strings (isv.INVALID_JSON_PARAM otherwise). The notice's template has no
    // variables: TemplateParam is optional and left out (never a code).
    if (message.purpose !== 'mobile_changed') {
      business.TemplateParam = JSON.stringify({ code: message.code, minutes: String(message.ttlMinutes) });
    }
    const timestamp = aliyunTimestamp(now());
    // POST with a form body in both schemes: the code stays out of URLs and proxy logs.
    if (settings.signatureVersion === 'v3') {
      const body = aliyunCanonicalQuery(business);
      const headers = {
        host,
        'content-type': 'application/x-www-form-urlencoded',
        'x-acs-action': 'SendSms',
        'x-acs-version': '2017-05-25',
        'x-acs-date': timestamp,
        'x-acs-signature-nonce': nonce(),
      };
      const signed = signAliyunV3({
        method: 'POST',
        path: '/',
        query: {},
        headers,
        body,
        accessKeyId: settings.accessKeyId,
        accessKeySecret: settings.accessKeySecret,
      });
      const { host: _fetchSetsHost, ...sent } = headers;
      return {
        headers: {
          ...sent,
          accept: 'application/json',
          'x-acs-content-sha256': signed.contentSha256,
          authorization: signed.authorization,
        },
        body,
      };
    }
    const params = {
      AccessKeyId: settings.accessKeyId,
      Action: 'SendSms',
      Format: 'JSON',
      RegionId: 'cn-hangzhou',
      SignatureMethod: 'HMAC-SHA1',
      SignatureNonce: nonce(),
      SignatureVersion: '1.0',
      Timestamp: timestamp,
      Version: '2017-05-25',
      ...business,
    };
    const { canonicalQuery, signature } = signAliyunV1('POST', params, settings.accessKeySecret);
    return {
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: `${canonicalQuery}&Signature=${aliyunPercentEncode(signature)}`,
    };
  }

  return {
    name,
    purposes: purposesOf(settings.templates),
    async send(message: SmsMessage): Promise<SendOutcome> {
      // Bare 11 digits: the form the SendSms doc's own example uses for mainland numbers.
      if (!MAINLAND_MOBILE.test(message.mobile))
        return outcome(name, 'invalid_number', 'not a mainland mobile');
      const templateCode = templateFor(name, settings.templateCode, settings.templates, message.purpose);
      if (typeof templateCode !== 'string') return templateCode;
      const res = await vendorRequest(name, deps, url, { method: 'POST', ...request(message, templateCode) });
      if (!res.sent) return res.outcome;
      // Gateway errors come with 4xx/5xx, business ones with 200: the body's Code decides.
      const json = parseJsonObject(res.body);
      const code = json?.Code;
      if (typeof code === 'string') {
        const kind = classifyAliyun(code);
        if (kind === 'ok') {
          return outcome(name, 'ok', undefined, typeof json?.BizId === 'string' ? json.BizId : undefined);
        }
        return outcome(name, kind, code);
      }
      if (res.status >= 500) return outcome(name, 'transient', `http ${res.status}`);
      // A redirect or a 4xx without a Code: not the API (wrong endpoint); nothing was sent.
      if (res.status < 200 || res.status >= 300) return outcome(name, 'config_error', `http ${res.status}`);
      return outcome(name, 'unknown', 'unreadable answer');
    },
  };
}
