import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A native addon under native/<name>, as scripts/build-native.mjs builds it, or why not. */
export interface NativeAddon<T> {
  /** Where it is looked for (tests load it directly). */
  path: string;
  addon: T | undefined;
  /** 'loaded', or why it is not (for the start-up log). */
  status: string;
}

/**
 * Loads native/<name>/build/Release/<name>.node; a missing or unloadable addon is not an
 * error (its callers fall back), only a status. `buildHint` says what `npm install` needs.
 */
export function loadNativeAddon<T>(name: string, buildHint: string): NativeAddon<T> {
  // src/adapters and dist/adapters are both two levels below the package root.
  const path = fileURLToPath(new URL(`../../native/${name}/build/Release/${name}.node`, import.meta.url));
  try {
    return { path, addon: createRequire(import.meta.url)(path) as T, status: 'loaded' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const status =
      code === 'MODULE_NOT_FOUND'
        ? `not built (${buildHint}; see scripts/build-native.mjs)`
        : `failed to load: ${err instanceof Error ? err.message : String(err)}`;
    return { path, addon: undefined, status };
  }
}
