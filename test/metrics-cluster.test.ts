/**
 * Metrics under node:cluster: the primary's METRICS_PORT listener answers for every worker,
 * counters summed and the shared queue's depth taken once (max), not once per worker.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/metrics-cluster.ts', import.meta.url));

it('the cluster primary serves the sum of its workers’ metrics', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    child.stdout.setEncoding('utf8');
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code}: ${out}`)));
    });
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // Worker 0 rendered 2 captchas, worker 1 rendered 3.
    expect(body).toMatch(/^meiduo_captcha_render_duration_seconds_count 5$/m);
    // Both workers see the same shared queue: 7 waiting, not 14.
    expect(body).toMatch(/^meiduo_queue_jobs\{state="waiting"\} 7$/m);
    expect(body).toMatch(/^process_cpu_user_seconds_total /m);
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
});
