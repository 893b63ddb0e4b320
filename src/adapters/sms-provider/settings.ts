import type { ProviderName } from '../../config.js';
import { ConfigError } from '../../config-schema.js';

/**
 * Reads one vendor setting, stopping the start with a line naming it when it is missing or
 * does not have the vendor's format. The value itself is never echoed (most are secrets).
 */
export function setting<Env extends object>(
  config: Env,
  name: keyof Env & string,
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
