/**
 * Draws captcha images: DejaVu Sans Bold from the dejavu-fonts-ttf package (no system font),
 * composed in JavaScript on raw pixels and encoded as JPEG by libjpeg-turbo (native/jpeg, when
 * built) or else by @napi-rs/canvas (Skia).
 *
 * A drawing is made in two steps that tests can look at separately: planCaptcha() decides
 * every random choice (glyph placement, colours, crossing strokes, warp, noise), and
 * composeCaptcha() / drawCaptcha() paint a plan, optionally only some of its layers. What
 * makes it hard for OCR: each glyph is rotated (neighbours opposite ways), scaled, sheared,
 * shifted and rippled on its own; strokes in the glyphs' own colours cross the text and a
 * thin background-coloured cut breaks it; the whole picture is bent by a sine displacement;
 * dots and arcs are scattered over it. What keeps it easy for a person: one bold sans-serif
 * face, an alphabet without the worst look-alikes, dark glyphs on a light background
 * (contrast checked), and the glyphs kept apart enough to be seen one by one.
 */
import { createRequire } from 'node:module';
import { type Canvas, createCanvas, GlobalFonts, type ImageData, type SKRSContext2D } from '@napi-rs/canvas';
import type { CaptchaImage, CaptchaRenderer } from '../domain/ports.js';
import { encodeRgbaJpeg } from './fast-jpeg.js';

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
  /** A ripple along the glyph's rows: each row shifts by amp · sin(2π·row / wavelength + phase). */
  wobble?: { amp: number; wavelength: number; phase: number };
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

// Helpers here are top-level functions, not closures made per call: the renderer is hot.
function hslChannel(n: number, h: number, l: number, a: number): number {
  const k = (n + h / 30) % 12;
  return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
}

function hslToRgb(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  return [hslChannel(0, h, l, a), hslChannel(8, h, l, a), hslChannel(4, h, l, a)];
}

function linear(c: number): number {
  const v = c / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

/** WCAG relative luminance of an sRGB colour. */
export function relativeLuminance([r, g, b]: Rgb): number {
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
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
      // Rows of the glyph shift a little, each glyph to its own rhythm: the outline ripples
      // (a person reads through it, OCR's shape features do not match it).
      wobble: {
        amp: between(random, 0.8, 1.5),
        wavelength: between(random, 0.45, 0.8) * CAP_HEIGHT_EM * fontSize,
        phase: between(random, 0, 2 * Math.PI),
      },
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
//
// Everything is composed in JavaScript on one RGBA buffer; Skia only rasterises each letter of
// the alphabet once per thread (the glyph cache) and encodes the JPEG. The profile of the
// previous renderer (a Skia canvas per image, fillText per glyph, the warp as a pass of
// getImageData / bilinear resampling / putImageData over the whole picture, 60 dots and 5 arcs
// as separate path fills) spent most of its time in the warp and the per-call overhead of the
// canvas; here the warp is folded into the sampling of each glyph's own box.

export interface Layers {
  background?: boolean;
  /** Indexes of the glyphs to draw; all when omitted. */
  glyphs?: readonly number[];
  strokes?: boolean;
  noise?: boolean;
  /** Whether to bend the picture (on by default). */
  warp?: boolean;
}

/** Font size the glyph cache is rasterised at: above any drawn size, so sampling only shrinks. */
const CACHE_FONT_PX = 64;

interface CachedGlyph {
  /** Coverage 0–255, `width` × `height`. */
  alpha: Uint8Array;
  width: number;
  height: number;
  /** Where the text origin (horizontal centre, baseline) lies in the mask. */
  originX: number;
  baselineY: number;
  /** The mask's inked box, inclusive. */
  ink: { minX: number; maxX: number; minY: number; maxY: number };
}

const glyphCache = new Map<string, CachedGlyph>();

/** A letter's coverage at CACHE_FONT_PX, rasterised by Skia once per thread. */
function cachedGlyph(char: string): CachedGlyph {
  let glyph = glyphCache.get(char);
  if (glyph) return glyph;
  ensureFont();
  const width = Math.ceil(CACHE_FONT_PX * 1.2);
  const height = Math.ceil(CACHE_FONT_PX * 1.3);
  const originX = width / 2;
  const baselineY = Math.round(CACHE_FONT_PX);
  const ctx = createCanvas(width, height).getContext('2d');
  ctx.font = `${CACHE_FONT_PX}px ${FONT_FAMILY}`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'alphabetic';
  ctx.fillStyle = '#000';
  ctx.fillText(char, originX, baselineY);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const alpha = new Uint8Array(width * height);
  const ink = { minX: width, maxX: 0, minY: height, maxY: 0 };
  for (let i = 0; i < alpha.length; i++) {
    alpha[i] = rgba[4 * i + 3] as number;
    if (alpha[i] === 0) continue;
    const x = i % width;
    const y = (i - x) / width;
    ink.minX = Math.min(ink.minX, x);
    ink.maxX = Math.max(ink.maxX, x);
    ink.minY = Math.min(ink.minY, y);
    ink.maxY = Math.max(ink.maxY, y);
  }
  glyph = { alpha, width, height, originX, baselineY, ink };
  glyphCache.set(char, glyph);
  return glyph;
}

/** The picture being composed: straight (not premultiplied) RGBA, as ImageData holds it. */
interface Surface {
  width: number;
  height: number;
  data: Uint8ClampedArray;
  /** The same pixels as 32-bit words (little-endian: R is the low byte): one write per pixel. */
  words: Uint32Array;
  /** Background colour at pixel i: start + step · (x·width + y·height), per channel. */
  bgStart: Rgb;
  bgStep: readonly [number, number, number];
}

/**
 * Scratch buffers shared by every drawing of this thread (a drawing runs start to end without
 * yielding), so no image allocates its own: the arcs' coverage (drained back to zero) with the
 * list of pixels it touched, the points of a curve, and a glyph's per-column terms.
 */
let coverage = new Float32Array(0);
let touched = new Int32Array(0);
function ensureCoverage(size: number): void {
  if (coverage.length >= size) return;
  coverage = new Float32Array(size);
  touched = new Int32Array(size);
}

/** A growable list of points in two typed arrays, instead of an array of pairs per image. */
interface Points {
  xs: Float64Array;
  ys: Float64Array;
  n: number;
}
const curve: Points = { xs: new Float64Array(1024), ys: new Float64Array(1024), n: 0 };

function pushPoint(p: Points, x: number, y: number): void {
  if (p.n === p.xs.length) {
    const xs = new Float64Array(2 * p.n);
    const ys = new Float64Array(2 * p.n);
    xs.set(p.xs);
    ys.set(p.ys);
    p.xs = xs;
    p.ys = ys;
  }
  p.xs[p.n] = x;
  p.ys[p.n] = y;
  p.n++;
}

/** `buffer`, or a larger one when it holds fewer than `size` values. */
function atLeast(buffer: Float64Array<ArrayBuffer>, size: number): Float64Array<ArrayBuffer> {
  return buffer.length >= size ? buffer : new Float64Array(size);
}
let columns = new Float64Array(0);
let rows = new Float64Array(0);

/** Coverage 0–1 as the blend's fixed-point weight, 0–256. */
function weight(c: number): number {
  return c >= 1 ? 256 : (c * 256 + 0.5) | 0;
}

/**
 * Blends (r, g, b) at weight `t` (0–256, see weight()) over pixel `i`. Over an opaque pixel
 * (every pixel once the background is painted) it is fixed-point arithmetic on the pixel's word;
 * only a drawing without background (the layer tests) blends over transparency.
 */
function blend(
  words: Uint32Array,
  data: Uint8ClampedArray,
  i: number,
  r: number,
  g: number,
  b: number,
  t: number,
): void {
  const w = words[i] as number;
  if (w >>> 24 === 255) {
    const r0 = w & 0xff;
    const g0 = (w >>> 8) & 0xff;
    const b0 = (w >>> 16) & 0xff;
    // Each channel moves (colour − channel) · t / 256, rounded; it stays within 0–255.
    words[i] =
      0xff000000 |
      ((b0 + (((b - b0) * t + 128) >> 8)) << 16) |
      ((g0 + (((g - g0) * t + 128) >> 8)) << 8) |
      (r0 + (((r - r0) * t + 128) >> 8));
    return;
  }
  blendOverTransparency(data, 4 * i, r, g, b, t / 256);
}

/** Blends `color` at coverage `a` (0–1) over a pixel that is not opaque (index of its red byte). */
function blendOverTransparency(
  data: Uint8ClampedArray,
  p: number,
  r: number,
  g: number,
  b: number,
  a: number,
): void {
  const da = (data[p + 3] as number) / 255;
  const oa = a + da * (1 - a);
  if (oa <= 0) return;
  const k = da * (1 - a);
  data[p] = (r * a + (data[p] as number) * k) / oa;
  data[p + 1] = (g * a + (data[p + 1] as number) * k) / oa;
  data[p + 2] = (b * a + (data[p + 2] as number) * k) / oa;
  data[p + 3] = oa * 255;
}

function paintBackground(s: Surface, visible: boolean): void {
  const { width, height, data, words } = s;
  if (!visible) {
    data.fill(0);
    return;
  }
  // The colour depends on x·width + y·height only, so row y + period repeats row y moved left
  // by `shift` pixels (8 rows and 3 pixels at 200 × 75): those rows are copied, not computed.
  const { period, shift } = gradientRepeat(width, height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    if (y < period) {
      gradientRow(s, y, 0, width);
    } else {
      words.copyWithin(row, row - period * width + shift, row - period * width + width);
      gradientRow(s, y, width - shift, width);
    }
  }
}

/** The gradient's repeat: the fewest rows `period` for which period · height is a multiple of width. */
function gradientRepeat(width: number, height: number): { period: number; shift: number } {
  for (let period = 1; period < height; period++) {
    if ((period * height) % width === 0) return { period, shift: (period * height) / width };
  }
  return { period: height, shift: 0 };
}

/** Background pixels x0 to x1 (exclusive) of row y, one 32-bit write each. */
function gradientRow(s: Surface, y: number, x0: number, x1: number): void {
  const { width, height, words, bgStart, bgStep } = s;
  const t = x0 * width + y * height;
  let r = bgStart[0] + bgStep[0] * t + 0.5;
  let g = bgStart[1] + bgStep[1] * t + 0.5;
  let b = bgStart[2] + bgStep[2] * t + 0.5;
  const [dr, dg, db] = [bgStep[0] * width, bgStep[1] * width, bgStep[2] * width];
  for (let x = x0, i = y * width + x0; x < x1; x++, i++) {
    words[i] = 0xff000000 | ((b | 0) << 16) | ((g | 0) << 8) | (r | 0);
    r += dr;
    g += dg;
    b += db;
  }
}

/**
 * Fills out[0..n) with amp · sin(phase + i · step), turning a (cos, sin) pair by a fixed
 * rotation instead of calling Math.sin for each (the drift over a few hundred steps is ~1e-13).
 */
function fillSine(out: Float64Array, n: number, amp: number, step: number, phase: number): void {
  const cosStep = Math.cos(step);
  const sinStep = Math.sin(step);
  let c = Math.cos(phase);
  let sn = Math.sin(phase);
  for (let i = 0; i < n; i++) {
    out[i] = amp * sn;
    const next = sn * cosStep + c * sinStep;
    c = c * cosStep - sn * sinStep;
    sn = next;
  }
}

/** The warp's shifts, reused by every drawing of this thread of the same size. */
let warpScratch = { sx: new Float64Array(0), sy: new Float64Array(0) };

/** The warp's shifts: output pixel (x, y) shows the unwarped picture at (x + sx[y], y + sy[x]). */
function warpShifts(plan: CaptchaPlan, on: boolean): { sx: Float64Array; sy: Float64Array } {
  const { width, height, warp } = plan;
  if (warpScratch.sx.length !== height || warpScratch.sy.length !== width) {
    warpScratch = { sx: new Float64Array(height), sy: new Float64Array(width) };
  }
  const { sx, sy } = warpScratch;
  if (on) {
    fillSine(sx, height, warp.ampX, (2 * Math.PI) / warp.wavelengthY, warp.phaseX);
    fillSine(sy, width, warp.ampY, (2 * Math.PI) / warp.wavelengthX, warp.phaseY);
  } else {
    sx.fill(0);
    sy.fill(0);
  }
  return warpScratch;
}

/**
 * Paints one glyph: every output pixel of its (warped) box maps back through the warp, the
 * glyph's own wobble and its rotation, shear and scale into the cached mask, sampled bilinearly.
 */
function paintGlyph(
  s: Surface,
  plan: CaptchaPlan,
  g: GlyphPlacement,
  shifts: { sx: Float64Array; sy: Float64Array },
): void {
  const { width, height, data, words } = s;
  const mask = cachedGlyph(g.char);
  const k = CACHE_FONT_PX / plan.fontSize / g.scale; // drawn pixels → mask pixels
  const capHalf = (CAP_HEIGHT_EM * plan.fontSize) / 2;
  const cos = Math.cos(g.angle);
  const sin = Math.sin(g.angle);
  const wobble = g.wobble ?? { amp: 0, wavelength: 1, phase: 0 };
  const wobbleK = (2 * Math.PI) / wobble.wavelength;
  // The box of the glyph's ink, mapped forward, widened by the warp and the wobble.
  let bx0 = Number.POSITIVE_INFINITY;
  let bx1 = Number.NEGATIVE_INFINITY;
  let by0 = Number.POSITIVE_INFINITY;
  let by1 = Number.NEGATIVE_INFINITY;
  for (const mx of [mask.ink.minX, mask.ink.maxX + 1]) {
    for (const my of [mask.ink.minY, mask.ink.maxY + 1]) {
      const ry = (my - mask.baselineY) / k + capHalf;
      const rx = (mx - mask.originX) / k + g.shear * ry;
      const dx = cos * rx - sin * ry;
      const dy = sin * rx + cos * ry;
      bx0 = Math.min(bx0, dx);
      bx1 = Math.max(bx1, dx);
      by0 = Math.min(by0, dy);
      by1 = Math.max(by1, dy);
    }
  }
  const slackX = plan.warp.ampX + wobble.amp + 2;
  const slackY = plan.warp.ampY + 2;
  const x0 = Math.max(0, Math.floor(g.x + bx0 - slackX)) | 0;
  const x1 = Math.min(width - 1, Math.ceil(g.x + bx1 + slackX)) | 0;
  const y0 = Math.max(0, Math.floor(g.y + by0 - slackY)) | 0;
  const y1 = Math.min(height - 1, Math.ceil(g.y + by1 + slackY)) | 0;
  const [r, gr, b] = g.color;
  const solid = 0xff000000 | (b << 16) | (gr << 8) | r;
  const { alpha, width: mw, originX, baselineY } = mask;
  // Samples outside the ink box (less one pixel, for the bilinear neighbours) are empty.
  const minMx = Math.max(0, mask.ink.minX - 1);
  const maxMx = Math.min(mw - 2, mask.ink.maxX) + 1;
  const minMy = Math.max(0, mask.ink.minY - 1);
  const maxMy = Math.min(mask.height - 2, mask.ink.maxY) + 1;
  const { sx, sy } = shifts;
  // Mask coordinates: rotate back by the angle, unshear, scale by k, move to the mask's origin.
  const toMx = k * (cos - g.shear * -sin);
  const toMxY = k * (sin - g.shear * cos);
  const toMyX = -k * sin;
  const toMy = k * cos;
  const mx0 = originX - 0.5;
  const my0 = baselineY - 0.5 - capHalf * k;
  // The map is linear but for the warp's column shift: its share of (mx, my) is worked out
  // once per column here, the rest once per row below.
  columns = atLeast(columns, 2 * width);
  const col = columns;
  // How far the warp moves (mx, my) off their straight lines along a row, to bound the row below.
  let wx0 = 0;
  let wx1 = 0;
  let wy0 = 0;
  let wy1 = 0;
  for (let x = x0; x <= x1; x++) {
    const dy = sy[x] as number;
    col[2 * x] = toMx * x + toMxY * dy;
    col[2 * x + 1] = toMyX * x + toMy * dy;
    wx0 = Math.min(wx0, toMxY * dy);
    wx1 = Math.max(wx1, toMxY * dy);
    wy0 = Math.min(wy0, toMy * dy);
    wy1 = Math.max(wy1, toMy * dy);
  }
  rows = atLeast(rows, y1 - y0 + 1);
  const ripple = rows;
  fillSine(ripple, y1 - y0 + 1, wobble.amp, wobbleK, (y0 - g.y) * wobbleK + wobble.phase);
  for (let y = y0; y <= y1; y++) {
    // Undo the warp and the wobble (a ripple across the glyph's own rows)…
    const dx = (sx[y] as number) + (ripple[y - y0] as number) - g.x;
    const dy = y - g.y;
    // …then rotation, shear and scale, as one linear map into the mask.
    const rowMx = toMx * dx + toMxY * dy + mx0;
    const rowMy = toMyX * dx + toMy * dy + my0;
    // Only the columns whose sample can fall inside the mask's ink box (a superset: the
    // exact test stays in the loop), instead of the whole box of the glyph.
    let from = x0;
    let to = x1;
    if (toMx > 0) {
      from = Math.max(from, Math.floor((minMx - rowMx - wx1) / toMx));
      to = Math.min(to, Math.ceil((maxMx - rowMx - wx0) / toMx));
    }
    if (toMyX > 1e-9) {
      from = Math.max(from, Math.floor((minMy - rowMy - wy1) / toMyX));
      to = Math.min(to, Math.ceil((maxMy - rowMy - wy0) / toMyX));
    } else if (toMyX < -1e-9) {
      from = Math.max(from, Math.floor((maxMy - rowMy - wy0) / toMyX));
      to = Math.min(to, Math.ceil((minMy - rowMy - wy1) / toMyX));
    }
    // Integers (| 0), so the loop runs on int32 indexes rather than doubles.
    for (let x = from | 0, p = (y * width + from) | 0, end = to | 0; x <= end; x++, p++) {
      const mx = (col[2 * x] as number) + rowMx;
      const my = (col[2 * x + 1] as number) + rowMy;
      if (mx < minMx || my < minMy || mx >= maxMx || my >= maxMy) continue;
      const ix = mx | 0;
      const iy = my | 0;
      const m = iy * mw + ix;
      const a00 = alpha[m] as number;
      const a01 = alpha[m + 1] as number;
      const a10 = alpha[m + mw] as number;
      const a11 = alpha[m + mw + 1] as number;
      if ((a00 | a01 | a10 | a11) === 0) continue;
      if ((a00 & a01 & a10 & a11) === 255 && (words[p] as number) >>> 24 === 255) {
        words[p] = solid; // inside the glyph over an opaque pixel: what blend() gives at full cover
        continue;
      }
      const fx = mx - ix;
      const fy = my - iy;
      const top = a00 + (a01 - a00) * fx;
      const sum = top + (a10 + (a11 - a10) * fx - top) * fy; // 0–255
      const t = (sum * (256 / 255) + 0.5) | 0;
      if (t > 1) blend(words, data, p, r, gr, b, t);
    }
  }
}

/**
 * Adds a disc of `radius` at (px, py) to the coverage as a maximum (so overlapping stamps do
 * not darken), noting each pixel it covers first in `touched`. Returns the new count there.
 */
function stampDisc(
  cov: Float32Array,
  list: Int32Array,
  count: number,
  width: number,
  height: number,
  px: number,
  py: number,
  radius: number,
): number {
  const reach = radius + 0.5;
  // The pixels whose centre can lie within `reach` of (px, py); int32, so the loops stay integer.
  const x0 = Math.max(0, Math.floor(px - radius - 1)) | 0;
  const x1 = Math.min(width - 1, Math.ceil(px + radius)) | 0;
  const y0 = Math.max(0, Math.floor(py - radius - 1)) | 0;
  const y1 = Math.min(height - 1, Math.ceil(py + radius)) | 0;
  let n = count;
  for (let y = y0; y <= y1; y++) {
    const ey = y + 0.5 - py;
    for (let x = x0; x <= x1; x++) {
      const ex = x + 0.5 - px;
      const d2 = ex * ex + ey * ey;
      if (d2 >= reach * reach) continue; // outside: no square root needed
      const v = Math.min(1, reach - Math.sqrt(d2));
      const i = y * width + x;
      const c = cov[i] as number;
      if (v <= c) continue;
      if (c === 0) list[n++] = i;
      cov[i] = v;
    }
  }
  return n;
}

/**
 * Paints a gently sloping line of `lineWidth` along `points` (left to right, a pixel or less
 * apart) a column at a time: in each column, a vertical span as thick as the line is across
 * its slope, blended straight onto the picture (each pixel once, so nothing darkens twice).
 * A few pixels per column, where stamping discs costs a square per point.
 */
function paintSpans(
  s: Surface,
  points: Points,
  lineWidth: number,
  color: Rgb | 'cut',
  backgroundVisible: boolean,
): void {
  const { width, height, data, words, bgStart, bgStep } = s;
  const { xs, ys, n } = points;
  const radius = lineWidth / 2;
  // The colour as plain numbers, so the pixel loop tests a boolean, not a string-or-array.
  const cut = color === 'cut';
  const [r, g, b] = color === 'cut' ? [0, 0, 0] : color;
  let k = 0;
  for (let x = 0; x < width; x++) {
    const cx = x + 0.5;
    // The segment of the curve over this column's centre.
    while (k < n - 1 && (xs[k + 1] as number) < cx) k++;
    if (k >= n - 1) break;
    const ax = xs[k] as number;
    const ay = ys[k] as number;
    const bx = xs[k + 1] as number;
    const by = ys[k + 1] as number;
    if (ax > cx || bx < cx) continue;
    const slope = bx === ax ? 0 : (by - ay) / (bx - ax);
    const py = ay + slope * (cx - ax);
    const half = radius * Math.sqrt(1 + Math.min(slope * slope, 4));
    const y0 = Math.max(0, Math.floor(py - half - 0.5)) | 0;
    const y1 = Math.min(height - 1, Math.ceil(py + half + 0.5)) | 0;
    for (let y = y0; y <= y1; y++) {
      const c = half + 0.5 - Math.abs(y + 0.5 - py);
      if (c <= 0) continue;
      const i = y * width + x;
      if (!cut) {
        blend(words, data, i, r, g, b, weight(c));
      } else if (backgroundVisible) {
        const t = x * width + y * height;
        blend(
          words,
          data,
          i,
          bgStart[0] + bgStep[0] * t,
          bgStart[1] + bgStep[1] * t,
          bgStart[2] + bgStep[2] * t,
          weight(c),
        );
      } else {
        // A cut only removes ink: on a glyph-only layer it leaves transparency.
        data[4 * i + 3] = (data[4 * i + 3] as number) * (1 - Math.min(1, c));
      }
    }
  }
}

/** Blends `color` over the `count` pixels listed in `list` by their coverage, and clears it. */
function drainCoverage(s: Surface, cov: Float32Array, list: Int32Array, count: number, color: Rgb): void {
  const { words, data } = s;
  const [r, g, b] = color;
  for (let k = 0; k < count; k++) {
    const i = list[k] as number;
    const t = weight(cov[i] as number);
    cov[i] = 0;
    if (t > 0) blend(words, data, i, r, g, b, t);
  }
}

/** Appends a quadratic segment from (ax, ay) to `out`, a point about every pixel. */
function quadSegment(
  out: Points,
  ax: number,
  ay: number,
  cx: number,
  cy: number,
  ex: number,
  ey: number,
): void {
  const steps = Math.max(2, Math.ceil(Math.hypot(cx - ax, cy - ay) + Math.hypot(ex - cx, ey - cy)));
  for (let t = 0; t <= steps; t++) {
    const u = t / steps;
    pushPoint(
      out,
      (1 - u) * (1 - u) * ax + 2 * (1 - u) * u * cx + u * u * ex,
      (1 - u) * (1 - u) * ay + 2 * (1 - u) * u * cy + u * u * ey,
    );
  }
}

/** Points every pixel along the stroke's curve (quadratic segments between midpoints), into `out`. */
function curvePoints(stroke: Stroke, out: Points): void {
  out.n = 0;
  const [start, ...rest] = stroke.points;
  if (!start) return;
  let [ax, ay] = start;
  for (let k = 0; k < rest.length - 1; k++) {
    const [cx, cy] = rest[k] as readonly [number, number];
    const [nx, ny] = rest[k + 1] as readonly [number, number];
    const ex = (cx + nx) / 2;
    const ey = (cy + ny) / 2;
    quadSegment(out, ax, ay, cx, cy, ex, ey);
    ax = ex;
    ay = ey;
  }
  const end = rest[rest.length - 1];
  if (end) quadSegment(out, ax, ay, (ax + end[0]) / 2, (ay + end[1]) / 2, end[0], end[1]);
}

function paintStrokes(
  s: Surface,
  plan: CaptchaPlan,
  shifts: { sx: Float64Array; sy: Float64Array },
  backgroundVisible: boolean,
): void {
  const { width, height } = s;
  const { sx, sy } = shifts;
  for (const stroke of plan.strokes) {
    curvePoints(stroke, curve);
    const { xs, ys, n } = curve;
    // Strokes bend with the picture: the warp moves a point by about minus its shift.
    for (let k = 0; k < n; k++) {
      const x = xs[k] as number;
      const y = ys[k] as number;
      xs[k] = x - (sx[Math.max(0, Math.min(height - 1, Math.round(y))) | 0] as number);
      ys[k] = y - (sy[Math.max(0, Math.min(width - 1, Math.round(x))) | 0] as number);
    }
    paintSpans(
      s,
      curve,
      stroke.lineWidth,
      stroke.color === 'background' ? 'cut' : stroke.color,
      backgroundVisible,
    );
  }
}

/** A dot is a disc: each pixel blended once by its coverage. */
function paintDot(s: Surface, d: CaptchaPlan['dots'][number]): void {
  const { width, height, data, words } = s;
  const reach = d.radius + 0.5;
  const [r, g, b] = d.color;
  // The pixels whose centre can lie within `reach` of the dot's; int32, so the loops stay integer.
  const x0 = Math.max(0, Math.floor(d.x - d.radius - 1)) | 0;
  const x1 = Math.min(width - 1, Math.ceil(d.x + d.radius)) | 0;
  const y0 = Math.max(0, Math.floor(d.y - d.radius - 1)) | 0;
  const y1 = Math.min(height - 1, Math.ceil(d.y + d.radius)) | 0;
  for (let y = y0; y <= y1; y++) {
    const ey = y + 0.5 - d.y;
    for (let x = x0; x <= x1; x++) {
      const ex = x + 0.5 - d.x;
      const d2 = ex * ex + ey * ey;
      if (d2 >= reach * reach) continue; // outside: no square root needed
      const t = weight(reach - Math.sqrt(d2));
      if (t > 0) blend(words, data, y * width + x, r, g, b, t);
    }
  }
}

/**
 * An arc is discs stamped a pixel apart into the coverage, then blended where they touched
 * (not over its whole box). The points turn by a fixed rotation instead of a cos and sin each.
 */
function paintArc(s: Surface, a: CaptchaPlan['arcs'][number]): void {
  const { width, height } = s;
  let sweep = a.end - a.start;
  if (sweep < 0) sweep += 2 * Math.PI;
  const steps = Math.max(2, Math.ceil(a.radius * sweep));
  const stepCos = Math.cos(sweep / steps);
  const stepSin = Math.sin(sweep / steps);
  let c = Math.cos(a.start);
  let sn = Math.sin(a.start);
  let count = 0;
  for (let k = 0; k <= steps; k++) {
    count = stampDisc(coverage, touched, count, width, height, a.x + a.radius * c, a.y + a.radius * sn, 0.6);
    const next = c * stepCos - sn * stepSin;
    sn = sn * stepCos + c * stepSin;
    c = next;
  }
  drainCoverage(s, coverage, touched, count, a.color);
}

function paintNoise(s: Surface, plan: CaptchaPlan): void {
  ensureCoverage(s.width * s.height);
  for (const d of plan.dots) paintDot(s, d);
  for (const a of plan.arcs) paintArc(s, a);
}

/**
 * Composes a plan (all layers unless told otherwise) into straight RGBA pixels, into `target`
 * when given (width × height × 4 bytes, overwritten).
 */
export function composeCaptcha(
  plan: CaptchaPlan,
  layers: Layers = {},
  target?: Uint8ClampedArray,
): Uint8ClampedArray {
  const { width, height } = plan;
  const [start, end] = plan.background;
  // The gradient runs from the top-left to the bottom-right corner.
  const norm = width * width + height * height;
  const data = target ?? new Uint8ClampedArray(width * height * 4);
  const surface: Surface = {
    width,
    height,
    data,
    words: new Uint32Array(data.buffer, data.byteOffset, width * height),
    bgStart: start,
    bgStep: [(end[0] - start[0]) / norm, (end[1] - start[1]) / norm, (end[2] - start[2]) / norm],
  };
  const backgroundVisible = layers.background ?? true;
  paintBackground(surface, backgroundVisible);
  const shifts = warpShifts(plan, layers.warp ?? true);
  const which = layers.glyphs ?? plan.glyphs.map((_, i) => i);
  for (const i of which) {
    const g = plan.glyphs[i];
    if (g) paintGlyph(surface, plan, g, shifts);
  }
  if (layers.strokes ?? true) paintStrokes(surface, plan, shifts, backgroundVisible);
  if (layers.noise ?? true) paintNoise(surface, plan);
  return surface.data;
}

/** Paints a plan (all layers unless told otherwise) on a new canvas. */
export function drawCaptcha(plan: CaptchaPlan, layers: Layers = {}): Canvas {
  const canvas = createCanvas(plan.width, plan.height);
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(plan.width, plan.height);
  composeCaptcha(plan, layers, image.data);
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/** A canvas kept for reuse with the ImageData that carries pixels onto it (both cost to create). */
interface Easel {
  canvas: Canvas;
  ctx: SKRSContext2D;
  image: ImageData;
}

/**
 * One easel per size and thread, reused by every image: painting is synchronous, and encode()
 * copies the pixels before it returns (a test renders concurrently to hold it to that).
 */
const easels = new Map<string, Easel>();
function takeEasel(width: number, height: number): Easel {
  const key = `${width}x${height}`;
  let easel = easels.get(key);
  if (!easel) {
    const canvas = createCanvas(width, height);
    // Opaque, as every captcha is: Skia then encodes it without unpremultiplying each row
    // (about 10 % of the JPEG step, and the very same bytes).
    const ctx = canvas.getContext('2d', { alpha: false });
    easel = { canvas, ctx, image: ctx.createImageData(width, height) };
    easels.set(key, easel);
  }
  return easel;
}

/** Plans, composes and puts one captcha on an easel. */
function paint(easel: Easel, text: string, width: number, height: number, random: Random): void {
  composeCaptcha(planCaptcha(text, { width, height, random }), {}, easel.image.data);
  easel.ctx.putImageData(easel.image, 0, 0);
}

// ---- the port ---------------------------------------------------------------------------

export interface CaptchaRendererOptions {
  width?: number;
  height?: number;
  /**
   * JPEG by default: Skia encodes this picture as JPEG in about 0.2 ms and 6 KB, as PNG in
   * several ms and 20 KB (the noise defeats PNG's compression).
   */
  format?: 'png' | 'jpeg';
  /** JPEG quality, 0–100. */
  jpegQuality?: number;
  random?: Random;
}

/**
 * Draws and encodes one captcha on the calling thread, synchronously: what a worker thread
 * of a pool calls. The canvas that carries the pixels to the encoder is kept and reused.
 */
export function renderCaptchaSync(text: string, options: CaptchaRendererOptions = {}): CaptchaImage {
  const { width = 200, height = 75, format = 'jpeg', jpegQuality = 85, random = Math.random } = options;
  const easel = takeEasel(width, height);
  if (format === 'jpeg' && encodeRgbaJpeg) {
    // libjpeg-turbo straight from the composed pixels: no copy onto the canvas, no Skia encode.
    composeCaptcha(planCaptcha(text, { width, height, random }), {}, easel.image.data);
    return { contentType: 'image/jpeg', body: encodeRgbaJpeg(easel.image.data, width, height, jpegQuality) };
  }
  paint(easel, text, width, height, random);
  return format === 'jpeg'
    ? { contentType: 'image/jpeg', body: easel.canvas.encodeSync('jpeg', jpegQuality) }
    : { contentType: 'image/png', body: easel.canvas.encodeSync('png') };
}

/**
 * The CaptchaRenderer port. Planning and composing run on the calling thread (a fraction of a
 * millisecond); the encoding too with libjpeg-turbo, else on libuv's thread pool (Skia).
 */
export function createCaptchaRenderer(options: CaptchaRendererOptions = {}): CaptchaRenderer {
  const { width = 200, height = 75, format = 'jpeg', jpegQuality = 85, random = Math.random } = options;
  return {
    async render(text: string): Promise<CaptchaImage> {
      // With libjpeg-turbo the whole image is made here (~0.1 ms to encode), as on a pool thread.
      if (format === 'jpeg' && encodeRgbaJpeg) return renderCaptchaSync(text, options);
      const easel = takeEasel(width, height);
      paint(easel, text, width, height, random);
      if (format === 'jpeg') {
        return { contentType: 'image/jpeg', body: await easel.canvas.encode('jpeg', jpegQuality) };
      }
      return { contentType: 'image/png', body: await easel.canvas.encode('png') };
    },
  };
}
