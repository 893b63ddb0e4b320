/**
 * Draws captcha images with @napi-rs/canvas (Skia) and DejaVu Sans Bold from the
 * dejavu-fonts-ttf package, so no system font is needed.
 *
 * A drawing is made in two steps that tests can look at separately: planCaptcha() decides
 * every random choice (glyph placement, colours, crossing strokes, warp, noise), and
 * drawCaptcha() paints a plan, optionally only some of its layers. What makes it hard for
 * OCR: each glyph is rotated (neighbours opposite ways), scaled, sheared and shifted on its
 * own; strokes in the glyphs' own colours cross the text and a thin background-coloured cut
 * breaks it; the whole picture is bent by a sine displacement; dots and arcs are scattered
 * over it. What keeps it easy for a person: one bold sans-serif face, an alphabet without the
 * worst look-alikes, dark glyphs on a light background
 * (contrast checked), and the glyphs kept apart enough to be seen one by one.
 */
import { createRequire } from 'node:module';
import { type Canvas, createCanvas, GlobalFonts, type SKRSContext2D } from '@napi-rs/canvas';
import type { CaptchaImage, CaptchaRenderer } from '../domain/ports.js';

export type Rgb = readonly [number, number, number];

export interface GlyphPlacement {
  char: string;
  /** Centre of the glyph's ink box before the warp, in pixels. */
  x: number;
  y: number;
  /** Radians, clockwise. */
  angle: number;
  scale: number;
  /** Horizontal shear factor. */
  shear: number;
  color: Rgb;
}

export interface Stroke {
  /** A smooth curve through these points (quadratic segments between their midpoints). */
  points: ReadonlyArray<readonly [number, number]>;
  lineWidth: number;
  /** A glyph's colour, or 'background' for a cut that erases a thin line of ink. */
  color: Rgb | 'background';
}

export interface Warp {
  /** Horizontal shift = ampX · sin(2π·y / wavelengthY + phaseX), and alike vertically. */
  ampX: number;
  wavelengthY: number;
  phaseX: number;
  ampY: number;
  wavelengthX: number;
  phaseY: number;
}

export interface CaptchaPlan {
  width: number;
  height: number;
  fontSize: number;
  /** Linear gradient from the top-left to the bottom-right corner. */
  background: readonly [Rgb, Rgb];
  glyphs: GlyphPlacement[];
  strokes: Stroke[];
  warp: Warp;
  dots: Array<{ x: number; y: number; radius: number; color: Rgb }>;
  arcs: Array<{ x: number; y: number; radius: number; start: number; end: number; color: Rgb }>;
}

/** WCAG contrast every glyph colour keeps against both background colours. */
export const MIN_TEXT_CONTRAST = 5;

const FONT_FAMILY = 'MeiduoCaptchaDejaVuSansBold';
/** DejaVu Sans's cap height as a fraction of the em: used to centre glyphs vertically. */
const CAP_HEIGHT_EM = 0.73;

let fontRegistered = false;

/** Registers the font once per process, on first use (never at import time). */
function ensureFont(): void {
  if (fontRegistered) return;
  const require = createRequire(import.meta.url);
  const path = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');
  if (!GlobalFonts.registerFromPath(path, FONT_FAMILY)) {
    throw new Error(`could not load the captcha font from ${path}`);
  }
  fontRegistered = true;
}

// ---- planning ---------------------------------------------------------------------------

type Random = () => number;

const between = (random: Random, min: number, max: number): number => min + (max - min) * random();

function hslToRgb(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** WCAG relative luminance of an sRGB colour. */
export function relativeLuminance([r, g, b]: Rgb): number {
  const lin = (c: number): number => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio, 1 to 21. */
export function contrastRatio(a: Rgb, b: Rgb): number {
  const la = relativeLuminance(a);
  const lb = relativeLuminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/**
 * A saturated dark colour whose hue is at least 60° away from `avoidHue` (so neighbours
 * differ), redrawn until it contrasts with both backgrounds.
 */
function textColor(
  random: Random,
  background: readonly [Rgb, Rgb],
  avoidHue: number,
): { color: Rgb; hue: number } {
  for (;;) {
    const hue = (avoidHue + between(random, 60, 300)) % 360;
    const color = hslToRgb(hue, between(random, 0.5, 0.9), between(random, 0.15, 0.35));
    if (background.every((bg) => contrastRatio(color, bg) >= MIN_TEXT_CONTRAST)) return { color, hue };
  }
}

/** Advance widths of the alphabet at 1 px, measured once. */
const advanceCache = new Map<string, number>();
function advance(ctx: SKRSContext2D, char: string): number {
  let width = advanceCache.get(char);
  if (width === undefined) {
    width = ctx.measureText(char).width / 100;
    advanceCache.set(char, width);
  }
  return width;
}

let measuringContext: SKRSContext2D | undefined;
function measurer(): SKRSContext2D {
  if (!measuringContext) {
    ensureFont();
    measuringContext = createCanvas(1, 1).getContext('2d');
    measuringContext.font = `100px ${FONT_FAMILY}`;
  }
  return measuringContext;
}

export interface PlanOptions {
  width?: number;
  height?: number;
  /** Source of the visual randomness (not of the text); defaults to Math.random. */
  random?: Random;
}

/** Every random choice of one image, for `text`. */
export function planCaptcha(text: string, options: PlanOptions = {}): CaptchaPlan {
  const { width = 200, height = 75, random = Math.random } = options;
  const ctx = measurer();
  const chars = [...text];

  const bgHue = between(random, 0, 360);
  const background: [Rgb, Rgb] = [
    hslToRgb(bgHue, between(random, 0.3, 0.7), between(random, 0.9, 0.96)),
    hslToRgb(
      (bgHue + between(random, 60, 180)) % 360,
      between(random, 0.3, 0.7),
      between(random, 0.88, 0.95),
    ),
  ];

  // Glyphs sit side by side with a small random gap, wide enough that rotated neighbours
  // barely touch (the legibility test bounds their overlap); the font shrinks when the row
  // would not fit.
  let fontSize = height * 0.62;
  const scales = chars.map(() => between(random, 0.92, 1.1));
  const gaps = chars.map(() => between(random, 0.05, 0.12));
  const rowWidth = (size: number): number =>
    chars.reduce(
      (sum, c, i) => sum + size * ((scales[i] ?? 1) * advance(ctx, c) + (i > 0 ? (gaps[i] ?? 0) : 0)),
      0,
    );
  const maxRow = width * 0.86;
  if (rowWidth(fontSize) > maxRow) fontSize *= maxRow / rowWidth(fontSize);
  let x = (width - rowWidth(fontSize)) / 2 + between(random, -3, 3);

  let previousHue = between(random, 0, 360);
  // Neighbours lean opposite ways, so no single baseline or slant fits the row.
  let lean = random() < 0.5 ? -1 : 1;
  const glyphs: GlyphPlacement[] = chars.map((char, i) => {
    const scale = scales[i] ?? 1;
    const w = fontSize * scale * advance(ctx, char);
    if (i > 0) x += fontSize * (gaps[i] ?? 0);
    const { color, hue } = textColor(random, background, previousHue);
    previousHue = hue;
    lean = -lean;
    const placement: GlyphPlacement = {
      char,
      x: x + w / 2,
      y: height / 2 + between(random, -0.09, 0.09) * height,
      angle: lean * between(random, 0.06, 0.28),
      scale,
      shear: between(random, -0.15, 0.15),
      color,
    };
    x += w;
    return placement;
  });

  // A stroke in a glyph colour runs through the body of every glyph, a thinner one crosses
  // part of the row, and a thin cut in the background's colour breaks the glyphs' outlines.
  // All bend, so no straight-line filter removes them; a person reads through them.
  const capHeight = CAP_HEIGHT_EM * fontSize;
  const edge = (x0: number, sign: number): readonly [number, number] => [
    x0 + sign * between(random, 14, 26),
    height / 2 + between(random, -0.25, 0.25) * height,
  ];
  const through = (spread: number): Array<readonly [number, number]> => {
    const first = glyphs[0]?.x ?? 0;
    const last = glyphs[glyphs.length - 1]?.x ?? width;
    return [
      edge(first, -1),
      ...glyphs.map(
        (g) =>
          [
            g.x + between(random, -0.2, 0.2) * capHeight,
            g.y + between(random, -spread, spread) * capHeight,
          ] as const,
      ),
      edge(last, 1),
    ];
  };
  const pickColor = (): Rgb => glyphs[Math.floor(random() * glyphs.length)]?.color ?? [0, 0, 0];
  const partial = (): Array<readonly [number, number]> => {
    const from = between(random, 0, width * 0.35);
    const to = between(random, width * 0.65, width);
    return Array.from(
      { length: 4 },
      (_, k) =>
        [from + ((to - from) * k) / 3, height / 2 + between(random, -0.45, 0.45) * capHeight] as const,
    );
  };
  const strokes: Stroke[] = [
    { points: through(0.3), lineWidth: fontSize * between(random, 0.035, 0.045), color: 'background' },
    { points: through(0.3), lineWidth: fontSize * between(random, 0.06, 0.08), color: pickColor() },
    { points: partial(), lineWidth: fontSize * between(random, 0.03, 0.04), color: pickColor() },
  ];

  const warp: Warp = {
    ampX: between(random, 1.5, 3),
    wavelengthY: between(random, 0.8, 1.4) * height,
    phaseX: between(random, 0, 2 * Math.PI),
    ampY: between(random, 2.5, 4.5),
    wavelengthX: between(random, 0.35, 0.6) * width,
    phaseY: between(random, 0, 2 * Math.PI),
  };

  const noiseColor = (): Rgb =>
    hslToRgb(between(random, 0, 360), between(random, 0.4, 0.9), between(random, 0.2, 0.7));
  const dots = Array.from({ length: 60 }, () => ({
    x: between(random, 0, width),
    y: between(random, 0, height),
    radius: between(random, 0.6, 1.8),
    color: noiseColor(),
  }));
  const arcs = Array.from({ length: 5 }, () => ({
    x: between(random, 0, width),
    y: between(random, 0, height),
    radius: between(random, 8, 30),
    start: between(random, 0, 2 * Math.PI),
    end: between(random, 0, 2 * Math.PI),
    color: noiseColor(),
  }));

  return { width, height, fontSize, background, glyphs, strokes, warp, dots, arcs };
}

// ---- drawing ----------------------------------------------------------------------------

const css = ([r, g, b]: Rgb): string => `rgb(${r},${g},${b})`;

export interface Layers {
  background?: boolean;
  /** Indexes of the glyphs to draw; all when omitted. */
  glyphs?: readonly number[];
  strokes?: boolean;
  noise?: boolean;
  /** Whether to bend the picture (on by default). */
  warp?: boolean;
}

/** Bends the pixels in place: each output pixel reads the input at a sine-shifted place. */
function applyWarp(ctx: SKRSContext2D, width: number, height: number, warp: Warp): void {
  const src = ctx.getImageData(0, 0, width, height).data;
  const out = ctx.createImageData(width, height);
  const dst = out.data;
  const shiftX = new Float64Array(height);
  for (let y = 0; y < height; y++) {
    shiftX[y] = warp.ampX * Math.sin((2 * Math.PI * y) / warp.wavelengthY + warp.phaseX);
  }
  const shiftY = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    shiftY[x] = warp.ampY * Math.sin((2 * Math.PI * x) / warp.wavelengthX + warp.phaseY);
  }
  const stride = width * 4;
  let o = 0;
  for (let y = 0; y < height; y++) {
    const dx = shiftX[y] as number;
    for (let x = 0; x < width; x++, o += 4) {
      // Bilinear sampling (edges clamped) keeps the outlines smooth.
      const sx = Math.max(0, Math.min(x + dx, width - 1.001));
      const sy = Math.max(0, Math.min(y + (shiftY[x] as number), height - 1.001));
      const x0 = sx | 0;
      const y0 = sy | 0;
      const fx = sx - x0;
      const fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w10 = fx * (1 - fy);
      const w01 = (1 - fx) * fy;
      const w11 = fx * fy;
      const i00 = y0 * stride + x0 * 4;
      const i01 = i00 + stride;
      for (let c = 0; c < 4; c++) {
        dst[o + c] =
          (src[i00 + c] as number) * w00 +
          (src[i00 + 4 + c] as number) * w10 +
          (src[i01 + c] as number) * w01 +
          (src[i01 + 4 + c] as number) * w11;
      }
    }
  }
  ctx.putImageData(out, 0, 0);
}

/** Paints a plan (all layers unless told otherwise) on a new canvas. */
export function drawCaptcha(plan: CaptchaPlan, layers: Layers = {}): Canvas {
  ensureFont();
  const { width, height } = plan;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');

  const backgroundGradient = ctx.createLinearGradient(0, 0, width, height);
  backgroundGradient.addColorStop(0, css(plan.background[0]));
  backgroundGradient.addColorStop(1, css(plan.background[1]));
  const drawBackground = layers.background ?? true;
  if (drawBackground) {
    ctx.fillStyle = backgroundGradient;
    ctx.fillRect(0, 0, width, height);
  }

  ctx.font = `${plan.fontSize}px ${FONT_FAMILY}`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'alphabetic';
  const which = layers.glyphs ?? plan.glyphs.map((_, i) => i);
  for (const i of which) {
    const g = plan.glyphs[i];
    if (!g) continue;
    ctx.save();
    ctx.translate(g.x, g.y);
    ctx.rotate(g.angle);
    ctx.transform(1, 0, g.shear, 1, 0, 0);
    ctx.scale(g.scale, g.scale);
    ctx.fillStyle = css(g.color);
    ctx.fillText(g.char, 0, (CAP_HEIGHT_EM * plan.fontSize) / 2);
    ctx.restore();
  }

  if (layers.strokes ?? true) {
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    for (const stroke of plan.strokes) {
      const [start, ...rest] = stroke.points;
      if (!start) continue;
      ctx.beginPath();
      ctx.moveTo(start[0], start[1]);
      for (let k = 0; k < rest.length - 1; k++) {
        const [cx, cy] = rest[k] as readonly [number, number];
        const [nx, ny] = rest[k + 1] as readonly [number, number];
        ctx.quadraticCurveTo(cx, cy, (cx + nx) / 2, (cy + ny) / 2);
      }
      const end = rest[rest.length - 1];
      if (end) ctx.lineTo(end[0], end[1]);
      ctx.lineWidth = stroke.lineWidth;
      ctx.strokeStyle = stroke.color === 'background' ? backgroundGradient : css(stroke.color);
      // A cut only removes ink: on a glyph-only layer it leaves transparency.
      ctx.globalCompositeOperation =
        stroke.color === 'background' && !drawBackground ? 'destination-out' : 'source-over';
      ctx.stroke();
    }
    ctx.globalCompositeOperation = 'source-over';
  }

  if (layers.warp ?? true) applyWarp(ctx, width, height, plan.warp);

  if (layers.noise ?? true) {
    for (const d of plan.dots) {
      ctx.beginPath();
      ctx.arc(d.x, d.y, d.radius, 0, 2 * Math.PI);
      ctx.fillStyle = css(d.color);
      ctx.fill();
    }
    ctx.lineWidth = 1.2;
    for (const a of plan.arcs) {
      ctx.beginPath();
      ctx.arc(a.x, a.y, a.radius, a.start, a.end);
      ctx.strokeStyle = css(a.color);
      ctx.stroke();
    }
  }
  return canvas;
}

// ---- the port ---------------------------------------------------------------------------

export interface CaptchaRendererOptions {
  width?: number;
  height?: number;
  /**
   * JPEG by default: Skia encodes this picture as JPEG in about 0.3 ms and 6 KB, as PNG in
   * about 5 ms and 20 KB (the noise defeats PNG's compression).
   */
  format?: 'png' | 'jpeg';
  /** JPEG quality, 0–100. */
  jpegQuality?: number;
  random?: Random;
}

/**
 * The CaptchaRenderer port. Planning, painting and the warp run on the calling thread (a few
 * milliseconds); the encoding runs on libuv's thread pool.
 */
export function createCaptchaRenderer(options: CaptchaRendererOptions = {}): CaptchaRenderer {
  const { width = 200, height = 75, format = 'jpeg', jpegQuality = 85, random = Math.random } = options;
  return {
    async render(text: string): Promise<CaptchaImage> {
      const canvas = drawCaptcha(planCaptcha(text, { width, height, random }));
      if (format === 'jpeg') {
        return { contentType: 'image/jpeg', body: await canvas.encode('jpeg', jpegQuality) };
      }
      return { contentType: 'image/png', body: await canvas.encode('png') };
    },
  };
}
