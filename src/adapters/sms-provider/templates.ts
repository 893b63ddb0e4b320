import type { ProviderName } from '../../config.js';
import type { SendOutcome, SmsPurpose } from '../../domain/ports.js';
import { outcome } from './http.js';
import { setting } from './settings.js';

/*
 * The user centre's SMS templates (docs/sms-vendors.md "Texts per purpose"): one optional
 * setting per purpose and vendor, named after the vendor's registration template setting.
 */
/** The purposes besides registration; each has a template setting of its own per vendor. */
export const EXTRA_PURPOSES = ['password_reset', 'mobile_change', 'mobile_changed'] as const;
export type ExtraPurpose = (typeof EXTRA_PURPOSES)[number];

/** The templates configured for the user centre's purposes (registration's is the vendor's own). */
export type PurposeTemplates = Partial<Record<ExtraPurpose, string>>;

/**
 * Reads the optional per-purpose template settings: each one set must have the vendor's
 * format; one not set leaves its purpose unsendable (503 SMS_PURPOSE_NOT_CONFIGURED) rather
 * than sent with the registration template, whose text says the code is for registering.
 */
export function purposeTemplates<Env extends object>(
  config: Env,
  prefix: string,
  provider: ProviderName,
  format: { pattern: RegExp; hint: string },
): PurposeTemplates {
  const templates: PurposeTemplates = {};
  for (const purpose of EXTRA_PURPOSES) {
    // RONGLIAN_TEMPLATE_ID → RONGLIAN_TEMPLATE_ID_PASSWORD_RESET, …
    const name = `${prefix}_${purpose.toUpperCase()}` as keyof Env & string;
    const value = config[name] as string | undefined;
    if (value !== undefined && value !== '') templates[purpose] = setting(config, name, provider, format);
  }
  return templates;
}

/**
 * The template of the message's purpose: registration's own or the user centre's; without one,
 * the config_error outcome to answer (nothing is sent under another purpose's template).
 */
export function templateFor(
  provider: string,
  registration: string,
  templates: PurposeTemplates | undefined,
  purpose: SmsPurpose,
): string | SendOutcome {
  const template = purpose === 'register' ? registration : templates?.[purpose];
  return template ?? outcome(provider, 'config_error', `no template for ${purpose}`);
}

/** The purposes a template vendor can send: registration and those with a template. */
export function purposesOf(templates: PurposeTemplates | undefined): ReadonlySet<SmsPurpose> {
  return new Set<SmsPurpose>(['register', ...EXTRA_PURPOSES.filter((p) => templates?.[p] !== undefined)]);
}
