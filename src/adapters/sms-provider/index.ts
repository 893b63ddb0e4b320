import type { Logger } from 'pino';
import type { Config, ProviderName } from '../../config.js';
import type { SmsProvider } from '../../domain/ports.js';
import { aliyunSettings, createAliyunProvider } from './aliyun.js';
import { createConsoleProvider } from './console.js';
import { createFailoverProvider } from './failover.js';
import type { VendorDeps } from './http.js';
import { createRonglianProvider, ronglianSettings } from './ronglian.js';
import { createTencentProvider, tencentSettings } from './tencent.js';
import { createTwilioProvider, twilioSettings } from './twilio.js';

/**
 * Builds the provider chain SMS_PROVIDER names. Every vendor's settings are checked before
 * anything is built: a missing or malformed one throws ConfigError naming it, so a bad
 * configuration stops the start. `deps` lets tests swap fetch, the clock and the nonce.
 */
export function createSmsProvider(config: Config, log: Logger, deps: Partial<VendorDeps> = {}): SmsProvider {
  const vendorDeps: VendorDeps = { ...deps, timeoutMs: deps.timeoutMs ?? config.SMS_TIMEOUT_MS };
  const build = (name: ProviderName): SmsProvider => {
    switch (name) {
      case 'console':
        return createConsoleProvider();
      case 'ronglian':
        return createRonglianProvider(ronglianSettings(config), vendorDeps);
      case 'aliyun':
        return createAliyunProvider(aliyunSettings(config), vendorDeps);
      case 'tencent':
        return createTencentProvider(tencentSettings(config), vendorDeps);
      case 'twilio':
        return createTwilioProvider(twilioSettings(config), vendorDeps);
      default: {
        const never: never = name;
        throw new Error(`unknown SMS provider ${String(never)}`);
      }
    }
  };
  const providers = (config.providers.length > 0 ? config.providers : (['console'] as const)).map(build);
  return providers.length === 1 ? (providers[0] as SmsProvider) : createFailoverProvider(providers, log);
}
