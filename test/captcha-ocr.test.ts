/**
 * The captcha against an attacker who has looked at it: Debian's tesseract-ocr behind several
 * preprocessing pipelines of our own (test/captcha-attack.ts), each in single-line and
 * single-word page mode with the alphabet as whitelist, segmentation pipelines reading the
 * four cut-out glyphs one by one, and a vote. The attacker gets one
 * answer per captcha, so it answers with the vote or its best single set-up; either must read
 * fewer than 5% of 200 samples exactly. A control run on the same font without distortion
 * proves the OCR does read text when text is readable, so a low rate means the drawing works,
 * not that the OCR was set up to fail.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaptchaRenderer, drawCaptcha, planCaptcha } from '../src/adapters/captcha-image.js';
import { generateCaptchaText } from '../src/domain/captcha.js';
import { has } from './backends.js';
import { attack, pool, readAll, saveAll } from './captcha-attack.js';

const SAMPLES = 200;
const CONTROL_SAMPLES = 40;

describe.skipIf(!(await has('tesseract')))('captcha images against tesseract OCR', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'captcha-ocr-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it(`is read by the best attack in fewer than 5% of ${SAMPLES} samples`, { timeout: 120_000 }, async () => {
    const renderer = createCaptchaRenderer();
    const texts = Array.from({ length: SAMPLES }, () => generateCaptchaText());
    const served = await Promise.all(texts.map(async (t) => (await renderer.render(t)).body));

    const result = await attack(work, texts, served);
    console.info(`captcha OCR attack: ${result.summary}`);
    // Crashes count as misses, so they must stay rare for the rate to mean anything.
    expect(result.crashed).toBeLessThan(SAMPLES * 0.05);
    // The attacker answers with the vote or with its best single set-up, whichever reads more.
    expect(Math.max(result.voted, result.bestPass)).toBeLessThan(SAMPLES * 0.05);
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
          g.wobble = undefined;
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
