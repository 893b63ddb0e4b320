import Type from 'typebox';

/*
 * The pieces settings are declared with, shared by config.ts and the modules that declare
 * settings of their own (each SMS vendor): one way to say "seconds", "optional text", "URL".
 */

export const Seconds = (def: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 31_536_000, default: def, description });
export const Limit = (def: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 100_000_000, default: def, description });
export const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description });
export const Text = (description: string) => Type.Optional(Type.String({ minLength: 1, description }));
export const HttpUrl = (def: string, description: string) =>
  Type.String({ pattern: '^https?://[^\\s]+$', default: def, description });

/** A bad setting: its message is the one line the process prints before it stops. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
