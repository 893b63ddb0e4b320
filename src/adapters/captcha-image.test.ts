import { loadImage } from '@napi-rs/canvas';
import { describe, expect, it } from 'vitest';
import { generateCaptchaText } from '../domain/captcha.js';
import {
  type CaptchaPlan,
  contrastRatio,
  createCaptchaRenderer,
  drawCaptcha,
  planCaptcha,
  type Rgb,
  renderCaptchaSync,
} from './captcha-image.js';

/** Small seeded generator, so that a failing layout can be drawn again from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ink {
  mask: Uint8Array;
  area: number;
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
  centroidX: number;
}

/** Where glyph `index` alone leaves ink (alpha ≥ 50 %) after the warp. */
function glyphInk(plan: CaptchaPlan, index: number): Ink {
  const { width, height } = plan;
  const data = drawCaptcha(plan, { background: false, glyphs: [index], strokes: false, noise: false })
    .getContext('2d')
    .getImageData(0, 0, width, height).data;
  const mask = new Uint8Array(width * height);
  const ink: Ink = { mask, area: 0, minX: width, maxX: -1, minY: height, maxY: -1, centroidX: 0 };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if ((data[(y * width + x) * 4 + 3] ?? 0) < 128) continue;
      mask[y * width + x] = 1;
      ink.area++;
      ink.centroidX += x;
      ink.minX = Math.min(ink.minX, x);
      ink.maxX = Math.max(ink.maxX, x);
      ink.minY = Math.min(ink.minY, y);
      ink.maxY = Math.max(ink.maxY, y);
    }
  }
  ink.centroidX /= Math.max(1, ink.area);
  return ink;
}

const LAYOUTS = 60;

describe('captcha image legibility', () => {
  it('keeps every glyph whole, inside the picture, big enough, in reading order and nearly apart', () => {
    let worstOverlap = 0;
    for (let seed = 1; seed <= LAYOUTS; seed++) {
      const pickText = seeded(seed * 7919);
      const text = generateCaptchaText((n) => Math.floor(pickText() * n));
      const plan = planCaptcha(text, { random: seeded(seed) });
      const inks = plan.glyphs.map((_, i) => glyphInk(plan, i));
      const where = `seed ${seed}, text ${text}`;
      inks.forEach((ink, i) => {
        // No ink on the outermost pixels: nothing of the glyph is cut off by the frame.
        expect(ink.minX, `${where}, glyph ${i} left`).toBeGreaterThan(0);
        expect(ink.maxX, `${where}, glyph ${i} right`).toBeLessThan(plan.width - 1);
        expect(ink.minY, `${where}, glyph ${i} top`).toBeGreaterThan(0);
        expect(ink.maxY, `${where}, glyph ${i} bottom`).toBeLessThan(plan.height - 1);
        // At least 40 % of the picture's height: readable at the size the form shows it.
        expect(ink.maxY - ink.minY + 1, `${where}, glyph ${i} height`).toBeGreaterThanOrEqual(
          plan.height * 0.4,
        );
        const next = inks[i + 1];
        if (next) expect(ink.centroidX, `${where}, glyph ${i} order`).toBeLessThan(next.centroidX);
      });
      for (let i = 0; i < inks.length; i++) {
        for (let j = i + 1; j < inks.length; j++) {
          const a = inks[i] as Ink;
          const b = inks[j] as Ink;
          let shared = 0;
          for (let p = 0; p < a.mask.length; p++) shared += (a.mask[p] ?? 0) & (b.mask[p] ?? 0);
          const overlap = shared / Math.min(a.area, b.area);
          worstOverlap = Math.max(worstOverlap, overlap);
          expect(overlap, `${where}, glyphs ${i} and ${j} overlap`).toBeLessThan(0.05);
        }
      }
    }
    console.info(
      `captcha legibility: worst glyph overlap over ${LAYOUTS} layouts: ${(worstOverlap * 100).toFixed(1)}%`,
    );
  });

  it('draws glyphs with a contrast of at least 4.5:1 against the background behind them (WCAG AA)', () => {
    for (let seed = 1; seed <= LAYOUTS; seed++) {
      const plan = planCaptcha(generateCaptchaText(), { random: seeded(seed) });
      const { width, height } = plan;
      const background = drawCaptcha(plan, { glyphs: [], strokes: false, noise: false })
        .getContext('2d')
        .getImageData(0, 0, width, height).data;
      for (let i = 0; i < plan.glyphs.length; i++) {
        const glyph = drawCaptcha(plan, { background: false, glyphs: [i], strokes: false, noise: false })
          .getContext('2d')
          .getImageData(0, 0, width, height).data;
        let worst = Number.POSITIVE_INFINITY;
        for (let p = 0; p < width * height * 4; p += 4) {
          if (glyph[p + 3] !== 255) continue; // the glyph's solid interior, not its anti-aliased edge
          const ink: Rgb = [glyph[p] ?? 0, glyph[p + 1] ?? 0, glyph[p + 2] ?? 0];
          const behind: Rgb = [background[p] ?? 0, background[p + 1] ?? 0, background[p + 2] ?? 0];
          worst = Math.min(worst, contrastRatio(ink, behind));
        }
        expect(worst, `seed ${seed}, glyph ${i}`).toBeGreaterThanOrEqual(4.5);
      }
    }
  });

  it('gives neighbouring glyphs clearly different colours', () => {
    for (let seed = 1; seed <= LAYOUTS; seed++) {
      const plan = planCaptcha(generateCaptchaText(), { random: seeded(seed) });
      for (let i = 1; i < plan.glyphs.length; i++) {
        const [r1, g1, b1] = plan.glyphs[i - 1]?.color ?? [0, 0, 0];
        const [r2, g2, b2] = plan.glyphs[i]?.color ?? [0, 0, 0];
        expect(Math.hypot(r1 - r2, g1 - g2, b1 - b2), `seed ${seed}, glyphs ${i - 1}/${i}`).toBeGreaterThan(
          40,
        );
      }
    }
  });
});

describe('createCaptchaRenderer', () => {
  it('serves a 200×75 JPEG of a few kilobytes by default, different each time', async () => {
    const renderer = createCaptchaRenderer();
    const first = await renderer.render('AB3C');
    const second = await renderer.render('AB3C');
    expect(first.contentType).toBe('image/jpeg');
    expect([...first.body.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    const image = await loadImage(first.body);
    expect([image.width, image.height]).toEqual([200, 75]);
    expect(first.body.length).toBeLessThan(16 * 1024);
    expect(first.body.equals(second.body)).toBe(false);
  });

  it('serves PNG when asked', async () => {
    const image = await createCaptchaRenderer({ format: 'png', width: 160, height: 60 }).render('WXYZ');
    expect(image.contentType).toBe('image/png');
    expect([...image.body.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const decoded = await loadImage(image.body);
    expect([decoded.width, decoded.height]).toEqual([160, 60]);
  });

  it('draws each of many concurrent requests as it would alone (one reused canvas never mixes them)', async () => {
    const texts = Array.from({ length: 12 }, (_, i) => generateCaptchaText((n) => (i * 7 + 3) % n));
    const alone: Buffer[] = [];
    for (const [i, text] of texts.entries()) {
      alone.push((await createCaptchaRenderer({ random: seeded(i + 1) }).render(text)).body);
    }
    const together = await Promise.all(
      texts.map(
        async (text, i) => (await createCaptchaRenderer({ random: seeded(i + 1) }).render(text)).body,
      ),
    );
    for (const [i, body] of together.entries())
      expect(body.equals(alone[i] as Buffer), `image ${i}`).toBe(true);
    expect(new Set(alone.map((b) => b.toString('base64'))).size).toBe(texts.length);
  });

  it('renders synchronously the same image as the port (what a worker thread calls)', async () => {
    const image = renderCaptchaSync('K7PW', { random: seeded(42) });
    expect(image.contentType).toBe('image/jpeg');
    const viaPort = await createCaptchaRenderer({ random: seeded(42) }).render('K7PW');
    expect(image.body.equals(viaPort.body)).toBe(true);
  });

  it('fits a row of the widest characters (M, W) inside the picture', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const plan = planCaptcha('MWWM', { random: seeded(seed) });
      for (let i = 0; i < 4; i++) {
        const ink = glyphInk(plan, i);
        expect(ink.minX).toBeGreaterThan(0);
        expect(ink.maxX).toBeLessThan(plan.width - 1);
      }
    }
  });
});
