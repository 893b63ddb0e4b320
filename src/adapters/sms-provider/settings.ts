import { type Config, ConfigError, type ProviderName } from '../../config.js';

type StringSetting = {
  [K in keyof Config]-?: Config[K] extends string | undefined ? K : never;
}[keyof Config];

/**
 * Reads one vendor setting, stopping the start with a line naming it when it is missing or
 * does not have the vendor's format. The value itself is never echoed (most are secrets).
 */
export function setting(
  config: Config,
  name: StringSetting,
  provider: ProviderName,
  format?: { pattern: RegExp; hint: string },
): string {
  const value = config[name] as string | undefined;
  if (value === undefined || value === '') {
    throw new ConfigError(`Invalid setting ${name}: required when SMS_PROVIDER includes ${provider}`);
  }
  if (format && !format.pattern.test(value)) {
    throw new ConfigError(`Invalid setting ${name}: ${format.hint}`);
  }
  return value;
}

/** A base URL without a trailing slash. */
export function baseUrl(value: string): string {
  return value.replace(/\/+$/, '');
}
