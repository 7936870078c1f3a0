import type { Collection, Db, Filter } from 'mongodb';
import { emailLogMongoFilter } from './filter';
import { listIndexFor } from '../indexes';
import { countUpTo } from '../count-up-to';
import type { EmailLogCursor, EmailLogFilter } from './query';
import type { EmailLogDoc } from '../types';

/*
 * Reading the email log in list order (sentAt desc, _id desc).
 *
 * On MongoDB a page is one read: the ESR indexes of repository.ts return the matches in list
 * order and the server stops after `limit`.
 *
 * DocumentDB (under FerretDB 2, our dev/test engine) filters through the same indexes but sorts
 * outside them (its order-by pushdown never applied to these reads, experimental switches on or
 * off): it fetches every match, then sorts, about 30 µs a match, so a page of a workspace with a
 * million entries would take half a minute. For that engine only, a page is read in windows of
 * time, newest first, each a bounded range on `sentAt` that holds few matches:
 *  - the first window has the width that held the previous page of the same workspace and
 *    filter (or, when that read found less than a page, everything), read at once; a window that
 *    comes up short is followed by one four times as wide;
 *  - before a guessed or widened window is read sorted, an index count that stops at probeCap()
 *    matches says whether it holds too many; such a window is narrowed toward its newer end first.
 * Windows are disjoint and read newest first, so their results simply follow one another.
 */

/** Pages and exports leave out what only the detail view shows. */
const LIST_PROJECTION = { metadata: 0, timeline: 0, eventIds: 0 } as const;
const LIST_SORT = { sentAt: -1, _id: -1 } as const;

/** The first window when nothing is known, how fast windows widen, and the widest bounded one. */
const FIRST_WINDOW_MS = 15 * 60_000;
const GROWTH = 4;
const WIDEST_WINDOW_MS = 400 * 86_400_000;
/** How many (workspace, filter) window sizes a process remembers. */
const REMEMBERED = 2000;
/** A window is sorted only when it holds fewer matches than this (or cannot be narrowed). */
const probeCap = (limit: number) => Math.max(200, 4 * limit);
const NARROWEST_WINDOW_MS = 1000;

/** How the connected engine answers a sorted read; decided once per repository. */
export interface ListEngine {
  /** True where the server returns index order and stops at the limit (MongoDB). */
  sortsInIndex(): Promise<boolean>;
}

/** Asks the server once: FerretDB says so in `buildInfo` (its `ferretdb` field). */
export function detectListEngine(db: Db): ListEngine {
  let answer: Promise<boolean> | undefined;
  return {
    sortsInIndex() {
      answer ??= db
        .admin()
        .command({ buildInfo: 1 })
        .then((info) => !('ferretdb' in info))
        .catch((err: unknown) => {
          answer = undefined; // asked again on the next read
          throw err;
        });
      return answer;
    },
  };
}

const withWindow = (q: Filter<EmailLogDoc>, from: Date | null, below: Date | null): Filter<EmailLogDoc> => {
  const sentAt = { ...(from ? { $gte: from } : {}), ...(below ? { $lt: below } : {}) };
  return Object.keys(sentAt).length ? ({ ...q, $and: [...((q.$and as object[]) ?? []), { sentAt }] } as Filter<EmailLogDoc>) : q;
};

export function createEmailLogPages(logs: Collection<EmailLogDoc>, engine: ListEngine) {
  /** Window width (ms) that last held a page's worth, per workspace and filter; a small LRU. */
  const widths = new Map<string, number>();
  const keyOf = (workspaceId: string, f: EmailLogFilter) => JSON.stringify([workspaceId, { ...f, since: undefined, until: undefined }]);
  const remember = (key: string, ms: number) => {
    widths.delete(key);
    widths.set(key, Math.min(Math.max(ms, 1000), WIDEST_WINDOW_MS));
    if (widths.size > REMEMBERED) widths.delete(widths.keys().next().value!);
  };

  const find = (q: Filter<EmailLogDoc>, hint?: string) =>
    logs.find(q, { projection: LIST_PROJECTION, ...(hint ? { hint } : {}) }).sort(LIST_SORT);
  /**
   * At most `n` matches in list order, in one reply: no server cursor is left open. On FerretDB 2
   * a read that leaves a cursor open costs ~15 ms more (20–24 ms against 5–6 ms, same query).
   */
  const firstPage = (q: Filter<EmailLogDoc>, n: number, hint?: string) =>
    logs
      .find(q, { projection: LIST_PROJECTION, singleBatch: true, ...(hint ? { hint } : {}) })
      .sort(LIST_SORT)
      .limit(n)
      .batchSize(n)
      .toArray();

  /**
   * The windows of a read, newest first: [from, below) on sentAt, the first open above unless a
   * cursor or `until` bounds the read, the last open below (or bounded by `since`, which
   * the filter carries). The caller passes `next()` the factor to widen the following window by.
   */
  function* windows(
    top: Date,
    bounded: boolean,
    since: Date | undefined,
    widthMs: number,
  ): Generator<{ from: Date | null; below: Date | null }, void, number> {
    // Bounded by a cursor or `until`: the first window too, so a deep page reads no newer entries.
    let below: Date | null = bounded ? top : null;
    let width = widthMs;
    for (;;) {
      const edge = (below ?? top).getTime() - width;
      const last = width >= WIDEST_WINDOW_MS || (since !== undefined && edge <= since.getTime());
      const from = last ? null : new Date(edge);
      const factor: number = yield { from, below };
      if (last) return;
      below = from;
      width = Math.max(1000, width * factor);
    }
  }

  /** The newest time a match can have: the cursor, `until`, or now (entries are written with the sender's clock). */
  const topOf = (f: EmailLogFilter, after?: EmailLogCursor) =>
    new Date(Math.min(after?.sentAt.getTime() ?? Infinity, f.until?.getTime() ?? Infinity, Date.now() + 60_000) + 1);

  return {
    /** One page of the log, newest first (sentAt desc, _id desc), strictly after `after`. */
    async list(workspaceId: string, filter: EmailLogFilter, opts: { limit: number; after?: EmailLogCursor }): Promise<EmailLogDoc[]> {
      const q = emailLogMongoFilter(workspaceId, filter, opts.after);
      if (await engine.sortsInIndex()) return firstPage(q, opts.limit);

      const key = keyOf(workspaceId, filter);
      const hint = listIndexFor(filter);
      const top = topOf(filter, opts.after);
      const remembered = widths.get(key);
      const cap = probeCap(opts.limit);
      const out: EmailLogDoc[] = [];
      // Bounded by a cursor or `until`: the first window too, so a deep page reads no newer entries.
      let below: Date | null = opts.after || filter.until ? top : null;
      let width = remembered ?? FIRST_WINDOW_MS;
      // A width that held the previous page (or everything, when that was less than a page)
      // needs no count; a guess or a widened window does.
      let probe = remembered === undefined;
      for (;;) {
        const upper = (below ?? top).getTime();
        const isLast = (w: number) => w >= WIDEST_WINDOW_MS || (filter.since !== undefined && upper - w <= filter.since.getTime());
        while (probe && width > NARROWEST_WINDOW_MS) {
          const from = isLast(width) ? null : new Date(upper - width);
          if ((await countUpTo(logs, withWindow(q, from, below), cap, hint)) < cap) break;
          width = Math.max(NARROWEST_WINDOW_MS, Math.min(width, WIDEST_WINDOW_MS, upper - (filter.since?.getTime() ?? 0)) / GROWTH);
        }
        const last = isLast(width);
        const from = last ? null : new Date(upper - width);
        out.push(...(await firstPage(withWindow(q, from, below), opts.limit - out.length, hint)));
        if (out.length >= opts.limit) {
          // What the page spanned, so the next page (or the next visitor) starts with a window that fits.
          remember(key, (top.getTime() - out[out.length - 1]!.sentAt.getTime()) * 1.25);
          return out;
        }
        if (last) break;
        below = from;
        width *= GROWTH;
        probe = true;
      }
      // The read reached the end with less than a page: next time, everything at once, one read.
      if (!opts.after) remember(key, WIDEST_WINDOW_MS);
      return out;
    },

    /** Every matching entry in list order, read in batches (the CSV export); stops when the caller does. */
    async *scan(workspaceId: string, filter: EmailLogFilter, batchSize = 1000): AsyncGenerator<EmailLogDoc, void, undefined> {
      const q = emailLogMongoFilter(workspaceId, filter);
      if (await engine.sortsInIndex()) {
        const cursor = find(q).batchSize(batchSize);
        try {
          yield* cursor;
        } finally {
          await cursor.close();
        }
        return;
      }
      // Windows resized toward `batchSize` matches each (at most ×4 either way), each streamed.
      const reads = windows(topOf(filter), !!filter.until, filter.since, widths.get(keyOf(workspaceId, filter)) ?? FIRST_WINDOW_MS);
      for (let w = reads.next(); !w.done;) {
        const cursor = find(withWindow(q, w.value.from, w.value.below), listIndexFor(filter)).batchSize(batchSize);
        let n = 0;
        try {
          for await (const doc of cursor) {
            n++;
            yield doc;
          }
        } finally {
          await cursor.close();
        }
        w = reads.next(Math.min(GROWTH, Math.max(1 / GROWTH, batchSize / Math.max(n, 1))));
      }
    },
  };
}
