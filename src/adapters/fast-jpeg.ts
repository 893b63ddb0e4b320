import { loadNativeAddon } from './native-addon.js';

/*
 * JPEG encoding of RGBA pixels through native/jpeg, the addon `npm install` builds
 * (scripts/build-native.mjs) against Debian's libturbojpeg (package libturbojpeg0-dev): the
 * SIMD encoder of libjpeg-turbo, several times faster than Skia's bundled one in
 * @napi-rs/canvas on a captcha. Without it (the library absent at install, or the addon built
 * for another Node) the captcha is encoded by Skia, as before: same size, format and look.
 * Synchronous: meant for the CPU pool's lowered-priority threads (cpu-worker.ts).
 */

interface JpegAddon {
  encodeRgba(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, quality: number): Buffer;
}

const loaded = loadNativeAddon<JpegAddon>(
  'jpeg',
  'npm install builds it when libturbojpeg0-dev is installed',
);
const { addon } = loaded;
export const FAST_JPEG_PATH = loaded.path;

/** Whether the native encoder is in use (for the start-up log and tests). */
export const fastJpegAvailable = addon !== undefined;
/** Why it is not, when it is not. */
export const fastJpegStatus = loaded.status;

/** The addon's encoder (4:2:0, RGBA in with the alpha ignored), or undefined without it. */
export const encodeRgbaJpeg: JpegAddon['encodeRgba'] | undefined = addon?.encodeRgba;
