import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteCodeStore } from '../adapters/code-store/sqlite.js';
import { createConsoleProvider } from '../adapters/sms-provider/console.js';
import { openSqlite, type SqliteDatabase } from '../adapters/sqlite.js';
import type { CodeStore, SmsMessage, SmsProvider } from '../domain/ports.js';
import { mobileChangeCodeKey, passwordResetCodeKey } from '../domain/sms-purposes.js';
import { createSendSmsHandler } from './send-sms.js';

/** The console provider (the embedded default), with what it would print kept, and each message. */
function recordingProvider() {
  const printed: string[] = [];
  const console = createConsoleProvider((line) => printed.push(line));
  const messages: SmsMessage[] = [];
  const provider: SmsProvider = {
    name: console.name,
    send: (message) => {
      messages.push(message);
      return console.send(message);
    },
  };
  return { provider, printed, messages };
}

describe('send-sms job handler', () => {
  let db: SqliteDatabase;
  let store: CodeStore;
  const log = pino({ level: 'silent' });
  const info = (id: string, attempt = 1) => ({ id, attempt, maxAttempts: 6 });
  /** The handler over this test's store, with a 5-minute code lifetime and no test numbers unless told. */
  const handlerFor = (
    sms: SmsProvider,
    { codeTtlSeconds = 300, testNumbers = new Map<string, string>() } = {},
  ) => createSendSmsHandler({ codeStore: store, sms, log, codeTtlSeconds, testNumbers });

  beforeEach(() => {
    db = openSqlite(':memory:');
    store = createSqliteCodeStore(db, { nowMs: () => Date.now() });
  });
  afterEach(() => db.close());

  it('sends the code stored for the mobile, with the job id as idempotency key on every attempt', async () => {
    const { provider, printed, messages } = recordingProvider();
    const handle = handlerFor(provider);
    await store.set('sms_13155667788', '939466', 300);

    const first = await handle({ mobile: '13155667788', purpose: 'register' }, info('job-1'));
    const retry = await handle({ mobile: '13155667788', purpose: 'register' }, info('job-1', 2));

    expect(first.kind).toBe('ok');
    expect(retry.kind).toBe('ok');
    expect(printed[0]).toBe('[mobile: 13155667788] [sms_code: 939466]');
    expect(messages.map((m) => [m.code, m.ttlMinutes, m.idempotencyKey, m.purpose])).toEqual([
      ['939466', 5, 'job-1', 'register'],
      ['939466', 5, 'job-1', 'register'],
    ]);
  });

  it('sends nothing when the code expired or was used before the job ran', async () => {
    const { provider, messages } = recordingProvider();
    const handle = handlerFor(provider);
    await store.set('sms_13155667788', '939466', 300);
    await store.take('sms_13155667788');

    const outcome = await handle({ mobile: '13155667788', purpose: 'register' }, info('job-2'));

    expect(outcome.kind).toBe('skipped');
    expect(messages).toHaveLength(0);
  });

  it('sends no SMS to a test-mode number, even with a code stored', async () => {
    const { provider, messages } = recordingProvider();
    const handle = handlerFor(provider, { testNumbers: new Map([['13800000000', '123456']]) });
    await store.set('sms_13800000000', '123456', 300);

    const outcome = await handle({ mobile: '13800000000', purpose: 'register' }, info('job-3'));

    expect(outcome.kind).toBe('skipped');
    expect(messages).toHaveLength(0);
  });

  it('says the validity in whole minutes, at least one', async () => {
    const { provider, messages } = recordingProvider();
    for (const ttl of [600, 20]) {
      const handle = handlerFor(provider, { codeTtlSeconds: ttl });
      await store.set('sms_13155667788', '111111', ttl);
      await handle({ mobile: '13155667788', purpose: 'register' }, info(`ttl-${ttl}`));
    }
    expect(messages.map((m) => m.ttlMinutes)).toEqual([10, 1]);
  });

  it('lets a store failure reach the queue (which retries it as transient)', async () => {
    const { provider, messages } = recordingProvider();
    const handle = handlerFor(provider);
    db.close();
    await expect(handle({ mobile: '13155667788', purpose: 'register' }, info('job-4'))).rejects.toThrow();
    expect(messages).toHaveLength(0);
    db = openSqlite(':memory:');
  });

  it('reads each purpose from its own key, sends a mobile-change code without its binding, and a notice', async () => {
    const { provider, printed, messages } = recordingProvider();
    const handle = handlerFor(provider);
    await store.set('sms_13155667788', '111111', 300);
    await store.set(passwordResetCodeKey('13155667788'), '222222', 300);
    await store.set(mobileChangeCodeKey('13900001111'), '42:333333', 300);
    await handle({ mobile: '13155667788', purpose: 'password_reset' }, info('r'));
    await handle({ mobile: '13900001111', purpose: 'mobile_change' }, info('m'));
    expect(await handle({ mobile: '13155667788', purpose: 'mobile_changed' }, info('n'))).toMatchObject({
      kind: 'ok',
    });
    expect(messages.map((m) => [m.purpose, m.code])).toEqual([
      ['password_reset', '222222'],
      ['mobile_change', '333333'],
      ['mobile_changed', ''],
    ]);
    expect(printed[2]).toContain('notice');
    // A reset job finds nothing when only a registration code exists.
    await store.delete(passwordResetCodeKey('13155667788'));
    expect(await handle({ mobile: '13155667788', purpose: 'password_reset' }, info('r2'))).toMatchObject({
      kind: 'skipped',
    });
  });

  it('skips a purpose the provider has no template for, never sending it with another text', async () => {
    const sent: string[] = [];
    const templateOnly: SmsProvider = {
      name: 'ronglian',
      purposes: new Set(['register']),
      send: async (m) => {
        sent.push(m.purpose);
        return { kind: 'ok', provider: 'ronglian' };
      },
    };
    await store.set(passwordResetCodeKey('13155667788'), '222222', 300);
    const handle = handlerFor(templateOnly);
    expect(await handle({ mobile: '13155667788', purpose: 'mobile_changed' }, info('x'))).toMatchObject({
      kind: 'skipped',
      detail: 'no template for mobile_changed',
    });
    expect(await handle({ mobile: '13155667788', purpose: 'password_reset' }, info('y'))).toMatchObject({
      kind: 'skipped',
      detail: 'no template for password_reset',
    });
    expect(sent).toEqual([]);
  });
});
