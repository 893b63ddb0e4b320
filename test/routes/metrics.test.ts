/**
 * Prometheus metrics as an operator's scraper meets them: absent unless configured, behind
 * the bearer token on the web port or on a listener of their own, in the text format, and
 * moving with the requests a user makes (route patterns, not raw URLs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsListener } from '../../src/adapters/metrics/listener.js';
import { createLogger } from '../../src/logger.js';
import {
  buildTestApp,
  type Client,
  imageCode,
  randomIp,
  randomMobile,
  registration,
  smsCode,
  type TestApp,
} from '../helper.js';
import { logSink } from '../log-sink.js';

const TOKEN = `${'m'.repeat(16)}-metrics-token-0123456789`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format, one sample per line. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not in the text format: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of the samples of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('metrics switched off', () => {
  it('has no /metrics and collects nothing when neither METRICS_TOKEN nor METRICS_PORT is set', async () => {
    const t = await buildTestApp();
    try {
      expect(t.deps.metrics).toBeUndefined();
      const res = await t.client().get('/metrics', { headers: bearer(TOKEN) });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: 'NOT_FOUND' });
    } finally {
      await t.close();
    }
  });

  it('keeps /metrics off the web port when only METRICS_PORT is set', async () => {
    const t = await buildTestApp({ METRICS_PORT: '9464' });
    try {
      expect(t.deps.metrics).toBeDefined();
      expect((await t.client().get('/metrics')).statusCode).toBe(404);
    } finally {
      await t.close();
    }
  });
});

describe('metrics on the web port (METRICS_TOKEN)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({
      METRICS_TOKEN: TOKEN,
      IMAGE_CODES_PER_IP_PER_MINUTE: '3',
      SMS_PER_IP_PER_HOUR: '0',
      SMS_PER_MOBILE_PER_DAY: '0',
      SMS_GLOBAL_PER_HOUR: '0',
    });
  });
  afterAll(() => t.close());

  const scrape = async (): Promise<Sample[]> => {
    const res = await t.client().get('/metrics', { headers: bearer(TOKEN) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(res.body);
  };

  it('answers 401 METRICS_UNAUTHORIZED without the right bearer token', async () => {
    for (const headers of [{}, bearer(`${TOKEN}x`), bearer(TOKEN.slice(1)), { authorization: TOKEN }]) {
      const res = await t.client().get('/metrics', { headers });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'METRICS_UNAUTHORIZED' });
      expect(res.body).not.toContain('meiduo_');
    }
  });

  it('counts requests by route pattern and status, with durations, and refusals by error id', async () => {
    const before = await scrape();
    const route = { method: 'GET', route: '/image_codes/:uuid/' };
    const ip = randomIp();
    const c = t.client({ ip });
    for (let i = 0; i < 3; i++) expect((await c.get(`/image_codes/raw-uuid-${i}/`)).statusCode).toBe(200);
    expect((await c.get('/image_codes/raw-uuid-3/')).statusCode).toBe(429);
    expect((await c.get('/no/such/path')).statusCode).toBe(404);

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) =>
      total(after, name, labels) - total(before, name, labels);
    expect(moved('meiduo_http_request_duration_seconds_count', { ...route, status: '200' })).toBe(3);
    expect(moved('meiduo_http_request_duration_seconds_count', { ...route, status: '429' })).toBe(1);
    expect(moved('meiduo_http_request_duration_seconds_sum', route)).toBeGreaterThan(0);
    expect(moved('meiduo_http_request_duration_seconds_count', { route: '(none)', status: '404' })).toBe(1);
    expect(moved('meiduo_limit_refusals_total', { error: 'IMAGE_CODE_LIMIT' })).toBe(1);
    expect(moved('meiduo_http_errors_total', { route: '(none)', error: 'NOT_FOUND' })).toBe(1);
    expect(moved('meiduo_captcha_render_duration_seconds_count')).toBe(3);
    // Raw URLs never become labels.
    expect(after.some((s) => Object.values(s.labels).some((v) => v.includes('raw-uuid')))).toBe(false);
    // Process metrics come along.
    expect(total(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(total(after, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('counts SMS decisions, vendor sends, job latency, hashing and the queue depth', async () => {
    const before = await scrape();
    const c: Client = t.client({ ip: randomIp() });
    await c.fetchCsrf();
    const mobile = randomMobile();
    const code = await smsCode(t, c, mobile);
    // A wrong captcha is refused before any SMS decision.
    const { uuid } = await imageCode(t, c);
    expect(
      (await c.get(`/sms_codes/${randomMobile()}/?image_code=XXXX&image_code_id=${uuid}`)).statusCode,
    ).toBe(400);
    expect((await c.post('/register/', registration(mobile, code))).statusCode).toBe(200);

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) =>
      total(after, name, labels) - total(before, name, labels);
    expect(moved('meiduo_sms_requests_total', { decision: 'sent' })).toBe(1);
    expect(moved('meiduo_sms_requests_total')).toBe(1);
    expect(moved('meiduo_sms_sends_total', { vendor: 'recording', outcome: 'ok' })).toBe(1);
    expect(moved('meiduo_sms_vendor_duration_seconds_count', { vendor: 'recording' })).toBe(1);
    expect(moved('meiduo_sms_job_latency_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(
      moved('meiduo_http_errors_total', { route: '/sms_codes/:mobile/', error: 'IMAGE_CODE_WRONG' }),
    ).toBe(1);
    expect(moved('meiduo_password_hash_duration_seconds_count', { op: 'hash' })).toBe(1);
    expect(total(after, 'meiduo_queue_up')).toBe(1);
    for (const state of ['waiting', 'active', 'delayed', 'failed']) {
      expect(after.some((s) => s.name === 'meiduo_queue_jobs' && s.labels.state === state)).toBe(true);
    }
  });
});

describe('metrics in meiduo status mode', () => {
  it('reads the error id of answers folded into HTTP 200', async () => {
    const t = await buildTestApp({
      METRICS_TOKEN: TOKEN,
      ERROR_STATUS_MODE: 'meiduo',
      COUNT_LOOKUPS_PER_IP_PER_MINUTE: '1',
    });
    try {
      const c = t.client({ ip: randomIp() });
      await c.get('/usernames/someone_here/count/');
      const refused = await c.get('/usernames/someone_here/count/');
      expect(refused.statusCode).toBe(200);
      expect(refused.json()).toMatchObject({ code: 400, error: 'COUNT_LIMIT' });
      const res = await t.client().get('/metrics', { headers: bearer(TOKEN) });
      expect(total(parse(res.body), 'meiduo_limit_refusals_total', { error: 'COUNT_LIMIT' })).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describe('metrics on a listener of their own (METRICS_PORT)', () => {
  it('serves only /metrics, asks for METRICS_TOKEN when set, and shows the process metrics', async () => {
    const t = await buildTestApp({ METRICS_PORT: '9464' });
    const { stream } = logSink();
    const log = createLogger(t.config, stream);
    const metrics = t.deps.metrics;
    if (!metrics) throw new Error('metrics are on');
    const open = await startMetricsListener({ host: '127.0.0.1', port: 0, token: undefined, log, metrics });
    const guarded = await startMetricsListener({ host: '127.0.0.1', port: 0, token: TOKEN, log, metrics });
    const url = (server: typeof open, path: string) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      return `http://127.0.0.1:${address.port}${path}`;
    };
    try {
      await t.client().get('/healthz');
      const res = await fetch(url(open, '/metrics'));
      expect(res.status).toBe(200);
      const samples = parse(await res.text());
      expect(total(samples, 'meiduo_http_request_duration_seconds_count', { route: '/healthz' })).toBe(1);
      expect(total(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect((await fetch(url(open, '/'))).status).toBe(404);
      expect((await fetch(url(open, '/metrics'), { method: 'POST' })).status).toBe(404);

      expect((await fetch(url(guarded, '/metrics'))).status).toBe(401);
      expect((await fetch(url(guarded, '/metrics'), { headers: bearer('x'.repeat(40)) })).status).toBe(401);
      const ok = await fetch(url(guarded, '/metrics'), { headers: bearer(TOKEN) });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('meiduo_http_request_duration_seconds');
    } finally {
      await new Promise((resolve) => open.close(resolve));
      await new Promise((resolve) => guarded.close(resolve));
      await t.close();
    }
  });
});
