/**
 * The captcha against an off-the-shelf OCR used the way a cheap attacker would: Debian's
 * tesseract-ocr with single-line and single-word page modes, a whitelist of the captcha's
 * alphabet, on the image as served, upscaled, and upscaled + binarised + despeckled. A sample
 * counts as broken when ANY of those readings is exactly right. A control run on the same
 * font without distortion proves the pipeline does read text when text is readable, so a
 * low hit rate means the distortion works, not that the OCR was set up to fail.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptchaRenderer, drawCaptcha, planCaptcha } from '../src/adapters/captcha-image.js';
import { CAPTCHA_ALPHABET, generateCaptchaText } from '../src/domain/captcha.js';
import { has } from './backends.js';

const SAMPLES = 200;
const CONTROL_SAMPLES = 40;
const PARALLEL = 2;

interface Reading {
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
async function readAll(dir: string, files: string[], psm: string): Promise<Reading> {
  const texts: Array<string | null> = new Array(files.length).fill(null);
  let start = 0;
  let attempt = 0;
  while (start < files.length) {
    const listFile = join(dir, `list-${psm}-${attempt++}.txt`);
    await writeFile(listFile, `${files.slice(start).join('\n')}\n`);
    const { stdout, ok } = await runTesseract(listFile, psm);
    const pages = parseTsv(stdout);
    // After a crash the last page written may be cut short: it is read again alone.
    const complete = ok ? pages.size : Math.max(0, pages.size - 1);
    for (const [page, text] of pages) if (page <= complete) texts[start + page - 1] = text;
    if (ok) break;
    const failed = start + complete;
    const alone = join(dir, `list-${psm}-${attempt++}.txt`);
    await writeFile(alone, `${files[failed]}\n`);
    const retry = await runTesseract(alone, psm);
    texts[failed] = retry.ok ? (parseTsv(retry.stdout).get(1) ?? '') : null;
    start = failed + 1;
  }
  return { texts };
}

/** Runs the tasks with at most `limit` in flight. */
async function pool<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
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

/** Decodes an image to 8-bit luma, optionally upscaled with smoothing. */
async function toLuma(
  image: Buffer,
  factor: number,
): Promise<{ width: number; height: number; luma: Uint8Array }> {
  const source = await loadImage(image);
  const canvas = createCanvas(source.width * factor, source.height * factor);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const { width, height } = canvas;
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const luma = new Uint8Array(width * height);
  for (let i = 0; i < luma.length; i++) {
    luma[i] = 0.2126 * (rgba[4 * i] ?? 0) + 0.7152 * (rgba[4 * i + 1] ?? 0) + 0.0722 * (rgba[4 * i + 2] ?? 0);
  }
  return { width, height, luma };
}

/** Black where the image is dark, white elsewhere, then a 3×3 majority filter against specks. */
function binarise(width: number, height: number, luma: Uint8Array, threshold: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let dark = 0;
      let count = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= height || xx >= width) continue;
          if ((luma[yy * width + xx] ?? 255) < threshold) dark++;
          count++;
        }
      }
      out[y * width + x] = dark * 2 > count ? 0 : 255;
    }
  }
  return out;
}

/** Binary PGM: leptonica reads it without any encoding cost on our side. */
function pgm(width: number, height: number, pixels: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`), pixels]);
}

/** How the attacker prepares an image before OCR. */
const PREPARATIONS: Record<string, (image: Buffer) => Promise<Buffer>> = {
  served: async (image) => image,
  'greyscale ×2': async (image) => {
    const { width, height, luma } = await toLuma(image, 2);
    return pgm(width, height, luma);
  },
  'binarised ×2': async (image) => {
    const { width, height, luma } = await toLuma(image, 2);
    return pgm(width, height, binarise(width, height, luma, 140));
  },
};
const PAGE_MODES = ['7', '8']; // one text line; one word

async function saveAll(dir: string, images: Buffer[], ext: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(
    images.map(async (body, i) => {
      const file = join(dir, `${i}.${ext}`);
      await writeFile(file, body);
      return file;
    }),
  );
}

describe.skipIf(!(await has('tesseract')))('captcha images against tesseract OCR', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'captcha-ocr-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it(`is read exactly in fewer than 5% of ${SAMPLES} samples, whatever the cheap OCR set-up`, {
    timeout: 120_000,
  }, async () => {
    const renderer = createCaptchaRenderer();
    const texts = Array.from({ length: SAMPLES }, () => generateCaptchaText());
    const served = await Promise.all(texts.map(async (t) => (await renderer.render(t)).body));

    const passes: Array<{ name: string; run: () => Promise<Reading> }> = [];
    for (const [name, prepare] of Object.entries(PREPARATIONS)) {
      const ext = name === 'served' ? 'jpg' : 'pgm';
      const files = await saveAll(
        join(work, name.replace(/\W+/g, '-')),
        await Promise.all(served.map(prepare)),
        ext,
      );
      for (const psm of PAGE_MODES) {
        passes.push({ name: `${name}, --psm ${psm}`, run: () => readAll(work, files, psm) });
      }
    }
    const readings = await pool(
      PARALLEL,
      passes.map((p) => p.run),
    );

    const broken = new Set<number>();
    const crashed = new Set<number>();
    const perPass: string[] = [];
    readings.forEach((reading, p) => {
      let hits = 0;
      reading.texts.forEach((read, i) => {
        if (read === null) crashed.add(i);
        else if (read.toUpperCase() === texts[i]) {
          hits++;
          broken.add(i);
        }
      });
      perPass.push(`${passes[p]?.name}: ${hits}`);
    });
    console.info(
      `captcha OCR: ${broken.size}/${SAMPLES} read exactly by at least one set-up (${perPass.join('; ')}); ` +
        `tesseract crashed on ${crashed.size} image(s) in some pass`,
    );
    // Crashes count as misses, so they must stay rare for the rate to mean anything.
    expect(crashed.size).toBeLessThan(SAMPLES * 0.05);
    expect(broken.size).toBeLessThan(SAMPLES * 0.05);
  });

  it('control: the same OCR reads the same font undistorted, so the set-up is a fair attacker', async () => {
    const texts = Array.from({ length: CONTROL_SAMPLES }, () => generateCaptchaText());
    const images = await Promise.all(
      texts.map((text) => {
        const plan = planCaptcha(text);
        for (const g of plan.glyphs) {
          g.angle = 0;
          g.shear = 0;
          g.scale = 1;
          g.y = plan.height / 2;
        }
        return drawCaptcha(plan, { strokes: false, noise: false, warp: false }).encode('png');
      }),
    );
    const files = await saveAll(join(work, 'control'), images, 'png');
    const [reading] = await pool(1, [() => readAll(work, files, '7')]);
    const hits = reading?.texts.filter((read, i) => read?.toUpperCase() === texts[i]).length ?? 0;
    console.info(`captcha OCR control: ${hits}/${CONTROL_SAMPLES} undistorted samples read exactly`);
    expect(hits).toBeGreaterThanOrEqual(CONTROL_SAMPLES * 0.8);
  });
});
