/**
 * An OCR attack on the captcha, used by test/captcha-ocr.test.ts: Debian's tesseract-ocr
 * behind preprocessing pipelines of an attacker who has looked at the images (cubic
 * upscale, colour-aware thresholds, morphology against thin strokes and specks, median),
 * each read as one line and as one word with the alphabet as whitelist; and segmentation
 * pipelines that cut the cleaned image into its four glyphs and read each alone (one
 * tesseract page per glyph, as one character and as one word); and a vote over all.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { CAPTCHA_ALPHABET, CAPTCHA_LENGTH } from '../src/domain/captcha.js';

const PARALLEL = 2;
/** Numbers the list files, so passes running at once never share one. */
let lists = 0;

export interface Reading {
  /** Index of the image in its list → text read (whitespace removed), or null if tesseract crashed on it. */
  texts: Array<string | null>;
}

/** Runs one tesseract process over a list of images; resolves with its TSV output and exit status. */
function runTesseract(listFile: string, psm: string): Promise<{ stdout: string; ok: boolean }> {
  return new Promise((resolve) => {
    execFile(
      'tesseract',
      [listFile, 'stdout', '--psm', psm, '-c', `tessedit_char_whitelist=${CAPTCHA_ALPHABET}`, 'tsv'],
      // One thread per process: the parallelism is ours, across processes.
      { env: { ...process.env, OMP_THREAD_LIMIT: '1' }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout) => resolve({ stdout, ok: !error }),
    );
  });
}

/** Page number (1-based) → words, from tesseract's TSV output. */
function parseTsv(tsv: string): Map<number, string> {
  const pages = new Map<number, string>();
  for (const line of tsv.split('\n').slice(1)) {
    const cols = line.split('\t');
    if (cols.length < 12) continue;
    const page = Number(cols[1]);
    const text = (cols[11] ?? '').replace(/\s+/g, '');
    pages.set(page, (pages.get(page) ?? '') + text);
  }
  return pages;
}

/**
 * Reads every file with one tesseract process per pass. Tesseract 5.3 sometimes dies (SIGFPE)
 * on an image; the pages written before that are kept, the image is retried alone, and the
 * rest of the list goes on in a new process.
 */
export async function readAll(dir: string, files: string[], psm: string): Promise<Reading> {
  const texts: Array<string | null> = new Array(files.length).fill(null);
  let start = 0;
  while (start < files.length) {
    const listFile = join(dir, `list-${psm}-${lists++}.txt`);
    await writeFile(listFile, `${files.slice(start).join('\n')}\n`);
    const { stdout, ok } = await runTesseract(listFile, psm);
    const pages = parseTsv(stdout);
    // After a crash the last page written may be cut short: it is read again alone.
    const complete = ok ? pages.size : Math.max(0, pages.size - 1);
    for (const [page, text] of pages) if (page <= complete) texts[start + page - 1] = text;
    if (ok) break;
    const failed = start + complete;
    const alone = join(dir, `list-${psm}-${lists++}.txt`);
    await writeFile(alone, `${files[failed]}\n`);
    const retry = await runTesseract(alone, psm);
    texts[failed] = retry.ok ? (parseTsv(retry.stdout).get(1) ?? '') : null;
    start = failed + 1;
  }
  return { texts };
}

/** Runs the tasks with at most `limit` in flight. */
export async function pool<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      const task = tasks[i];
      if (task) results[i] = await task();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

/** A decoded image, upscaled with Skia's high-quality (cubic) filter. */
async function decode(
  image: Buffer,
  factor: number,
): Promise<{ width: number; height: number; rgba: Uint8ClampedArray }> {
  const source = await loadImage(image);
  const canvas = createCanvas(source.width * factor, source.height * factor);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const { width, height } = canvas;
  return { width, height, rgba: ctx.getImageData(0, 0, width, height).data };
}

/** One grey level per pixel (0 dark … 255 light), from the RGBA by `tone`. */
function grey(rgba: Uint8ClampedArray, tone: (r: number, g: number, b: number) => number): Uint8Array {
  const out = new Uint8Array(rgba.length / 4);
  for (let i = 0; i < out.length; i++)
    out[i] = tone(rgba[4 * i] ?? 0, rgba[4 * i + 1] ?? 0, rgba[4 * i + 2] ?? 0);
  return out;
}
const luma = (r: number, g: number, b: number): number => 0.2126 * r + 0.7152 * g + 0.0722 * b;
/** HSV value: a saturated dark ink is dark in it whatever its hue, a pale tint is not. */
const value = (r: number, g: number, b: number): number => Math.max(r, g, b);

/** Otsu's threshold of a grey image: the split that best separates ink from paper. */
function otsu(px: Uint8Array): number {
  const histogram = new Float64Array(256);
  for (const v of px) histogram[v] = (histogram[v] ?? 0) + 1;
  let sum = 0;
  for (let t = 0; t < 256; t++) sum += t * (histogram[t] ?? 0);
  let below = 0;
  let sumBelow = 0;
  let best = 128;
  let bestVariance = -1;
  for (let t = 0; t < 256; t++) {
    below += histogram[t] ?? 0;
    if (below === 0 || below === px.length) continue;
    sumBelow += t * (histogram[t] ?? 0);
    const above = px.length - below;
    const meanBelow = sumBelow / below;
    const meanAbove = (sum - sumBelow) / above;
    const variance = below * above * (meanBelow - meanAbove) ** 2;
    if (variance > bestVariance) {
      bestVariance = variance;
      best = t;
    }
  }
  return best;
}

/** Ink mask (1 = ink): pixels darker than `threshold`. */
function ink(px: Uint8Array, threshold: number): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = (px[i] ?? 255) <= threshold ? 1 : 0;
  return out;
}

/**
 * How many ink pixels lie in the (2r+1)×(2r+1) square around each pixel (outside the picture
 * is paper): a sliding sum along rows, then along columns, so the cost does not grow with r.
 */
function boxCount(w: number, h: number, mask: Uint8Array, r: number): Uint16Array {
  const rows = new Uint16Array(w * h);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    let sum = 0;
    for (let x = 0; x < Math.min(r, w); x++) sum += mask[o + x] as number;
    for (let x = 0; x < w; x++) {
      if (x + r < w) sum += mask[o + x + r] as number;
      if (x - r - 1 >= 0) sum -= mask[o + x - r - 1] as number;
      rows[o + x] = sum;
    }
  }
  const out = new Uint16Array(w * h);
  for (let x = 0; x < w; x++) {
    let sum = 0;
    for (let y = 0; y < Math.min(r, h); y++) sum += rows[y * w + x] as number;
    for (let y = 0; y < h; y++) {
      if (y + r < h) sum += rows[(y + r) * w + x] as number;
      if (y - r - 1 >= 0) sum -= rows[(y - r - 1) * w + x] as number;
      out[y * w + x] = sum;
    }
  }
  return out;
}

/** Square structuring element of side 2r+1: dilate inks a pixel near any ink, erode keeps only full squares. */
function morph(w: number, h: number, mask: Uint8Array, r: number, op: 'dilate' | 'erode'): Uint8Array {
  const counts = boxCount(w, h, mask, r);
  const full = (2 * r + 1) ** 2;
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++)
    out[i] = op === 'dilate' ? +((counts[i] as number) > 0) : +(counts[i] === full);
  return out;
}
const close = (w: number, h: number, m: Uint8Array, r: number) =>
  morph(w, h, morph(w, h, m, r, 'dilate'), r, 'erode');
const open = (w: number, h: number, m: Uint8Array, r: number) =>
  morph(w, h, morph(w, h, m, r, 'erode'), r, 'dilate');

/** 3×3 median of a binary mask: a pixel takes the majority of its neighbourhood. */
function median(w: number, h: number, mask: Uint8Array): Uint8Array {
  const counts = boxCount(w, h, mask, 1);
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = +((counts[i] as number) >= 5);
  return out;
}

/** Binary PGM, black ink on white with a margin (tesseract wants some paper around text). */
function pgm(w: number, h: number, mask: Uint8Array | null, greyPx?: Uint8Array): Buffer {
  const m = 20;
  const W = w + 2 * m;
  const H = h + 2 * m;
  const px = new Uint8Array(W * H).fill(255);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      px[(y + m) * W + x + m] = mask ? ((mask[y * w + x] ?? 0) ? 0 : 255) : (greyPx?.[y * w + x] ?? 255);
    }
  }
  return Buffer.concat([Buffer.from(`P5\n${W} ${H}\n255\n`), px]);
}

/**
 * The attacker's preprocessing pipelines, each tuned on how these captchas look: dark
 * saturated glyphs on a pale gradient, thin crossing strokes, dots and arcs.
 */
interface Pipeline {
  /** One image to read as a whole, or one image per glyph (read each as one character). */
  prepare: (image: Buffer) => Promise<Buffer | Buffer[]>;
  /** Tesseract page modes to read it with: 7 one text line, 8 one word, 10 one character. */
  psm: string[];
}

/**
 * Ink pixels' 8-connected components: a label per pixel (0 = paper) and each label's pixel
 * count (index 0 unused).
 */
function components(w: number, h: number, mask: Uint8Array): { labels: Int32Array; areas: number[] } {
  const labels = new Int32Array(w * h);
  const areas = [0];
  const stack = new Int32Array(w * h);
  for (let start = 0; start < w * h; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = areas.length;
    let top = 0;
    let area = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const i = stack[--top] as number;
      area++;
      const x = i % w;
      const y = (i - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const j = ny * w + nx;
          if (mask[j] && !labels[j]) {
            labels[j] = label;
            stack[top++] = j;
          }
        }
      }
    }
    areas.push(area);
  }
  return { labels, areas };
}

/**
 * Cuts the ink into `count` glyph masks, left to right. Specks (components under 2% of the
 * ink) are dropped; the text's horizontal extent is that of the remaining ink; it is cut into
 * `count` equal slices, each cut then moved to the column with the least ink (the valley
 * between two glyphs) within a third of a slice of where it was, since the crossing strokes
 * join glyphs into one component more often than not.
 */
function segment(
  w: number,
  h: number,
  mask: Uint8Array,
  count: number,
): Array<{ w: number; h: number; mask: Uint8Array }> {
  const { labels, areas } = components(w, h, mask);
  const total = areas.reduce((a, b) => a + b, 0);
  const kept = new Uint8Array(w * h);
  const column = new Uint32Array(w);
  for (let i = 0; i < w * h; i++) {
    if ((areas[labels[i] as number] ?? 0) >= total * 0.02 && labels[i]) {
      kept[i] = 1;
      column[i % w] = (column[i % w] as number) + 1;
    }
  }
  let lo = 0;
  let hi = w - 1;
  while (lo < w - 1 && !column[lo]) lo++;
  while (hi > lo && !column[hi]) hi--;
  const slice = (hi - lo + 1) / count;
  const cuts = [lo];
  for (let k = 1; k < count; k++) {
    const aim = lo + k * slice;
    let best = Math.round(aim);
    let least = Number.POSITIVE_INFINITY;
    for (let x = Math.round(aim - slice / 3); x <= Math.round(aim + slice / 3); x++) {
      // Ties go to the column nearest the equal cut.
      const score = (column[x] ?? 0) + Math.abs(x - aim) / slice;
      if (score < least) [least, best] = [score, x];
    }
    cuts.push(best);
  }
  cuts.push(hi + 1);
  return cuts.slice(0, count).map((x0, k) => {
    const x1 = Math.max(x0, (cuts[k + 1] as number) - 1);
    let top = h;
    let bottom = -1;
    for (let y = 0; y < h; y++)
      for (let x = x0; x <= x1; x++)
        if (kept[y * w + x]) [top, bottom] = [Math.min(top, y), Math.max(bottom, y)];
    if (bottom < 0) return { w: 1, h: 1, mask: new Uint8Array(1) };
    const gw = x1 - x0 + 1;
    const gh = bottom - top + 1;
    const glyph = new Uint8Array(gw * gh);
    for (let y = 0; y < gh; y++)
      for (let x = 0; x < gw; x++) glyph[y * gw + x] = kept[(y + top) * w + x + x0] as number;
    return { w: gw, h: gh, mask: glyph };
  });
}

/** Glyphs are drawn dark (HSL lightness ≤ 0.35); the noise is often lighter. */
const DARK_LUMA = 120;

export const PIPELINES: Record<string, Pipeline> = {
  // The one from issue 11: 3× cubic upscale, dark pixels only, close, open, median.
  'dark ×3, close, open, median': {
    psm: ['7', '8'],
    prepare: async (image) => {
      const { width: w, height: h, rgba } = await decode(image, 3);
      const px = grey(rgba, luma);
      const m = median(w, h, open(w, h, close(w, h, ink(px, DARK_LUMA), 1), 1));
      return pgm(w, h, m);
    },
  },
  // Colour separation: a saturated dark glyph is dark in HSV value whatever its hue.
  'value ×2, open, median': {
    psm: ['8'],
    prepare: async (image) => {
      const { width: w, height: h, rgba } = await decode(image, 2);
      const px = grey(rgba, value);
      const m = median(w, h, open(w, h, ink(px, otsu(px)), 1));
      return pgm(w, h, m);
    },
  },
  // Stroke removal: an opening wider than the crossing strokes keeps only the glyphs' thick stems.
  'value ×2, wide open, close': {
    psm: ['8'],
    prepare: async (image) => {
      const { width: w, height: h, rgba } = await decode(image, 2);
      const px = grey(rgba, value);
      const m = close(w, h, open(w, h, ink(px, otsu(px)), 2), 1);
      return pgm(w, h, m);
    },
  },
  // Segmentation: cut the cleaned ink into the four glyphs and read each as one character.
  'value ×2, wide open, close, glyphs': {
    psm: ['10', '8'],
    prepare: async (image) => {
      const { width: w, height: h, rgba } = await decode(image, 2);
      const px = grey(rgba, value);
      const m = close(w, h, open(w, h, ink(px, otsu(px)), 2), 1);
      return segment(w, h, m, CAPTCHA_LENGTH).map((g) => pgm(g.w, g.h, g.mask));
    },
  },
  'dark ×3, close, open, median, glyphs': {
    psm: ['10', '8'],
    prepare: async (image) => {
      const { width: w, height: h, rgba } = await decode(image, 3);
      const px = grey(rgba, luma);
      const m = median(w, h, open(w, h, close(w, h, ink(px, DARK_LUMA), 1), 1));
      return segment(w, h, m, CAPTCHA_LENGTH).map((g) => pgm(g.w, g.h, g.mask));
    },
  },
};

/**
 * What the attacker answers for one captcha (it is one-use, so one answer): the reading most
 * pipelines agree on; if no two agree, each position's most frequent character among the
 * readings of the right length. Null when nothing of the right length was read.
 */
export function vote(readings: Array<string | null>, length: number): string | null {
  const full = readings.filter((r): r is string => r !== null && r.length === length);
  if (full.length === 0) return null;
  const counts = new Map<string, number>();
  for (const r of full) counts.set(r, (counts.get(r) ?? 0) + 1);
  const [best, n] = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a));
  if (n >= 2) return best;
  return Array.from({ length }, (_, k) => {
    const at = new Map<string, number>();
    // '?' is a glyph read as nothing: it only wins where no reading has a character.
    for (const r of full) if (r[k] !== '?') at.set(r[k] as string, (at.get(r[k] as string) ?? 0) + 1);
    return at.size === 0 ? '?' : [...at].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  }).join('');
}

export async function saveAll(dir: string, images: Buffer[], ext: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(
    images.map(async (body, i) => {
      const file = join(dir, `${i}.${ext}`);
      await writeFile(file, body);
      return file;
    }),
  );
}

export interface AttackResult {
  /** Captchas the vote reads exactly. */
  voted: number;
  /** Captchas read exactly by the best single pipeline and page mode. */
  bestPass: number;
  /** Captchas read exactly by at least one (an upper bound, not an attack: one answer per captcha). */
  anyRight: number;
  /** Captchas tesseract crashed on in some pass (counted as misses). */
  crashed: number;
  summary: string;
}

/** Runs every pipeline and page mode over the served images of `texts`, in `work`. */
export async function attack(work: string, texts: string[], served: Buffer[]): Promise<AttackResult> {
  // The pipelines prepare their files one after another on this thread while tesseract
  // processes already read the files of those before.
  const names = Object.keys(PIPELINES);
  let ready: Promise<unknown> = Promise.resolve();
  const prepared = names.map((name) => {
    const files = ready.then(async () => {
      const { prepare } = PIPELINES[name] as Pipeline;
      const images: Buffer[] = [];
      let per = 1;
      for (const body of served) {
        const out = await prepare(body);
        if (Array.isArray(out)) per = out.length;
        images.push(...(Array.isArray(out) ? out : [out]));
      }
      return { per, files: await saveAll(join(work, name.replace(/\W+/g, '-')), images, 'pgm') };
    });
    ready = files;
    return files;
  });
  const passes = names.flatMap((name, k) =>
    (PIPELINES[name] as Pipeline).psm.map((psm) => ({
      name: `${name}, --psm ${psm}`,
      run: async (): Promise<Reading> => {
        const { per, files } = await (prepared[k] as Promise<{ per: number; files: string[] }>);
        const { texts } = await readAll(work, files, psm);
        if (per === 1) return { texts };
        // One page per glyph: the sample's reading is each glyph's first character ('?' for none).
        return {
          texts: Array.from({ length: texts.length / per }, (_, i) => {
            const glyphs = texts.slice(i * per, (i + 1) * per);
            return glyphs.includes(null) ? null : glyphs.map((g) => g?.[0] ?? '?').join('');
          }),
        };
      },
    })),
  );
  const started = performance.now();
  const readings = await pool(
    PARALLEL,
    passes.map((p) => p.run),
  );

  const crashed = new Set<number>();
  const anyRight = new Set<number>();
  const perPass = readings.map((reading, p) => {
    let hits = 0;
    let chars = 0;
    reading.texts.forEach((read, i) => {
      const text = texts[i] as string;
      if (read?.length === text.length) for (let k = 0; k < text.length; k++) chars += +(read[k] === text[k]);
      if (read === null) crashed.add(i);
      else if (read.toUpperCase() === texts[i]) {
        hits++;
        anyRight.add(i);
      }
    });
    return { name: passes[p]?.name, hits, chars };
  });
  const voted = texts.filter(
    (text, i) =>
      vote(
        readings.map((r) => r.texts[i]?.toUpperCase() ?? null),
        text.length,
      ) === text,
  ).length;
  const bestPass = Math.max(...perPass.map((p) => p.hits));
  const summary =
    `vote ${voted}/${texts.length}, best single set-up ${bestPass}/${texts.length} ` +
    `(${perPass.map((p) => `${p.name}: ${p.hits} (${p.chars} characters)`).join('; ')}); ` +
    `right in at least one set-up ${anyRight.size}; ` +
    `tesseract crashed on ${crashed.size} image(s) in some pass; ` +
    `${((performance.now() - started) / 1000).toFixed(1)} s`;
  return { voted, bestPass, anyRight: anyRight.size, crashed: crashed.size, summary };
}
