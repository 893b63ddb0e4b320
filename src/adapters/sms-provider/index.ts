import type { Logger } from 'pino';
import type { Static } from 'typebox';
import type { Config, ProviderName } from '../../config.js';
import type { SmsProvider } from '../../domain/ports.js';
import { AliyunEnv, type AliyunSettings, aliyunSettings, createAliyunProvider } from './aliyun.js';
import { createConsoleProvider } from './console.js';
import { createFailoverProvider } from './failover.js';
import type { VendorDeps } from './http.js';
import { createRonglianProvider, RonglianEnv, type RonglianSettings, ronglianSettings } from './ronglian.js';
import { EXTRA_PURPOSES, type ExtraPurpose, purposesOf } from './templates.js';
import { createTencentProvider, TencentEnv, type TencentSettings, tencentSettings } from './tencent.js';
import { createTwilioProvider, TwilioEnv, type TwilioSettings, twilioSettings } from './twilio.js';

/** Every vendor's settings, for config.ts's one schema (README table, .env.example). */
export const VENDOR_ENV = {
  ...RonglianEnv.properties,
  ...AliyunEnv.properties,
  ...TencentEnv.properties,
  ...TwilioEnv.properties,
};

type VendorEnv = Static<typeof RonglianEnv> &
  Static<typeof AliyunEnv> &
  Static<typeof TencentEnv> &
  Static<typeof TwilioEnv>;

/** The checked settings of the vendors SMS_PROVIDER names (the others stay absent). */
export interface VendorSettings {
  ronglian?: RonglianSettings;
  aliyun?: AliyunSettings;
  tencent?: TencentSettings;
  twilio?: TwilioSettings;
}

/**
 * Checks the settings of every vendor in the list, at start-up (loadConfig): a missing or
 * malformed one throws ConfigError naming it, like any other bad setting.
 */
export function vendorSettings(providers: readonly ProviderName[], env: VendorEnv): VendorSettings {
  const settings: VendorSettings = {};
  for (const name of providers) {
    if (name === 'ronglian') settings.ronglian = ronglianSettings(env);
    else if (name === 'aliyun') settings.aliyun = aliyunSettings(env);
    else if (name === 'tencent') settings.tencent = tencentSettings(env);
    else if (name === 'twilio') settings.twilio = twilioSettings(env);
  }
  return settings;
}

/**
 * Builds the provider chain SMS_PROVIDER names, from the vendor settings loadConfig checked.
 * `deps` lets tests swap fetch, the clock and the nonce.
 */
export function createSmsProvider(config: Config, log: Logger, deps: Partial<VendorDeps> = {}): SmsProvider {
  const vendorDeps: VendorDeps = { ...deps, timeoutMs: deps.timeoutMs ?? config.SMS_TIMEOUT_MS };
  const checked = <T>(value: T | undefined, name: ProviderName): T => {
    if (value === undefined) throw new Error(`the settings of ${name} were not checked by loadConfig`);
    return value;
  };
  const build = (name: ProviderName): SmsProvider => {
    switch (name) {
      case 'console':
        return createConsoleProvider();
      case 'ronglian':
        return createRonglianProvider(checked(config.sms.ronglian, 'ronglian'), vendorDeps);
      case 'aliyun':
        return createAliyunProvider(checked(config.sms.aliyun, 'aliyun'), vendorDeps);
      case 'tencent':
        return createTencentProvider(checked(config.sms.tencent, 'tencent'), vendorDeps);
      case 'twilio':
        return createTwilioProvider(checked(config.sms.twilio, 'twilio'), vendorDeps);
      default: {
        const never: never = name;
        throw new Error(`unknown SMS provider ${String(never)}`);
      }
    }
  };
  const providers = (config.providers.length > 0 ? config.providers : (['console'] as const)).map(build);
  return providers.length === 1 ? (providers[0] as SmsProvider) : createFailoverProvider(providers, log);
}

const FLOWS: Record<ExtraPurpose, string> = {
  password_reset: 'POST /password_reset/sms_codes/',
  mobile_change: 'POST /mobile/sms_codes/',
  mobile_changed: 'POST /mobile/sms_codes/',
};

/**
 * A deployment that only registers users starts with the registration template alone; each
 * user-centre purpose that no vendor of the chain has a template for is named at start (the
 * config's warnings), with the flow it turns off. Console and Twilio write every text.
 */
export function missingTemplateWarnings(
  providers: readonly ProviderName[],
  settings: VendorSettings,
): string[] {
  const chain = providers.length > 0 ? providers : (['console'] as const);
  const sends = (purpose: ExtraPurpose) =>
    chain.some((name) => {
      if (name === 'console' || name === 'twilio') return true;
      return purposesOf(settings[name]?.templates).has(purpose);
    });
  return EXTRA_PURPOSES.filter((p) => !sends(p)).map(
    (p) =>
      `no SMS template for ${p} (docs/sms-vendors.md): ${FLOWS[p]} answers 503 SMS_PURPOSE_NOT_CONFIGURED`,
  );
}
