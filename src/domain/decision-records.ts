import { createHmac, randomUUID } from 'node:crypto';
import { StoreBusyError } from './errors.js';
import type {
  Clock,
  SmsDecisionKind,
  SmsDecisionQuery,
  SmsDecisionRecord,
  SmsDecisionStore,
  SmsDecisionView,
  SmsDeliveryRecord,
} from './ports.js';
import { ipPrefix, normaliseListValue, numberBlock } from './sms-abuse.js';

/*
 * A decision record per SMS request (docs/operations.md "Decision records"). The request path
 * only appends to an in-memory batch; a timer writes the batch in one INSERT at most
 * SMS_DECISION_FLUSH_MS later, so recording adds no round trip to GET /sms_codes/. The worker
 * reports deliveries the same way. A database that is down delays the batch (kept, retried);
 * past MAX_PENDING the oldest records are dropped and the loss is logged: the SMS path never
 * waits for its own audit trail.
 */

const MAX_PENDING = 10_000;
/**
 * Rows per statement. On SQLite a statement runs on the event loop: 100 rows take ~1 ms, 500
 * took 5–10 ms, and batches written back to back held requests for tens of ms (p99).
 */
const BATCH = 100;
const DAY_MS = 86_400_000;
/** Old records are removed at most this often per process. */
const PURGE_INTERVAL_MS = 3_600_000;
/** A batch that met another writer (StoreBusyError) is tried again after 10–60 ms. */
const BUSY_RETRY_MS = [10, 60] as const;

export interface RecorderSettings {
  SMS_DECISION_RETENTION_DAYS: number;
  SMS_DECISION_MOBILE: 'masked' | 'hashed' | 'full';
  SMS_DECISION_HASH_KEY?: string | undefined;
  SMS_DECISION_FLUSH_MS: number;
  SMS_RATIO_IPV4_PREFIX_BITS: number;
  SMS_RATIO_IPV6_PREFIX_BITS: number;
}

/** The part of a logger the recorder uses (pino's shape). */
export interface RecorderLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DecisionInput {
  mobile: string;
  /** The client's address as seen (the record keeps its prefix only). */
  ip: string;
  purpose: string;
  decision: SmsDecisionKind;
  rule?: string | null;
  detail?: string | null;
  /** The record's id when the caller made it already (a queued job names it); else a new one. */
  id?: string | undefined;
}

export interface DecisionQueryInput {
  mobile?: string;
  block?: string;
  ip?: string;
  decision?: SmsDecisionKind;
  fromMs?: number;
  toMs?: number;
  limit?: number;
}

/**
 * A UUID version 7 (RFC 9562): the millisecond time, then 74 random bits. Records are written
 * in time order, so their ids land at the end of the primary-key index instead of at random
 * places in it: a 100-row batch on SQLite took ~59 µs a row with random (v4) ids, ~36 with
 * these (InnoDB's clustered index and PostgreSQL's B-trees gain alike).
 */
export function decisionId(nowMs: number = Date.now()): string {
  // The random part is a v4 UUID's (node keeps a pool of entropy for them: randomBytes(16) per
  // call cost ~10 µs here): its variant bits stay, its first 48 bits become the time, its
  // version nibble 7.
  const time = Math.trunc(nowMs).toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

/** `1380013****`: the number block only, so that the record alone does not name the number. */
export function recordMask(mobile: string): string {
  return `${numberBlock(mobile)}****`;
}

export function createDecisionRecorder(deps: {
  store: SmsDecisionStore;
  clock: Clock;
  log: RecorderLog;
  settings: RecorderSettings;
}) {
  const { store, clock, log, settings } = deps;
  const enabled = settings.SMS_DECISION_RETENTION_DAYS > 0;
  let decisions: SmsDecisionRecord[] = [];
  let deliveries: SmsDeliveryRecord[] = [];
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let lastPurgeMs = Number.NEGATIVE_INFINITY;
  let lastFailureLogMs = Number.NEGATIVE_INFINITY;
  let closed = false;

  const prefixOf = (ip: string) =>
    ipPrefix(ip, settings.SMS_RATIO_IPV4_PREFIX_BITS, settings.SMS_RATIO_IPV6_PREFIX_BITS);

  /** The stored query key of a mobile, or null when records keep only its block. */
  const mobileKey = (mobile: string): string | null => {
    switch (settings.SMS_DECISION_MOBILE) {
      case 'full':
        return mobile;
      case 'hashed':
        return createHmac('sha256', settings.SMS_DECISION_HASH_KEY ?? '')
          .update(mobile)
          .digest('hex')
          .slice(0, 32);
      case 'masked':
        return null;
    }
  };

  /** Arms the flush timer; `soon` replaces one set for later (a retry after a busy store). */
  const schedule = (soonMs?: number) => {
    if (closed) return;
    if (timer && soonMs === undefined) return;
    if (timer) clearTimeout(timer);
    const delayMs = soonMs ?? settings.SMS_DECISION_FLUSH_MS;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, delayMs);
    timer.unref();
  };
  /** Since when batches keep meeting another writer (undefined: the last write went through). */
  let busySinceMs: number | undefined;

  const bound = <T>(queue: T[]): T[] => {
    if (queue.length <= MAX_PENDING) return queue;
    const excess = queue.length - MAX_PENDING;
    dropped += excess;
    return queue.slice(excess);
  };

  async function writeOnce(): Promise<void> {
    const batch = decisions.splice(0, BATCH);
    const delivered = deliveries.splice(0, BATCH);
    try {
      // Decisions first: a delivery may belong to a decision of the same batch.
      if (batch.length > 0) await store.insert(batch);
    } catch (err) {
      decisions = bound([...batch, ...decisions]);
      deliveries = bound([...delivered, ...deliveries]);
      throw err;
    }
    try {
      if (delivered.length > 0) await store.deliver(delivered);
    } catch (err) {
      deliveries = bound([...delivered, ...deliveries]);
      throw err;
    }
  }

  async function flushNow(): Promise<void> {
    try {
      while (decisions.length > 0 || deliveries.length > 0) {
        await writeOnce();
        // Requests go first between batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
      busySinceMs = undefined;
      const nowMs = clock.nowMs();
      if (nowMs - lastPurgeMs >= PURGE_INTERVAL_MS) {
        lastPurgeMs = nowMs;
        const removed = await store.purgeBefore(nowMs - settings.SMS_DECISION_RETENTION_DAYS * DAY_MS);
        if (removed > 0) log.info({ removed }, 'old SMS decision records removed');
      }
    } catch (err) {
      const nowMs = clock.nowMs();
      // Another process's transaction: again in a moment, and said only if it lasts (a minute).
      if (err instanceof StoreBusyError) {
        busySinceMs ??= nowMs;
        if (nowMs - busySinceMs < 60_000) {
          const [low, high] = BUSY_RETRY_MS;
          schedule(low + Math.random() * (high - low));
          return;
        }
      }
      // Once per outage minute, not once per retry.
      if (nowMs - lastFailureLogMs >= 60_000) {
        lastFailureLogMs = nowMs;
        log.warn(
          { err, pending: decisions.length + deliveries.length },
          'SMS decision records not written yet',
        );
      }
      schedule();
    }
    if (dropped > 0) {
      log.warn({ dropped }, 'SMS decision records dropped: the database did not take them in time');
      dropped = 0;
    }
  }

  /** Writes everything pending (one writer at a time). */
  function flush(): Promise<void> {
    if (!enabled) return Promise.resolve();
    flushing ??= flushNow().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  return {
    enabled,
    mobileKey,
    prefixOf,

    /** Records one SMS request's decision (written later); returns the record's id. */
    decide(input: DecisionInput): string {
      const id = input.id ?? decisionId(clock.nowMs());
      if (!enabled) return id;
      decisions.push({
        id,
        atMs: clock.nowMs(),
        mobile: settings.SMS_DECISION_MOBILE === 'full' ? input.mobile : recordMask(input.mobile),
        mobileKey: mobileKey(input.mobile),
        block: numberBlock(input.mobile),
        ipPrefix: prefixOf(input.ip),
        purpose: input.purpose,
        decision: input.decision,
        rule: input.rule ?? null,
        detail: input.detail ?? null,
      });
      decisions = bound(decisions);
      schedule();
      return id;
    },

    /** The worker's report of what became of a decision's job. */
    delivered(record: Omit<SmsDeliveryRecord, 'atMs'>): void {
      if (!enabled) return;
      deliveries.push({ ...record, atMs: clock.nowMs() });
      deliveries = bound(deliveries);
      schedule();
    },

    flush,

    /** Records matching every given filter, newest first. */
    async query(input: DecisionQueryInput): Promise<SmsDecisionView[]> {
      await flush();
      const query: SmsDecisionQuery = { limit: Math.min(1000, Math.max(1, input.limit ?? 100)) };
      if (input.mobile !== undefined) {
        const key = mobileKey(input.mobile);
        // Masked records keep only the block: a number's records are its block's.
        if (key === null) query.block = numberBlock(input.mobile);
        else query.mobileKey = key;
      }
      if (input.block !== undefined) query.block = input.block;
      if (input.ip !== undefined) {
        query.ipPrefix = input.ip.includes('/')
          ? (normaliseListValue('ip', input.ip) ?? input.ip)
          : prefixOf(input.ip);
      }
      if (input.decision !== undefined) query.decision = input.decision;
      if (input.fromMs !== undefined) query.fromMs = input.fromMs;
      if (input.toMs !== undefined) query.toMs = input.toMs;
      return store.query(query);
    },

    /** Stops the timer and writes what is pending. */
    async close(): Promise<void> {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
      // Another process's transaction in the way: a few more tries (~2 s) before giving up.
      for (let i = 0; i < 40 && busySinceMs !== undefined && decisions.length + deliveries.length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS[1]));
        await flush();
      }
    },
  };
}

export type DecisionRecorder = ReturnType<typeof createDecisionRecorder>;
