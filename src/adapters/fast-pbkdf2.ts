import { pbkdf2Sync } from 'node:crypto';
import { loadNativeAddon } from './native-addon.js';

/*
 * PBKDF2-HMAC-SHA256 through native/pbkdf2, the addon `npm install` builds
 * (scripts/build-native.mjs): it computes the HMAC key states once and then runs exactly two
 * SHA-256 compressions per iteration, about twice as fast as node:crypto's pbkdf2Sync, whose
 * OpenSSL 3 EVP path pays per-iteration overhead beside the hashing. Without the addon (not
 * built, or built for another Node) it is node:crypto's, same keys, same arguments.
 * Synchronous: meant for the CPU pool's lowered-priority threads (cpu-worker.ts).
 */

interface Pbkdf2Addon {
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, keyLength: number): Buffer;
}

const loaded = loadNativeAddon<Pbkdf2Addon>('pbkdf2', 'npm install builds it');
const { addon } = loaded;
export const FAST_PBKDF2_PATH = loaded.path;

/** Whether the native addon is in use (for the start-up log and tests). */
export const fastPbkdf2Available = addon !== undefined;
/** Why it is not, when it is not. */
export const fastPbkdf2Status = loaded.status;

/** PBKDF2-HMAC-SHA256; throws on bad arguments either way. */
export const pbkdf2Sha256: Pbkdf2Addon['pbkdf2Sha256'] = addon
  ? addon.pbkdf2Sha256
  : (password, salt, iterations, keyLength) => pbkdf2Sync(password, salt, iterations, keyLength, 'sha256');
