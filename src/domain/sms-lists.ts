import { ApiError } from './errors.js';
import type { Clock, SmsListStore } from './ports.js';
import {
  createListMatcher,
  type ListEntry,
  type ListKind,
  type ListMatcher,
  type ListName,
  normaliseListValue,
} from './sms-abuse.js';

/*
 * Block and allow lists as the request path sees them: an in-process copy of the database's
 * live entries. GET /sms_codes/ matches against the copy (no round trip); once the copy is
 * older than SMS_LISTS_REFRESH_MS the next request starts a reload in the background and is
 * itself answered from the copy it has. So a change made on one instance applies there at once
 * and on every other instance within the refresh interval (plus one request), while the SMS
 * path keeps its two store round trips. A reload that fails keeps the last good copy.
 */

export interface ListsLog {
  warn(obj: object, msg: string): void;
}

export interface ListChange {
  list: ListName;
  kind: ListKind;
  value: string;
  note?: string;
  /** Seconds from now; absent = until removed. */
  ttlSeconds?: number;
}

export function createSmsLists(deps: {
  store: SmsListStore;
  clock: Clock;
  log: ListsLog;
  refreshMs: number;
}) {
  const { store, clock, log, refreshMs } = deps;
  let matcher: ListMatcher = createListMatcher([]);
  let loadedAtMs = Number.NEGATIVE_INFINITY;
  let loading: Promise<void> | undefined;

  function reload(): Promise<void> {
    loading ??= store
      .live(clock.nowMs())
      .then((entries) => {
        matcher = createListMatcher(entries);
        loadedAtMs = clock.nowMs();
      })
      .catch((err: unknown) => {
        // Try again at the next interval, not at every request.
        loadedAtMs = clock.nowMs();
        log.warn({ err }, 'SMS block/allow lists not reloaded; the last copy stays in use');
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  }

  return {
    /** The copy to match against now; starts a background reload when it is stale. */
    current(): ListMatcher {
      if (clock.nowMs() - loadedAtMs >= refreshMs) void reload();
      return matcher;
    },

    /** Loads the lists (at start-up, and after a change made here). */
    reload,

    /** Resolves when a reload in progress (if any) has finished. */
    settled(): Promise<void> {
      return loading ?? Promise.resolve();
    },

    async list(): Promise<ListEntry[]> {
      return store.live(clock.nowMs());
    },

    async put(change: ListChange): Promise<ListEntry> {
      const value = normaliseListValue(change.kind, change.value);
      if (value === null) throw new ApiError('BAD_REQUEST');
      const nowMs = clock.nowMs();
      const entry = await store.put(
        {
          list: change.list,
          kind: change.kind,
          value,
          note: change.note ?? '',
          expiresAtMs: change.ttlSeconds === undefined ? null : nowMs + change.ttlSeconds * 1000,
        },
        nowMs,
      );
      await reload();
      return entry;
    },

    async remove(id: number): Promise<boolean> {
      const removed = await store.remove(id);
      await reload();
      return removed;
    },
  };
}

export type SmsLists = ReturnType<typeof createSmsLists>;
