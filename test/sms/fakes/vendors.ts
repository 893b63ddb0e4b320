/*
 * Test kit shared by the SMS suites: one entry per vendor saying how to start its stand-in,
 * how to build the real client (or the env settings) pointed at it, and which scripted answer
 * produces each outcome class of the reference's §5 table.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { createAliyunProvider } from '../../../src/adapters/sms-provider/aliyun.js';
import type { VendorDeps } from '../../../src/adapters/sms-provider/http.js';
import { createRonglianProvider } from '../../../src/adapters/sms-provider/ronglian.js';
import type { PurposeTemplates } from '../../../src/adapters/sms-provider/templates.js';
import { createTencentProvider } from '../../../src/adapters/sms-provider/tencent.js';
import { createTwilioProvider } from '../../../src/adapters/sms-provider/twilio.js';
import type { SendOutcomeKind, SmsMessage, SmsProvider } from '../../../src/domain/ports.js';
import { startAliyunFake } from './aliyun.js';
import { startRonglianFake } from './ronglian.js';
import type { Script } from './server.js';
import { startTencentFake } from './tencent.js';
import { startTwilioFake } from './twilio.js';

/**
 * Client timeout of the tests: generous, so that a loaded machine never turns a normal answer
 * into `unknown`. Tests that script a vendor that never answers use HANG_TIMEOUT_MS instead.
 */
export const TIMEOUT_MS = 3000;
export const HANG_TIMEOUT_MS = 200;

export function randomMobile(): string {
  return `13${randomInt(100_000_000, 1_000_000_000)}`;
}

export function message(overrides: Partial<SmsMessage> = {}): SmsMessage {
  return {
    mobile: randomMobile(),
    code: String(randomInt(0, 1_000_000)).padStart(6, '0'),
    ttlMinutes: 5,
    purpose: 'register',
    idempotencyKey: randomUUID(),
    ...overrides,
  };
}

/** What every stand-in exposes. */
export interface Fake {
  url: string;
  port: number;
  refusals: string[];
  readonly requests: number;
  next(...s: Script[]): void;
  close(): Promise<void>;
}

/** One message as the phone would show it: its recipient as sent and its variables. */
export interface Received {
  to: string;
  variables: string[];
  /** The template id/code it was sent with (Twilio: the text itself). */
  template: string;
}

/** Client options of the tests: `registrationOnly` leaves the user centre's templates out. */
type ClientOptions = Partial<VendorDeps> & { wrongSecret?: boolean; registrationOnly?: boolean };

export interface Vendor<F extends Fake = Fake> {
  name: 'ronglian' | 'aliyun' | 'tencent' | 'twilio';
  start(): Promise<F>;
  client(fake: F, deps?: ClientOptions): SmsProvider;
  /** The user centre's templates the client is given (none for Twilio: its texts are built in). */
  templates: PurposeTemplates;
  /** Their environment settings. */
  purposeEnv: Record<string, string>;
  received(fake: F): Received[];
  /** The recipient as this vendor wants it, for a mainland mobile. */
  wireMobile(mobile: string): string;
  /** Environment settings pointing at the stand-in. */
  env(fake: F): Record<string, string>;
  /** A scripted answer per outcome class (the vendor's own code for it). */
  answers: Partial<Record<SendOutcomeKind, Script & { error: string }>>;
  /** The code the stand-in answers a wrong secret with. */
  signatureError: string;
  /** The code the stand-in answers a clock 20 minutes off with (none: no timestamp). */
  clockError?: string;
}

const RL = {
  sid: '8a216da8000000000000000000000001',
  token: '0123456789abcdef0123456789abcdef',
  appId: '8a216da8000000000000000000000002',
};
const ALI = {
  id: 'LTAI5tTestKeyId',
  secret: 'testSecret/+=!*',
  signName: '美多商城',
  template: 'SMS_71390007',
};
const TC = {
  id: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
  key: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
  app: '1400006666',
};
/** Extra templates per vendor: two code templates and the notice (no variables). */
const RL_TEMPLATES = { password_reset: '2001', mobile_change: '2002', mobile_changed: '2003' };
const ALI_TEMPLATES = {
  password_reset: 'SMS_71390008',
  mobile_change: 'SMS_71390009',
  mobile_changed: 'SMS_71390010',
};
const TC_TEMPLATES = { password_reset: '1111', mobile_change: '1112', mobile_changed: '1113' };
const templatesOf = (templates: PurposeTemplates, registrationOnly?: boolean) =>
  registrationOnly ? {} : { templates };

const TW = { sid: `AC${'0123456789abcdef'.repeat(2)}`, token: 'your_auth_token', from: '+15005550006' };

const deps = (d: Partial<VendorDeps> = {}): VendorDeps => ({ timeoutMs: TIMEOUT_MS, ...d });

type RonglianFake = Awaited<ReturnType<typeof startRonglianFake>>;
type AliyunFake = Awaited<ReturnType<typeof startAliyunFake>>;
type TencentFake = Awaited<ReturnType<typeof startTencentFake>>;
type TwilioFake = Awaited<ReturnType<typeof startTwilioFake>>;

export const ronglian: Vendor<RonglianFake> = {
  name: 'ronglian',
  start: () =>
    startRonglianFake({
      accounts: { [RL.sid]: RL.token },
      appId: RL.appId,
      templateIds: ['1', ...Object.values(RL_TEMPLATES)],
      variableCounts: {
        [RL_TEMPLATES.password_reset]: 2,
        [RL_TEMPLATES.mobile_change]: 2,
        [RL_TEMPLATES.mobile_changed]: 0,
      },
    }),
  templates: RL_TEMPLATES,
  purposeEnv: {
    RONGLIAN_TEMPLATE_ID_PASSWORD_RESET: RL_TEMPLATES.password_reset,
    RONGLIAN_TEMPLATE_ID_MOBILE_CHANGE: RL_TEMPLATES.mobile_change,
    RONGLIAN_TEMPLATE_ID_MOBILE_CHANGED: RL_TEMPLATES.mobile_changed,
  },
  client: (fake, { wrongSecret, registrationOnly, ...d } = {}) =>
    createRonglianProvider(
      {
        accountSid: RL.sid,
        authToken: wrongSecret ? 'f'.repeat(32) : RL.token,
        appId: RL.appId,
        templateId: '1',
        ...templatesOf(RL_TEMPLATES, registrationOnly),
        baseUrl: fake.url,
      },
      deps(d),
    ),
  received: (fake) => fake.delivered.map((d) => ({ to: d.to, variables: d.datas, template: d.templateId })),
  wireMobile: (m) => m,
  env: (fake) => ({
    RONGLIAN_ACCOUNT_SID: RL.sid,
    RONGLIAN_AUTH_TOKEN: RL.token,
    RONGLIAN_APP_ID: RL.appId,
    RONGLIAN_BASE_URL: fake.url,
  }),
  answers: {
    rate_limited: { error: '160038' },
    invalid_number: { error: '160042' },
    blocked_number: { error: '160034' },
    config_error: { error: '111142' },
    transient: { error: '160000' },
  },
  signatureError: '111109',
  clockError: '111106',
};

export const aliyun: Vendor<AliyunFake> = {
  name: 'aliyun',
  start: () =>
    startAliyunFake({
      keys: { [ALI.id]: ALI.secret },
      signName: ALI.signName,
      templateCode: ALI.template,
      templateVars: ['code', 'minutes'],
      templates: {
        [ALI_TEMPLATES.password_reset]: ['code', 'minutes'],
        [ALI_TEMPLATES.mobile_change]: ['code', 'minutes'],
        [ALI_TEMPLATES.mobile_changed]: [],
      },
    }),
  templates: ALI_TEMPLATES,
  purposeEnv: {
    ALIYUN_SMS_TEMPLATE_CODE_PASSWORD_RESET: ALI_TEMPLATES.password_reset,
    ALIYUN_SMS_TEMPLATE_CODE_MOBILE_CHANGE: ALI_TEMPLATES.mobile_change,
    ALIYUN_SMS_TEMPLATE_CODE_MOBILE_CHANGED: ALI_TEMPLATES.mobile_changed,
  },
  client: (fake, { wrongSecret, registrationOnly, ...d } = {}) =>
    createAliyunProvider(
      {
        accessKeyId: ALI.id,
        accessKeySecret: wrongSecret ? 'wrongSecret' : ALI.secret,
        signName: ALI.signName,
        templateCode: ALI.template,
        ...templatesOf(ALI_TEMPLATES, registrationOnly),
        endpoint: fake.url,
      },
      deps(d),
    ),
  received: (fake) =>
    fake.delivered.map((d) => ({
      to: d.phoneNumbers,
      // The variables sent, by name (a notice's template has none).
      variables:
        Object.keys(d.templateParam).length === 0
          ? []
          : [d.templateParam.code ?? '', d.templateParam.minutes ?? ''],
      template: d.templateCode,
    })),
  wireMobile: (m) => m,
  env: (fake) => ({
    ALIYUN_ACCESS_KEY_ID: ALI.id,
    ALIYUN_ACCESS_KEY_SECRET: ALI.secret,
    ALIYUN_SMS_SIGN_NAME: ALI.signName,
    ALIYUN_SMS_TEMPLATE_CODE: ALI.template,
    ALIYUN_SMS_ENDPOINT: fake.url,
  }),
  answers: {
    rate_limited: { error: 'isv.BUSINESS_LIMIT_CONTROL' },
    invalid_number: { error: 'isv.MOBILE_NUMBER_ILLEGAL' },
    blocked_number: { error: 'isv.BLACK_KEY_CONTROL_LIMIT' },
    config_error: { error: 'isv.AMOUNT_NOT_ENOUGH' },
    transient: { error: 'Throttling.User' },
  },
  signatureError: 'SignatureDoesNotMatch',
  clockError: 'InvalidTimeStamp.Expired',
};

export const tencent: Vendor<TencentFake> = {
  name: 'tencent',
  start: () =>
    startTencentFake({
      keys: { [TC.id]: TC.key },
      sdkAppId: TC.app,
      templateId: '1110',
      templates: {
        [TC_TEMPLATES.password_reset]: 2,
        [TC_TEMPLATES.mobile_change]: 2,
        [TC_TEMPLATES.mobile_changed]: 0,
      },
      signName: '美多商城',
    }),
  templates: TC_TEMPLATES,
  purposeEnv: {
    TENCENT_SMS_TEMPLATE_ID_PASSWORD_RESET: TC_TEMPLATES.password_reset,
    TENCENT_SMS_TEMPLATE_ID_MOBILE_CHANGE: TC_TEMPLATES.mobile_change,
    TENCENT_SMS_TEMPLATE_ID_MOBILE_CHANGED: TC_TEMPLATES.mobile_changed,
  },
  client: (fake, { wrongSecret, registrationOnly, ...d } = {}) =>
    createTencentProvider(
      {
        secretId: TC.id,
        secretKey: wrongSecret ? 'wrong' : TC.key,
        sdkAppId: TC.app,
        signName: '美多商城',
        templateId: '1110',
        ...templatesOf(TC_TEMPLATES, registrationOnly),
        region: 'ap-guangzhou',
        endpoint: fake.url,
      },
      deps(d),
    ),
  received: (fake) =>
    fake.delivered.map((d) => ({ to: d.phoneNumber, variables: d.templateParamSet, template: d.templateId })),
  wireMobile: (m) => `+86${m}`,
  env: (fake) => ({
    TENCENT_SECRET_ID: TC.id,
    TENCENT_SECRET_KEY: TC.key,
    TENCENT_SMS_SDK_APP_ID: TC.app,
    TENCENT_SMS_SIGN_NAME: '美多商城',
    TENCENT_SMS_TEMPLATE_ID: '1110',
    TENCENT_SMS_ENDPOINT: fake.url,
  }),
  answers: {
    rate_limited: { error: 'LimitExceeded.PhoneNumberThirtySecondLimit' },
    invalid_number: { error: 'InvalidParameterValue.IncorrectPhoneNumber' },
    blocked_number: { error: 'FailedOperation.PhoneNumberInBlacklist' },
    config_error: { error: 'FailedOperation.InsufficientBalanceInSmsPackage', in: 'error' },
    transient: { error: 'InternalError.SendAndRecvFail' },
  },
  signatureError: 'AuthFailure.SignatureFailure',
  clockError: 'AuthFailure.SignatureExpire',
};

export const twilio: Vendor<TwilioFake> = {
  name: 'twilio',
  start: () => startTwilioFake({ accounts: { [TW.sid]: TW.token }, senders: [TW.from] }),
  templates: {},
  purposeEnv: {},
  client: (fake, { wrongSecret, registrationOnly: _textsAreBuiltIn, ...d } = {}) =>
    createTwilioProvider(
      { accountSid: TW.sid, authToken: wrongSecret ? 'wrong' : TW.token, from: TW.from, baseUrl: fake.url },
      deps(d),
    ),
  // The variables as they appear in the text: code, then minutes.
  received: (fake) =>
    fake.delivered.map((d) => ({
      to: d.to,
      variables: [...d.body.matchAll(/\d+/g)].map((m) => m[0]),
      template: d.body,
    })),
  wireMobile: (m) => `+86${m}`,
  env: (fake) => ({
    TWILIO_ACCOUNT_SID: TW.sid,
    TWILIO_AUTH_TOKEN: TW.token,
    TWILIO_FROM: TW.from,
    TWILIO_BASE_URL: fake.url,
  }),
  answers: {
    invalid_number: { error: '21211' },
    blocked_number: { error: '21610' },
    config_error: { error: '21608' },
    transient: { error: '20429' },
  },
  signatureError: '20003',
};

export const VENDORS = [ronglian, aliyun, tencent, twilio] as unknown as Vendor[];
