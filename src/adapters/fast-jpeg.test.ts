import { createRequire } from 'node:module';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { describe, expect, it } from 'vitest';
import { has } from '../../test/backends.js';
import { composeCaptcha, planCaptcha, renderCaptchaSync } from './captcha-image.js';
import { encodeRgbaJpeg, FAST_JPEG_PATH, fastJpegStatus } from './fast-jpeg.js';

const WIDTH = 200;
const HEIGHT = 75;

/** The RGB of a JPEG as decoded by Skia. */
async function decoded(jpeg: Buffer): Promise<Uint8ClampedArray> {
  const picture = await loadImage(jpeg);
  expect([picture.width, picture.height]).toEqual([WIDTH, HEIGHT]);
  const canvas = createCanvas(WIDTH, HEIGHT);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(picture, 0, 0);
  return ctx.getImageData(0, 0, WIDTH, HEIGHT).data;
}

/** Mean absolute difference per colour channel, 0–255. */
function meanDifference(a: Uint8ClampedArray, b: Uint8ClampedArray): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) sum += Math.abs((a[i + c] ?? 0) - (b[i + c] ?? 0));
    n += 3;
  }
  return sum / n;
}

describe.skipIf(!(await has('jpeg-addon')))('the native JPEG addon (libjpeg-turbo)', () => {
  it('is the one the captcha uses', () => {
    expect(fastJpegStatus).toBe('loaded');
    const image = renderCaptchaSync('AB12');
    expect(image.contentType).toBe('image/jpeg');
    // libjpeg-turbo writes a JFIF header; Skia's encoder does not.
    expect(image.body.subarray(6, 10).toString('latin1')).toBe('JFIF');
  });

  it('gives the picture Skia would, at the same size', async () => {
    for (const text of ['K3M7', 'XY9Q', 'HN4P']) {
      const pixels = new Uint8ClampedArray(WIDTH * HEIGHT * 4);
      composeCaptcha(planCaptcha(text), {}, pixels);
      const fast = encodeRgbaJpeg?.(pixels, WIDTH, HEIGHT, 85) as Buffer;
      const canvas = createCanvas(WIDTH, HEIGHT);
      const ctx = canvas.getContext('2d', { alpha: false });
      const image = ctx.createImageData(WIDTH, HEIGHT);
      image.data.set(pixels);
      ctx.putImageData(image, 0, 0);
      const skia = canvas.encodeSync('jpeg', 85);
      // Both lossy at quality 85 (4:2:0): a few levels apart on average, nothing a person sees.
      expect(meanDifference(await decoded(fast), await decoded(skia)), text).toBeLessThan(3);
      expect(Math.abs(fast.length - skia.length) / skia.length, text).toBeLessThan(0.25);
      // And no further from the composed pixels than Skia's own JPEG (each drawing's noise
      // differs, so the bound is Skia's error on the same drawing: 5–7 levels, ours within 1 %).
      const fastError = meanDifference(await decoded(fast), pixels);
      expect(fastError, text).toBeLessThan(meanDifference(await decoded(skia), pixels) * 1.1);
    }
  });

  it('throws on bad arguments instead of crashing', () => {
    const { encodeRgba } = createRequire(import.meta.url)(FAST_JPEG_PATH) as {
      encodeRgba: (...args: unknown[]) => Buffer;
    };
    const pixels = new Uint8Array(4 * 4 * 4);
    expect(encodeRgba(pixels, 4, 4, 85).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    const bad: unknown[][] = [
      [],
      [pixels, 4, 4],
      ['pixels', 4, 4, 85],
      [new Float32Array(64), 4, 4, 85],
      [pixels, 4, 5, 85],
      [pixels, 0, 4, 85],
      [pixels, 5000, 4, 85],
      [pixels, 4, 4, 0],
      [pixels, 4, 4, 101],
      [pixels, '4', 4, 85],
    ];
    for (const args of bad) expect(() => encodeRgba(...args), JSON.stringify(args)).toThrow();
  });
});
